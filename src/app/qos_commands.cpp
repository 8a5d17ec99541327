// The fair-sharing commands: subscribers and their changes, link-rate, the qos view and the
// tree. Changes go through QosControl, which applies them on the workers that own the
// schedulers; a rejected change leaves everything as it was.
#include "app/gateway.h"
#include "core/ipv4.h"
#include "qos/hierarchy.h"

namespace fairgate {
namespace {

using Json = nlohmann::ordered_json;

QosControl& require_qos(Gateway& gateway) {
  if (gateway.qos() == nullptr) throw FieldError("command", "nothing is shaped: the configuration has no qos section");
  return *gateway.qos();
}

std::string_view kind_name(LiveSubscriber::Kind kind) {
  switch (kind) {
    case LiveSubscriber::Kind::kConfigured: return "configured";
    case LiveSubscriber::Kind::kAutomatic: return "automatic";
    case LiveSubscriber::Kind::kUnknown: return "unknown";
  }
  return "";
}

Json address_list(const std::vector<Ipv4Prefix>& addresses) {
  Json list = Json::array();
  for (const auto& prefix : addresses) list.push_back(prefix.length == 32 ? format_ipv4(prefix.address) : format_prefix(prefix));
  return list;
}

// A subscriber's pipe on the port's first link (on a LAN egress its plan may differ per WAN:
// equal shares are of each link's rate).
const PipeNode* pipe_node(const PortNode& port, uint32_t pipe) {
  for (const auto& node : port.subports[SchedPort::kInternetSubport].pipes)
    if (node.pipe == pipe) return &node;
  return nullptr;
}

// Each internet subport of a port: the link it is shaped to and its rates; with its scheduler,
// the dropped downloads counted against it (qos.count_download_drops).
Json internet_subports_json(const PortNode& port, const SchedPort* sched = nullptr) {
  Json links = Json::array();
  for (uint32_t s = 0; s < port.internet().size(); ++s) {
    const SubportNode& subport = port.internet()[s];
    links.push_back({{"subport", subport.name}, {"rate_bps", subport.rate_bps}, {"ceil_bps", subport.ceil_bps}});
    if (sched != nullptr && sched->counts_drops()) links.back()["charged_drop_bytes"] = sched->charged_bytes(s);
  }
  return links;
}

double pipe_rate_now(const QosControl& qos, std::size_t scheduler, uint32_t pipe) {
  double total = 0;
  for (std::size_t tc = 0; tc < kTrafficClasses.size(); ++tc) total += qos.rate_bps(scheduler, pipe, static_cast<TrafficClass>(tc));
  return total;
}

// One direction of a subscriber: its plan on the first port of that direction, and what it sends
// now over all the ports of that direction.
Json direction_row(const QosControl& qos, const Gateway& gateway, const std::vector<PortNode>& tree, uint32_t pipe,
                   bool download) {
  Json row = {{"rate_bps", 0}, {"ceil_bps", 0}, {"now_bps", 0}};
  double now = 0;
  bool first = true;
  for (std::size_t i = 0; i < gateway.qos_dataplane()->schedulers().size(); ++i) {
    const auto& scheduler = *gateway.qos_dataplane()->schedulers()[i];
    if (scheduler.download != download) continue;
    for (const auto& port : tree) {
      if (port.port != scheduler.port) continue;
      const PipeNode* node = pipe_node(port, pipe);
      if (node != nullptr && first) {
        row["rate_bps"] = node->rate_bps;
        row["ceil_bps"] = node->ceil_bps;
        first = false;
      }
    }
    now += pipe_rate_now(qos, i, pipe);
  }
  row["now_bps"] = static_cast<uint64_t>(now);
  return row;
}

Json subscriber_row(Gateway& gateway, const LiveSubscriber& s, const std::vector<PortNode>& tree) {
  QosControl& qos = *gateway.qos();
  return {{"name", s.plan.name},
          {"kind", kind_name(s.kind)},
          {"automatic", s.kind == LiveSubscriber::Kind::kAutomatic},
          {"pipe", s.pipe},
          {"addresses", address_list(s.plan.addresses)},
          {"down", direction_row(qos, gateway, tree, s.pipe, true)},
          {"up", direction_row(qos, gateway, tree, s.pipe, false)},
          {"idle_s", qos.idle_ms(s, gateway.now_ms()) / 1000}};
}

Json subscribers_result(Gateway& gateway, const JsonField& args) {
  args.reject_unknown({"name"});
  QosControl& qos = require_qos(gateway);
  auto tree = qos.hierarchy();
  Json rows = Json::array();
  std::string only = args.find("name") ? args.at("name").string() : "";
  for (const auto& s : qos.subscribers())
    if (only.empty() || s.plan.name == only) rows.push_back(subscriber_row(gateway, s, tree));
  if (!only.empty() && rows.empty()) args.at("name").fail("no subscriber \"" + only + "\"");
  return rows;
}

Json one_subscriber(Gateway& gateway, const std::string& name) {
  auto tree = gateway.qos()->hierarchy();
  return subscriber_row(gateway, *gateway.qos()->find(name), tree);
}

Json qos_result(Gateway& gateway, const JsonField& args) {
  args.reject_unknown({"subscriber"});
  QosControl& qos = require_qos(gateway);
  std::string only = args.find("subscriber") ? args.at("subscriber").string() : "";
  if (!only.empty() && qos.find(only) == nullptr) args.at("subscriber").fail("no subscriber \"" + only + "\"");
  auto tree = qos.hierarchy();
  auto queues = qos.read_queues();
  Json ports = Json::array();
  const auto& schedulers = gateway.qos_dataplane()->schedulers();
  for (std::size_t i = 0; i < schedulers.size(); ++i) {
    const PortNode* port = nullptr;
    for (const auto& node : tree)
      if (node.port == schedulers[i]->port) port = &node;
    if (port == nullptr) continue;
    auto totals = [](const QosControl::ClassQueues& q) {
      uint64_t queued = 0, dropped = 0;
      for (std::size_t tc = 0; tc < 4; ++tc) queued += q.queued[tc], dropped += q.dropped[tc];
      return std::make_pair(queued, dropped);
    };
    Json rows = Json::array();
    for (const auto& s : qos.subscribers()) {
      if (!only.empty() && s.plan.name != only) continue;
      const PipeNode* node = pipe_node(*port, s.pipe);
      QosControl::ClassQueues q = queues.count({i, s.pipe}) ? queues[{i, s.pipe}] : QosControl::ClassQueues{};
      Json classes = Json::array();
      for (std::size_t tc = 0; tc < kTrafficClasses.size(); ++tc)
        classes.push_back({{"class", kTrafficClasses[tc].name},
                           {"now_bps", static_cast<uint64_t>(qos.rate_bps(i, s.pipe, static_cast<TrafficClass>(tc)))},
                           {"sent_bytes", schedulers[i]->pipes[s.pipe].bytes[tc].get()},
                           {"queued", q.queued[tc]},
                           {"drops", q.dropped[tc]}});
      auto [queued, dropped] = totals(q);
      rows.push_back({{"name", s.plan.name},
                      {"pipe", s.pipe},
                      {"rate_bps", node ? node->rate_bps : 0},
                      {"ceil_bps", node ? node->ceil_bps : 0},
                      {"now_bps", static_cast<uint64_t>(pipe_rate_now(qos, i, s.pipe))},
                      {"queued", queued},
                      {"drops", dropped},
                      {"classes", classes}});
    }
    QosControl::ClassQueues gw = queues.count({i, QosControl::kGatewayPipe}) ? queues[{i, QosControl::kGatewayPipe}]
                                                                            : QosControl::ClassQueues{};
    auto [gw_queued, gw_dropped] = totals(gw);
    ports.push_back({{"name", port->name},
                     {"direction", port->download ? "download" : "upload"},
                     {"link_bps", port->link_bps},
                     {"rate_bps", port->internet_rate_bps()},
                     {"ceil_bps", port->internet_ceil_bps()},
                     {"links", internet_subports_json(*port, schedulers[i]->sched.get())},
                     {"gateway",
                      {{"rate_bps", port->local().rate_bps},
                       {"now_bps", static_cast<uint64_t>(qos.gateway_rate_bps(i))},
                       {"queued", gw_queued},
                       {"drops", gw_dropped}}},
                     {"subscribers", rows}});
  }
  return {{"ports", ports},
          {"automatic",
           {{"created", qos.automatic_created()},
            {"expired", qos.automatic_expired()},
            {"left_with_unknown", qos.unknown_without_pipe()}}}};
}

uint16_t wan_argument(const Gateway& gateway, const JsonField& field) {
  auto name = field.string();
  const auto& ports = gateway.config().ports;
  for (uint16_t i = 0; i < ports.size(); ++i) {
    if (ports[i].name != name) continue;
    if (ports[i].role != PortRole::kWan) field.fail("\"" + name + "\" is not a WAN port: only links have rates");
    return i;
  }
  field.fail("no port named \"" + name + "\"");
}

Json link_rate_result(Gateway& gateway, const JsonField& args) {
  args.reject_unknown({"port", "down", "up"});
  QosControl& qos = require_qos(gateway);
  uint16_t port = wan_argument(gateway, args.at("port"));
  auto down = args.find("down");
  auto up = args.find("up");
  if (!down && !up) args.fail("give down, up or both (rates such as 20mbit)");
  uint64_t down_bps = down ? parse_rate(*down) : 0;
  uint64_t up_bps = up ? parse_rate(*up) : 0;
  double applied_ms = qos.set_link_rate(port, down_bps, up_bps);
  Json shaped = Json::array();
  for (const auto& node : qos.hierarchy())
    shaped.push_back({{"name", node.name},
                      {"direction", node.download ? "download" : "upload"},
                      {"link_bps", node.link_bps},
                      {"rate_bps", node.internet_rate_bps()},
                      {"ceil_bps", node.internet_ceil_bps()},
                      {"links", internet_subports_json(node)}});
  return {{"port", gateway.config().ports[port].name},
          {"rate_down_bps", qos.links().down_bps[port]},
          {"rate_up_bps", qos.links().up_bps[port]},
          {"applied_ms", applied_ms},
          {"shaped", shaped}};
}

}  // namespace

void register_qos_commands(CommandRegistry& commands, Gateway& gateway) {
  commands.add("qos-tree", "the scheduling hierarchy: per egress port, subports, subscribers' pipes, classes",
               [&](const JsonField& args) {
                 args.reject_unknown({});
                 return Json(hierarchy_json(gateway.qos() ? gateway.qos()->hierarchy() : build_hierarchy(gateway.config())));
               });
  commands.add("subscribers",
               "subscribers with their addresses, kind (configured, automatic, unknown), plan and rate now per "
               "direction; args: name (optional)",
               [&](const JsonField& args) { return subscribers_result(gateway, args); });
  commands.add("subscriber-add",
               "add a subscriber; args: name, addresses (JSON list of addresses or prefixes), down and up "
               "({\"rate\": ..., \"ceil\": ...}, optional); takes over automatic subscribers it covers",
               [&](const JsonField& args) {
                 QosControl& qos = require_qos(gateway);
                 SubscriberConfig plan = parse_subscriber(args, gateway.config().lan_prefixes());
                 std::string name = plan.name;
                 qos.add(std::move(plan));
                 return one_subscriber(gateway, name);
               });
  commands.add("subscriber-set", "change a subscriber's addresses or plan; args: name, addresses, down, up (each optional)",
               [&](const JsonField& args) {
                 args.reject_unknown({"name", "addresses", "down", "up"});
                 QosControl& qos = require_qos(gateway);
                 auto name = args.at("name").string();
                 const LiveSubscriber* current = qos.find(name);
                 if (current == nullptr) args.at("name").fail("no subscriber \"" + name + "\"");
                 SubscriberConfig plan = current->plan;
                 if (args.find("addresses")) {
                   nlohmann::json check = {{"name", "x"}, {"addresses", args.at("addresses").raw()}};
                   plan.addresses = parse_subscriber(JsonField(check, "args"), gateway.config().lan_prefixes()).addresses;
                 }
                 if (auto down = args.find("down")) plan.down = parse_plan(*down);
                 if (auto up = args.find("up")) plan.up = parse_plan(*up);
                 qos.replace(name, std::move(plan));
                 return one_subscriber(gateway, name);
               });
  commands.add("subscriber-del", "remove a subscriber (its hosts become unknown ones); args: name",
               [&](const JsonField& args) {
                 args.reject_unknown({"name"});
                 require_qos(gateway).remove(args.at("name").string());
                 return Json{{"removed", args.at("name").string()}};
               });
  commands.add("qos",
               "per shaped port and subscriber: guarantee, ceil, rate now, queued packets and drops, per class; "
               "args: subscriber (optional)",
               [&](const JsonField& args) { return qos_result(gateway, args); });
  commands.add("link-rate",
               "change a WAN link's rates at run time (the shares follow); args: port, down, up (rates such as "
               "20mbit; either may be left out)",
               [&](const JsonField& args) { return link_rate_result(gateway, args); });
}

}  // namespace fairgate
