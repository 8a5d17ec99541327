// Which class a packet goes to inside its subscriber's pipe (FairNAT's PRIO bands), and how much
// each flow has sent so far (a flow becomes bulk after qos.bulk_after_bytes).
#pragma once

#include "config/config.h"
#include "qos/hierarchy.h"

#include <rte_ip.h>

#include <bitset>
#include <cstdint>
#include <vector>

namespace fairgate {

class ClassRules {
 public:
  explicit ClassRules(const QosConfig& qos);

  // The class of an IPv4 packet whose header was validated. `l4`: the transport header when the
  // packet is a first (or only) fragment and it is all there, else null. `flow_bytes`: what the
  // flow had sent before this packet (FlowMeter).
  //   interactive: DSCP EF, CS6, CS7 or TOS minimise-delay; ICMP; DNS; TCP segments without
  //                payload (ACKs, SYN, FIN); packets up to qos.interactive_packet_bytes to or
  //                from an interactive port (SSH keystrokes, not scp);
  //   bulk:        flows past qos.bulk_after_bytes;
  //   normal:      the rest.
  TrafficClass select(const rte_ipv4_hdr* ip, const uint8_t* l4, uint64_t flow_bytes) const;

 private:
  std::bitset<65536> interactive_port_;
  uint16_t interactive_packet_bytes_;
  uint64_t bulk_after_bytes_;
};

// Bytes per flow, counted by one worker. Four-way set-associative buckets of one cache line:
// a new flow takes the slot that was idle longest, so heavy flows that collide do not reset
// each other's counts. A flow idle for kIdleResetS starts again from zero.
class FlowMeter {
 public:
  static constexpr uint32_t kIdleResetS = 30;
  explicit FlowMeter(uint32_t buckets_log2 = 14);  // 16 k buckets, 64 k flows, 1 MiB

  // Adds `bytes` to the flow of `hash` and returns what it had sent before.
  uint64_t add(uint32_t hash, uint32_t bytes, uint32_t now_s);

 private:
  struct Slot {
    uint32_t hash;
    uint32_t last_s;
    uint64_t bytes;
  };
  struct alignas(64) Bucket {
    Slot slots[4];
  };
  std::vector<Bucket> buckets_;
  uint32_t bucket_mask_;
};

}  // namespace fairgate
