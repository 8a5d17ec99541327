// The 5-tuple a NAT session is found by. For ICMP echo the identifier stands in for the port:
// requests carry it as the source port, replies as the destination port, the other port is 0.
#pragma once

#include <cstdint>
#include <cstring>

namespace fairgate {

struct FlowKey {
  uint32_t src = 0, dst = 0;          // host order
  uint16_t sport = 0, dport = 0;      // host order
  uint8_t proto = 0;                  // IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP
  uint8_t pad[3] = {0, 0, 0};         // zero: the key is hashed and compared as 16 bytes

  FlowKey reversed() const {
    FlowKey key;
    key.src = dst;
    key.dst = src;
    key.sport = dport;
    key.dport = sport;
    key.proto = proto;
    return key;
  }
  bool operator==(const FlowKey& other) const { return std::memcmp(this, &other, sizeof *this) == 0; }
};
static_assert(sizeof(FlowKey) == 16);

}  // namespace fairgate
