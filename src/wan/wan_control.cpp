#include "wan/wan_control.h"

#include "config/json_path.h"
#include "mgmt/frame_builder.h"

#include <algorithm>
#include <cstdio>

namespace fairgate {
namespace {

constexpr uint16_t kProbePayloadBytes = 16;
constexpr uint32_t kAllRouters = 0xe0000002;  // 224.0.0.2
constexpr std::size_t kLogEntries = 64;
constexpr uint64_t kCarrierPollMs = 100;

WanProbeSettings probe_settings(const WanConfig& wan, std::size_t targets) {
  WanProbeSettings settings;
  settings.interval_ms = wan.interval_ms;
  settings.timeout_ms = wan.timeout_ms;
  settings.down_after = wan.down_after;
  settings.up_after = wan.up_after;
  settings.targets = static_cast<uint32_t>(targets);
  settings.reliability = std::min<uint32_t>(wan.reliability, static_cast<uint32_t>(targets));
  settings.window = std::max(wan.window, wan.up_after);
  settings.loss_degraded_percent = wan.loss_degraded_percent;
  settings.loss_recovered_percent = wan.loss_recovered_percent;
  settings.latency_degraded_ms = wan.latency_degraded_ms;
  settings.latency_recovered_ms = wan.latency_recovered_ms;
  settings.hold_down_ms = wan.hold_down_ms;
  return settings;
}

WanPolicy policy_of(int preferred) {
  return preferred < 0 ? WanPolicy::weighted() : WanPolicy::preferred(static_cast<uint8_t>(preferred));
}

std::vector<uint32_t> weights_of(const WanConfig& wan) {
  std::vector<uint32_t> weights;
  for (const auto& link : wan.links) weights.push_back(link.weight);
  return weights;
}

const char* tier_name(WanSelector::Tier tier) {
  switch (tier) {
    case WanSelector::Tier::kUsable: return "usable";
    case WanSelector::Tier::kHeldDown: return "held-down";
    case WanSelector::Tier::kDegraded: return "degraded";
    case WanSelector::Tier::kDown: return "down";
  }
  return "";
}

}  // namespace

WanControl::WanControl(const Config& config, const PortTable& ports, LocalHandler& local, QosControl* qos,
                       RcuPublished<WanRoutingTable>& routing, RemoveSessions remove_sessions, uint64_t now_ms)
    : config_(config),
      ports_(ports),
      local_(local),
      qos_(qos),
      routing_(routing),
      remove_sessions_(std::move(remove_sessions)),
      selector_(weights_of(config.wan)),
      default_policy_(policy_of(config.wan.default_preferred)) {
  for (const auto& link_config : config.wan.links) {
    Link link{link_config, ports.ports[link_config.port].prefix.address, ports.ports[link_config.port].gateway,
              WanHealth(probe_settings(config.wan, link_config.targets.size()), now_ms)};
    links_.push_back(std::move(link));
  }
  for (const auto& rule : config.wan.policy)
    for (const auto& prefix : rule.subscribers) rules_.push_back({prefix, policy_of(rule.preferred)});
  for (std::size_t i = 0; i < links_.size(); ++i) selector_.observe(i, links_[i].health, now_ms);
  publish_routing();
}

void WanControl::start(uint64_t now_ms) {
  for (auto& link : links_) {
    if (!link.config.has_modem) continue;
    auto solicitation = encode_lpa_solicitation(link.config.modem_id, 0);
    rte_mbuf* packet = build_udp_datagram(local_.pool(), link.address,
                                          link.config.modem_source ? link.config.modem_source : kAllRouters,
                                          config_.wan.lpa_port, config_.wan.lpa_port, 1, solicitation.data(),
                                          static_cast<uint32_t>(solicitation.size()));
    if (local_.send_from_port(link.config.port, packet, now_ms)) ++lpa_solicitations_sent_;
  }
}

int WanControl::link_index(const std::string& name) const {
  for (std::size_t i = 0; i < links_.size(); ++i)
    if (ports_.ports[links_[i].config.port].name == name) return static_cast<int>(i);
  return -1;
}

void WanControl::send_round(Link& link, std::size_t index, uint64_t now_ms) {
  uint16_t sequence = link.next_sequence++;
  for (std::size_t t = 0; t < link.config.targets.size(); ++t) {
    rte_mbuf* probe = build_echo_request(local_.pool(), link.address, link.config.targets[t],
                                         static_cast<uint16_t>(kWanProbeIdentifierBase + index), sequence,
                                         kProbePayloadBytes);
    // Sent or not (no mbuf, no route), the round counts: an unsendable probe is a lost one.
    local_.send_from_port(link.config.port, probe, now_ms);
    link.health.probe_sent(static_cast<uint32_t>(t), sequence, now_ms);
  }
}

void WanControl::observe_arp(Link& link, uint64_t now_ms) {
  // Failed only once ARP has given up on the gateway; an entry still being resolved (the
  // first probes create it) or none yet says nothing.
  const NeighborTable::Entry* entry = local_.neighbors().find(link.config.port, link.gateway);
  bool failed = entry != nullptr && entry->state == NeighborTable::State::kIncomplete &&
                entry->probes_sent >= config_.neighbors.retries;
  if (failed == link.health.gateway_answers_arp()) link.health.gateway_reachable(!failed, now_ms);
}

void WanControl::tick(uint64_t now_ms) {
  for (std::size_t i = 0; i < links_.size(); ++i) {
    Link& link = links_[i];
    if (now_ms >= link.next_round_ms) {
      send_round(link, i, now_ms);
      link.next_round_ms = now_ms + config_.wan.interval_ms;
    }
    observe_arp(link, now_ms);
    observe_carrier(link, now_ms);
    link.health.tick(now_ms);
    if (link.lpa.pending_since_ms != 0 && now_ms >= link.lpa.applied_at_ms + config_.wan.lpa_hold_down_ms)
      apply_lpa(link, now_ms);
    expire_lpa(link, now_ms);
  }
  act(now_ms);
}

void WanControl::on_echo_reply(uint16_t port, uint32_t from, uint16_t identifier, uint16_t sequence,
                               uint64_t now_ms) {
  std::size_t index = static_cast<uint16_t>(identifier - kWanProbeIdentifierBase);
  if (index >= links_.size() || links_[index].config.port != port) return;
  Link& link = links_[index];
  for (std::size_t t = 0; t < link.config.targets.size(); ++t)
    if (link.config.targets[t] == from) link.health.probe_reply(static_cast<uint32_t>(t), sequence, now_ms);
}

void WanControl::observe_carrier(Link& link, uint64_t now_ms) {
  // Reading a link's state is a system call for some devices: ten times a second is enough to
  // see a pulled cable well before the probes do (down_after * interval_ms).
  if (now_ms < link.next_carrier_ms) return;
  link.next_carrier_ms = now_ms + kCarrierPollMs;
  bool up = port_link(ports_.ports[link.config.port]).up;
  if (up != link.health.carrier_up()) link.health.link_state(up, now_ms);
}

void WanControl::act(uint64_t now_ms) {
  for (std::size_t i = 0; i < links_.size(); ++i) {
    Link& link = links_[i];
    for (const auto& transition : link.health.take_transitions()) {
      const std::string& name = ports_.ports[link.config.port].name;
      std::fprintf(stderr, "fairgate: wan %s: %s -> %s: %s\n", name.c_str(), wan_state_name(transition.from),
                   wan_state_name(transition.to), transition.reason.c_str());
      log_.push_back({{"at_ms", transition.at_ms},
                      {"link", name},
                      {"from", wan_state_name(transition.from)},
                      {"to", wan_state_name(transition.to)},
                      {"cause", wan_cause_name(transition.cause)},
                      {"reason", transition.reason}});
      if (log_.size() > kLogEntries) log_.erase(log_.begin());
    }
    selector_.observe(i, link.health, now_ms);
  }
  bool changed = false;
  for (std::size_t i = 0; i < links_.size(); ++i)
    changed |= published_tiers_.size() != links_.size() || published_tiers_[i] != selector_.tier(i);
  if (changed) publish_routing();
  // New flows avoid a dead WAN from the routing table just published; its sessions go now.
  for (std::size_t dead : selector_.take_went_down()) {
    Link& link = links_[dead];
    ++link.went_down;
    uint64_t removed = remove_sessions_(link.config.port);
    link.sessions_removed += removed;
    std::fprintf(stderr, "fairgate: wan %s: %llu sessions that left by it removed\n",
                 ports_.ports[link.config.port].name.c_str(), static_cast<unsigned long long>(removed));
  }
}

void WanControl::publish_routing() {
  auto table = std::make_unique<WanRoutingTable>();
  table->selector = selector_;
  for (const auto& link : links_)
    table->links.push_back({static_cast<uint8_t>(link.config.port), link.address});
  table->rules = rules_;
  table->default_policy = default_policy_;
  routing_.publish(std::move(table));
  published_tiers_.clear();
  for (std::size_t i = 0; i < links_.size(); ++i) published_tiers_.push_back(selector_.tier(i));
}

void WanControl::drop_lpa(const std::string& reason) { ++lpa_drops_[reason]; }

void WanControl::on_lpa(uint16_t port, uint32_t from, const uint8_t* payload, uint32_t length, uint64_t now_ms) {
  auto& [second, count] = lpa_rate_[port];
  if (second != now_ms / 1000) {
    second = now_ms / 1000;
    count = 0;
  }
  if (++count > config_.wan.lpa_max_per_second) return drop_lpa("rate_limited");
  bool port_has_modem = false, source_ok = false;
  for (const auto& link : links_) {
    if (link.config.port != port || !link.config.has_modem) continue;
    port_has_modem = true;
    source_ok |= link.config.modem_source ? from == link.config.modem_source
                                          : ports_.ports[port].prefix.contains(from);
  }
  if (!port_has_modem) return drop_lpa("wrong_port");
  if (!source_ok) return drop_lpa("wrong_source");
  LpaMessage message;
  LpaDecodeError error = decode_lpa(payload, length, &message);
  if (error != LpaDecodeError::kOk) return drop_lpa("malformed_" + std::string(lpa_decode_error_name(error)));
  if (message.type != LpaMessageType::kAdvertisement) return drop_lpa("solicitation");
  bool known_modem = false;
  for (const auto& link : links_)
    known_modem |= link.config.port == port && link.config.has_modem && link.config.modem_id == message.modem_id;
  if (!known_modem) return drop_lpa("unknown_modem");
  switch (sequences_.observe(message.modem_id, message.sequence, now_ms, config_.wan.lpa_period_ms)) {
    case LpaSequenceTracker::Verdict::kDuplicate: return drop_lpa("duplicate_sequence");
    case LpaSequenceTracker::Verdict::kOld: return drop_lpa("old_sequence");
    case LpaSequenceTracker::Verdict::kRestart: ++lpa_drops_["modem_restarts"]; break;  // accepted: counted only
    case LpaSequenceTracker::Verdict::kNew: break;
  }
  bool link_went_down = false;
  for (const LpaLink& advertised : message.links) {
    Link* link = nullptr;
    for (auto& candidate : links_)
      if (candidate.config.port == port && candidate.config.has_modem &&
          candidate.config.modem_id == message.modem_id && candidate.config.modem_interface == advertised.interface_id)
        link = &candidate;
    if (link == nullptr) {
      drop_lpa("unknown_interface");
      continue;
    }
    LpaState& lpa = link->lpa;
    ++lpa.accepted;
    lpa.heard = true;
    lpa.expired = false;
    lpa.last_ms = now_ms;
    lpa.sequence = message.sequence;
    if (!advertised.up) {
      if (lpa.up) ++lpa.link_downs;
      lpa.up = false;
      link->health.lpa_link(false, now_ms);
      link_went_down = true;
      continue;
    }
    lpa.up = true;
    link->health.lpa_link(true, now_ms);
    if (advertised.current_bps == 0) continue;  // up, no rate: nothing to shape to
    if (advertised.both_directions || advertised.incoming) lpa.advertised_down_bps = advertised.current_bps;
    if (advertised.both_directions || !advertised.incoming) lpa.advertised_up_bps = advertised.current_bps;
    if (lpa.pending_since_ms == 0) lpa.pending_since_ms = now_ms;
  }
  // Once the whole message is read: its link instances (download and upload) are one change.
  for (auto& link : links_)
    if (link.lpa.pending_since_ms != 0 && now_ms >= link.lpa.applied_at_ms + config_.wan.lpa_hold_down_ms)
      apply_lpa(link, now_ms);
  // A modem that says its link is down fails the WAN over now, not at the next tick.
  if (link_went_down) act(now_ms);
}

void WanControl::apply_lpa(Link& link, uint64_t now_ms) {
  LpaState& lpa = link.lpa;
  const PortConfig& port = config_.ports[link.config.port];
  auto shaped = [&](uint64_t advertised, uint64_t configured) {
    if (advertised == 0) return configured;
    uint64_t less_margin = advertised / 100 * (100 - config_.wan.lpa_margin_percent);
    return configured ? std::min(less_margin, configured) : less_margin;  // never above the configured rate
  };
  uint64_t down = shaped(lpa.advertised_down_bps, port.rate_down_bps);
  uint64_t up = shaped(lpa.advertised_up_bps, port.rate_up_bps);
  if (config_.wan.lpa_min_window_ms > 0) {
    // The paper's hysteresis: the least rate advertised over the window.
    lpa.window.push_back({now_ms, {down, up}});
    while (!lpa.window.empty() && lpa.window.front().first + config_.wan.lpa_min_window_ms < now_ms)
      lpa.window.pop_front();
    for (const auto& [at, rates] : lpa.window) {
      down = std::min(down, rates.first);
      up = std::min(up, rates.second);
    }
  }
  lpa.pending_since_ms = 0;
  if (down == lpa.applied_down_bps && up == lpa.applied_up_bps) return;
  if (qos_ != nullptr && down != 0 && up != 0) {
    try {
      lpa.last_apply_ms = qos_->set_link_rate(link.config.port, down, up);
    } catch (const FieldError& error) {
      std::fprintf(stderr, "fairgate: lpa: %s's rate stays: %s\n", port.name.c_str(), error.what());
      return;
    }
  }
  lpa.applied_down_bps = down;
  lpa.applied_up_bps = up;
  lpa.applied_at_ms = now_ms;
  lpa.last_reaction_ms = now_ms - lpa.last_ms + static_cast<uint64_t>(lpa.last_apply_ms + 0.5);
  ++lpa.rate_changes;
}

void WanControl::expire_lpa(Link& link, uint64_t now_ms) {
  LpaState& lpa = link.lpa;
  if (!lpa.heard || lpa.expired) return;
  if (now_ms < lpa.last_ms + uint64_t{LpaSequenceTracker::kExpiryPeriods} * config_.wan.lpa_period_ms) return;
  // Three periods without a word: the advertisement no longer holds, the configured rates do.
  lpa.expired = true;
  ++lpa.expiries;
  lpa.up = true;
  link.health.lpa_link(true, now_ms);
  lpa.advertised_down_bps = lpa.advertised_up_bps = 0;
  lpa.window.clear();
  const PortConfig& port = config_.ports[link.config.port];
  if (qos_ != nullptr && (lpa.applied_down_bps != 0 || lpa.applied_up_bps != 0)) {
    try {
      qos_->set_link_rate(link.config.port, port.rate_down_bps, port.rate_up_bps);
    } catch (const FieldError& error) {
      std::fprintf(stderr, "fairgate: lpa: %s's configured rate not restored: %s\n", port.name.c_str(), error.what());
    }
  }
  lpa.applied_down_bps = lpa.applied_up_bps = 0;
  lpa.pending_since_ms = 0;
}

void WanControl::force(const std::string& name, std::optional<bool> up, uint64_t now_ms) {
  int index = link_index(name);
  if (index < 0) throw FieldError("args.link", "no WAN link named \"" + name + "\"");
  links_[static_cast<std::size_t>(index)].health.force(up, now_ms);
  act(now_ms);
}

void WanControl::set_weight(const std::string& name, uint32_t weight) {
  int index = link_index(name);
  if (index < 0) throw FieldError("args.link", "no WAN link named \"" + name + "\"");
  selector_.set_weight(static_cast<std::size_t>(index), weight);
  publish_routing();
}

void WanControl::set_policy(const Ipv4Prefix& prefix, std::optional<int> preferred) {
  std::erase_if(rules_, [&](const auto& rule) { return rule.first == prefix; });
  // The operator's rules come first: they are meant to override the configuration's.
  if (preferred) rules_.insert(rules_.begin(), {prefix, policy_of(*preferred)});
  publish_routing();
}

uint64_t WanControl::reset_sessions(const std::string& name) {
  int index = link_index(name);
  if (index < 0) throw FieldError("args.link", "no WAN link named \"" + name + "\"");
  Link& link = links_[static_cast<std::size_t>(index)];
  uint64_t removed = remove_sessions_(link.config.port);
  link.sessions_removed += removed;
  return removed;
}

nlohmann::ordered_json WanControl::wan_json(uint64_t now_ms) const {
  nlohmann::ordered_json links = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < links_.size(); ++i) {
    const Link& link = links_[i];
    const WanHealth& health = link.health;
    const auto& stats = health.probe_stats();
    nlohmann::ordered_json targets = nlohmann::ordered_json::array();
    for (std::size_t t = 0; t < link.config.targets.size(); ++t) {
      const auto& target = stats.targets[t];
      targets.push_back({{"address", format_ipv4(link.config.targets[t])},
                         {"sent", target.sent},
                         {"answered", target.answered},
                         {"lost", target.lost},
                         {"last_rtt_ms", target.last_rtt_ms ? nlohmann::ordered_json(*target.last_rtt_ms) : nullptr}});
    }
    const PortConfig& port = config_.ports[link.config.port];
    uint64_t down = port.rate_down_bps, up = port.rate_up_bps;
    if (qos_ != nullptr) {
      down = qos_->links().down_bps.at(link.config.port);
      up = qos_->links().up_bps.at(link.config.port);
    }
    auto average = health.average_rtt_ms();
    links.push_back({{"link", port.name},
                     {"address", format_ipv4(link.address)},
                     {"state", wan_state_name(health.state())},
                     {"tier", tier_name(selector_.tier(i))},
                     {"reason", health.reason()},
                     {"since_s", static_cast<double>(now_ms - std::min(now_ms, health.since_ms())) / 1000.0},
                     {"forced", health.forced() ? nlohmann::ordered_json(*health.forced() ? "up" : "down") : nullptr},
                     {"weight", selector_.weight(i)},
                     {"loss_percent", health.loss_percent()},
                     {"avg_rtt_ms", average ? nlohmann::ordered_json(*average) : nullptr},
                     {"last_rtt_ms", stats.last_rtt_ms ? nlohmann::ordered_json(*stats.last_rtt_ms) : nullptr},
                     {"probes_sent", stats.probes_sent},
                     {"probes_lost", stats.probes_lost},
                     {"targets", targets},
                     {"rate_down_bps", down},
                     {"rate_up_bps", up},
                     {"went_down", link.went_down},
                     {"sessions_removed", link.sessions_removed},
                     {"transitions",
                      {{"to_up", health.counters().to_up},
                       {"to_degraded", health.counters().to_degraded},
                       {"to_down", health.counters().to_down}}}});
  }
  nlohmann::ordered_json rules = nlohmann::ordered_json::array();
  for (const auto& [prefix, policy] : rules_)
    rules.push_back({{"subscribers", prefix.length == 32 ? format_ipv4(prefix.address) : format_prefix(prefix)},
                     {"wan", policy.kind == WanPolicy::Kind::kPreferred
                                 ? ports_.ports[links_[policy.wan].config.port].name
                                 : std::string("balance")}});
  return {{"links", links},
          {"policy", rules},
          {"default", default_policy_.kind == WanPolicy::Kind::kPreferred
                          ? ports_.ports[links_[default_policy_.wan].config.port].name
                          : std::string("balance")},
          {"log", log_}};
}

nlohmann::ordered_json WanControl::lpa_json(uint64_t now_ms) const {
  nlohmann::ordered_json modems = nlohmann::ordered_json::array();
  for (const auto& link : links_) {
    if (!link.config.has_modem) continue;
    const LpaState& lpa = link.lpa;
    modems.push_back({{"link", ports_.ports[link.config.port].name},
                      {"modem_id", link.config.modem_id},
                      {"interface", link.config.modem_interface},
                      {"heard", lpa.heard},
                      {"age_ms", lpa.heard ? nlohmann::ordered_json(now_ms - lpa.last_ms) : nullptr},
                      {"expired", lpa.expired},
                      {"sequence", lpa.sequence},
                      {"link_up", lpa.up},
                      {"advertised_down_bps", lpa.advertised_down_bps},
                      {"advertised_up_bps", lpa.advertised_up_bps},
                      {"applied_down_bps", lpa.applied_down_bps},
                      {"applied_up_bps", lpa.applied_up_bps},
                      {"last_apply_ms", lpa.last_apply_ms},
                      {"last_reaction_ms", lpa.last_reaction_ms},
                      {"accepted", lpa.accepted},
                      {"rate_changes", lpa.rate_changes},
                      {"link_downs", lpa.link_downs},
                      {"expiries", lpa.expiries}});
  }
  nlohmann::ordered_json drops = nlohmann::ordered_json::object();
  for (const auto& [reason, count] : lpa_drops_) drops[reason] = count;
  return {{"port", config_.wan.lpa_port},
          {"margin_percent", config_.wan.lpa_margin_percent},
          {"hold_down_ms", config_.wan.lpa_hold_down_ms},
          {"solicitations_sent", lpa_solicitations_sent_},
          {"modems", modems},
          {"ignored", drops}};
}

}  // namespace fairgate
