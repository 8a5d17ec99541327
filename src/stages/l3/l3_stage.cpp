#include "stages/l3/l3_stage.h"

#include "core/ipv4_rewrite.h"
#include "core/packet_meta.h"
#include "stages/l3/l2_rewrite.h"

#include <rte_ip.h>

namespace fairgate {
namespace {
constexpr uint32_t kAllRoutersGroup = RTE_IPV4(224, 0, 0, 2);
void punt(Burst& burst, uint16_t i, PacketMeta* meta, PuntReason reason) {
  burst.action[i] = Action::kPunt;
  meta->punt_reason = static_cast<uint8_t>(reason);
}
}  // namespace

void L3Stage::process(Burst& burst) {
  const NeighborSnapshot* neighbors = neighbors_.current();
  for (uint16_t i = 0; i < burst.count; ++i) {
    if (burst.action[i] != Action::kContinue) continue;
    rte_mbuf* mbuf = burst.pkts[i];
    PacketMeta* meta = packet_meta(mbuf);
    auto* ip = rte_pktmbuf_mtod_offset(mbuf, rte_ipv4_hdr*, meta->l2_len);
    uint32_t destination = rte_be_to_cpu_32(ip->dst_addr);

    if (routes_.is_local(destination)) {
      punt(burst, i, meta, PuntReason::kLocal);
      continue;
    }
    if (destination == kAllRoutersGroup) {
      // Link-local to every router, the gateway included (modems' LPA advertisements).
      punt(burst, i, meta, PuntReason::kLocal);
      continue;
    }
    if (routes_.not_forwardable(destination)) {
      burst.drop(i, DropReason::kIpv4NotForwardable);
      continue;
    }
    if (ip->time_to_live <= 1) {
      punt(burst, i, meta, PuntReason::kTtlExceeded);
      continue;
    }
    Route route;
    if (!routes_.lookup(destination, &route, meta->wan_port)) {
      burst.drop(i, DropReason::kNoRoute);
      continue;
    }
    const PortInfo& egress = ports_.ports[route.port];
    meta->egress_port = route.port;
    meta->next_hop = route.next_hop;
    if (rte_be_to_cpu_16(ip->total_length) > egress.mtu) {
      punt(burst, i, meta, PuntReason::kFragNeeded);
      continue;
    }
    ipv4_set_ttl(ip, static_cast<uint8_t>(ip->time_to_live - 1));

    const rte_ether_addr* mac = neighbors ? neighbors->lookup(route.port, route.next_hop) : nullptr;
    if (mac == nullptr) {
      punt(burst, i, meta, PuntReason::kResolve);
      continue;
    }
    if (!rewrite_l2(mbuf, meta, egress, *mac)) {
      burst.drop(i, DropReason::kTxFull);
      continue;
    }
    burst.action[i] = Action::kForward;
  }
}

}  // namespace fairgate
