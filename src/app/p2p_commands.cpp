// The P2P commands: what was recognised (p2p-stats), the policies (p2p-policy) and a new
// signature set (p2p-reload). A rejected change or a signature file that does not compile
// leaves everything as it was.
#include "app/gateway.h"
#include "core/reasons.h"

namespace fairgate {
namespace {

using Json = nlohmann::ordered_json;

P2pControl& require_p2p(Gateway& gateway) {
  if (gateway.p2p() == nullptr) throw FieldError("command", "P2P recognition is off: the configuration has no p2p section");
  return *gateway.p2p();
}

Json usage_json(uint64_t flows, uint64_t packets, uint64_t bytes, uint64_t dropped) {
  return {{"flows", flows}, {"packets", packets}, {"bytes", bytes}, {"dropped", dropped}};
}

// The subscriber holding each pipe, for naming the per-pipe counters.
std::string pipe_name(Gateway& gateway, uint32_t pipe, uint32_t no_pipe_slot) {
  if (pipe == no_pipe_slot) return "(no subscriber)";
  if (gateway.qos() != nullptr)
    for (const auto& subscriber : gateway.qos()->subscribers())
      if (subscriber.pipe == pipe) return subscriber.plan.name;
  return "(pipe " + std::to_string(pipe) + ", released)";
}

Json stats_result(Gateway& gateway, const JsonField& args) {
  args.reject_unknown({});
  P2pControl& p2p = require_p2p(gateway);
  const P2pDataplane& dataplane = p2p.dataplane();
  const P2pDatabase& database = *p2p.loader().current();
  uint64_t scanned_packets = 0, scanned_bytes = 0, scan_errors = 0, from_cache = 0, evictions = 0;
  for (uint16_t w = 0; w < dataplane.workers(); ++w) {
    const auto& c = dataplane.counters(w);
    scanned_packets += c.scanned_packets.get();
    scanned_bytes += c.scanned_bytes.get();
    scan_errors += c.scan_errors.get();
    from_cache += c.from_peer_cache.get();
    evictions += c.peer_cache_evictions.get();
  }
  auto sum = [&](auto usage_of) {
    std::array<uint64_t, 4> total{};
    for (uint16_t w = 0; w < dataplane.workers(); ++w) {
      const P2pWorkerCounters::Usage& usage = usage_of(dataplane.counters(w));
      total[0] += usage.flows.get();
      total[1] += usage.packets.get();
      total[2] += usage.bytes.get();
      total[3] += usage.dropped.get();
    }
    return total;
  };
  Json protocols = Json::array();
  for (std::size_t p = 1; p < kP2pProtocolCount; ++p) {
    auto total = sum([p](const P2pWorkerCounters& c) -> const P2pWorkerCounters::Usage& { return c.protocols[p]; });
    Json row = {{"protocol", p2p_protocol_name(static_cast<P2pProtocol>(p))}};
    row.update(usage_json(total[0], total[1], total[2], total[3]));
    protocols.push_back(row);
  }
  Json subscribers = Json::array();
  for (uint32_t slot = 0; slot <= dataplane.pipes(); ++slot) {
    auto total = sum([slot](const P2pWorkerCounters& c) -> const P2pWorkerCounters::Usage& { return c.pipes[slot]; });
    if (total[0] == 0 && total[1] == 0) continue;
    Json row = {{"subscriber", pipe_name(gateway, slot, dataplane.pipes())}};
    row.update(usage_json(total[0], total[1], total[2], total[3]));
    subscribers.push_back(row);
  }
  return {{"signatures",
           {{"file", p2p.signatures_path().string()},
            {"count", database.size()},
            {"database_bytes", database.bytes()},
            {"reloads", p2p.loader().generation() - 1}}},
          {"protocols_on", format_p2p_protocols(static_cast<P2pProtocolMask>(dataplane.config().protocols))},
          {"udp", dataplane.config().udp},
          {"packets_per_flow", dataplane.config().packets_per_direction},
          {"scanned_packets", scanned_packets},
          {"scanned_bytes", scanned_bytes},
          {"scan_errors", scan_errors},
          {"flows_from_peer_cache", from_cache},
          {"peer_cache_evictions", evictions},
          {"protocols", protocols},
          {"subscribers", subscribers}};
}

Json policy_view(Gateway& gateway, P2pControl& p2p) {
  Json subscribers = Json::array();
  if (gateway.qos() != nullptr)
    for (const auto& subscriber : gateway.qos()->subscribers()) {
      Json row = {{"subscriber", subscriber.plan.name}, {"own", subscriber.plan.p2p.has_value()}};
      row.update(p2p_policy_json(subscriber.plan.p2p.value_or(p2p.global_policy())));
      subscribers.push_back(row);
    }
  return {{"global", p2p_policy_json(p2p.global_policy())}, {"subscribers", subscribers}};
}

// No arguments: show. Policy fields (action, down, up, drop_marked) set the global policy, or
// with `subscriber` that subscriber's own; action "default" gives a subscriber the global one.
Json policy_result(Gateway& gateway, const JsonField& args) {
  args.reject_unknown({"subscriber", "action", "down", "up", "drop_marked"});
  P2pControl& p2p = require_p2p(gateway);
  if (args.raw().empty()) return policy_view(gateway, p2p);
  nlohmann::json fields = args.raw();
  fields.erase("subscriber");
  auto subscriber = args.find("subscriber");
  if (!subscriber) {
    p2p.set_global_policy(parse_p2p_policy(args));
    return policy_view(gateway, p2p);
  }
  if (gateway.qos() == nullptr) subscriber->fail("there are no subscribers: the configuration has no qos section");
  auto name = subscriber->string();
  const LiveSubscriber* current = gateway.qos()->find(name);
  if (current == nullptr) subscriber->fail("no subscriber \"" + name + "\"");
  SubscriberConfig plan = current->plan;
  if (fields.contains("action") && fields["action"] == "default") {
    if (fields.size() > 1) args.fail("action \"default\" takes no other policy fields");
    plan.p2p.reset();
  } else {
    plan.p2p = parse_p2p_policy(JsonField(fields, "args"));
  }
  gateway.qos()->replace(name, std::move(plan));  // the policy table follows the subscribers
  return policy_view(gateway, p2p);
}

}  // namespace

void register_p2p_commands(CommandRegistry& commands, Gateway& gateway) {
  commands.add("p2p-stats",
               "P2P recognition: signatures in use, packets scanned, and flows, packets, bytes and drops per "
               "protocol and per subscriber",
               [&](const JsonField& args) { return stats_result(gateway, args); });
  commands.add("p2p-policy",
               "show or set what happens to P2P flows; args: action (allow, cap, drop; \"default\" with subscriber), "
               "down and up (rates, for cap), drop_marked (drop flows recognised before too), subscriber (optional: "
               "that subscriber's own policy, else the global one)",
               [&](const JsonField& args) { return policy_result(gateway, args); });
  commands.add("p2p-reload",
               "read and compile the signature file again; if it does not compile the running signatures stay",
               [&](const JsonField& args) {
                 args.reject_unknown({});
                 P2pControl& p2p = require_p2p(gateway);
                 std::string error;
                 if (!p2p.reload(error)) throw FieldError("p2p.signatures", error);
                 return Json{{"file", p2p.signatures_path().string()},
                             {"count", p2p.loader().current()->size()},
                             {"reloads", p2p.loader().generation() - 1}};
               });
}

}  // namespace fairgate
