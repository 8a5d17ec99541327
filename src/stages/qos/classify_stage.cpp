#include "stages/qos/classify_stage.h"

#include "core/packet_meta.h"

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>

#include <netinet/in.h>

namespace fairgate {

void ClassifyStage::process(Burst& burst) {
  const bool from_lan = ports_.ports[burst.rx_port].role == PortRole::kLan;
  const uint32_t now_s = static_cast<uint32_t>(rte_rdtsc() / rte_get_tsc_hz());
  for (uint16_t i = 0; i < burst.count; ++i) {
    if (burst.action[i] != Action::kContinue && burst.action[i] != Action::kForward) continue;
    rte_mbuf* mbuf = burst.pkts[i];
    PacketMeta* meta = packet_meta(mbuf);
    if (meta->ethertype != RTE_ETHER_TYPE_IPV4) continue;
    const auto* ip = rte_pktmbuf_mtod_offset(mbuf, const rte_ipv4_hdr*, meta->l2_len);
    // The transport header, when this is the first fragment and it is all in the first segment.
    const uint8_t* l4 = nullptr;
    uint32_t ports_word = 0;
    uint16_t l4_needed = ip->next_proto_id == IPPROTO_TCP ? 20 : 8;
    if ((rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK) == 0 &&
        rte_pktmbuf_data_len(mbuf) >= meta->l2_len + meta->l3_len + l4_needed) {
      l4 = reinterpret_cast<const uint8_t*>(ip) + meta->l3_len;
      if (ip->next_proto_id == IPPROTO_TCP || ip->next_proto_id == IPPROTO_UDP) std::memcpy(&ports_word, l4, 4);
    }
    uint32_t hash = rte_hash_crc_4byte(ip->src_addr, rte_hash_crc_4byte(ip->dst_addr, ports_word ^ ip->next_proto_id));
    uint64_t before = meter_.add(hash, rte_pktmbuf_pkt_len(mbuf), now_s);
    meta->flow_hash = hash;
    meta->traffic_class = static_cast<uint8_t>(rules_.select(ip, l4, before));
    meta->lan_host = rte_be_to_cpu_32(from_lan ? ip->src_addr : ip->dst_addr);
  }
}

}  // namespace fairgate
