// Flow monitoring commands: flows (a filtered, paged snapshot of the live flows), flow-watch
// (the connection becomes a live stream of flow records), flow-stats.
#include "app/gateway.h"

#include <algorithm>

namespace fairgate {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::size_t kSnapshotPerWorker = 65536;  // flows a snapshot reads from each worker

FlowMonitor& require_flows(Gateway& gateway) {
  if (gateway.flows() == nullptr)
    throw FieldError("command", "flow monitoring is off: the pipeline has no flow stage (use pipelines/gateway.json)");
  return *gateway.flows();
}

Json flows_result(Gateway& gateway, const JsonField& args) {
  FlowMonitor& monitor = require_flows(gateway);
  std::vector<std::string_view> known(kFlowFilterKeys.begin(), kFlowFilterKeys.end());
  known.insert(known.end(), {"fields", "page", "page_size"});
  args.reject_unknown(known);
  FlowFilter filter = monitor.parse_filter(args);
  FlowFieldSelection fields = FlowFieldSelection::parse(args);
  std::size_t page = 1, page_size = 50;
  if (auto f = args.find("page")) page = f->unsigned_in(1, 1000000);
  if (auto f = args.find("page_size")) page_size = f->unsigned_in(1, 1000);
  bool truncated = false;
  std::vector<FlowReport> matching;
  for (const FlowRecord& record : gateway.flow_snapshot(kSnapshotPerWorker, &truncated)) {
    FlowReport report = monitor.report_of(record);
    if (filter.matches(report)) matching.push_back(std::move(report));
  }
  // The biggest flows first: what an operator looking at a busy link wants to see.
  std::sort(matching.begin(), matching.end(), [](const FlowReport& a, const FlowReport& b) {
    return a.bytes[0] + a.bytes[1] > b.bytes[0] + b.bytes[1];
  });
  Json rows = Json::array();
  for (std::size_t i = (page - 1) * page_size; i < matching.size() && rows.size() < page_size; ++i)
    rows.push_back(fields.render(matching[i], "active"));
  return Json{{"total", matching.size()}, {"page", page},       {"page_size", page_size},
              {"truncated", truncated},    {"filter", filter.to_json()}, {"flows", rows}};
}

}  // namespace

void register_flow_commands(CommandRegistry& commands, Gateway& gateway) {
  commands.add("flows",
               "live flows, biggest first (bytes since their last report); args: filter (src, dst: address/mask; "
               "sport, dport, proto: values, ranges, lists; subscriber, wan, class), fields, page, page_size",
               [&](const JsonField& args) { return flows_result(gateway, args); });
  commands.add_for_connection(
      "flow-watch",
      "turn this connection into a live stream of flow records (start, update, end), one JSON object per "
      "line; args: the filter and fields of flows; then send pause, resume or stop",
      [&](const JsonField& args, int connection) {
        return require_flows(gateway).watch(gateway.control(), connection, args);
      });
  commands.add("flow-stats", "flow records, NAT events, ring losses, export per collector, watchers",
               [&](const JsonField& args) {
                 args.reject_unknown({});
                 return require_flows(gateway).stats_json();
               });
}

}  // namespace fairgate
