// The management thread's side of the WAN links: it probes each WAN (ICMP echo from the WAN's
// own address, out of that WAN's port, to its targets), watches the gateways' ARP entries and
// the modems' Link Property Advertisements, feeds all of it to one WanHealth per link, and acts
// on what they decide: a WAN that goes down loses only the NAT sessions that left by it, and the
// subscribers' new flows go by the WANs that work (a WanRoutingTable published to the workers;
// downloads are shaped per WAN, each in its own subport, so nothing follows them). Advertised
// rates, less a margin and never above the configured rate, become the schedulers' link rates.
// Every transition is logged with its reason and counted. Management thread only.
#pragma once

#include "config/config.h"
#include "core/rcu_published.h"
#include "lpa/lpa_message.h"
#include "mgmt/local_handler.h"
#include "ports/ports.h"
#include "qos/qos_control.h"
#include "wan/wan_health.h"
#include "wan/wan_routing.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fairgate {

class WanControl {
 public:
  // Removes the NAT sessions that leave by WAN port `port` on every worker; how many it removed.
  using RemoveSessions = std::function<uint64_t(uint8_t port)>;

  // `qos` may be null (nothing shaped): advertised rates are then only shown.
  WanControl(const Config& config, const PortTable& ports, LocalHandler& local, QosControl* qos,
             RcuPublished<WanRoutingTable>& routing, RemoveSessions remove_sessions, uint64_t now_ms);

  // Asks every configured modem for a full advertisement (LPA solicitation, to 224.0.0.2).
  void start(uint64_t now_ms);
  // Probes due, health timers, LPA damping and expiry, and the actions that follow.
  void tick(uint64_t now_ms);
  void on_echo_reply(uint16_t port, uint32_t from, uint16_t identifier, uint16_t sequence, uint64_t now_ms);
  void on_lpa(uint16_t port, uint32_t from, const uint8_t* payload, uint32_t length, uint64_t now_ms);

  // Commands. Each throws FieldError naming the argument, with nothing changed.
  nlohmann::ordered_json wan_json(uint64_t now_ms) const;
  nlohmann::ordered_json lpa_json(uint64_t now_ms) const;
  // wan-set: force a link up or down (nullopt releases it), change its weight, or send the
  // subscribers matching `prefix` to a link (-1: balanced; nullopt: drop the rule).
  void force(const std::string& link, std::optional<bool> up, uint64_t now_ms);
  void set_weight(const std::string& link, uint32_t weight);
  void set_policy(const Ipv4Prefix& prefix, std::optional<int> preferred);
  // Moves the existing flows too: removes the sessions on `link` (their hosts reconnect by the
  // WAN the policy gives them now). Returns how many were removed.
  uint64_t reset_sessions(const std::string& link);
  // The link index of a WAN port's name; -1 when none. `field` names the argument in errors.
  int link_index(const std::string& name) const;

 private:
  struct LpaState {
    bool heard = false;
    bool expired = true;
    uint64_t last_ms = 0;       // when the last accepted advertisement arrived
    uint32_t sequence = 0;
    bool up = true;
    uint64_t advertised_down_bps = 0, advertised_up_bps = 0;  // 0: not advertised
    uint64_t applied_down_bps = 0, applied_up_bps = 0;        // 0: the configured rate
    uint64_t applied_at_ms = 0;
    double last_apply_ms = 0;          // how long the schedulers took
    uint64_t last_reaction_ms = 0;     // from the advertisement's arrival to the applied rate
    uint64_t pending_since_ms = 0;     // an advertisement waiting for the hold-down; 0: none
    std::deque<std::pair<uint64_t, std::pair<uint64_t, uint64_t>>> window;  // (time, (down, up)) for the minimum mode
    uint64_t accepted = 0, rate_changes = 0, link_downs = 0, expiries = 0;
  };
  struct Link {
    WanLinkConfig config;
    uint32_t address = 0;  // the WAN's own address
    uint32_t gateway = 0;
    WanHealth health;
    uint16_t next_sequence = 1;
    uint64_t next_round_ms = 0;
    uint64_t next_carrier_ms = 0;
    uint64_t sessions_removed = 0;
    uint64_t went_down = 0;
    LpaState lpa;
  };

  void send_round(Link& link, std::size_t index, uint64_t now_ms);
  void observe_arp(Link& link, uint64_t now_ms);
  void observe_carrier(Link& link, uint64_t now_ms);
  void act(uint64_t now_ms);  // transitions: log, sessions, routing
  void publish_routing();
  void drop_lpa(const std::string& reason);
  void apply_lpa(Link& link, uint64_t now_ms);
  void expire_lpa(Link& link, uint64_t now_ms);

  const Config& config_;
  const PortTable& ports_;
  LocalHandler& local_;
  QosControl* qos_;
  RcuPublished<WanRoutingTable>& routing_;
  RemoveSessions remove_sessions_;
  std::vector<Link> links_;
  WanSelector selector_;
  std::vector<std::pair<Ipv4Prefix, WanPolicy>> rules_;
  WanPolicy default_policy_;
  std::vector<WanSelector::Tier> published_tiers_;
  LpaSequenceTracker sequences_;
  std::map<std::string, uint64_t> lpa_drops_;  // by reason
  std::map<uint16_t, std::pair<uint64_t, uint32_t>> lpa_rate_;  // port -> (second, count)
  uint64_t lpa_solicitations_sent_ = 0;
  std::vector<nlohmann::ordered_json> log_;  // the last transitions, newest last
};

}  // namespace fairgate
