// Flow export rate on the management thread: how many of the workers' flow records per second
// it turns into IPFIX or NetFlow v9 messages, and what a flow-watch line costs.
//
//   build/perf/flow_bench --benchmark_counters_tabular=true
//
// BM_FlowMonitorExport: FlowMonitor::poll() as the management loop calls it, on one worker's
// FlowAccounting ring filled (outside the timed region) with records from a pool of 4096
// realistic ones (below): it drains the ring, makes each record a report (report_of: names,
// wall-clock times), encodes it for one collector and hands the messages to a Sender that only
// counts their bytes, so no socket or route is measured. The export rate limit is raised out of
// the way (the benchmark fails if it dropped a record): this is what the thread can do, not
// what the default flows.export.max_records_per_s (50000) lets through. range(2) is the records
// queued per poll: 16 is about what the loop finds at the default rate limit (it polls at least
// every 250 us: 12.5 records), 1024 a backlog, where messages are full.
// BM_FlowExporter: FlowExporter alone, add_flow (or add_nat_event) and take_messages, on the
// reports of the same pool: the encoder's share of the above.
// BM_FlowWatchLine: FlowFieldSelection::render() and the JSON dump a flow-watch stream writes
// for every record its filter admits, all fields and a few.
//
// Cycles are TSC cycles read with rte_rdtsc_precise() around the timed calls only; records per
// second are the TSC rate divided by cycles per record. A "record" is what leaves a worker (a
// FlowRecord: one flow's report or one NAT event); a bidirectional flow becomes two data
// records in the export (one per direction with packets), a NAT event one. Bytes per data
// record are the message bytes (headers and template sets included) over the data records.
#include "bench_common.h"
#include "classify/p2p_signatures.h"
#include "config/config.h"
#include "config/json_path.h"
#include "flow/flow_accounting.h"
#include "flow/flow_exporter.h"
#include "flow/flow_filter.h"
#include "flow/flow_monitor.h"
#include "flow/flow_report.h"
#include "nat/session_table.h"
#include "ports/ports.h"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ring.h>

#include <netinet/in.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

using namespace fairgate;

namespace {

// One LAN and one WAN port, the default flow config but for one collector (its format is set
// per benchmark) and the rate limit at its maximum.
constexpr const char* kConfig = R"({
  "pipeline": "gateway",
  "ports": [
    {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.0.0.1/8"},
    {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1"}
  ],
  "flows": {"export": {"collectors": [{"address": "192.0.2.20", "port": 4739}], "max_records_per_s": 100000000}}
  })";

constexpr uint8_t kLan = 0, kWan = 1;  // port indices in kConfig
constexpr uint32_t kWanAddress = 0xc6336402;  // 198.51.100.2
constexpr std::size_t kPoolSize = 4096;
constexpr uint32_t kInsideHosts = 1024;  // 10.1.0.0/22, one subscriber each
constexpr uint64_t kBootMs = 1'764'920'000'000;  // wall clock when the "gateway" started
// The workers' clock when the records were made, an hour after the start; the monitor maps it
// to the wall clock from kBootMs on.
constexpr uint64_t kWorkerMs = 3'600'000;
// The clock the monitor and exporter are given moves this much between polls, so that a run
// of any length covers simulated seconds: templates are refreshed by their message count (100)
// and their 60 s timer, as in a gateway exporting all day.
constexpr uint64_t kPollMs = 1;

struct Env {
  Config config;
  PortTable ports;
  std::unordered_map<uint32_t, std::string> subscribers;  // inside host -> name
  Env() {
    config = parse_config(kConfig);
    ports = make_port_table(config);
    for (uint32_t host = 0; host < kInsideHosts; ++host)
      subscribers.emplace(0x0a010000 + host, "subscriber-" + std::to_string(host));
  }
};

Env& env() {
  static Env instance;
  return instance;
}

// The gateway names subscribers through its QoS map; a hash lookup stands in for it here.
std::string subscriber_name(uint32_t inside) {
  auto it = env().subscribers.find(inside);
  return it == env().subscribers.end() ? std::string() : it->second;
}

// What a worker's ring carries for a session that ended or idled out. TCP 70 % (web, mostly
// ended by FIN or RST; 443 and 80), UDP 25 % (DNS, QUIC and others, ended by the idle timeout;
// a tenth with no reply), ICMP echo 5 %; one flow in ten is a long flow's active-timeout
// report; a twentieth is BitTorrent in the P2P class. Both directions arrived on their ports
// (lan0 out, wan0 back); the session translated the source to the WAN address.
FlowRecord flow_record(std::mt19937_64& random, uint64_t worker_ms) {
  FlowRecord r;
  r.kind = FlowRecord::kFlow;
  uint32_t dice = random() % 100;
  uint8_t proto = dice < 70 ? IPPROTO_TCP : dice < 95 ? IPPROTO_UDP : IPPROTO_ICMP;
  r.inside = 0x0a010000 + static_cast<uint32_t>(random() % kInsideHosts);
  r.original.proto = proto;
  r.original.src = r.inside;
  r.original.dst = 0x5d000000 + static_cast<uint32_t>(random() % 0x10000000);  // public remotes
  r.original.sport = static_cast<uint16_t>(32768 + random() % 28232);
  static constexpr uint16_t kTcpPorts[] = {443, 443, 443, 80, 22, 993};
  static constexpr uint16_t kUdpPorts[] = {53, 53, 443, 123, 3478, 51820};
  // ICMP echo: the identifier is the source port of the request, the other port 0.
  r.original.dport = proto == IPPROTO_TCP   ? kTcpPorts[random() % 6]
                     : proto == IPPROTO_UDP ? kUdpPorts[random() % 6]
                                            : 0;
  r.translated = r.original;
  r.translated.src = kWanAddress;
  r.translated.sport = static_cast<uint16_t>(1024 + random() % 64512);
  bool one_way = proto == IPPROTO_UDP && random() % 10 == 0;
  uint64_t out = 2 + random() % 200, back = one_way ? 0 : 2 + random() % 400;
  r.packets[0] = out;
  r.packets[1] = back;
  r.bytes[0] = out * (40 + random() % 200);
  r.bytes[1] = back * (40 + random() % 1460);
  bool active = random() % 10 == 0;
  r.last_ms = worker_ms - random() % 1000;
  r.first_ms = r.last_ms - (active ? 1'800'000 : random() % 60'000);
  if (proto == IPPROTO_TCP) {
    r.tcp_flags[0] = 0x02 | 0x10 | 0x08 | (active ? 0 : 0x01);  // SYN ACK PSH, FIN when it ended
    r.tcp_flags[1] = 0x02 | 0x10 | 0x08 | (active ? 0 : random() % 4 == 0 ? 0x04 : 0x01);
  }
  r.end_reason = active ? FlowEndReason::kActiveTimeout
                 : proto == IPPROTO_TCP ? FlowEndReason::kEndOfFlow
                                        : FlowEndReason::kIdleTimeout;
  r.rx_port[0] = kLan;
  r.rx_port[1] = one_way ? kFlowPortUnknown : kWan;
  r.wan = kWan;
  r.session_kind = SessionTable::kSnat;
  bool p2p = random() % 20 == 0;
  r.traffic_class = p2p ? 3 : static_cast<uint8_t>(random() % 3);
  r.p2p_protocol = p2p ? static_cast<uint8_t>(P2pProtocol::kBitTorrent) : 0;
  return r;
}

// The NAT event a worker emits when that flow's session is created or deleted.
FlowRecord nat_event(const FlowRecord& flow, NatEventType event) {
  FlowRecord r;
  r.kind = FlowRecord::kNatEvent;
  r.nat_event = event;
  r.original = flow.original;
  r.translated = flow.translated;
  r.first_ms = event == NatEventType::kSessionCreate ? flow.first_ms : flow.last_ms;
  r.inside = flow.inside;
  r.wan = flow.wan;
  r.session_kind = flow.session_kind;
  r.p2p_protocol = flow.p2p_protocol;
  return r;
}

// What goes into the ring. kFlows: flow reports only (nat_events off, or long-lived sessions);
// kLifecycle: each session's whole life as the ring sees it with NAT events on (the default):
// create event, the flow's report, delete event. kNatEvents: create events alone (the
// exporter's NAT event path on its own).
enum Mix { kFlows, kLifecycle, kNatEvents };
const char* const kMixNames[] = {"flows", "lifecycle", "nat_events"};

std::vector<FlowRecord> record_pool(Mix mix, uint64_t worker_ms) {
  std::mt19937_64 random(20261205);
  std::vector<FlowRecord> pool;
  pool.reserve(kPoolSize);
  while (pool.size() < kPoolSize) {
    FlowRecord flow = flow_record(random, worker_ms);
    if (mix == kFlows) {
      pool.push_back(flow);
    } else if (mix == kNatEvents) {
      pool.push_back(nat_event(flow, NatEventType::kSessionCreate));
    } else {
      pool.push_back(nat_event(flow, NatEventType::kSessionCreate));
      pool.push_back(flow);
      pool.push_back(nat_event(flow, NatEventType::kSessionDelete));
    }
  }
  pool.resize(kPoolSize);
  return pool;
}

FlowConfig flow_config(ExportFormat format) {
  FlowConfig config = env().config.flows;
  config.collectors.at(0).netflow_v9 = format == ExportFormat::kNetflowV9;
  return config;
}

const char* format_name(ExportFormat format) { return format == ExportFormat::kIpfix ? "ipfix" : "netflow9"; }

struct Sent {
  uint64_t bytes = 0, datagrams = 0;
};

// args: format (0 IPFIX, 1 NetFlow v9), mix (Mix), records queued per poll.
void BM_FlowMonitorExport(benchmark::State& state) {
  auto format = static_cast<ExportFormat>(state.range(0));
  auto mix = static_cast<Mix>(state.range(1));
  auto per_poll = static_cast<unsigned>(state.range(2));
  state.SetLabel(std::string(format_name(format)) + " " + kMixNames[mix]);
  FlowConfig config = flow_config(format);
  // A worker's accounting as the gateway makes it; only its ring is used here.
  FlowAccounting worker(1, 0, rte_socket_id(), FlowTimeouts{config.inactive_timeout_s, config.active_timeout_s},
                        config.ring_records);
  if (per_poll >= config.ring_records) {
    state.SkipWithError("more records per poll than the ring holds");
    return;
  }
  Sent sent;
  auto sender = [&sent](uint32_t, uint16_t, uint16_t, const std::vector<uint8_t>& payload) {
    sent.bytes += payload.size();
    ++sent.datagrams;
    return true;
  };
  FlowMonitor monitor(config, env().ports, {&worker}, sender, subscriber_name, kWorkerMs, kBootMs + kWorkerMs);
  std::vector<FlowRecord> pool = record_pool(mix, kWorkerMs);
  std::size_t next = 0;
  uint64_t now_ms = kBootMs + kWorkerMs, cycles = 0, records = 0;
  for (auto _ : state) {
    for (unsigned queued = 0; queued < per_poll;) {
      unsigned n = std::min<unsigned>(per_poll - queued, static_cast<unsigned>(kPoolSize - next));
      n = rte_ring_enqueue_burst_elem(worker.ring(), &pool[next], sizeof(FlowRecord), n, nullptr);
      queued += n;
      next = (next + n) % kPoolSize;
    }
    now_ms += kPollMs;
    uint64_t t0 = rte_rdtsc_precise();
    monitor.poll(now_ms);
    cycles += rte_rdtsc_precise() - t0;
    records += per_poll;
  }
  const auto stats = monitor.stats_json();
  const auto& collector = stats["collectors"][0];
  if (collector["dropped_by_rate_limit"].get<uint64_t>() != 0 || rte_ring_count(worker.ring()) != 0) {
    state.SkipWithError("records were left in the ring or dropped by the rate limit");
    return;
  }
  auto data_records = collector["records"].get<uint64_t>();
  double per_record = static_cast<double>(cycles) / static_cast<double>(records);
  state.counters["cycles_per_record"] = per_record;
  state.counters["Mrecords_per_s"] = static_cast<double>(rte_get_tsc_hz()) / per_record / 1e6;
  state.counters["data_records_per_record"] = static_cast<double>(data_records) / static_cast<double>(records);
  state.counters["bytes_per_data_record"] = static_cast<double>(sent.bytes) / static_cast<double>(data_records);
  state.counters["records_per_datagram"] = static_cast<double>(records) / static_cast<double>(sent.datagrams);
}
BENCHMARK(BM_FlowMonitorExport)
    ->ArgsProduct({{static_cast<int>(ExportFormat::kIpfix), static_cast<int>(ExportFormat::kNetflowV9)},
                   {kFlows, kLifecycle},
                   {16, 1024}})
    ->ArgNames({"format", "mix", "per_poll"});

// The reports the monitor makes of a pool's records (flows), or its NAT events.
struct Reports {
  std::vector<FlowReport> flows;
  std::vector<NatEventReport> nat_events;
};

Reports reports_of(Mix mix) {
  FlowConfig config = flow_config(ExportFormat::kIpfix);
  config.collectors.clear();
  FlowMonitor monitor(config, env().ports, {}, FlowMonitor::Sender(), subscriber_name, kWorkerMs, kBootMs + kWorkerMs);
  Reports reports;
  for (const FlowRecord& record : record_pool(mix, kWorkerMs)) {
    if (record.kind == FlowRecord::kFlow) {
      reports.flows.push_back(monitor.report_of(record));
      continue;
    }
    NatEventReport event;
    event.at_ms = kBootMs + record.first_ms;
    event.event = record.nat_event;
    event.original = record.original;
    event.translated = record.translated;
    reports.nat_events.push_back(event);
  }
  return reports;
}

// args: format, mix (kFlows or kNatEvents). 1024 reports queued, then taken as messages.
void BM_FlowExporter(benchmark::State& state) {
  constexpr std::size_t kPerTake = 1024;
  auto format = static_cast<ExportFormat>(state.range(0));
  auto mix = static_cast<Mix>(state.range(1));
  state.SetLabel(std::string(format_name(format)) + " " + kMixNames[mix]);
  Reports reports = reports_of(mix);
  ExporterConfig config;
  config.format = format;
  FlowExporter exporter(config, kBootMs);
  std::size_t next = 0;
  uint64_t now_ms = kBootMs + kWorkerMs, cycles = 0, queued = 0, bytes = 0;
  for (auto _ : state) {
    now_ms += kPollMs;
    uint64_t t0 = rte_rdtsc_precise();
    for (std::size_t i = 0; i < kPerTake; ++i, next = (next + 1) % kPoolSize)
      if (mix == kNatEvents)
        exporter.add_nat_event(reports.nat_events[next]);
      else
        exporter.add_flow(reports.flows[next]);
    auto messages = exporter.take_messages(now_ms);
    cycles += rte_rdtsc_precise() - t0;
    queued += kPerTake;
    for (const auto& message : messages) bytes += message.size();
  }
  double per_report = static_cast<double>(cycles) / static_cast<double>(queued);
  auto data_records = static_cast<double>(exporter.records_exported());
  state.counters["cycles_per_record"] = per_report;
  state.counters["Mrecords_per_s"] = static_cast<double>(rte_get_tsc_hz()) / per_report / 1e6;
  state.counters["cycles_per_data_record"] = static_cast<double>(cycles) / data_records;
  state.counters["data_records_per_record"] = data_records / static_cast<double>(queued);
  state.counters["bytes_per_data_record"] = static_cast<double>(bytes) / data_records;
}
BENCHMARK(BM_FlowExporter)
    ->ArgsProduct({{static_cast<int>(ExportFormat::kIpfix), static_cast<int>(ExportFormat::kNetflowV9)},
                   {kFlows, kNatEvents}})
    ->ArgNames({"format", "mix"});

// args: 0 every field (a flow-watch without "fields"), 1 a few. Lines are made 32 at a time
// between two clock reads, so the reads' own cost is spread over 32 lines.
void BM_FlowWatchLine(benchmark::State& state) {
  constexpr std::size_t kLinesPerBatch = 32;
  nlohmann::json args = state.range(0) == 0 ? nlohmann::json::object()
                                             : nlohmann::json{{"fields", "src,dst,dport,proto,subscriber,bytes,reply_bytes"}};
  state.SetLabel(state.range(0) == 0 ? "all fields" : "src,dst,dport,proto,subscriber,bytes,reply_bytes");
  FlowFieldSelection fields = FlowFieldSelection::parse(JsonField(args, "args"));
  Reports reports = reports_of(kFlows);
  std::size_t next = 0;
  uint64_t cycles = 0, lines = 0, bytes = 0;
  std::string batch[kLinesPerBatch];
  for (auto _ : state) {
    uint64_t t0 = rte_rdtsc_precise();
    for (std::size_t i = 0; i < kLinesPerBatch; ++i, next = (next + 1) % kPoolSize)
      // As FlowMonitor::stream writes it.
      batch[i] = fields.render(reports.flows[next], "end").dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    cycles += rte_rdtsc_precise() - t0;
    lines += kLinesPerBatch;
    for (const auto& line : batch) bytes += line.size();
  }
  double per_line = static_cast<double>(cycles) / static_cast<double>(lines);
  state.counters["cycles_per_record"] = per_line;
  state.counters["Mrecords_per_s"] = static_cast<double>(rte_get_tsc_hz()) / per_line / 1e6;
  state.counters["bytes_per_line"] = static_cast<double>(bytes) / static_cast<double>(lines);
}
BENCHMARK(BM_FlowWatchLine)->Arg(0)->Arg(1)->ArgName("few_fields");

}  // namespace

int main(int argc, char** argv) {
  if (!fairgate::bench::init_eal("flow_bench", 64)) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  std::printf("TSC %.3f GHz\n", static_cast<double>(rte_get_tsc_hz()) / 1e9);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  rte_eal_cleanup();
  return 0;
}
