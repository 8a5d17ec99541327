// The management thread's side of flow monitoring: FlowMonitor drains a worker's ring (records
// made by a real FlowAccounting beside a real session table, no worker thread), exports through
// a fake sender that keeps the datagrams, names what it reports, and streams to flow-watch
// connections of a real ControlServer. The encoding itself is flow_exporter_test.cpp's, the
// filter and fields flow_filter_test.cpp's.
#include "control/control_server.h"
#include "control_client.h"
#include "flow/flow_accounting.h"
#include "flow/flow_monitor.h"
#include "nat/session_table.h"
#include "test_env.h"

#include <rte_lcore.h>
#include <sys/socket.h>

#include "test_packets.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <memory>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

namespace fairgate::test {
namespace {

using nlohmann::json;

constexpr uint16_t kLan = 0, kWan = 1;  // port indices in kTwoPortConfig
constexpr uint8_t kTcp = 6, kUdp = 17;
constexpr uint8_t kSyn = 0x02, kAck = 0x10;
constexpr uint8_t kBulk = 2, kP2p = 3;  // indices of kTrafficClasses
constexpr uint32_t kT0 = 1000;          // the session table's clock, seconds
// The workers' clock and the wall clock at the moment the monitor starts.
constexpr uint64_t kWorkerMs = 5'000'000;
constexpr uint64_t kWallMs = 1'764'921'552'000;

uint32_t remote1() { return internet_host(); }  // 192.0.2.10
uint32_t collector_ipfix() { return ip("192.0.2.50"); }
uint32_t collector_v9() { return ip("192.0.2.51"); }

Bytes be32(uint32_t value) {
  Bytes out;
  put32(out, value);
  return out;
}
Bytes be64(uint64_t value) {
  Bytes out;
  put32(out, static_cast<uint32_t>(value >> 32));
  put32(out, static_cast<uint32_t>(value));
  return out;
}
bool contains(const Bytes& data, const Bytes& part) {
  return std::search(data.begin(), data.end(), part.begin(), part.end()) != data.end();
}

struct Datagram {
  uint32_t collector;
  uint16_t collector_port, source_port;
  Bytes payload;
};

class FlowMonitorTest : public ControlSocketTest {
 protected:
  FlowMonitorTest() : config(parse_config(kTwoPortConfig)), ports(make_port_table(config)) {
    flow_config.collectors = {{collector_ipfix(), 4739, false}, {collector_v9(), 2055, true}};
    commands.add("version", "the version",
                 [](const JsonField&) { return nlohmann::ordered_json{{"version", "test"}}; });
    commands.add_for_connection("flow-watch", "a flow stream", [this](const JsonField& args, int connection) {
      // The kernel's buffer for the connection, small: a reader that does not read fills it soon.
      if (small_socket_buffer) {
        int bytes = 4096;
        setsockopt(connection, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
      }
      return monitor->watch(*server, connection, args);
    });
  }

  // The worker's table and accounting, the control socket and the monitor, with flow_config
  // as the test left it.
  void start() {
    flows = std::make_unique<FlowAccounting>(256, 0, rte_socket_id(), FlowTimeouts{}, 1024);
    table = std::make_unique<SessionTable>(config.nat, 256, 0, 1, rte_socket_id());
    table->set_flow_accounting(flows.get());
    server = std::make_unique<ControlServer>(path, commands);
    auto send = [this](uint32_t collector, uint16_t collector_port, uint16_t source_port,
                       const std::vector<uint8_t>& payload) {
      sent.push_back({collector, collector_port, source_port, payload});
      return sender_works;
    };
    auto namer = [](uint32_t inside) { return std::string(inside == lan_host() ? "flat-3" : ""); };
    // A worker without flow accounting first: the monitor passes it by.
    std::vector<FlowAccounting*> workers{nullptr, flows.get()};
    monitor = std::make_unique<FlowMonitor>(flow_config, ports, workers, send, namer, kWorkerMs, kWallMs);
  }

  // A flow on the worker: its session from the LAN, `out` packets of 100 bytes from the LAN and
  // `in` of 300 from the WAN, counted `after_ms` after the monitor started, then ended. Its
  // records are on the ring: NAT create event, the flow, NAT delete event.
  void whole_flow(const FlowKey& key, uint64_t out, uint64_t in, uint64_t after_ms = 100) {
    NatRefusal refusal;
    uint32_t index = table->create_outbound(key, kWan, wan_own(), kT0, &refusal);
    ASSERT_NE(index, SessionTable::kNone);
    uint8_t flags = key.proto == kTcp ? kSyn | kAck : 0;
    for (uint64_t i = 0; i < out; ++i) flows->count(index, false, kLan, 100, flags, kBulk, kWorkerMs + after_ms);
    for (uint64_t i = 0; i < in; ++i) flows->count(index, true, kWan, 300, flags, kBulk, kWorkerMs + after_ms + 1);
    table->clear();
  }
  // The monitor's stats, as flow-stats shows them.
  json stats() const { return json::parse(monitor->stats_json().dump()); }

  // Asks for a flow-watch with `args` on control connection `fd`; the reply.
  json watch(int fd, const json& args) {
    write_all(fd, json{{"command", "flow-watch"}, {"args", args}}.dump() + "\n");
    auto got = replies(*server, fd, 1);
    return got.empty() ? json() : got[0];
  }

  Config config;
  PortTable ports;
  FlowConfig flow_config;
  bool small_socket_buffer = false;
  bool sender_works = true;
  std::vector<Datagram> sent;
  std::unique_ptr<FlowAccounting> flows;
  std::unique_ptr<SessionTable> table;
  std::unique_ptr<ControlServer> server;
  std::unique_ptr<FlowMonitor> monitor;
};

// ---- export -----------------------------------------------------------------------------------

TEST_F(FlowMonitorTest, RecordsOnTheRingLeaveAsMessagesToEveryCollector) {
  start();
  FlowKey key = flow(lan_host(), 40000, remote1(), 443, kTcp);
  whole_flow(key, 2, 1);
  monitor->poll(kWallMs + 1000);

  for (auto [address, port, version] : {std::tuple{collector_ipfix(), 4739, 10}, std::tuple{collector_v9(), 2055, 9}}) {
    SCOPED_TRACE("collector " + format_ipv4(address));
    std::vector<Datagram> mine;
    for (const Datagram& d : sent)
      if (d.collector == address) mine.push_back(d);
    ASSERT_EQ(mine.size(), 1u) << "the templates and four records fit one message";
    const Bytes& message = mine[0].payload;
    EXPECT_EQ(mine[0].collector_port, port);
    EXPECT_EQ(mine[0].source_port, flow_config.source_port);
    ASSERT_GE(message.size(), 20u);
    EXPECT_EQ(get16(message, 0), version);
    if (version == 10) {
      EXPECT_EQ(get16(message, 2), message.size()) << "IPFIX length";
      EXPECT_EQ(get32(message, 12), flow_config.observation_domain);
      EXPECT_TRUE(contains(message, be64(kWallMs + 100))) << "flowStartMilliseconds on the wall clock";
    }
    EXPECT_TRUE(contains(message, be32(lan_host()))) << "the inside host";
    EXPECT_TRUE(contains(message, be32(remote1()))) << "the remote";
    EXPECT_TRUE(contains(message, be32(wan_own()))) << "the post-NAT source";
  }
  json s = stats();
  EXPECT_EQ(s["records_received"], 1);
  EXPECT_EQ(s["nat_events_received"], 2);
  EXPECT_EQ(s["worker_records"], 1);
  EXPECT_EQ(s["worker_nat_events"], 2);
  EXPECT_EQ(s["lost_ring_full"], 0);
  ASSERT_EQ(s["collectors"].size(), 2u);
  EXPECT_EQ(s["collectors"][0]["address"], "192.0.2.50:4739");
  EXPECT_EQ(s["collectors"][0]["format"], "ipfix");
  EXPECT_EQ(s["collectors"][1]["format"], "netflow9");
  for (const json& c : s["collectors"]) {
    EXPECT_EQ(c["records"], 4) << "two directions and two NAT events: " << c;
    EXPECT_EQ(c["datagrams_sent"], 1) << c;
    EXPECT_EQ(c["datagrams_failed"], 0) << c;
    EXPECT_EQ(c["dropped_by_rate_limit"], 0) << c;
  }

  sent.clear();
  monitor->poll(kWallMs + 2000);
  EXPECT_TRUE(sent.empty()) << "nothing new, templates not due";
}

TEST_F(FlowMonitorTest, NatEventsStayOutOfTheExportWhenTurnedOff) {
  flow_config.nat_events = false;
  start();
  whole_flow(flow(lan_host(), 40000, remote1(), 53, kUdp), 1, 0);
  monitor->poll(kWallMs + 1000);
  json s = stats();
  EXPECT_EQ(s["nat_events_received"], 2) << "still received";
  for (const json& c : s["collectors"]) EXPECT_EQ(c["records"], 1) << "the one direction with packets: " << c;
}

TEST_F(FlowMonitorTest, DatagramsThatCannotGoAreCounted) {
  sender_works = false;
  start();
  whole_flow(flow(lan_host(), 40000, remote1(), 53, kUdp), 1, 1);
  monitor->poll(kWallMs + 1000);
  EXPECT_EQ(sent.size(), 2u) << "tried, once per collector";
  json s = stats();
  for (const json& c : s["collectors"]) {
    EXPECT_EQ(c["datagrams_sent"], 0) << c;
    EXPECT_EQ(c["datagrams_failed"], 1) << c;
  }
}

TEST_F(FlowMonitorTest, TheRateLimitDropsAndCountsWhatIsBeyondItPerCollector) {
  flow_config.max_records_per_s = 1;
  flow_config.nat_events = false;  // they would take tokens too
  start();
  // (flows ended since the last poll, when the poll runs, exported and dropped so far per collector)
  struct Step {
    int flows;
    uint64_t poll_after_ms;
    int exported, dropped;
  };
  const std::vector<Step> steps = {
      {3, 1000, 1, 2},  // one token to start with
      {1, 1999, 1, 3},  // 0.999 s later: not a whole token yet
      {1, 3000, 2, 3},  // a second on: one token again
      {2, 3000, 2, 5},
  };
  uint16_t port = 40000;
  for (const Step& step : steps) {
    SCOPED_TRACE("poll at +" + std::to_string(step.poll_after_ms) + " ms");
    for (int i = 0; i < step.flows; ++i) whole_flow(flow(lan_host(), port++, remote1(), 53, kUdp), 1, 0);
    monitor->poll(kWallMs + step.poll_after_ms);
    json s = stats();
    for (const json& c : s["collectors"]) {
      EXPECT_EQ(c["records"], step.exported) << c;
      EXPECT_EQ(c["dropped_by_rate_limit"], step.dropped) << c;
    }
  }
  EXPECT_EQ(stats()["records_received"], 7) << "every record is received, whatever the export takes";
}

// ---- reports ----------------------------------------------------------------------------------

struct ReportCase {
  std::string name;
  uint8_t session_kind;
  uint8_t rx_port[2];
  uint8_t traffic_class = UINT8_MAX;
  P2pProtocol application = P2pProtocol::kNone;
  // Expected:
  uint16_t ingress, egress;
  std::string ingress_name, egress_name, wan, class_name = "", application_name = "";
};
void PrintTo(const ReportCase& c, std::ostream* out) { *out << c.name; }

constexpr uint8_t kUnknown = kFlowPortUnknown;

class Reports : public FlowMonitorTest, public ::testing::WithParamInterface<ReportCase> {};

TEST_P(Reports, NameThePortsWanClassAndApplication) {
  const ReportCase& c = GetParam();
  start();
  FlowRecord record;
  record.original = flow(lan_host(), 40000, remote1(), 6881, kTcp);
  record.translated = flow(wan_own(), 40000, remote1(), 6881, kTcp);
  record.first_ms = kWorkerMs + 250;
  record.last_ms = kWorkerMs + 4250;
  record.packets[0] = 5;
  record.packets[1] = 4;
  record.bytes[0] = 500;
  record.bytes[1] = 4000;
  record.tcp_flags[0] = kSyn | kAck;
  record.tcp_flags[1] = kAck;
  record.inside = lan_host();
  record.end_reason = FlowEndReason::kEndOfFlow;
  record.wan = kWan;
  record.session_kind = c.session_kind;
  record.rx_port[0] = c.rx_port[0];
  record.rx_port[1] = c.rx_port[1];
  record.traffic_class = c.traffic_class;
  record.p2p_protocol = static_cast<uint8_t>(c.application);

  FlowReport r = monitor->report_of(record);
  EXPECT_EQ(r.ingress_port, c.ingress);
  EXPECT_EQ(r.egress_port, c.egress);
  EXPECT_EQ(r.ingress_name, c.ingress_name);
  EXPECT_EQ(r.egress_name, c.egress_name);
  EXPECT_EQ(r.wan, c.wan);
  EXPECT_EQ(r.traffic_class, c.class_name);
  EXPECT_EQ(r.application, c.application_name);
  // What every report carries over as it is, or on the wall clock.
  EXPECT_TRUE(r.original == record.original);
  EXPECT_TRUE(r.translated == record.translated);
  EXPECT_EQ(r.first_ms, kWallMs + 250);
  EXPECT_EQ(r.last_ms, kWallMs + 4250);
  EXPECT_EQ(r.packets[0], 5u);
  EXPECT_EQ(r.packets[1], 4u);
  EXPECT_EQ(r.bytes[0], 500u);
  EXPECT_EQ(r.bytes[1], 4000u);
  EXPECT_EQ(r.tcp_flags[0], kSyn | kAck);
  EXPECT_EQ(r.tcp_flags[1], kAck);
  EXPECT_EQ(r.end_reason, FlowEndReason::kEndOfFlow);
  EXPECT_EQ(r.inside_address, lan_host());
  EXPECT_EQ(r.subscriber, "flat-3");
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, Reports,
    ::testing::Values(
        ReportCase{"snat_both_ways", SessionTable::kSnat, {kLan, kWan}, kBulk, P2pProtocol::kNone, kLan, kWan, "lan0",
                   "wan0", "wan0", "bulk"},
        ReportCase{"snat_no_reply_leaves_by_its_wan", SessionTable::kSnat, {kLan, kUnknown}, UINT8_MAX,
                   P2pProtocol::kNone, kLan, kWan, "lan0", "wan0", "wan0"},
        ReportCase{"snat_opened_from_outside", SessionTable::kSnat, {kUnknown, kWan}, UINT8_MAX, P2pProtocol::kNone,
                   kUnknown, kWan, "", "wan0", "wan0"},
        ReportCase{"snat_p2p", SessionTable::kSnat, {kLan, kWan}, kP2p, P2pProtocol::kBitTorrent, kLan, kWan, "lan0",
                   "wan0", "wan0", "p2p", "bittorrent"},
        ReportCase{"forward_both_ways", SessionTable::kForward, {kWan, kLan}, kBulk, P2pProtocol::kNone, kWan, kLan,
                   "wan0", "lan0", "wan0", "bulk"},
        ReportCase{"forward_arrives_by_its_wan", SessionTable::kForward, {kUnknown, kUnknown}, UINT8_MAX,
                   P2pProtocol::kNone, kWan, kUnknown, "wan0", "", "wan0"},
        ReportCase{"hairpin_has_no_wan", SessionTable::kHairpin, {kLan, kLan}, UINT8_MAX, P2pProtocol::kNone, kLan,
                   kLan, "lan0", "lan0", ""}),
    [](const auto& info) { return info.param.name; });

TEST_F(FlowMonitorTest, AReportWithoutTimesStaysWithoutThem) {
  start();
  FlowRecord record;
  record.inside = lan_host2();
  FlowReport r = monitor->report_of(record);
  EXPECT_EQ(r.first_ms, 0u) << "0 is no packet, not the moment the monitor started";
  EXPECT_EQ(r.last_ms, 0u);
  EXPECT_EQ(r.subscriber, "");
}

// ---- flow-watch -------------------------------------------------------------------------------

TEST_F(FlowMonitorTest, AWatchSeesTheFlowsItsFilterMatchesAsStartAndEnd) {
  start();
  int fd = connect_client();
  json answer = watch(fd, {{"dport", "443"}, {"proto", "tcp"}});
  ASSERT_EQ(answer["ok"], true) << answer;
  EXPECT_EQ(answer["result"]["watching"], true);
  EXPECT_EQ(answer["result"]["filter"], json::parse(R"({"dport": [443], "proto": ["tcp"]})"));

  whole_flow(flow(lan_host(), 40001, remote1(), 53, kUdp), 1, 1);
  whole_flow(flow(lan_host(), 40000, remote1(), 443, kTcp), 2, 1, 300);
  whole_flow(flow(lan_host(), 40002, remote1(), 443, kUdp), 1, 1);
  monitor->poll(kWallMs + 1000);
  auto lines = replies(*server, fd, 2);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["event"], "start");
  EXPECT_EQ(lines[1]["event"], "end");
  for (const json& line : lines) {
    EXPECT_EQ(line["src"], "10.10.0.11") << line;
    EXPECT_EQ(line["sport"], 40000) << line;
    EXPECT_EQ(line["dport"], 443) << line;
    EXPECT_EQ(line["nat_src"], "198.51.100.2") << line;
    EXPECT_EQ(line["subscriber"], "flat-3") << line;
    EXPECT_EQ(line["wan"], "wan0") << line;
  }
  EXPECT_EQ(lines[1]["packets"], 2);
  EXPECT_EQ(lines[1]["bytes"], 200);
  EXPECT_EQ(lines[1]["reply_packets"], 1);
  EXPECT_EQ(lines[1]["reply_bytes"], 300);
  EXPECT_EQ(lines[1]["first_ms"], kWallMs + 300);
  EXPECT_EQ(lines[1]["end_reason"], "forced-end");
  EXPECT_EQ(drain(*server, fd), "") << "nothing of the flows the filter leaves out";
  json watchers = stats()["watchers"];
  ASSERT_EQ(watchers.size(), 1u);
  EXPECT_EQ(watchers[0]["sent"], 2);
}

TEST_F(FlowMonitorTest, PauseResumeAndStop) {
  start();
  int fd = connect_client();
  ASSERT_EQ(watch(fd, {{"dport", "443"}})["ok"], true);
  uint16_t port = 40000;
  auto matching_flow = [&] { whole_flow(flow(lan_host(), port++, remote1(), 443, kTcp), 1, 1); };

  write_all(fd, "pause\n");
  EXPECT_EQ(replies(*server, fd, 1), std::vector<json>{json::parse(R"({"ok": true, "result": {"paused": true}})")});
  matching_flow();
  monitor->poll(kWallMs + 1000);
  EXPECT_EQ(drain(*server, fd), "") << "a paused watcher gets nothing";
  EXPECT_EQ(stats()["watchers"][0]["skipped_while_paused"], 2) << "start and end";

  write_all(fd, R"({"command": "resume"})" "\n");
  EXPECT_EQ(replies(*server, fd, 1),
            std::vector<json>{json::parse(R"({"ok": true, "result": {"paused": false, "skipped_while_paused": 2}})")});
  matching_flow();
  monitor->poll(kWallMs + 2000);
  auto lines = replies(*server, fd, 2);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["event"], "start");
  EXPECT_EQ(lines[1]["event"], "end");

  write_all(fd, "faster please\n");
  auto refused = replies(*server, fd, 1);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0]["ok"], false);
  EXPECT_EQ(refused[0]["error"], "command: a flow-watch stream takes \"pause\", \"resume\" or \"stop\"");

  write_all(fd, "stop\n");
  EXPECT_EQ(replies(*server, fd, 1),
            std::vector<json>{json::parse(R"({"ok": true, "result": {"stopped": true, "sent": 2}})")});
  EXPECT_TRUE(closed_by_server(*server, fd));
  EXPECT_EQ(stats()["watchers"], json::array());
  matching_flow();
  monitor->poll(kWallMs + 3000);  // no watcher left to write to
  EXPECT_EQ(stats()["records_received"], 3);
}

TEST_F(FlowMonitorTest, AStopWithMoreLinesBehindItEndsTheStreamThere) {
  start();
  int fd = connect_client();
  ASSERT_EQ(watch(fd, json::object())["ok"], true);
  write_all(fd, "stop\npause\n{\"command\": \"version\"}\n");
  auto lines = replies(*server, fd, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["result"]["stopped"], true);
  EXPECT_TRUE(closed_by_server(*server, fd));
  EXPECT_EQ(drain(*server, fd), "") << "nothing after the stream's last line";
  EXPECT_EQ(stats()["watchers"], json::array());
}

TEST_F(FlowMonitorTest, AWatcherThatHangsUpIsForgotten) {
  start();
  int fd = connect_client();
  ASSERT_EQ(watch(fd, json::object())["ok"], true);
  ASSERT_EQ(stats()["watchers"].size(), 1u);
  disconnect(fd);
  for (int i = 0; i < 10; ++i) server->poll();
  EXPECT_EQ(stats()["watchers"], json::array());
  whole_flow(flow(lan_host(), 40000, remote1(), 443, kTcp), 1, 1);
  monitor->poll(kWallMs + 1000);
  EXPECT_EQ(stats()["watchers_dropped_slow"], 0);
}

TEST_F(FlowMonitorTest, ASlowReaderIsDroppedWithAReasonAndForgotten) {
  flow_config.watch_buffer_bytes = 64;  // less than one record's line
  start();
  int fd = connect_client();
  ASSERT_EQ(watch(fd, json::object())["ok"], true);
  whole_flow(flow(lan_host(), 40000, remote1(), 443, kTcp), 1, 1);
  monitor->poll(kWallMs + 1000);
  auto lines = replies(*server, fd, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["ok"], false);
  EXPECT_EQ(lines[0].value("error", "").rfind("flow-watch: dropped: ", 0), 0u) << lines[0];
  EXPECT_TRUE(closed_by_server(*server, fd));
  json s = stats();
  EXPECT_EQ(s["watchers"], json::array());
  EXPECT_EQ(s["watchers_dropped_slow"], 1);
}

TEST_F(FlowMonitorTest, AReaderThatStopsReadingIsDroppedOnceItsBufferIsFull) {
  flow_config.watch_buffer_bytes = 16 * 1024;  // the least flows.watch.buffer_kb allows
  small_socket_buffer = true;
  start();
  int fd = connect_client();
  ASSERT_EQ(watch(fd, json::object())["ok"], true);
  uint16_t port = 40000;
  int flows_sent = 0;
  while (!stats()["watchers"].empty() && flows_sent < 2000) {
    whole_flow(flow(lan_host(), port++, remote1(), 443, kTcp), 1, 1);
    monitor->poll(kWallMs + 1000);
    ++flows_sent;
  }
  EXPECT_EQ(stats()["watchers"], json::array()) << "still watching after " << flows_sent << " flows";
  EXPECT_EQ(stats()["watchers_dropped_slow"], 1);
  EXPECT_GT(flows_sent, 10) << "the socket's buffer and 16 KiB took lines first";
  // The reader reads at last: the records it was sent, whole, then why it was let go, then the end.
  EXPECT_TRUE(closed_by_server(*server, fd));
  std::string rest = drain(*server, fd);
  std::vector<json> lines;
  for (std::size_t start = 0, newline; (newline = rest.find('\n', start)) != std::string::npos; start = newline + 1) {
    lines.push_back(json::parse(rest.substr(start, newline - start), nullptr, false));
    ASSERT_FALSE(lines.back().is_discarded()) << "torn line at byte " << start;
  }
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(rest.back(), '\n');
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) EXPECT_TRUE(lines[i].contains("event")) << lines[i];
  EXPECT_EQ(lines.back()["ok"], false) << lines.back();
  EXPECT_EQ(lines.back().value("error", "").rfind("flow-watch: dropped: ", 0), 0u) << lines.back();
}

TEST_F(FlowMonitorTest, BadWatchArgumentsAreRefusedNamingTheFieldAndNothingIsRegistered) {
  start();
  struct Case {
    json args;
    std::string field;  // the error names it first
  };
  const std::vector<Case> cases = {
      {{{"dport", "8100-8000"}}, "args.dport: "},
      {{{"src", "10.0.0.0/33"}}, "args.src: "},
      {{{"proto", "sctp"}}, "args.proto: "},
      {{{"class", "urgent"}}, "args.class: "},
      {{{"fields", "src,nope"}}, "args.fields"},
      {{{"colour", "red"}}, "args.colour: unknown field"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args.dump());
    int fd = connect_client();
    json answer = watch(fd, c.args);
    EXPECT_EQ(answer["ok"], false);
    EXPECT_EQ(answer.value("error", "").rfind(c.field, 0), 0u) << answer;
    EXPECT_EQ(stats()["watchers"], json::array());
    // The connection is still an ordinary one: its next request is a command.
    write_all(fd, "{\"command\": \"version\"}\n");
    auto next = replies(*server, fd, 1);
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0]["result"]["version"], "test");
  }
  json args = json::object();
  try {
    monitor->watch(*server, -1, JsonField(args, "args"));
    ADD_FAILURE() << "a watch without a connection";
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), "args");
  }
  EXPECT_EQ(stats()["watchers"], json::array());
}

TEST_F(FlowMonitorTest, WatchersBeyondTheLimitAreRefused) {
  flow_config.max_watchers = 1;
  start();
  int first = connect_client();
  ASSERT_EQ(watch(first, json::object())["ok"], true);
  int second = connect_client();
  json answer = watch(second, json::object());
  EXPECT_EQ(answer["ok"], false);
  EXPECT_EQ(answer.value("error", "").rfind("flow-watch: already 1 watchers", 0), 0u) << answer;
  EXPECT_EQ(stats()["watchers"].size(), 1u);
  whole_flow(flow(lan_host(), 40000, remote1(), 443, kTcp), 1, 1);
  monitor->poll(kWallMs + 1000);
  EXPECT_EQ(replies(*server, first, 2).size(), 2u) << "the first still watches";
  EXPECT_EQ(drain(*server, second), "");
}

}  // namespace
}  // namespace fairgate::test
