// The management thread's side of flow monitoring: drains the workers' flow record rings,
// turns records into reports (names resolved, wall-clock times), exports them to the
// configured collectors (IPFIX or NetFlow v9 over UDP, rate-limited) and writes them to the
// control socket's live streams (flow-watch), each with its filter, field selection and pause.
// Never blocks: a collector that cannot be reached loses datagrams, a slow watcher is dropped.
#pragma once

#include "config/config.h"
#include "flow/flow_accounting.h"
#include "flow/flow_exporter.h"
#include "flow/flow_filter.h"
#include "flow/flow_report.h"
#include "ports/ports.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace fairgate {

class ControlServer;

class FlowMonitor {
 public:
  // Sends one UDP payload from the gateway to a collector; false when it could not go.
  using Sender = std::function<bool(uint32_t collector, uint16_t collector_port, uint16_t source_port,
                                    const std::vector<uint8_t>& payload)>;
  // The subscriber name of an inside host ("" when it has none).
  using SubscriberNamer = std::function<std::string(uint32_t inside)>;

  // `rings`: every worker's flow accounting (null entries for workers without one).
  // `worker_clock_ms`: the workers' clock now (FlowAccounting::now_ms), `wall_ms`: wall-clock
  // milliseconds since the UNIX epoch at the same moment.
  FlowMonitor(const FlowConfig& config, const PortTable& ports, std::vector<FlowAccounting*> workers,
              Sender sender, SubscriberNamer namer, uint64_t worker_clock_ms, uint64_t wall_ms);

  // From the management loop: drains the rings, exports, streams. `now_ms`: wall clock.
  void poll(uint64_t now_ms);

  // A record of a worker as the operator and the collectors see it.
  FlowReport report_of(const FlowRecord& record) const;

  // flow-watch on control connection `connection` of `server`: the filter and field selection
  // from `args` (FieldError when they are wrong, nothing registered). Returns the reply.
  nlohmann::ordered_json watch(ControlServer& server, int connection, const JsonField& args);

  // The filter of a flows or flow-watch request; a WAN name that is no WAN port is refused
  // (a typo would otherwise match nothing, silently).
  FlowFilter parse_filter(const JsonField& args) const;

  nlohmann::ordered_json stats_json() const;
  const FlowConfig& config() const { return config_; }

 private:
  struct Collector {
    FlowCollectorConfig config;
    FlowExporter exporter;
    double tokens = 0;  // records it may still export now (rate limit)
    uint64_t refilled_ms = 0;
    uint64_t dropped_by_rate = 0, datagrams_sent = 0, datagrams_failed = 0;
  };
  struct Watcher {
    int connection;
    FlowFilter filter;
    FlowFieldSelection fields;
    bool paused = false;
    uint64_t sent = 0, skipped_while_paused = 0;
  };

  void handle(const FlowRecord& record, uint64_t now_ms);
  void export_flow(const FlowReport& report, uint64_t now_ms);
  void export_nat_event(const NatEventReport& event, uint64_t now_ms);
  bool take_token(Collector& collector, uint64_t now_ms);
  void stream(const FlowReport& report, std::string_view event);
  std::string on_watch_line(int connection, std::string_view line);
  void forget_watcher(int connection);
  uint64_t to_wall(uint64_t worker_ms) const { return worker_ms + wall_offset_ms_; }

  FlowConfig config_;
  const PortTable& ports_;
  std::vector<FlowAccounting*> workers_;
  Sender sender_;
  SubscriberNamer namer_;
  uint64_t wall_offset_ms_;
  std::vector<std::unique_ptr<Collector>> collectors_;
  ControlServer* server_ = nullptr;
  std::vector<Watcher> watchers_;
  uint64_t records_ = 0, nat_events_ = 0, watchers_dropped_slow_ = 0;
};

}  // namespace fairgate
