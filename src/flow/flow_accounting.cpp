#include "flow/flow_accounting.h"

#include <rte_cycles.h>
#include <rte_errno.h>

#include <atomic>
#include <stdexcept>

namespace fairgate {
namespace {

std::atomic<uint32_t> ring_serial{0};  // distinct ring names (tests build several per process)

constexpr uint64_t kRefusalEventIntervalMs = 1000;

unsigned refusal_slot(NatEventType event, NatQuotaEvent quota) {
  if (event == NatEventType::kQuotaExceeded) return quota == NatQuotaEvent::kMaxEntriesPerUser ? 2 : 0;
  return 1;
}

}  // namespace

FlowAccounting::FlowAccounting(uint32_t sessions, uint16_t worker, uint32_t socket, FlowTimeouts timeouts,
                               uint32_t ring_slots)
    : stats_("flow_stats", sessions, static_cast<int>(socket)),
      timeouts_(timeouts),
      tsc_per_ms_(std::max<uint64_t>(1, rte_get_tsc_hz() / 1000)) {
  std::string name = "flows" + std::to_string(worker) + "_" + std::to_string(ring_serial.fetch_add(1));
  ring_ = rte_ring_create_elem(name.c_str(), sizeof(FlowRecord), ring_slots, static_cast<int>(socket),
                               RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (ring_ == nullptr)
    throw std::runtime_error("cannot create the flow record ring " + name + ": " + rte_strerror(rte_errno));
}

FlowAccounting::~FlowAccounting() { rte_ring_free(ring_); }

uint64_t FlowAccounting::now_ms() const { return rte_rdtsc() / tsc_per_ms_; }

FlowRecord FlowAccounting::record_of(uint32_t session, const SessionView& view, FlowEndReason reason) const {
  const Stats& s = stats_[session];
  FlowRecord record;
  record.kind = FlowRecord::kFlow;
  record.original = view.original;
  record.translated = view.translated;
  record.first_ms = s.first_ms;
  record.last_ms = s.last_ms;
  for (int d = 0; d < 2; ++d) {
    record.packets[d] = s.packets[d];
    record.bytes[d] = s.bytes[d];
    record.tcp_flags[d] = s.tcp_flags[d];
    record.rx_port[d] = s.rx_port[d];
  }
  record.inside = view.inside;
  record.end_reason = reason;
  record.wan = view.wan;
  record.session_kind = view.session_kind;
  record.traffic_class = s.traffic_class;
  record.p2p_protocol = view.p2p_protocol;
  return record;
}

void FlowAccounting::emit(const FlowRecord& record) {
  // DPDK takes a non-const pointer but only reads the record.
  if (rte_ring_enqueue_elem(ring_, const_cast<FlowRecord*>(&record), sizeof record) != 0) {
    counters_.lost.add(1);
    return;
  }
  (record.kind == FlowRecord::kFlow ? counters_.records : counters_.nat_events).add(1);
}

void FlowAccounting::emit_nat_event(const SessionView& view, NatEventType event) {
  FlowRecord record;
  record.kind = FlowRecord::kNatEvent;
  record.nat_event = event;
  record.original = view.original;
  record.translated = view.translated;
  record.first_ms = now_ms();
  record.inside = view.inside;
  record.wan = view.wan;
  record.session_kind = view.session_kind;
  record.p2p_protocol = view.p2p_protocol;
  emit(record);
}

void FlowAccounting::session_created(uint32_t session, const SessionView& view) {
  Stats& s = stats_[session];
  s = Stats{};
  s.rx_port[0] = s.rx_port[1] = kFlowPortUnknown;
  s.traffic_class = UINT8_MAX;
  emit_nat_event(view, NatEventType::kSessionCreate);
}

void FlowAccounting::session_ended(uint32_t session, const SessionView& view, FlowEndReason reason) {
  // A span with no packet (reported by a timeout just before) needs no second record.
  if (stats_[session].first_ms != 0) emit(record_of(session, view, reason));
  emit_nat_event(view, NatEventType::kSessionDelete);
}

void FlowAccounting::check_timeouts(uint32_t session, const SessionView& view, uint64_t now_ms) {
  Stats& s = stats_[session];
  if (s.first_ms == 0) return;
  FlowEndReason reason;
  // A closed TCP connection idles until the session expires: it ended, it did not time out.
  if (now_ms - s.last_ms >= uint64_t{timeouts_.inactive_s} * 1000)
    reason = view.closed ? FlowEndReason::kEndOfFlow : FlowEndReason::kIdleTimeout;
  else if (now_ms - s.first_ms >= uint64_t{timeouts_.active_s} * 1000) reason = FlowEndReason::kActiveTimeout;
  else return;
  emit(record_of(session, view, reason));
  // The next packet starts a new span; where the directions arrive stays known.
  s.first_ms = s.last_ms = 0;
  s.packets[0] = s.packets[1] = s.bytes[0] = s.bytes[1] = 0;
  s.tcp_flags[0] = s.tcp_flags[1] = 0;
}

void FlowAccounting::refused(const FlowKey& original, uint32_t wan_address, NatEventType event, NatQuotaEvent quota,
                             uint32_t limit) {
  uint64_t now = now_ms();
  uint64_t& last = last_refusal_ms_[refusal_slot(event, quota)];
  // A full table refuses every new flow: one event a second says so without flooding the ring.
  if (last != 0 && now - last < kRefusalEventIntervalMs) {
    counters_.refusals_suppressed.add(1);
    return;
  }
  last = now;
  FlowRecord record;
  record.kind = FlowRecord::kNatEvent;
  record.nat_event = event;
  record.quota_event = quota;
  record.limit = limit;
  record.original = original;
  record.translated.src = wan_address;
  record.inside = original.src;
  record.first_ms = now;
  emit(record);
}

FlowRecord FlowAccounting::snapshot(uint32_t session, const SessionView& view) const {
  return record_of(session, view, FlowEndReason::kActive);
}

}  // namespace fairgate
