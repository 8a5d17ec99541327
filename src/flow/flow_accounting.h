// A worker's flow accounting: packets, bytes, TCP flags, times and class of every NAT session
// (a flow), kept beside the session table, and the records that leave the worker when a flow
// ends, idles, or has been active too long, and for NAT events (RFC 8158). Records go to the
// management thread through a ring owned by this worker; when the ring is full the record is
// lost and counted, the worker never waits. Nothing is allocated per packet.
//
// Times are milliseconds of the worker's clock (TSC since the process started); the
// management thread turns them into wall-clock time. Owned and used by one worker only.
#pragma once

#include "core/counters.h"
#include "core/dpdk_array.h"
#include "flow/flow_report.h"
#include "nat/flow_key.h"

#include <rte_prefetch.h>
#include <rte_ring.h>

#include <cstdint>
#include <string>

namespace fairgate {

// What leaves a worker: one flow's span of packets, or one NAT event. 128 bytes, copied into
// the ring whole.
struct FlowRecord {
  enum Kind : uint8_t { kFlow, kNatEvent };
  FlowKey original, translated;
  uint64_t first_ms = 0, last_ms = 0;  // worker clock; a NAT event's time is first_ms
  uint64_t packets[2] = {0, 0}, bytes[2] = {0, 0};  // [0] original direction, [1] reply
  uint32_t inside = 0;  // the LAN host (host order)
  uint32_t limit = 0;   // NAT quota event: the limit that was reached
  uint8_t kind = kFlow;
  FlowEndReason end_reason = FlowEndReason::kActive;
  NatEventType nat_event = NatEventType::kSessionCreate;
  NatQuotaEvent quota_event = NatQuotaEvent::kNone;
  uint8_t tcp_flags[2] = {0, 0};
  uint8_t rx_port[2] = {kFlowPortUnknown, kFlowPortUnknown};  // port each direction arrived on
  uint8_t wan = kFlowPortUnknown;  // the WAN port the session uses
  uint8_t session_kind = 0;        // SessionTable::Kind
  uint8_t traffic_class = UINT8_MAX;  // of the flow's latest packet; UINT8_MAX: none seen
  uint8_t p2p_protocol = 0;           // P2pProtocol, 0 = none
  uint8_t pad[24] = {};
};
static_assert(sizeof(FlowRecord) == 128);

struct FlowTimeouts {
  uint32_t inactive_s = 15;    // a flow with no packet for this long is reported (and restarts)
  uint32_t active_s = 1800;    // a flow is reported at least this often while it lasts
};

struct alignas(64) FlowWorkerCounters {
  RelaxedCounter records;       // flow records queued to the management thread
  RelaxedCounter nat_events;    // NAT event records queued
  RelaxedCounter lost;          // records the full ring did not take
  RelaxedCounter refusals_suppressed;  // refusal events beyond one per second and kind
};

class FlowAccounting {
 public:
  // Per session: what the flow stage counts between two reports of the flow.
  struct alignas(64) Stats {
    uint64_t first_ms;  // 0: no packet since the last report
    uint64_t last_ms;
    uint64_t packets[2];
    uint64_t bytes[2];
    uint8_t tcp_flags[2];
    uint8_t rx_port[2];
    uint8_t traffic_class;
  };

  // `sessions`: the session table's capacity; `ring_slots`: records the ring holds (a power of 2).
  FlowAccounting(uint32_t sessions, uint16_t worker, uint32_t socket, FlowTimeouts timeouts, uint32_t ring_slots);
  ~FlowAccounting();
  FlowAccounting(const FlowAccounting&) = delete;
  FlowAccounting& operator=(const FlowAccounting&) = delete;

  // Brings a session's record towards the core before `count`: the flow stage asks for a
  // burst's records at once so that their cache misses overlap.
  void prefetch(uint32_t session) const { rte_prefetch0(&stats_[session]); }

  // Per packet (the flow stage): `ip_bytes` is the IPv4 total length, `tcp_flags` the TCP
  // flag byte (0 for other protocols).
  void count(uint32_t session, bool reply, uint8_t rx_port, uint32_t ip_bytes, uint8_t tcp_flags,
             uint8_t traffic_class, uint64_t now_ms) {
    Stats& s = stats_[session];
    if (s.first_ms == 0) s.first_ms = now_ms;
    s.last_ms = now_ms;
    ++s.packets[reply];
    s.bytes[reply] += ip_bytes;
    s.tcp_flags[reply] |= tcp_flags;
    s.rx_port[reply] = rx_port;
    s.traffic_class = traffic_class;
  }

  // From the session table. `session_kind`, `wan`, `inside`: the session's.
  struct SessionView {
    const FlowKey& original;
    const FlowKey& translated;
    uint32_t inside;
    uint8_t wan, session_kind, p2p_protocol;
    bool closed;  // a TCP session that saw both FINs or a RST
  };
  void session_created(uint32_t session, const SessionView& view);
  void session_ended(uint32_t session, const SessionView& view, FlowEndReason reason);
  // The expiry scan, for a session that stays: reports it when idle or active too long.
  void check_timeouts(uint32_t session, const SessionView& view, uint64_t now_ms);
  // A refused new flow; at most one event per second for each kind of refusal.
  void refused(const FlowKey& original, uint32_t wan_address, NatEventType event, NatQuotaEvent quota,
               uint32_t limit);

  // The current span of a live session as a record (the `flows` snapshot), end reason kActive.
  FlowRecord snapshot(uint32_t session, const SessionView& view) const;

  // Worker clock, milliseconds.
  uint64_t now_ms() const;
  static uint64_t tsc_to_ms(uint64_t tsc, uint64_t tsc_hz) { return tsc / (tsc_hz / 1000); }

  rte_ring* ring() const { return ring_; }
  const FlowWorkerCounters& counters() const { return counters_; }
  const FlowTimeouts& timeouts() const { return timeouts_; }
  std::size_t bytes_per_session() const { return sizeof(Stats); }

 private:
  FlowRecord record_of(uint32_t session, const SessionView& view, FlowEndReason reason) const;
  void emit(const FlowRecord& record);
  void emit_nat_event(const SessionView& view, NatEventType event);

  DpdkArray<Stats> stats_;
  rte_ring* ring_ = nullptr;
  FlowTimeouts timeouts_;
  uint64_t tsc_per_ms_;
  uint64_t last_refusal_ms_[3] = {0, 0, 0};  // table full, ports, quota
  FlowWorkerCounters counters_;
};

}  // namespace fairgate
