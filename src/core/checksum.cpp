#include "core/checksum.h"

#include <cstring>

namespace fairgate::checksum {

uint16_t fold(const void* data, std::size_t len, uint32_t initial) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  uint64_t sum = initial;
  // Sum 16-bit words as they lie in memory; the ones-complement sum is byte-order independent
  // (RFC 1071 section 2(B)), so the result is in memory order too.
  while (len >= 2) {
    uint16_t word;
    std::memcpy(&word, bytes, 2);
    sum += word;
    bytes += 2;
    len -= 2;
  }
  if (len == 1) {
    uint16_t word = 0;
    std::memcpy(&word, bytes, 1);
    sum += word;
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

}  // namespace fairgate::checksum
