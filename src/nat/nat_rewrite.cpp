#include "nat/nat_rewrite.h"

namespace fairgate {

bool clamp_tcp_mss(const L4View& l4, uint16_t mss) {
  auto* tcp = reinterpret_cast<rte_tcp_hdr*>(l4.header);
  uint32_t header_len = (tcp->data_off >> 4) * 4u;
  if (header_len < sizeof(rte_tcp_hdr) || header_len > l4.length) return false;
  uint8_t* option = l4.header + sizeof(rte_tcp_hdr);
  uint8_t* end = l4.header + header_len;
  constexpr uint8_t kEnd = 0, kNop = 1, kMss = 2;
  while (option < end) {
    if (*option == kEnd) break;
    if (*option == kNop) {
      ++option;
      continue;
    }
    if (option + 1 >= end || option[1] < 2 || option + option[1] > end) break;  // malformed: leave it
    if (*option == kMss && option[1] == 4) {
      uint16_t current = static_cast<uint16_t>(option[2] << 8 | option[3]);
      if (current <= mss) return false;
      // The MSS value may sit at an odd offset; update the checksum over the aligned words.
      std::size_t offset = static_cast<std::size_t>(option + 2 - l4.header);
      uint8_t before[4], after[4];
      std::size_t base = offset & ~std::size_t{1};
      std::memcpy(before, l4.header + base, 4);
      option[2] = static_cast<uint8_t>(mss >> 8);
      option[3] = static_cast<uint8_t>(mss);
      std::memcpy(after, l4.header + base, 4);
      for (int word = 0; word < 2; ++word) {
        uint16_t old_word, new_word;
        std::memcpy(&old_word, before + 2 * word, 2);
        std::memcpy(&new_word, after + 2 * word, 2);
        tcp->cksum = checksum::update16(tcp->cksum, old_word, new_word);
      }
      return true;
    }
    option += option[1];
  }
  return false;
}

}  // namespace fairgate
