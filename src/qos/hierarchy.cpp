#include "qos/hierarchy.h"

#include <algorithm>

namespace fairgate {
namespace {

SubportNode internet_subport(const Config& config, const std::vector<LiveSubscriber>& subscribers,
                             uint64_t link_bps, bool download) {
  const QosConfig& qos = config.qos;
  SubportNode subport{"internet", qos.subscriber_share_bps(link_bps), qos.shaped_bps(link_bps), {}};
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

// `link_bps`: what the subscribers and the gateway share (the internet link's rate in this
// direction); the port itself runs at its own rate when that is faster (a LAN's RATE_LAN).
// `framing`: the link's, also on a LAN egress, where fairgate shapes to the WAN link's rate.
PortNode port_node(const Config& config, const std::vector<LiveSubscriber>& subscribers, uint16_t port,
                   bool download, uint64_t link_bps, const LinkFraming& framing) {
  uint64_t port_bps = std::max(link_bps, config.ports[port].rate_bps);
  PortNode node{port, config.ports[port].name, download, port_bps, link_bps, framing, {}};
  node.subports.push_back(internet_subport(config, subscribers, link_bps, download));
  uint64_t local_bps = config.qos.local_share_bps(link_bps);
  node.subports.push_back({"local", local_bps, local_bps, {}});
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
  std::vector<PortNode> ports;
  int wan = links.download_port >= 0 ? links.download_port : config.default_route_port();
  uint64_t download_bps = wan >= 0 ? links.down_bps.at(static_cast<std::size_t>(wan)) : 0;
  LinkFraming download_framing = wan >= 0 ? config.ports[static_cast<std::size_t>(wan)].framing : LinkFraming{};
  for (uint16_t p = 0; p < config.ports.size(); ++p) {
    const auto& port = config.ports[p];
    if (port.role == PortRole::kLan && config.qos.download)
      ports.push_back(port_node(config, subscribers, p, true, download_bps, download_framing));
    if (port.role == PortRole::kWan && config.qos.upload)
      ports.push_back(port_node(config, subscribers, p, false, links.up_bps.at(p), port.framing));
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
      subports.push_back(
          {{"name", subport.name}, {"rate_bps", subport.rate_bps}, {"ceil_bps", subport.ceil_bps}, {"pipes", pipes}});
    }
    out["ports"].push_back({{"name", port.name},
                            {"direction", port.download ? "download" : "upload"},
                            {"rate_bps", port.rate_bps},
                            {"link_bps", port.link_bps},
                            {"overhead_bytes", port.framing.overhead},
                            {"mpu_bytes", port.framing.mpu},
                            {"framing", port.framing.preset},
                            {"subports", subports}});
  }
  return out;
}

}  // namespace fairgate
