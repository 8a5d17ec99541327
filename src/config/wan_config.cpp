// The "wan" section: the WAN links' probes and modems, which subscribers leave by which WAN,
// and how LPA advertisements are applied.
#include "config/json_path.h"
#include "config/wan_parse.h"

#include <string>

namespace fairgate {
namespace {

uint32_t address_field(const JsonField& field) {
  auto text = field.string();
  auto address = parse_ipv4(text);
  if (!address) field.fail("\"" + text + "\" is not an IPv4 address");
  return *address;
}

// A WAN named in the section: its index in `links`.
int link_named(const JsonField& field, const Config& config, const std::vector<WanLinkConfig>& links) {
  auto name = field.string();
  for (std::size_t i = 0; i < links.size(); ++i)
    if (config.ports[links[i].port].name == name) return static_cast<int>(i);
  field.fail("\"" + name + "\" is not one of the WAN links listed in wan.links");
}

int preference(const JsonField& field, const Config& config, const std::vector<WanLinkConfig>& links) {
  if (field.raw().is_string() && field.string() == "balance") return -1;
  return link_named(field, config, links);
}

}  // namespace

WanConfig parse_wan(const JsonField& field, const Config& config) {
  field.reject_unknown({"links", "policy", "default", "probes", "lpa"});
  WanConfig wan;
  wan.enabled = true;
  auto links = field.at("links");
  if (links.size() == 0 || links.size() > 8) links.fail("must list 1 to 8 WAN links");
  for (std::size_t i = 0; i < links.size(); ++i) {
    auto entry = links.at(i);
    entry.reject_unknown({"port", "targets", "weight", "modem"});
    WanLinkConfig link;
    auto port = entry.at("port");
    auto name = port.string();
    bool found = false;
    for (uint16_t p = 0; p < config.ports.size(); ++p)
      if (config.ports[p].name == name) {
        if (config.ports[p].role != PortRole::kWan) port.fail("\"" + name + "\" is not a WAN port");
        if (config.ports[p].gateway == 0) port.fail("\"" + name + "\" has no gateway to reach the internet through");
        link.port = p;
        found = true;
      }
    if (!found) port.fail("no port named \"" + name + "\"");
    for (const auto& other : wan.links)
      if (other.port == link.port) port.fail("\"" + name + "\" is listed twice");
    auto targets = entry.at("targets");
    if (targets.size() == 0 || targets.size() > 8) targets.fail("must list 1 to 8 probe targets");
    for (std::size_t t = 0; t < targets.size(); ++t) link.targets.push_back(address_field(targets.at(t)));
    if (auto weight = entry.find("weight")) link.weight = static_cast<uint32_t>(weight->unsigned_in(0, 1000));
    if (auto modem = entry.find("modem")) {
      modem->reject_unknown({"id", "interface", "source"});
      link.has_modem = true;
      link.modem_id = static_cast<uint32_t>(modem->at("id").unsigned_in(0, UINT32_MAX));
      link.modem_interface = static_cast<uint32_t>(modem->at("interface").unsigned_in(0, UINT32_MAX));
      if (auto source = modem->find("source")) {
        link.modem_source = address_field(*source);
        if (!config.ports[link.port].address.contains(link.modem_source))
          source->fail("is not on " + name + "'s prefix: a modem sends from its own link");
      }
      for (const auto& other : wan.links)
        if (other.has_modem && other.modem_id == link.modem_id && other.modem_interface == link.modem_interface)
          modem->fail("modem " + std::to_string(link.modem_id) + " interface " + std::to_string(link.modem_interface) +
                      " is already another link's");
    }
    wan.links.push_back(link);
  }
  if (auto preferred = field.find("default")) wan.default_preferred = preference(*preferred, config, wan.links);
  if (auto policy = field.find("policy")) {
    for (std::size_t i = 0; i < policy->size(); ++i) {
      auto entry = policy->at(i);
      entry.reject_unknown({"subscribers", "wan"});
      WanPolicyRule rule;
      auto subscribers = entry.at("subscribers");
      if (subscribers.size() == 0) subscribers.fail("must list at least one address or prefix");
      for (std::size_t s = 0; s < subscribers.size(); ++s) {
        auto item = subscribers.at(s);
        auto text = item.string();
        std::optional<Ipv4Prefix> prefix = parse_host_or_prefix(text);
        if (!prefix) item.fail("\"" + text + "\" is not an IPv4 address or prefix");
        rule.subscribers.push_back(*prefix);
      }
      rule.preferred = preference(entry.at("wan"), config, wan.links);
      wan.policy.push_back(rule);
    }
  }
  if (auto probes = field.find("probes")) {
    probes->reject_unknown({"interval_ms", "timeout_ms", "down_after", "up_after", "reliability", "window",
                            "loss_degraded_percent", "loss_recovered_percent", "latency_degraded_ms",
                            "latency_recovered_ms", "hold_down_ms"});
    auto number = [&](const char* key, uint32_t* value, uint64_t min, uint64_t max) {
      if (auto f = probes->find(key)) *value = static_cast<uint32_t>(f->unsigned_in(min, max));
    };
    number("interval_ms", &wan.interval_ms, 50, 60000);
    number("timeout_ms", &wan.timeout_ms, 10, 60000);
    number("down_after", &wan.down_after, 1, 100);
    number("up_after", &wan.up_after, 1, 100);
    number("reliability", &wan.reliability, 1, 8);
    number("window", &wan.window, 1, 1000);
    number("loss_degraded_percent", &wan.loss_degraded_percent, 0, 100);
    number("loss_recovered_percent", &wan.loss_recovered_percent, 0, 100);
    number("latency_degraded_ms", &wan.latency_degraded_ms, 0, 60000);
    number("latency_recovered_ms", &wan.latency_recovered_ms, 0, 60000);
    number("hold_down_ms", &wan.hold_down_ms, 0, 3600000);
    // What WanHealth checks when the gateway starts, checked here too, so --check finds it.
    auto refuse = [&](const char* key, const std::string& reason) {
      throw FieldError(probes->path() + "." + key, reason);
    };
    if (wan.loss_recovered_percent > wan.loss_degraded_percent)
      refuse("loss_recovered_percent", std::to_string(wan.loss_recovered_percent) + " is above loss_degraded_percent " +
                                           std::to_string(wan.loss_degraded_percent));
    if (wan.latency_degraded_ms != 0 && wan.latency_degraded_ms >= wan.timeout_ms)
      refuse("latency_degraded_ms", std::to_string(wan.latency_degraded_ms) + " is not below timeout_ms " +
                                        std::to_string(wan.timeout_ms) +
                                        " (a slower probe is lost, not slow); lower it, or 0 for never");
    if (wan.latency_degraded_ms != 0 && wan.latency_recovered_ms > wan.latency_degraded_ms)
      refuse("latency_recovered_ms", std::to_string(wan.latency_recovered_ms) + " is above latency_degraded_ms " +
                                         std::to_string(wan.latency_degraded_ms));
  }
  if (auto lpa = field.find("lpa")) {
    lpa->reject_unknown({"port", "margin_percent", "hold_down_ms", "min_window_ms", "period_ms", "max_per_second"});
    if (auto f = lpa->find("port")) wan.lpa_port = static_cast<uint16_t>(f->unsigned_in(1, 65535));
    if (auto f = lpa->find("margin_percent")) wan.lpa_margin_percent = static_cast<uint32_t>(f->unsigned_in(0, 50));
    if (auto f = lpa->find("hold_down_ms")) wan.lpa_hold_down_ms = static_cast<uint32_t>(f->unsigned_in(0, 60000));
    if (auto f = lpa->find("min_window_ms")) wan.lpa_min_window_ms = static_cast<uint32_t>(f->unsigned_in(0, 600000));
    if (auto f = lpa->find("period_ms")) wan.lpa_period_ms = static_cast<uint32_t>(f->unsigned_in(100, 60000));
    if (auto f = lpa->find("max_per_second")) wan.lpa_max_per_second = static_cast<uint32_t>(f->unsigned_in(1, 10000));
  }
  return wan;
}

}  // namespace fairgate
