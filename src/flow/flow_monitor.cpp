#include "flow/flow_monitor.h"

#include "classify/p2p_signatures.h"
#include "control/control_server.h"
#include "nat/session_table.h"
#include "qos/hierarchy.h"

#include <algorithm>
#include <array>

namespace fairgate {
namespace {

constexpr unsigned kDrainBurst = 64;  // records taken from a ring at a time

nlohmann::ordered_json reply(bool ok, nlohmann::ordered_json body) {
  if (ok) return {{"ok", true}, {"result", std::move(body)}};
  return {{"ok", false}, {"error", std::move(body)}};
}

}  // namespace

FlowMonitor::FlowMonitor(const FlowConfig& config, const PortTable& ports, std::vector<FlowAccounting*> workers,
                         Sender sender, SubscriberNamer namer, uint64_t worker_clock_ms, uint64_t wall_ms)
    : config_(config),
      ports_(ports),
      workers_(std::move(workers)),
      sender_(std::move(sender)),
      namer_(std::move(namer)),
      wall_offset_ms_(wall_ms - worker_clock_ms) {
  for (const auto& collector : config.collectors) {
    ExporterConfig exporter;
    exporter.format = collector.netflow_v9 ? ExportFormat::kNetflowV9 : ExportFormat::kIpfix;
    exporter.observation_domain = config.observation_domain;
    exporter.template_refresh_ms = config.template_refresh_s * 1000;
    exporter.template_refresh_messages = config.template_refresh_messages;
    collectors_.push_back(std::unique_ptr<Collector>(
        new Collector{collector, FlowExporter(exporter, wall_ms), static_cast<double>(config.max_records_per_s), 0}));
  }
}

FlowReport FlowMonitor::report_of(const FlowRecord& record) const {
  FlowReport report;
  report.original = record.original;
  report.translated = record.translated;
  report.first_ms = record.first_ms ? to_wall(record.first_ms) : 0;
  report.last_ms = record.last_ms ? to_wall(record.last_ms) : 0;
  for (int d = 0; d < 2; ++d) {
    report.packets[d] = record.packets[d];
    report.bytes[d] = record.bytes[d];
    report.tcp_flags[d] = record.tcp_flags[d];
  }
  // Where the original direction arrived and left: seen on its packets, else what the session
  // says (an outbound flow leaves by its WAN, a forwarded one arrives by it).
  bool forward = record.session_kind == SessionTable::kForward;
  uint8_t ingress = record.rx_port[0], egress = record.rx_port[1];
  if (ingress == kFlowPortUnknown && forward) ingress = record.wan;
  if (egress == kFlowPortUnknown && record.session_kind == SessionTable::kSnat) egress = record.wan;
  report.ingress_port = ingress;
  report.egress_port = egress;
  if (ingress < ports_.ports.size()) report.ingress_name = ports_.ports[ingress].name;
  if (egress < ports_.ports.size()) report.egress_name = ports_.ports[egress].name;
  if (record.wan < ports_.ports.size() && record.session_kind != SessionTable::kHairpin)
    report.wan = ports_.ports[record.wan].name;
  report.end_reason = record.end_reason;
  report.inside_address = record.inside;
  report.subscriber = namer_(record.inside);
  if (record.traffic_class < kTrafficClasses.size()) report.traffic_class = kTrafficClasses[record.traffic_class].name;
  if (record.p2p_protocol != 0) report.application = p2p_protocol_name(static_cast<P2pProtocol>(record.p2p_protocol));
  return report;
}

void FlowMonitor::poll(uint64_t now_ms) {
  std::array<FlowRecord, kDrainBurst> records;
  for (FlowAccounting* worker : workers_) {
    if (worker == nullptr) continue;
    unsigned count;
    do {
      count = rte_ring_dequeue_burst_elem(worker->ring(), records.data(), sizeof(FlowRecord), kDrainBurst, nullptr);
      for (unsigned i = 0; i < count; ++i) handle(records[i], now_ms);
    } while (count == kDrainBurst);
  }
  for (auto& collector : collectors_)
    for (const auto& message : collector->exporter.take_messages(now_ms)) {
      bool sent = sender_(collector->config.address, collector->config.port, config_.source_port, message);
      ++(sent ? collector->datagrams_sent : collector->datagrams_failed);
    }
}

void FlowMonitor::handle(const FlowRecord& record, uint64_t now_ms) {
  if (record.kind == FlowRecord::kFlow) {
    ++records_;
    FlowReport report = report_of(record);
    export_flow(report, now_ms);
    stream(report, record.end_reason == FlowEndReason::kActiveTimeout ? "update" : "end");
    return;
  }
  ++nat_events_;
  NatEventReport event;
  event.at_ms = to_wall(record.first_ms);
  event.event = record.nat_event;
  event.quota_event = record.quota_event;
  event.original = record.original;
  event.translated = record.translated;
  event.limit = record.limit;
  if (config_.nat_events) export_nat_event(event, now_ms);
  if (record.nat_event == NatEventType::kSessionCreate) {
    // A new session is a flow's start on the streams.
    FlowReport report = report_of(record);
    report.first_ms = report.last_ms = event.at_ms;
    stream(report, "start");
  }
}

bool FlowMonitor::take_token(Collector& collector, uint64_t now_ms) {
  double rate = config_.max_records_per_s;
  collector.tokens = std::min(rate, collector.tokens + (now_ms - collector.refilled_ms) * rate / 1000.0);
  collector.refilled_ms = now_ms;
  if (collector.tokens < 1) {
    ++collector.dropped_by_rate;
    return false;
  }
  collector.tokens -= 1;
  return true;
}

void FlowMonitor::export_flow(const FlowReport& report, uint64_t now_ms) {
  for (auto& collector : collectors_)
    if (take_token(*collector, now_ms)) collector->exporter.add_flow(report);
}

void FlowMonitor::export_nat_event(const NatEventReport& event, uint64_t now_ms) {
  for (auto& collector : collectors_)
    if (take_token(*collector, now_ms)) collector->exporter.add_nat_event(event);
}

void FlowMonitor::stream(const FlowReport& report, std::string_view event) {
  if (watchers_.empty()) return;
  std::vector<int> slow;
  for (auto& watcher : watchers_) {
    if (!watcher.filter.matches(report)) continue;
    if (watcher.paused) {
      ++watcher.skipped_while_paused;
      continue;
    }
    std::string line = watcher.fields.render(report, event).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (server_->stream_send(watcher.connection, line, config_.watch_buffer_bytes))
      ++watcher.sent;
    else
      slow.push_back(watcher.connection);
  }
  for (int connection : slow) {
    // A reader that does not keep up is let go rather than held in memory or waited for.
    server_->end_stream(connection, reply(false, "flow-watch: dropped: the reader did not keep up (more than " +
                                                     std::to_string(config_.watch_buffer_bytes / 1024) +
                                                     " KiB unread)")
                                        .dump());
    ++watchers_dropped_slow_;
    forget_watcher(connection);
  }
}

nlohmann::ordered_json FlowMonitor::watch(ControlServer& server, int connection, const JsonField& args) {
  if (connection < 0) args.fail("flow-watch streams on a control socket connection of its own");
  std::vector<std::string_view> known(kFlowFilterKeys.begin(), kFlowFilterKeys.end());
  known.push_back("fields");
  args.reject_unknown(known);
  Watcher watcher{connection, parse_filter(args), FlowFieldSelection::parse(args)};
  if (watchers_.size() >= config_.max_watchers)
    throw FieldError("flow-watch", "already " + std::to_string(watchers_.size()) +
                                       " watchers (flows.watch.max_watchers); stop one first");
  server_ = &server;
  nlohmann::ordered_json answer = {{"watching", true},
                                   {"filter", watcher.filter.to_json()},
                                   {"fields", watcher.fields.to_json()},
                                   {"control", "send \"pause\", \"resume\" or \"stop\", one per line"}};
  watchers_.push_back(std::move(watcher));
  server.make_stream(
      connection, [this, connection](std::string_view line) { return on_watch_line(connection, line); },
      [this, connection] { forget_watcher(connection); });
  return answer;
}

FlowFilter FlowMonitor::parse_filter(const JsonField& args) const {
  FlowFilter filter = FlowFilter::parse(args);
  nlohmann::ordered_json understood = filter.to_json();
  if (understood.contains("wan"))
    for (const auto& name : understood["wan"]) {
      bool known = std::any_of(ports_.ports.begin(), ports_.ports.end(), [&](const PortInfo& port) {
        return port.role == PortRole::kWan && port.name == name.get<std::string>();
      });
      if (!known) args.at("wan").fail("no WAN port named \"" + name.get<std::string>() + "\"");
    }
  return filter;
}

std::string FlowMonitor::on_watch_line(int connection, std::string_view line) {
  auto it = std::find_if(watchers_.begin(), watchers_.end(), [&](const Watcher& w) { return w.connection == connection; });
  if (it == watchers_.end()) return {};
  // A bare word or a JSON request {"command": "pause"}: both are what an operator would type.
  std::string word(line);
  auto request = nlohmann::json::parse(line, nullptr, false);
  if (!request.is_discarded() && request.is_object() && request.contains("command") && request["command"].is_string())
    word = request["command"].get<std::string>();
  while (!word.empty() && (word.back() == ' ' || word.back() == '\t')) word.pop_back();
  if (word == "pause") {
    it->paused = true;
    return reply(true, {{"paused", true}}).dump();
  }
  if (word == "resume") {
    it->paused = false;
    nlohmann::ordered_json body = {{"paused", false}, {"skipped_while_paused", it->skipped_while_paused}};
    return reply(true, body).dump();
  }
  if (word == "stop") {
    nlohmann::ordered_json body = {{"stopped", true}, {"sent", it->sent}};
    watchers_.erase(it);
    server_->end_stream(connection, reply(true, body).dump());
    return {};
  }
  return reply(false, "command: a flow-watch stream takes \"pause\", \"resume\" or \"stop\"").dump();
}

void FlowMonitor::forget_watcher(int connection) {
  std::erase_if(watchers_, [&](const Watcher& w) { return w.connection == connection; });
}

nlohmann::ordered_json FlowMonitor::stats_json() const {
  uint64_t queued = 0, events = 0, lost = 0, suppressed = 0;
  for (const FlowAccounting* worker : workers_) {
    if (worker == nullptr) continue;
    queued += worker->counters().records.get();
    events += worker->counters().nat_events.get();
    lost += worker->counters().lost.get();
    suppressed += worker->counters().refusals_suppressed.get();
  }
  auto collectors = nlohmann::ordered_json::array();
  for (const auto& c : collectors_)
    collectors.push_back({{"address", format_ipv4(c->config.address) + ":" + std::to_string(c->config.port)},
                          {"format", c->config.netflow_v9 ? "netflow9" : "ipfix"},
                          {"records", c->exporter.records_exported()},
                          {"messages", c->exporter.messages_exported()},
                          {"templates", c->exporter.templates_exported()},
                          {"datagrams_sent", c->datagrams_sent},
                          {"datagrams_failed", c->datagrams_failed},
                          {"dropped_by_rate_limit", c->dropped_by_rate}});
  auto watchers = nlohmann::ordered_json::array();
  for (const auto& w : watchers_)
    watchers.push_back({{"connection", w.connection},
                        {"paused", w.paused},
                        {"sent", w.sent},
                        {"skipped_while_paused", w.skipped_while_paused},
                        {"filter", w.filter.to_json()}});
  return {{"inactive_timeout_s", config_.inactive_timeout_s},
          {"active_timeout_s", config_.active_timeout_s},
          {"worker_records", queued},
          {"worker_nat_events", events},
          {"lost_ring_full", lost},
          {"refusal_events_suppressed", suppressed},
          {"records_received", records_},
          {"nat_events_received", nat_events_},
          {"collectors", collectors},
          {"watchers", watchers},
          {"watchers_dropped_slow", watchers_dropped_slow_}};
}

}  // namespace fairgate
