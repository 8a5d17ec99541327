// The WAN commands: each link's state and why, probes, rates and sessions (wan), the operator's
// changes (wan-set), and what the modems advertised and what was applied (lpa).
#include "app/gateway.h"

namespace fairgate {
namespace {

using Json = nlohmann::ordered_json;

WanControl& require_wan(Gateway& gateway) {
  if (gateway.wan() == nullptr) throw FieldError("command", "one WAN only: the configuration has no wan section");
  return *gateway.wan();
}

Json wan_result(Gateway& gateway, const JsonField& args) {
  args.reject_unknown({});
  WanControl& wan = require_wan(gateway);
  Json result = wan.wan_json(gateway.now_ms());
  for (auto& link : result["links"]) {
    const std::string name = link["link"];
    for (uint8_t p = 0; p < gateway.ports().ports.size(); ++p)
      if (gateway.ports().ports[p].name == name) link["sessions"] = gateway.sessions_on_wan(p);
  }
  return result;
}

Json wan_set_result(Gateway& gateway, const JsonField& args) {
  args.reject_unknown({"link", "state", "weight", "subscribers", "wan", "reset"});
  WanControl& wan = require_wan(gateway);
  uint64_t now = gateway.now_ms();
  auto link = args.find("link");
  auto subscribers = args.find("subscribers");
  if (!link && !subscribers) args.fail("give link (with state, weight or reset) or subscribers with wan");
  // Everything is checked before anything changes.
  std::string name;
  std::optional<std::optional<bool>> state;
  std::optional<uint32_t> weight;
  bool reset = false;
  if (link) {
    name = link->string();
    if (wan.link_index(name) < 0) link->fail("no WAN link named \"" + name + "\"");
    if (auto f = args.find("state"))
      state = f->one_of<std::optional<bool>>({{"up", true}, {"down", false}, {"auto", std::nullopt}},
                                             "must be \"up\", \"down\" (forced) or \"auto\" (the probes decide)");
    if (auto f = args.find("weight")) weight = static_cast<uint32_t>(f->unsigned_in(0, 1000));
    if (auto f = args.find("reset")) reset = f->boolean();
    if (!state && !weight && !reset) args.fail("with link, give state, weight or reset");
  } else if (args.find("state") || args.find("weight") || args.find("reset")) {
    args.fail("state, weight and reset need a link");
  }
  std::optional<Ipv4Prefix> prefix;
  std::optional<int> preferred;
  if (subscribers) {
    auto text = subscribers->string();
    prefix = parse_host_or_prefix(text);
    if (!prefix) subscribers->fail("\"" + text + "\" is not an IPv4 address or prefix");
    auto target = args.at("wan");
    auto wan_name = target.string();
    if (wan_name == "balance") {
      preferred = -1;
    } else if (wan_name != "default") {
      int index = wan.link_index(wan_name);
      if (index < 0) target.fail("must be a WAN link's name, \"balance\" or \"default\" (drop the rule)");
      preferred = index;
    }
  } else if (args.find("wan")) {
    args.fail("wan needs subscribers (an address or prefix)");
  }
  Json result = Json::object();
  if (state) wan.force(name, *state, now);
  if (weight) wan.set_weight(name, *weight);
  if (reset) result["sessions_removed"] = wan.reset_sessions(name);
  if (prefix) wan.set_policy(*prefix, preferred);
  result["wan"] = wan.wan_json(now);
  return result;
}

}  // namespace

void register_wan_commands(CommandRegistry& commands, Gateway& gateway) {
  commands.add("wan",
               "each WAN link: state and the reason, probe RTT and loss, rates in use, sessions; the policy and "
               "the last transitions",
               [&](const JsonField& args) { return wan_result(gateway, args); });
  commands.add("wan-set",
               "args: link with state (up, down: forced; auto: the probes decide), weight and/or reset (true: "
               "remove the link's sessions so its flows move too); or subscribers (address or prefix) with wan "
               "(a link, balance, or default to drop the rule)",
               [&](const JsonField& args) { return wan_set_result(gateway, args); });
  commands.add("lpa", "what each modem advertised (rates, link, sequence, age) and what was applied; ignored ones by reason",
               [&](const JsonField& args) {
                 args.reject_unknown({});
                 return require_wan(gateway).lpa_json(gateway.now_ms());
               });
}

}  // namespace fairgate
