#include "stages/qos/sched_stage.h"

#include "core/packet_meta.h"

#include <rte_cycles.h>
#include <rte_ether.h>

namespace fairgate {

void SchedStage::report_unknown(uint32_t host, uint64_t now) {
  Reported& slot = reported_[(host * 0x9e3779b1u) >> 26];
  if (slot.host == host && now - slot.at < rte_get_tsc_hz() / 1000 * kReportAgainMs) return;
  slot = {host, now};
  // A full ring only delays the subscriber: the host is reported again on a later packet.
  rte_ring_enqueue(qos_->new_hosts(), reinterpret_cast<void*>(static_cast<uintptr_t>(host)));
}

void SchedStage::process(Burst& burst) {
  if (qos_ == nullptr) return;
  const PortRole rx_role = ports_.ports[burst.rx_port].role;
  const SubscriberMap* map = qos_->map().current();
  // Packets for one scheduler are put on its inbox together.
  struct Batch {
    EgressScheduler* scheduler = nullptr;
    uint16_t count = 0;
    uint16_t index[kBurstSize];
    rte_mbuf* pkts[kBurstSize];
  };
  std::array<Batch, kMaxPorts> batches;
  uint64_t now = 0;
  for (uint16_t i = 0; i < burst.count; ++i) {
    if (burst.action[i] != Action::kForward) continue;
    rte_mbuf* mbuf = burst.pkts[i];
    PacketMeta* meta = packet_meta(mbuf);
    EgressScheduler* scheduler = qos_->scheduler(meta->egress_port);
    // Only what crosses between the LAN and the internet is the subscribers' link.
    if (scheduler == nullptr || rx_role == (scheduler->download ? PortRole::kLan : PortRole::kWan)) continue;
    uint32_t pipe = SubscriberMap::kNoPipe;
    TrafficClass tc = TrafficClass::kNormal;
    uint32_t flow_hash = 0;
    if (meta->ethertype == RTE_ETHER_TYPE_IPV4) {
      tc = static_cast<TrafficClass>(meta->traffic_class);
      flow_hash = meta->flow_hash;
      if (map != nullptr) pipe = map->find(meta->lan_host);
      if (pipe == SubscriberMap::kNoPipe && qos_->own_unknown_hosts() && qos_->is_lan_host(meta->lan_host)) {
        if (now == 0) now = rte_rdtsc();
        report_unknown(meta->lan_host, now);
      }
    }
    if (pipe == SubscriberMap::kNoPipe) pipe = kUnknownPipe;
    // A download is shaped to the link it arrived by.
    uint32_t subport = scheduler->sched->internet_subport(burst.rx_port);
    scheduler->sched->tag(mbuf, subport, pipe, tc, flow_hash);
    meta->frame_len = mbuf->pkt_len;
    mbuf->pkt_len = scheduler->sched->wire_bytes(subport, meta->frame_len);
    Batch& batch = batches[meta->egress_port];
    batch.scheduler = scheduler;
    batch.index[batch.count] = i;
    batch.pkts[batch.count++] = mbuf;
  }
  for (auto& batch : batches) {
    if (batch.count == 0) continue;
    unsigned queued = rte_ring_enqueue_burst(batch.scheduler->inbox, reinterpret_cast<void**>(batch.pkts), batch.count, nullptr);
    for (uint16_t b = 0; b < batch.count; ++b) {
      if (b < queued)
        burst.action[batch.index[b]] = Action::kSent;
      else
        burst.drop(batch.index[b], DropReason::kSchedInboxFull);
    }
  }
}

}  // namespace fairgate
