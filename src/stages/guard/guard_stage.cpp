#include "stages/guard/guard_stage.h"

#include "core/packet_meta.h"

#include <rte_ip.h>

namespace fairgate {

GuardStage::GuardStage(const PortTable& ports, std::vector<Ipv4Prefix> lan_prefixes)
    : ports_(ports), lan_prefixes_(std::move(lan_prefixes)) {
  for (const auto& port : ports.ports) own_addresses_.push_back(port.prefix.address);
}

void GuardStage::process(Burst& burst) {
  bool from_lan = ports_.ports[burst.rx_port].role == PortRole::kLan;
  for (uint16_t i = 0; i < burst.count; ++i) {
    if (burst.action[i] != Action::kContinue) continue;
    const PacketMeta* meta = packet_meta(burst.pkts[i]);
    if (meta->ethertype != RTE_ETHER_TYPE_IPV4) continue;
    auto* ip = rte_pktmbuf_mtod_offset(burst.pkts[i], const rte_ipv4_hdr*, meta->l2_len);
    uint32_t source = rte_be_to_cpu_32(ip->src_addr);
    bool spoofed = from_lan ? (!on_lan(source) || own(source)) : (on_lan(source) || own(source));
    if (spoofed) burst.drop(i, DropReason::kSpoofedSource);
  }
}

}  // namespace fairgate
