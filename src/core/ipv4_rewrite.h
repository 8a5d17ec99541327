// In-place IPv4 header rewrites that keep the header checksum valid incrementally (RFC 1624).
#pragma once

#include "core/checksum.h"

#include <rte_ip.h>

#include <cstring>

namespace fairgate {

// TTL and protocol share one 16-bit word of the header checksum.
inline void ipv4_set_ttl(rte_ipv4_hdr* ip, uint8_t ttl) {
  uint16_t old_word, new_word;
  std::memcpy(&old_word, &ip->time_to_live, sizeof old_word);
  ip->time_to_live = ttl;
  std::memcpy(&new_word, &ip->time_to_live, sizeof new_word);
  ip->hdr_checksum = checksum::update16(ip->hdr_checksum, old_word, new_word);
}

}  // namespace fairgate
