// Internet checksum helpers (RFC 1071) and incremental updates (RFC 1624, eqn. 3), so a
// rewritten field never costs a pass over the whole header.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fairgate::checksum {

// Ones-complement sum of `len` bytes folded to 16 bits (not inverted). Bytes are summed in
// network order; the result is in network order too.
uint16_t fold(const void* data, std::size_t len, uint32_t initial = 0);

// Checksum field value (inverted fold) for `len` bytes.
inline uint16_t compute(const void* data, std::size_t len) {
  return static_cast<uint16_t>(~fold(data, len));
}

// HC' = ~(~HC + ~m + m'): the new checksum after one 16-bit word changed from old_word to
// new_word. All three values in the same byte order (as stored in the packet).
inline uint16_t update16(uint16_t checksum, uint16_t old_word, uint16_t new_word) {
  uint32_t sum = static_cast<uint16_t>(~checksum);
  sum += static_cast<uint16_t>(~old_word);
  sum += new_word;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// Same for a 32-bit field (an address), as two 16-bit words.
inline uint16_t update32(uint16_t checksum, uint32_t old_value, uint32_t new_value) {
  checksum = update16(checksum, static_cast<uint16_t>(old_value >> 16), static_cast<uint16_t>(new_value >> 16));
  return update16(checksum, static_cast<uint16_t>(old_value), static_cast<uint16_t>(new_value));
}

}  // namespace fairgate::checksum
