#include "stages/flow/flow_stage.h"

#include "core/packet_meta.h"

#include <rte_cycles.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include <netinet/in.h>

namespace fairgate {

FlowStage::FlowStage(FlowAccounting& flows)
    : flows_(flows), tsc_per_ms_(std::max<uint64_t>(1, rte_get_tsc_hz() / 1000)) {}

void FlowStage::process(Burst& burst) {
  // One clock read per burst: its packets arrived within microseconds of each other.
  uint64_t now_ms = rte_rdtsc() / tsc_per_ms_;
  // The records lie apart from the session records nat just read (64 MiB at 1M sessions): ask
  // for all of the burst's first, so their misses overlap instead of coming one per packet.
  for (uint16_t i = 0; i < burst.count; ++i) {
    if (burst.action[i] != Action::kContinue) continue;
    uint32_t session = packet_meta(burst.pkts[i])->nat_session;
    if (session != kNoNatSession) flows_.prefetch(session);
  }
  for (uint16_t i = 0; i < burst.count; ++i) {
    if (burst.action[i] != Action::kContinue) continue;
    rte_mbuf* mbuf = burst.pkts[i];
    const PacketMeta* meta = packet_meta(mbuf);
    if (meta->nat_session == kNoNatSession) continue;
    auto* ip = rte_pktmbuf_mtod_offset(mbuf, const rte_ipv4_hdr*, meta->l2_len);
    uint8_t tcp_flags = 0;
    // NAT found the session, so the transport header is in the first segment.
    if (ip->next_proto_id == IPPROTO_TCP)
      tcp_flags = reinterpret_cast<const rte_tcp_hdr*>(reinterpret_cast<const uint8_t*>(ip) + meta->l3_len)->tcp_flags;
    flows_.count(meta->nat_session, meta->nat_reply, static_cast<uint8_t>(burst.rx_port),
                 rte_be_to_cpu_16(ip->total_length), tcp_flags, meta->traffic_class, now_ms);
  }
}

}  // namespace fairgate
