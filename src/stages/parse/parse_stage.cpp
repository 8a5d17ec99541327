#include "stages/parse/parse_stage.h"

#include "core/checksum.h"
#include "core/packet_meta.h"

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_prefetch.h>

namespace fairgate {
namespace {

constexpr uint16_t kPrefetchAhead = 4;

bool bad_source(uint32_t src) {
  return src == 0 || src == 0xffffffffu || (src >> 24) == 127 || (src >> 28) >= 14;  // multicast, class E
}

// Returns the verdict for one IPv4 packet whose header starts at `l2_len`.
bool validate_ipv4(rte_mbuf* mbuf, PacketMeta* meta, DropReason* reason) {
  uint32_t available = rte_pktmbuf_data_len(mbuf) - meta->l2_len;  // header must be in the first segment
  if (available < sizeof(rte_ipv4_hdr)) {
    *reason = DropReason::kIpv4Truncated;
    return false;
  }
  auto* ip = rte_pktmbuf_mtod_offset(mbuf, rte_ipv4_hdr*, meta->l2_len);
  if ((ip->version_ihl >> 4) != 4) {
    *reason = DropReason::kIpv4BadVersion;
    return false;
  }
  uint16_t header_len = static_cast<uint16_t>((ip->version_ihl & 0x0f) * 4);
  if (header_len < sizeof(rte_ipv4_hdr)) {
    *reason = DropReason::kIpv4BadIhl;
    return false;
  }
  if (header_len > available) {
    *reason = DropReason::kIpv4Truncated;
    return false;
  }
  uint16_t total_len = rte_be_to_cpu_16(ip->total_length);
  if (total_len < header_len) {
    *reason = DropReason::kIpv4BadTotalLength;
    return false;
  }
  uint32_t frame_l3 = rte_pktmbuf_pkt_len(mbuf) - meta->l2_len;
  if (total_len > frame_l3) {
    *reason = DropReason::kIpv4Truncated;
    return false;
  }
  if (mbuf->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_BAD) {
    *reason = DropReason::kIpv4BadChecksum;
    return false;
  }
  if (!(mbuf->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_GOOD) && checksum::fold(ip, header_len) != 0xffff) {
    *reason = DropReason::kIpv4BadChecksum;
    return false;
  }
  if (bad_source(rte_be_to_cpu_32(ip->src_addr))) {
    *reason = DropReason::kIpv4BadSource;
    return false;
  }
  // Ethernet pads short frames to 60 bytes; later stages see exactly the IPv4 packet.
  if (frame_l3 > total_len) rte_pktmbuf_trim(mbuf, static_cast<uint16_t>(frame_l3 - total_len));
  meta->l3_len = header_len;
  return true;
}

}  // namespace

void ParseStage::process(Burst& burst) {
  const PortInfo& port = ports_.ports[burst.rx_port];
  for (uint16_t i = 0; i < burst.count && i < kPrefetchAhead; ++i) rte_prefetch0(rte_pktmbuf_mtod(burst.pkts[i], void*));
  for (uint16_t i = 0; i < burst.count; ++i) {
    if (i + kPrefetchAhead < burst.count) rte_prefetch0(rte_pktmbuf_mtod(burst.pkts[i + kPrefetchAhead], void*));
    if (burst.action[i] != Action::kContinue) continue;
    rte_mbuf* mbuf = burst.pkts[i];
    PacketMeta* meta = packet_meta(mbuf);
    uint16_t length = rte_pktmbuf_data_len(mbuf);
    if (length < sizeof(rte_ether_hdr)) {
      burst.drop(i, DropReason::kEthTruncated);
      continue;
    }
    auto* eth = rte_pktmbuf_mtod(mbuf, rte_ether_hdr*);
    uint16_t ethertype = rte_be_to_cpu_16(eth->ether_type);
    uint16_t l2_len = sizeof(rte_ether_hdr);
    uint16_t vlan = 0;
    if (ethertype == RTE_ETHER_TYPE_VLAN || ethertype == RTE_ETHER_TYPE_QINQ) {
      if (length < sizeof(rte_ether_hdr) + sizeof(rte_vlan_hdr)) {
        burst.drop(i, DropReason::kVlanTruncated);
        continue;
      }
      auto* tag = reinterpret_cast<rte_vlan_hdr*>(eth + 1);
      vlan = rte_be_to_cpu_16(tag->vlan_tci) & 0x0fff;
      ethertype = rte_be_to_cpu_16(tag->eth_proto);
      l2_len = sizeof(rte_ether_hdr) + sizeof(rte_vlan_hdr);
      if (ethertype == RTE_ETHER_TYPE_VLAN || ethertype == RTE_ETHER_TYPE_QINQ) {
        burst.drop(i, DropReason::kVlanStacked);
        continue;
      }
    }
    if (vlan != port.vlan) {
      burst.drop(i, DropReason::kVlanUnknown);
      continue;
    }
    if (rte_is_unicast_ether_addr(&eth->dst_addr) && !rte_is_same_ether_addr(&eth->dst_addr, &port.mac)) {
      burst.drop(i, DropReason::kL2NotForUs);
      continue;
    }
    meta->l2_len = l2_len;
    meta->l3_len = 0;
    meta->vlan_id = vlan;
    meta->ethertype = ethertype;
    meta->nat_session = kNoNatSession;
    meta->wan_port = kNoWanPort;
    switch (ethertype) {
      case RTE_ETHER_TYPE_IPV4: {
        DropReason reason;
        if (!validate_ipv4(mbuf, meta, &reason)) burst.drop(i, reason);
        break;
      }
      case RTE_ETHER_TYPE_ARP:
        burst.action[i] = Action::kPunt;
        meta->punt_reason = static_cast<uint8_t>(PuntReason::kArp);
        break;
      case RTE_ETHER_TYPE_IPV6:
        burst.drop(i, DropReason::kIpv6Unsupported);
        break;
      default:
        burst.drop(i, DropReason::kEthertypeUnsupported);
    }
  }
}

}  // namespace fairgate
