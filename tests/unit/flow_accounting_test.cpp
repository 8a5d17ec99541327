// Flow accounting in a worker: what FlowAccounting counts per NAT session and the records it
// queues on its ring, driven by the session table beside it (sessions created, expired,
// reclaimed, removed, refused) and by the flow stage on synthetic frames that went through the
// parse, guard and nat stages. The session table tests use a fake clock: whole seconds for the
// table and the same moment in milliseconds for flow accounting, as a worker passes them from
// one TSC reading. The management thread's side is flow_monitor_test.cpp.
#include "flow/flow_accounting.h"
#include "flow/flow_exporter.h"
#include "nat/session_table.h"
#include "stages/flow/flow_stage.h"
#include "stages/guard/guard_stage.h"
#include "stages/nat/nat_stage.h"
#include "stages/parse/parse_stage.h"
#include "test_env.h"

#include <rte_lcore.h>
#include <rte_ring.h>

#include "test_packets.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace fairgate {
// Readable failure messages: reasons and events by name.
inline std::ostream& operator<<(std::ostream& out, FlowEndReason reason) { return out << flow_end_reason_name(reason); }
inline std::ostream& operator<<(std::ostream& out, NatEventType event) { return out << nat_event_name(event); }
}  // namespace fairgate

namespace fairgate::test {
namespace {

constexpr uint16_t kLan = 0, kWan = 1;  // port indices in kTwoPortConfig
constexpr uint8_t kWanId = kWan;         // the WAN a session leaves by, as the NAT stage passes it
constexpr uint8_t kTcp = 6, kUdp = 17;
constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;
constexpr uint8_t kInteractive = 0, kNormal = 1, kBulk = 2;  // indices of kTrafficClasses
constexpr uint32_t kT0 = 1000;  // the fake clock's first reading, seconds

// The fake clock in flow accounting's milliseconds: `plus_ms` after second `s`.
constexpr uint64_t at_ms(uint32_t s, uint32_t plus_ms = 0) { return uint64_t{s} * 1000 + plus_ms; }

uint32_t remote1() { return internet_host(); }  // 192.0.2.10
uint32_t remote2() { return ip("203.0.113.20"); }

// A record as a word or two, so that sequences of them compare as tables.
std::string summary(const FlowRecord& record) {
  if (record.kind == FlowRecord::kNatEvent) return "nat " + std::string(nat_event_name(record.nat_event));
  return "flow " + std::string(flow_end_reason_name(record.end_reason));
}
std::vector<std::string> summaries(const std::vector<FlowRecord>& records) {
  std::vector<std::string> out;
  for (const FlowRecord& record : records) out.push_back(summary(record));
  return out;
}

// Everything on a ring, oldest first; the ring is then empty.
std::vector<FlowRecord> drain(const FlowAccounting& flows) {
  std::vector<FlowRecord> records;
  FlowRecord record;
  while (rte_ring_dequeue_elem(flows.ring(), &record, sizeof record) == 0) records.push_back(record);
  return records;
}

// ---- the session table and its flow accounting ----------------------------------------------

class FlowTableTest : public ::testing::Test {
 protected:
  FlowTableTest() {
    nat.udp_s = 30;
    nat.tcp_transitory_s = 60;
    nat.tcp_established_s = 600;
  }

  // The table and its flow accounting, with `nat` and `timeouts` as the test left them.
  void start(uint32_t capacity = 64, uint32_t ring_slots = 1024) {
    flows = std::make_unique<FlowAccounting>(capacity, 0, rte_socket_id(), timeouts, ring_slots);
    table = std::make_unique<SessionTable>(nat, capacity, 0, 1, rte_socket_id());
    table->set_flow_accounting(flows.get());
  }
  // A new outbound session from the LAN that must be created; its index.
  uint32_t open(const FlowKey& key, uint32_t now_s = kT0) {
    NatRefusal refusal = NatRefusal::kNone;
    uint32_t index = table->create_outbound(key, kWanId, wan_own(), now_s, &refusal);
    EXPECT_NE(index, SessionTable::kNone) << "refused: " << text(key) << " reason " << static_cast<int>(refusal);
    return index;
  }
  // One packet as a worker sees it: the nat stage refreshes the session, the flow stage counts
  // it. Original direction from the LAN, replies from the WAN.
  void packet(uint32_t index, bool reply, uint32_t bytes, uint8_t tcp_flags, uint64_t now_ms,
              uint8_t traffic_class = kNormal) {
    table->touch(index, reply, bytes, tcp_flags, static_cast<uint32_t>(now_ms / 1000));
    flows->count(index, reply, reply ? kWan : kLan, bytes, tcp_flags, traffic_class, now_ms);
  }
  // One whole expiry scan at second `now_s` (+ `plus_ms` for flow accounting).
  void expire(uint32_t now_s, uint32_t plus_ms = 0) { table->expire(now_s, table->capacity(), at_ms(now_s, plus_ms)); }
  // What the ring holds about the session of `original`, in order; records of others dropped.
  std::vector<FlowRecord> records_of(const FlowKey& original) {
    std::vector<FlowRecord> mine;
    for (const FlowRecord& record : drain(*flows))
      if (record.original == original) mine.push_back(record);
    return mine;
  }

  NatConfig nat;
  FlowTimeouts timeouts{.inactive_s = 5, .active_s = 20};
  std::unique_ptr<FlowAccounting> flows;
  std::unique_ptr<SessionTable> table;
};

// ---- how a flow ends, per path --------------------------------------------------------------

enum class End {
  kExpire,     // the expiry scan, once the session's timeout has passed
  kRemoveWan,  // WAN failover
  kClear,      // shutdown
  kReclaim,    // a new session needs the slot of a full table
};

struct Packet {
  bool reply;
  uint32_t bytes;
  uint8_t tcp_flags;
  uint32_t after_ms;  // since kT0
  uint8_t traffic_class = kNormal;
};

struct EndCase {
  std::string name;
  uint8_t proto;
  std::vector<Packet> packets;
  End end;
  FlowEndReason reason;
  P2pProtocol application = P2pProtocol::kNone;
};
void PrintTo(const EndCase& c, std::ostream* out) { *out << c.name; }

std::vector<EndCase> end_cases() {
  std::vector<Packet> udp = {{false, 100, 0, 0}, {true, 300, 0, 200}, {false, 120, 0, 1500, kBulk}};
  std::vector<Packet> closed = {{false, 60, kSyn, 0},          {true, 60, kSyn | kAck, 10},
                                {false, 1500, kPsh | kAck, 20}, {true, 52, kAck, 30},
                                {false, 52, kFin | kAck, 40},   {true, 52, kFin | kAck, 50, kInteractive}};
  std::vector<Packet> reset = {{false, 60, kSyn, 0}, {true, 60, kSyn | kAck, 10}, {true, 40, kRst, 900}};
  std::vector<Packet> established = {
      {false, 60, kSyn, 0}, {true, 60, kSyn | kAck, 10}, {false, 700, kPsh | kAck, 2000}};
  std::vector<Packet> half_open = {{false, 60, kSyn, 0}, {false, 60, kSyn, 1000}};
  return {
      {"udp_idle_expiry", kUdp, udp, End::kExpire, FlowEndReason::kIdleTimeout},
      {"tcp_closed_by_fins_expiry", kTcp, closed, End::kExpire, FlowEndReason::kEndOfFlow, P2pProtocol::kBitTorrent},
      {"tcp_reset_expiry", kTcp, reset, End::kExpire, FlowEndReason::kEndOfFlow},
      {"tcp_established_idle_expiry", kTcp, established, End::kExpire, FlowEndReason::kIdleTimeout},
      {"udp_remove_wan", kUdp, udp, End::kRemoveWan, FlowEndReason::kForcedEnd},
      {"tcp_clear", kTcp, established, End::kClear, FlowEndReason::kForcedEnd},
      {"udp_expired_reclaimed", kUdp, udp, End::kReclaim, FlowEndReason::kLackOfResources},
      {"tcp_half_open_reclaimed", kTcp, half_open, End::kReclaim, FlowEndReason::kLackOfResources},
  };
}

class FlowEnds : public FlowTableTest, public ::testing::WithParamInterface<EndCase> {};

TEST_P(FlowEnds, CreateEventThenTheFlowWithItsEndReasonThenDeleteEvent) {
  const EndCase& c = GetParam();
  // Flow timeouts beyond the NAT ones: the record comes from the session's end, not from an
  // inactive report of the scan before it.
  timeouts = {.inactive_s = 3600, .active_s = 7200};
  start();
  FlowKey key = flow(lan_host(), 40000, remote1(), c.proto == kTcp ? 443 : 53, c.proto);
  uint32_t index = open(key);
  ASSERT_NE(index, SessionTable::kNone);
  for (const Packet& p : c.packets)
    packet(index, p.reply, p.bytes, p.tcp_flags, at_ms(kT0, p.after_ms), p.traffic_class);
  table->p2p(index).protocol = c.application;
  const FlowKey translated = table->session(index).translated;  // the slot may be reused below
  uint32_t last_s = kT0 + c.packets.back().after_ms / 1000;
  const SessionTable::Session& s = table->session(index);
  switch (c.end) {
    case End::kExpire:
      expire(last_s + table->timeout_of(s) - 1);
      ASSERT_EQ(table->size(), 1u) << "not before its timeout";
      expire(last_s + table->timeout_of(s));
      break;
    case End::kRemoveWan:
      EXPECT_EQ(table->remove_wan(kWanId), 1u);
      break;
    case End::kClear:
      table->clear();
      break;
    case End::kReclaim: {
      // Fill the table with fresh sessions at a time this one may be reclaimed (expired or
      // transitory); the next new session takes its slot, the first the scan looks at.
      uint32_t now_s = table->transitory(s) ? last_s : last_s + table->timeout_of(s);
      for (uint16_t i = 1; i < table->capacity(); ++i)
        open(flow(lan_host2(), static_cast<uint16_t>(30000 + i), remote2(), 53, kUdp), now_s);
      ASSERT_EQ(table->size(), table->capacity());
      open(flow(lan_host2(), 31000, remote2(), 53, kUdp), now_s);
      EXPECT_EQ(table->counters().reclaimed, 1u);
      break;
    }
  }
  bool reply_unused;
  EXPECT_EQ(table->lookup(key, &reply_unused), SessionTable::kNone) << "the session is gone";

  std::vector<FlowRecord> records = records_of(key);
  ASSERT_EQ(summaries(records), (std::vector<std::string>{
                                    "nat session-create",
                                    "flow " + std::string(flow_end_reason_name(c.reason)),
                                    "nat session-delete",
                                }));
  EXPECT_TRUE(translated == flow(wan_own(), 40000, key.dst, key.dport, c.proto)) << text(translated);
  for (const FlowRecord& r : records) {
    EXPECT_TRUE(r.translated == translated) << summary(r) << ": " << text(r.translated);
    EXPECT_EQ(r.inside, lan_host()) << summary(r);
    EXPECT_EQ(r.wan, kWanId) << summary(r);
    EXPECT_EQ(r.session_kind, SessionTable::kSnat) << summary(r);
  }
  const FlowRecord& f = records[1];
  uint64_t packets[2] = {0, 0}, bytes[2] = {0, 0};
  uint8_t flags[2] = {0, 0};
  for (const Packet& p : c.packets) {
    ++packets[p.reply];
    bytes[p.reply] += p.bytes;
    flags[p.reply] |= p.tcp_flags;
  }
  for (int d = 0; d < 2; ++d) {
    SCOPED_TRACE(d == 0 ? "original direction" : "reply direction");
    EXPECT_EQ(f.packets[d], packets[d]);
    EXPECT_EQ(f.bytes[d], bytes[d]);
    EXPECT_EQ(f.tcp_flags[d], flags[d]);
  }
  EXPECT_EQ(f.rx_port[0], kLan);
  EXPECT_EQ(f.rx_port[1], packets[1] ? kWan : kFlowPortUnknown) << "a direction without packets arrived nowhere";
  EXPECT_EQ(f.first_ms, at_ms(kT0, c.packets.front().after_ms));
  EXPECT_EQ(f.last_ms, at_ms(kT0, c.packets.back().after_ms));
  EXPECT_EQ(f.traffic_class, c.packets.back().traffic_class) << "the class of the latest packet";
  EXPECT_EQ(f.p2p_protocol, static_cast<uint8_t>(c.application));
  EXPECT_EQ(flows->counters().records.get(), 1u);
  EXPECT_EQ(flows->counters().lost.get(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Paths, FlowEnds, ::testing::ValuesIn(end_cases()),
                         [](const auto& info) { return info.param.name; });

TEST_F(FlowTableTest, NatEventsCarryTheWorkersClockAndTheSession) {
  start();
  uint64_t before = flows->now_ms();
  FlowKey key = flow(lan_host(), 40000, remote1(), 53, kUdp);
  open(key);
  table->clear();
  uint64_t after = flows->now_ms();
  std::vector<FlowRecord> records = records_of(key);
  ASSERT_EQ(summaries(records), (std::vector<std::string>{"nat session-create", "nat session-delete"}))
      << "a session without packets has no flow to report";
  for (const FlowRecord& r : records) {
    EXPECT_GE(r.first_ms, before) << summary(r);
    EXPECT_LE(r.first_ms, after) << summary(r);
    EXPECT_EQ(r.packets[0] + r.packets[1], 0u) << summary(r);
  }
  EXPECT_EQ(flows->counters().nat_events.get(), 2u);
  EXPECT_EQ(flows->counters().records.get(), 0u);
}

TEST_F(FlowTableTest, ASessionCreatedInAReusedSlotStartsFromZero) {
  start();
  FlowKey first = flow(lan_host(), 40000, remote1(), 53, kUdp);
  uint32_t index = open(first);
  packet(index, false, 999, 0, at_ms(kT0), kBulk);
  packet(index, true, 999, 0, at_ms(kT0, 5));
  table->clear();
  FlowKey second = flow(lan_host(), 40001, remote1(), 53, kUdp);
  ASSERT_EQ(open(second, kT0 + 1), index) << "the freed slot is taken again";
  drain(*flows);
  FlowRecord now = flows->snapshot(index, table->flow_view(index));
  EXPECT_TRUE(now.original == second);
  EXPECT_EQ(now.packets[0] + now.packets[1], 0u);
  EXPECT_EQ(now.bytes[0] + now.bytes[1], 0u);
  EXPECT_EQ(now.first_ms, 0u);
  EXPECT_EQ(now.rx_port[0], kFlowPortUnknown);
  EXPECT_EQ(now.rx_port[1], kFlowPortUnknown);
  EXPECT_EQ(now.traffic_class, UINT8_MAX) << "no packet, no class";
  EXPECT_EQ(now.end_reason, FlowEndReason::kActive);
}

// ---- timeouts of flows that stay --------------------------------------------------------------

TEST_F(FlowTableTest, AnIdleFlowIsReportedAndItsNextPacketsStartANewSpan) {
  start();
  FlowKey key = flow(lan_host(), 40000, remote1(), 53, kUdp);
  uint32_t index = open(key);
  packet(index, false, 100, 0, at_ms(kT0));
  packet(index, true, 300, 0, at_ms(kT0, 200));
  packet(index, false, 100, 0, at_ms(kT0 + 1), kBulk);
  expire(kT0 + 1 + timeouts.inactive_s - 1, 999);
  EXPECT_EQ(summaries(records_of(key)), (std::vector<std::string>{"nat session-create"})) << "idle 4.999 s of 5";

  expire(kT0 + 1 + timeouts.inactive_s);
  std::vector<FlowRecord> records = records_of(key);
  ASSERT_EQ(summaries(records), (std::vector<std::string>{"flow idle-timeout"}));
  EXPECT_EQ(records[0].packets[0], 2u);
  EXPECT_EQ(records[0].packets[1], 1u);
  EXPECT_EQ(records[0].bytes[0], 200u);
  EXPECT_EQ(records[0].bytes[1], 300u);
  EXPECT_EQ(records[0].first_ms, at_ms(kT0));
  EXPECT_EQ(records[0].last_ms, at_ms(kT0 + 1));
  EXPECT_EQ(table->size(), 1u) << "the session stays: its NAT timeout is longer";

  expire(kT0 + 1 + 2 * timeouts.inactive_s);
  EXPECT_TRUE(records_of(key).empty()) << "no packet since the report: nothing to report again";

  packet(index, false, 70, 0, at_ms(kT0 + 20, 300), kInteractive);
  FlowRecord span = flows->snapshot(index, table->flow_view(index));
  EXPECT_EQ(span.packets[0], 1u);
  EXPECT_EQ(span.packets[1], 0u);
  EXPECT_EQ(span.bytes[0], 70u);
  EXPECT_EQ(span.bytes[1], 0u);
  EXPECT_EQ(span.first_ms, at_ms(kT0 + 20, 300)) << "a new span starts at its first packet";
  EXPECT_EQ(span.rx_port[1], kWan) << "where the replies arrive stays known";

  table->clear();
  records = records_of(key);
  ASSERT_EQ(summaries(records), (std::vector<std::string>{"flow forced-end", "nat session-delete"}));
  EXPECT_EQ(records[0].packets[0], 1u);
  EXPECT_EQ(records[0].bytes[0], 70u);
  EXPECT_EQ(records[0].packets[1], 0u);
  EXPECT_EQ(records[0].tcp_flags[0] | records[0].tcp_flags[1], 0);
  EXPECT_EQ(records[0].first_ms, at_ms(kT0 + 20, 300));
  EXPECT_EQ(records[0].traffic_class, kInteractive);
}

TEST_F(FlowTableTest, AFlowIdleSinceItsReportEndsWithTheDeleteEventAlone) {
  start();
  FlowKey key = flow(lan_host(), 40000, remote1(), 53, kUdp);
  uint32_t index = open(key);
  packet(index, false, 100, 0, at_ms(kT0));
  expire(kT0 + timeouts.inactive_s);
  expire(kT0 + nat.udp_s);
  EXPECT_EQ(summaries(records_of(key)),
            (std::vector<std::string>{"nat session-create", "flow idle-timeout", "nat session-delete"}));
  EXPECT_EQ(table->size(), 0u);
}

TEST_F(FlowTableTest, ALongFlowIsReportedEveryActiveTimeout) {
  start();
  FlowKey key = flow(lan_host(), 40000, remote1(), 53, kUdp);
  uint32_t index = open(key);
  drain(*flows);
  // A packet each second, never idle; a scan after each.
  std::vector<FlowRecord> reports;
  for (uint32_t t = 0; t <= 2 * timeouts.active_s + 1; ++t) {
    packet(index, t % 2 == 1, 100, 0, at_ms(kT0 + t));
    expire(kT0 + t);
    for (const FlowRecord& r : records_of(key)) reports.push_back(r);
  }
  ASSERT_EQ(summaries(reports), (std::vector<std::string>{"flow active-timeout", "flow active-timeout"}));
  // The first span: seconds 0 to 20; the second starts with the next packet, at 21.
  EXPECT_EQ(reports[0].first_ms, at_ms(kT0));
  EXPECT_EQ(reports[0].last_ms, at_ms(kT0 + timeouts.active_s));
  EXPECT_EQ(reports[0].packets[0] + reports[0].packets[1], timeouts.active_s + 1);
  EXPECT_EQ(reports[1].first_ms, at_ms(kT0 + timeouts.active_s + 1));
  EXPECT_EQ(reports[1].last_ms, at_ms(kT0 + 2 * timeouts.active_s + 1));
  EXPECT_EQ(reports[1].packets[0] + reports[1].packets[1], timeouts.active_s + 1);
  EXPECT_EQ(reports[1].bytes[0] + reports[1].bytes[1], 100u * (timeouts.active_s + 1));
  EXPECT_EQ(table->size(), 1u);
}

// A TCP flow that idles for the inactive timeout: ended if it closed, timed out if not. Its
// session stays until the NAT timeout; only the delete event follows.
struct IdleTcpCase {
  std::string name;
  std::vector<uint8_t> flags;  // alternating directions, from the original one
  FlowEndReason reason;
};
void PrintTo(const IdleTcpCase& c, std::ostream* out) { *out << c.name; }

class IdleTcpFlows : public FlowTableTest, public ::testing::WithParamInterface<IdleTcpCase> {};

TEST_P(IdleTcpFlows, AreReportedAsTheyStand) {
  const IdleTcpCase& c = GetParam();
  start();
  FlowKey key = flow(lan_host(), 40000, remote1(), 443, kTcp);
  uint32_t index = open(key);
  for (std::size_t i = 0; i < c.flags.size(); ++i)
    packet(index, i % 2 == 1, 60, c.flags[i], at_ms(kT0, static_cast<uint32_t>(i)));
  uint32_t nat_timeout = table->timeout_of(table->session(index));
  ASSERT_GT(nat_timeout, timeouts.inactive_s);
  expire(kT0 + timeouts.inactive_s, 10);
  std::vector<FlowRecord> records = records_of(key);
  ASSERT_EQ(summaries(records),
            (std::vector<std::string>{"nat session-create", "flow " + std::string(flow_end_reason_name(c.reason))}));
  EXPECT_EQ(records[1].packets[0] + records[1].packets[1], c.flags.size());
  expire(kT0 + nat_timeout, 10);
  EXPECT_EQ(summaries(records_of(key)), (std::vector<std::string>{"nat session-delete"}));
}

INSTANTIATE_TEST_SUITE_P(
    States, IdleTcpFlows,
    ::testing::Values(IdleTcpCase{"closed_by_fins", {kSyn, kSyn | kAck, kAck, kAck, kFin | kAck, kFin | kAck},
                                  FlowEndReason::kEndOfFlow},
                      IdleTcpCase{"reset", {kSyn, kSyn | kAck, kAck, kRst}, FlowEndReason::kEndOfFlow},
                      IdleTcpCase{"fin_one_way_only", {kSyn, kSyn | kAck, kFin | kAck}, FlowEndReason::kIdleTimeout},
                      IdleTcpCase{"established", {kSyn, kSyn | kAck, kAck}, FlowEndReason::kIdleTimeout}),
    [](const auto& info) { return info.param.name; });

// ---- the ring ---------------------------------------------------------------------------------

TEST_F(FlowTableTest, AFullRingLosesAndCountsRecordsAndTheWorkerGoesOn) {
  start(64, 64);
  unsigned room = rte_ring_get_capacity(flows->ring());
  ASSERT_EQ(room, 63u) << "a ring of 64 slots holds 63";
  constexpr uint16_t kSessions = 40;
  for (uint16_t i = 0; i < kSessions; ++i) {
    uint32_t index = open(flow(lan_host(), static_cast<uint16_t>(40000 + i), remote1(), 53, kUdp));
    packet(index, false, 100, 0, at_ms(kT0));
  }
  table->clear();  // a flow record and a delete event each
  const uint64_t emitted = 3 * kSessions;
  EXPECT_EQ(flows->counters().lost.get(), emitted - room);
  EXPECT_EQ(flows->counters().records.get() + flows->counters().nat_events.get(), room) << "only what was queued";
  std::vector<FlowRecord> queued = drain(*flows);
  ASSERT_EQ(queued.size(), room);
  std::vector<std::string> expected(kSessions, "nat session-create");
  for (unsigned i = kSessions; i < room; ++i)
    expected.push_back((i - kSessions) % 2 == 0 ? "flow forced-end" : "nat session-delete");
  EXPECT_EQ(summaries(queued), expected) << "the oldest records are kept, the newest lost";

  // Drained, the ring takes records again.
  FlowKey later = flow(lan_host(), 50000, remote1(), 53, kUdp);
  open(later);
  EXPECT_EQ(summaries(records_of(later)), (std::vector<std::string>{"nat session-create"}));
  EXPECT_EQ(flows->counters().lost.get(), emitted - room);
}

// ---- refusals ---------------------------------------------------------------------------------

TEST_F(FlowTableTest, AQuotaRefusalIsANatEventWithTheLimitThenOneASecond) {
  nat.sessions_per_subscriber = 2;
  start();
  open(flow(lan_host(), 40000, remote1(), 53, kUdp));
  open(flow(lan_host(), 40001, remote1(), 53, kUdp));
  drain(*flows);
  uint64_t before = flows->now_ms();
  FlowKey refused = flow(lan_host(), 40002, remote1(), 443, kTcp);
  NatRefusal refusal = NatRefusal::kNone;
  ASSERT_EQ(table->create_outbound(refused, kWanId, wan_own(), kT0, &refusal), SessionTable::kNone);
  ASSERT_EQ(refusal, NatRefusal::kQuota);
  table->report_refusal(refusal, refused, wan_own());
  uint64_t after = flows->now_ms();
  std::vector<FlowRecord> records = drain(*flows);
  ASSERT_EQ(records.size(), 1u);
  const FlowRecord& r = records[0];
  EXPECT_EQ(r.kind, FlowRecord::kNatEvent);
  EXPECT_EQ(r.nat_event, NatEventType::kQuotaExceeded);
  EXPECT_EQ(r.quota_event, NatQuotaEvent::kMaxEntriesPerUser);
  EXPECT_EQ(r.limit, 2u);
  EXPECT_TRUE(r.original == refused) << text(r.original);
  EXPECT_EQ(r.translated.src, wan_own()) << "the WAN address it would have used";
  EXPECT_EQ(r.inside, lan_host());
  EXPECT_GE(r.first_ms, before);
  EXPECT_LE(r.first_ms, after);

  // The next refusals within the second: counted, not queued.
  for (uint16_t port : {40003, 40004}) {
    FlowKey again = flow(lan_host(), port, remote1(), 443, kTcp);
    ASSERT_EQ(table->create_outbound(again, kWanId, wan_own(), kT0, &refusal), SessionTable::kNone);
    table->report_refusal(refusal, again, wan_own());
  }
  EXPECT_TRUE(drain(*flows).empty());
  EXPECT_EQ(flows->counters().refusals_suppressed.get(), 2u);
  EXPECT_EQ(flows->counters().nat_events.get(), 3u) << "two creates and the one refusal";
}

// Each kind of refusal as its NAT event (RFC 8158), one a second per kind: a refusal of one
// kind does not hold back those of another.
TEST_F(FlowTableTest, EachKindOfRefusalHasItsEventAndItsOwnSecond) {
  nat.sessions_per_subscriber = 7;
  start(32);
  struct Case {
    NatRefusal refusal;
    NatEventType event;
    NatQuotaEvent quota;
    uint32_t limit;
  };
  const std::vector<Case> cases = {
      {NatRefusal::kQuota, NatEventType::kQuotaExceeded, NatQuotaEvent::kMaxEntriesPerUser, 7},
      {NatRefusal::kTableFull, NatEventType::kQuotaExceeded, NatQuotaEvent::kMaxSessionEntries, 32},
      {NatRefusal::kPortsExhausted, NatEventType::kPortsExhausted, NatQuotaEvent::kNone, 0},
  };
  FlowKey key = flow(lan_host(), 40000, remote1(), 53, kUdp);
  for (int round = 0; round < 2; ++round)
    for (const Case& c : cases) table->report_refusal(c.refusal, key, wan_own());
  table->report_refusal(NatRefusal::kNone, key, wan_own());
  std::vector<FlowRecord> records = drain(*flows);
  ASSERT_EQ(records.size(), cases.size()) << "one event per kind";
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("refusal " + std::to_string(static_cast<int>(cases[i].refusal)));
    EXPECT_EQ(records[i].kind, FlowRecord::kNatEvent);
    EXPECT_EQ(records[i].nat_event, cases[i].event);
    EXPECT_EQ(records[i].quota_event, cases[i].quota);
    EXPECT_EQ(records[i].limit, cases[i].limit);
  }
  EXPECT_EQ(flows->counters().refusals_suppressed.get(), cases.size()) << "the second round";
}

// ---- the flow stage on frames -----------------------------------------------------------------

constexpr uint32_t kStageSessions = 1024;

std::string stage_config() {
  nlohmann::json c = nlohmann::json::parse(kTwoPortConfig);
  c["nat"] = {{"sessions_per_subscriber", 2}};
  return c.dump();
}

Bytes from_lan(const Bytes& packet) { return padded(ethernet(port_mac(kLan), lan_host_mac(), kEtherIpv4, packet)); }
Bytes from_wan(const Bytes& packet) { return padded(ethernet(port_mac(kWan), wan_gw_mac(), kEtherIpv4, packet)); }

// parse, guard, nat and flow as in a worker, with this worker's session table and flow
// accounting; the classify stage's part (meta->traffic_class) is played by the test.
class FlowStageTest : public PoolCheckedTest {
 protected:
  FlowStageTest()
      : config(parse_config(stage_config())),
        ports(make_port_table(config)),
        flows(kStageSessions, 0, rte_socket_id(), FlowTimeouts{}, 1024),
        sessions(config.nat, kStageSessions, 0, 1, rte_socket_id(), static_cast<uint8_t>(ports.ports.size())),
        guard(ports, config.lan_prefixes()),
        nat(config, ports, sessions, counters, 0, 1),
        flow_stage(flows) {
    sessions.set_flow_accounting(&flows);
  }
  ~FlowStageTest() override { release(); }

  // Frees what the burst still owns: not the packets a stage took (kSent).
  void release() {
    for (uint16_t i = 0; i < burst.count; ++i)
      if (burst.action[i] != Action::kSent) rte_pktmbuf_free(burst.pkts[i]);
    burst.count = 0;
  }
  // Frames in on `port` up to the flow stage: parse, guard, nat, then `traffic_class` on every
  // packet still going, as the classify stage would.
  void up_to_flow(uint16_t port, const std::vector<Bytes>& frames, uint8_t traffic_class = kNormal) {
    release();
    fill_burst(burst, port, frames);
    run_stages(burst, {&parse, &guard, &nat});
    for (uint16_t i = 0; i < burst.count; ++i)
      if (burst.action[i] == Action::kContinue) packet_meta(burst.pkts[i])->traffic_class = traffic_class;
  }
  // The whole way; every packet must come out of nat with no verdict yet.
  void run(uint16_t port, const std::vector<Bytes>& frames, uint8_t traffic_class = kNormal) {
    up_to_flow(port, frames, traffic_class);
    for (uint16_t i = 0; i < burst.count; ++i)
      EXPECT_EQ(burst.action[i], Action::kContinue) << "packet " << i << ": " << burst.drop_reason[i];
    flow_stage.process(burst);
  }
  uint32_t session_of(uint16_t i) const { return packet_meta(burst.pkts[i])->nat_session; }
  FlowRecord stats(uint32_t session) const { return flows.snapshot(session, sessions.flow_view(session)); }

  Config config;
  PortTable ports;
  WorkerCounters counters;
  FlowAccounting flows;
  SessionTable sessions;
  ParseStage parse{ports};
  GuardStage guard;
  NatStage nat;
  FlowStage flow_stage;
  Burst burst;
};

TEST_F(FlowStageTest, CountsIpv4BytesTcpFlagsClassAndPortsOfBothDirections) {
  Bytes syn = ipv4(lan_host(), remote1(), kProtoTcp, tcp(lan_host(), remote1(), 40000, 443, {.flags = kSyn}));
  Bytes syn_ack = ipv4(remote1(), wan_own(), kProtoTcp, tcp(remote1(), wan_own(), 443, 40000, {.flags = kSyn | kAck}));
  Bytes data = ipv4(lan_host(), remote1(), kProtoTcp,
                    tcp(lan_host(), remote1(), 40000, 443, {.flags = kPsh | kAck, .payload = payload_bytes(333)}));
  ASSERT_LT(syn.size() + 14, 60u) << "the SYN arrives padded to Ethernet's minimum";
  uint64_t before = flows.now_ms();
  run(kLan, {from_lan(syn)}, kBulk);
  uint32_t session = session_of(0);
  ASSERT_NE(session, kNoNatSession);
  run(kWan, {from_wan(syn_ack)}, kBulk);
  EXPECT_EQ(session_of(0), session);
  EXPECT_TRUE(packet_meta(burst.pkts[0])->nat_reply);
  run(kLan, {from_lan(data)}, kInteractive);
  uint64_t after = flows.now_ms();

  FlowRecord s = stats(session);
  EXPECT_EQ(s.packets[0], 2u);
  EXPECT_EQ(s.packets[1], 1u);
  EXPECT_EQ(s.bytes[0], syn.size() + data.size()) << "IPv4 total lengths: no Ethernet header, no padding";
  EXPECT_EQ(s.bytes[1], syn_ack.size());
  EXPECT_EQ(s.tcp_flags[0], kSyn | kPsh | kAck);
  EXPECT_EQ(s.tcp_flags[1], kSyn | kAck);
  EXPECT_EQ(s.rx_port[0], kLan);
  EXPECT_EQ(s.rx_port[1], kWan);
  EXPECT_EQ(s.traffic_class, kInteractive) << "the latest packet's class";
  EXPECT_GE(s.first_ms, before);
  EXPECT_LE(s.first_ms, s.last_ms);
  EXPECT_LE(s.last_ms, after);
  EXPECT_TRUE(s.original == flow(lan_host(), 40000, remote1(), 443, kTcp)) << text(s.original);
}

TEST_F(FlowStageTest, UdpHasNoTcpFlags) {
  Bytes query = ipv4(lan_host(), remote1(), kProtoUdp, udp(lan_host(), remote1(), 40000, 53, payload_bytes(40)));
  run(kLan, {from_lan(query), from_lan(query)});
  ASSERT_EQ(session_of(0), session_of(1)) << "one flow";
  FlowRecord s = stats(session_of(0));
  EXPECT_EQ(s.packets[0], 2u);
  EXPECT_EQ(s.bytes[0], 2 * query.size());
  EXPECT_EQ(s.tcp_flags[0], 0);
}

TEST_F(FlowStageTest, PacketsWithoutASessionOrAlreadyDecidedAreNotCounted) {
  Bytes query = ipv4(lan_host(), remote1(), kProtoUdp, udp(lan_host(), remote1(), 40000, 53, payload_bytes(40)));
  run(kLan, {from_lan(query)});
  uint32_t session = session_of(0);
  ASSERT_NE(session, kNoNatSession);

  // LAN to LAN: no NAT, no session; in one burst with a packet of the flow.
  Bytes local = ipv4(lan_host(), lan_host2(), kProtoUdp, udp(lan_host(), lan_host2(), 40000, 53, payload_bytes(10)));
  run(kLan, {from_lan(local), from_lan(query)});
  ASSERT_EQ(session_of(0), kNoNatSession);
  EXPECT_EQ(stats(session).packets[0], 2u) << "the flow's packet only";

  // A packet of the flow a later stage dropped (p2p, say) before the flow stage.
  up_to_flow(kLan, {from_lan(query)});
  ASSERT_EQ(session_of(0), session);
  burst.drop(0, DropReason::kP2pDropped);
  flow_stage.process(burst);
  EXPECT_EQ(stats(session).packets[0], 2u) << "dropped before the flow stage: not counted";
  EXPECT_EQ(stats(session).bytes[0], 2 * query.size());
}

TEST_F(FlowStageTest, ARefusedFlowBecomesANatEvent) {
  for (uint16_t port : {40000, 40001}) {
    Bytes query = ipv4(lan_host(), remote1(), kProtoUdp, udp(lan_host(), remote1(), port, 53, payload_bytes(20)));
    run(kLan, {from_lan(query)});
  }
  drain(flows);
  Bytes third = ipv4(lan_host(), remote1(), kProtoUdp, udp(lan_host(), remote1(), 40002, 53, payload_bytes(20)));
  up_to_flow(kLan, {from_lan(third)});
  ASSERT_EQ(burst.action[0], Action::kDrop);
  EXPECT_EQ(burst.drop_reason[0], DropReason::kNatQuota);
  std::vector<FlowRecord> records = drain(flows);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].nat_event, NatEventType::kQuotaExceeded);
  EXPECT_EQ(records[0].quota_event, NatQuotaEvent::kMaxEntriesPerUser);
  EXPECT_EQ(records[0].limit, 2u);
  EXPECT_TRUE(records[0].original == flow(lan_host(), 40002, remote1(), 53, kUdp)) << text(records[0].original);
  EXPECT_EQ(records[0].translated.src, wan_own());
}

}  // namespace
}  // namespace fairgate::test
