// What the stages learn about a packet, kept in the mbuf's private area so no stage parses
// the same header twice. Pools that feed fairgate must be created with kMbufPrivSize.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

namespace fairgate {

struct PacketMeta {
  uint16_t l2_len;       // bytes before the IPv4/ARP header (Ethernet + 802.1Q tag)
  uint16_t l3_len;       // IPv4 header length in bytes (IHL * 4); 0 for ARP
  uint16_t vlan_id;      // 802.1Q VLAN id of the received frame, 0 when untagged
  uint16_t ethertype;    // inner ethertype, host byte order
  uint16_t egress_port;  // DPDK port id chosen by routing
  uint8_t punt_reason;   // PuntReason, valid when the verdict is kPunt
  uint8_t handoff_worker;  // owning worker, valid when the verdict is kHandoff
  uint32_t next_hop;     // IPv4 next hop on egress_port, host byte order
  // Set by the nat stage: the packet's session in this worker's SessionTable, kNoNatSession
  // when it has none (no NAT, or the pipeline has no nat stage), and whether it travels in
  // the session's reply direction.
  uint32_t nat_session;
  uint8_t nat_reply;
  // Set by the nat stage on a translated packet that leaves by a WAN: that WAN's port index,
  // the one its session started on (the l3 stage routes it there); kNoWanPort otherwise.
  uint8_t wan_port;
  // Set by the classify stage: the LAN host the packet is from or to (host byte order), the
  // hash of its flow, and its TrafficClass inside the subscriber's pipe.
  uint32_t lan_host;
  uint32_t flow_hash;
  uint8_t traffic_class;
  // Set by the sched stage: the frame's length while its pkt_len holds the bytes it costs on
  // the shaped link (SchedPort::wire_bytes); restored when the scheduler releases it.
  uint32_t frame_len;
};

inline constexpr uint32_t kNoNatSession = UINT32_MAX;
inline constexpr uint8_t kNoWanPort = UINT8_MAX;

inline constexpr uint16_t kMbufPrivSize =
    static_cast<uint16_t>(RTE_ALIGN(sizeof(PacketMeta), RTE_MBUF_PRIV_ALIGN));

inline PacketMeta* packet_meta(rte_mbuf* mbuf) {
  return static_cast<PacketMeta*>(rte_mbuf_to_priv(mbuf));
}

}  // namespace fairgate
