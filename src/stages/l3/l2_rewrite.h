// Writes the Ethernet header a routed packet leaves with: the egress port's MAC as source,
// the neighbour's as destination, an 802.1Q tag when the egress port has a VLAN.
#pragma once

#include "core/packet_meta.h"
#include "ports/ports.h"

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

namespace fairgate {

// Writes the header at `eth` (14 bytes, 18 with the port's VLAN tag).
inline void write_l2_header(rte_ether_hdr* eth, const PortInfo& egress, const rte_ether_addr& destination,
                            uint16_t ethertype) {
  eth->dst_addr = destination;
  eth->src_addr = egress.mac;
  if (egress.vlan) {
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN);
    auto* tag = reinterpret_cast<rte_vlan_hdr*>(eth + 1);
    tag->vlan_tci = rte_cpu_to_be_16(egress.vlan);
    tag->eth_proto = rte_cpu_to_be_16(ethertype);
  } else {
    eth->ether_type = rte_cpu_to_be_16(ethertype);
  }
}

inline uint16_t l2_header_len(const PortInfo& egress) {
  return egress.vlan ? sizeof(rte_ether_hdr) + sizeof(rte_vlan_hdr) : sizeof(rte_ether_hdr);
}

// Replaces the packet's Ethernet header (meta->l2_len bytes) by the egress port's. False only
// when the mbuf has no headroom for a tag (the packet must then be dropped).
inline bool rewrite_l2(rte_mbuf* mbuf, PacketMeta* meta, const PortInfo& egress, const rte_ether_addr& destination) {
  uint16_t wanted = l2_header_len(egress);
  if (meta->l2_len > wanted) {
    rte_pktmbuf_adj(mbuf, static_cast<uint16_t>(meta->l2_len - wanted));
  } else if (meta->l2_len < wanted && rte_pktmbuf_prepend(mbuf, static_cast<uint16_t>(wanted - meta->l2_len)) == nullptr) {
    return false;
  }
  meta->l2_len = wanted;
  write_l2_header(rte_pktmbuf_mtod(mbuf, rte_ether_hdr*), egress, destination, meta->ethertype);
  return true;
}

}  // namespace fairgate
