#include "qos/hierarchy.h"

#include <algorithm>
#include <utility>

namespace fairgate {
namespace {

SubportNode internet_subport(const Config& config, const std::vector<LiveSubscriber>& subscribers,
                             uint16_t wan, uint64_t link_bps, bool download, std::string name) {
  const QosConfig& qos = config.qos;
  SubportNode subport{std::move(name),
                      qos.subscriber_share_bps(link_bps),
                      qos.shaped_bps(link_bps),
                      {},
                      config.ports[wan].framing,
                      download ? int{wan} : -1};
  auto passes_through = [&](const LiveSubscriber& s) {
    return s.kind == LiveSubscriber::Kind::kUnknown && qos.unknown_hosts == QosConfig::UnknownHosts::kOwn;
  };
  uint64_t configured = 0;
  std::size_t unconfigured = 0;
  for (const auto& s : subscribers) {
    uint64_t rate = download ? s.plan.down.rate_bps : s.plan.up.rate_bps;
    configured += rate;
    unconfigured += rate == 0 && !passes_through(s);
  }
  uint64_t left = subport.rate_bps > configured ? subport.rate_bps - configured : 0;
  uint64_t equal_share = std::max<uint64_t>(left / std::max<std::size_t>(unconfigured, 1), 1000);
  uint64_t default_ceil = download ? qos.user_ceil_down_bps : qos.user_ceil_up_bps;
  for (const auto& s : subscribers) {
    const PlanRates& plan = download ? s.plan.down : s.plan.up;
    PipeNode pipe{s.pipe, s.plan.name, s.plan.addresses, plan.rate_bps, plan.ceil_bps};
    if (pipe.rate_bps == 0) pipe.rate_bps = equal_share;
    if (pipe.ceil_bps == 0) pipe.ceil_bps = default_ceil ? default_ceil : subport.ceil_bps;
    pipe.ceil_bps = std::min(pipe.ceil_bps, subport.ceil_bps);
    // An equal share above the subscriber's ceil is lowered to it, as FairNAT's "42@300" does:
    // the ceil is what the operator asked for.
    if (plan.rate_bps == 0) pipe.rate_bps = std::min(pipe.rate_bps, pipe.ceil_bps);
    if (!qos.borrow) pipe.ceil_bps = pipe.rate_bps;
    pipe.ceil_bps = std::max(pipe.ceil_bps, pipe.rate_bps);
    subport.pipes.push_back(std::move(pipe));
  }
  return subport;
}

// `wans`: the links the port's traffic crosses, each with its rate in this direction; what the
// subscribers and the gateway share is their sum. The port itself runs at its own rate when
// that is faster (a LAN's RATE_LAN).
PortNode port_node(const Config& config, const std::vector<LiveSubscriber>& subscribers, uint16_t port,
                   bool download, const std::vector<std::pair<uint16_t, uint64_t>>& wans) {
  uint64_t link_bps = 0;
  for (const auto& [wan, bps] : wans) link_bps += bps;
  uint64_t port_bps = std::max(link_bps, config.ports[port].rate_bps);
  PortNode node{port, config.ports[port].name, download, port_bps, link_bps, {}};
  for (const auto& [wan, bps] : wans) {
    // Named after its link where there are several.
    std::string name = wans.size() > 1 ? "internet via " + config.ports[wan].name : "internet";
    node.subports.push_back(internet_subport(config, subscribers, wan, bps, download, std::move(name)));
  }
  uint64_t local_bps = config.qos.local_share_bps(link_bps);
  // The gateway's own traffic is framed like the first link's.
  node.subports.push_back({"local", local_bps, local_bps, {}, node.subports.front().framing, -1});
  return node;
}

}  // namespace

std::vector<LiveSubscriber> initial_subscribers(const Config& config) {
  std::vector<LiveSubscriber> subscribers;
  for (std::size_t i = 0; i < config.subscribers.size(); ++i)
    subscribers.push_back({config.subscribers[i], static_cast<uint32_t>(i + 1), LiveSubscriber::Kind::kConfigured});
  SubscriberConfig unknown;
  unknown.name = kUnknownSubscriber;
  subscribers.push_back({unknown, kUnknownPipe, LiveSubscriber::Kind::kUnknown});
  return subscribers;
}

LinkRates configured_link_rates(const Config& config) {
  LinkRates links;
  for (const auto& port : config.ports) {
    links.down_bps.push_back(port.role == PortRole::kWan ? port.rate_down_bps : 0);
    links.up_bps.push_back(port.role == PortRole::kWan ? port.rate_up_bps : 0);
  }
  return links;
}

std::vector<PortNode> build_hierarchy(const Config& config, const std::vector<LiveSubscriber>& subscribers,
                                      const LinkRates& links) {
  std::vector<std::pair<uint16_t, uint64_t>> downloads;
  for (uint16_t p = 0; p < config.ports.size(); ++p)
    if (config.ports[p].role == PortRole::kWan) downloads.emplace_back(p, links.down_bps.at(p));
  std::vector<PortNode> ports;
  if (downloads.empty()) return ports;
  for (uint16_t p = 0; p < config.ports.size(); ++p) {
    const auto& port = config.ports[p];
    if (port.role == PortRole::kLan && config.qos.download) ports.push_back(port_node(config, subscribers, p, true, downloads));
    if (port.role == PortRole::kWan && config.qos.upload)
      ports.push_back(port_node(config, subscribers, p, false, {{p, links.up_bps.at(p)}}));
  }
  return ports;
}

std::vector<PortNode> build_hierarchy(const Config& config) {
  return build_hierarchy(config, initial_subscribers(config), configured_link_rates(config));
}

nlohmann::ordered_json hierarchy_json(const std::vector<PortNode>& ports) {
  nlohmann::ordered_json classes = nlohmann::ordered_json::array();
  for (const auto& spec : kTrafficClasses)
    classes.push_back({{"name", spec.name}, {"queues", spec.queues}, {"priority", spec.priority}});
  nlohmann::ordered_json out = {{"ports", nlohmann::ordered_json::array()}};
  for (const auto& port : ports) {
    nlohmann::ordered_json subports = nlohmann::ordered_json::array();
    for (const auto& subport : port.subports) {
      nlohmann::ordered_json pipes = nlohmann::ordered_json::array();
      for (const auto& pipe : subport.pipes) {
        nlohmann::ordered_json addresses = nlohmann::ordered_json::array();
        for (const auto& prefix : pipe.addresses)
          addresses.push_back(prefix.length == 32 ? format_ipv4(prefix.address) : format_prefix(prefix));
        pipes.push_back({{"subscriber", pipe.name},
                         {"pipe", pipe.pipe},
                         {"addresses", addresses},
                         {"rate_bps", pipe.rate_bps},
                         {"ceil_bps", pipe.ceil_bps},
                         {"classes", classes}});
      }
      subports.push_back({{"name", subport.name},
                          {"rate_bps", subport.rate_bps},
                          {"ceil_bps", subport.ceil_bps},
                          {"framing", subport.framing.preset},
                          {"overhead_bytes", subport.framing.overhead},
                          {"mpu_bytes", subport.framing.mpu},
                          {"pipes", pipes}});
    }
    out["ports"].push_back({{"name", port.name},
                            {"direction", port.download ? "download" : "upload"},
                            {"rate_bps", port.rate_bps},
                            {"link_bps", port.link_bps},
                            {"subports", subports}});
  }
  return out;
}

}  // namespace fairgate
