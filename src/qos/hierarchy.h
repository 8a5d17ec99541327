// The scheduling hierarchy fairgate builds from its configuration, one tree per egress port:
// port -> subports (an "internet" one per link the port's traffic crosses, for the subscribers,
// then "local" for the gateway's own traffic) -> a pipe per subscriber (guaranteed rate and
// ceil) -> traffic classes -> queues. Downloads are scheduled on each LAN port's egress, with an
// internet subport per WAN shaped to that WAN's download rate (a download is shaped to the link
// it arrived by); uploads on each WAN port's, with one internet subport. Rates are bits per
// second; the scheduler converts them to librte_sched's bytes per second.
#pragma once

#include "config/config.h"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fairgate {

// FairNAT's PRIO bands, highest priority first.
enum class TrafficClass : uint8_t { kInteractive, kNormal, kBulk, kP2p };

struct TrafficClassSpec {
  std::string_view name;
  uint8_t priority;  // 0 is served first
  uint8_t queues;    // flows are hashed onto this many queues
};
inline constexpr std::array<TrafficClassSpec, 4> kTrafficClasses{{
    {"interactive", 0, 1},
    {"normal", 1, 1},
    {"bulk", 2, 3},
    {"p2p", 3, 1},
}};

struct PipeNode {
  uint32_t pipe = 0;           // librte_sched pipe id in the internet subport; stable for its life
  std::string name;
  std::vector<Ipv4Prefix> addresses;
  uint64_t rate_bps = 0;  // guaranteed
  uint64_t ceil_bps = 0;  // the most it may borrow up to
};

struct SubportNode {
  std::string name;       // "internet" ("internet via <wan>" where a LAN has several), or "local"
  uint64_t rate_bps = 0;  // guaranteed: what guarantees are measured against
  uint64_t ceil_bps = 0;  // the most it sends: "internet" borrows the gateway's unused share
  std::vector<PipeNode> pipes;
  LinkFraming framing;    // of the link it is shaped to
  // On a LAN egress, the WAN port whose downloads this internet subport carries; else -1.
  int wan_port = -1;
};

struct PortNode {
  uint16_t port = 0;      // index into Config::ports
  std::string name;
  bool download = false;  // a LAN egress (downloads); else a WAN egress (uploads)
  uint64_t rate_bps = 0;  // the port's rate: the links', or a LAN's own rate when faster
  uint64_t link_bps = 0;  // the internet links' rate in this direction (every WAN's, on a LAN)
  // The internet subports first (at least one), "local" last.
  std::vector<SubportNode> subports;
  std::span<const SubportNode> internet() const { return {subports.data(), subports.size() - 1}; }
  const SubportNode& local() const { return subports.back(); }
  // What the internet subports guarantee and may send, together (bits/s).
  uint64_t internet_rate_bps() const {
    uint64_t sum = 0;
    for (const auto& subport : internet()) sum += subport.rate_bps;
    return sum;
  }
  uint64_t internet_ceil_bps() const {
    uint64_t sum = 0;
    for (const auto& subport : internet()) sum += subport.ceil_bps;
    return sum;
  }
};

// A subscriber as the scheduler sees it at run time: its plan and the pipe it holds.
struct LiveSubscriber {
  enum class Kind : uint8_t { kConfigured, kAutomatic, kUnknown };
  SubscriberConfig plan;
  uint32_t pipe = 0;
  Kind kind = Kind::kConfigured;
};

// Link rates at run time, bits per second, by port index (WAN ports; 0 elsewhere).
struct LinkRates {
  std::vector<uint64_t> down_bps, up_bps;
};

inline constexpr uint32_t kUnknownPipe = 0;  // the "unknown" subscriber's pipe

// The subscribers a configuration starts with: the configured ones on pipes 1..n, then
// "unknown" (the hosts nobody covers) on pipe 0.
std::vector<LiveSubscriber> initial_subscribers(const Config& config);
LinkRates configured_link_rates(const Config& config);

// The trees for every shaped direction (none when qos is off). Downloads are scheduled on every
// LAN egress, in a subport per WAN against that WAN's download; uploads on every WAN egress
// against that WAN's upload. Every subscriber has its pipe in every internet subport, with the
// same id: its share, and its ceil, apply per link. Guarantees not set are equal shares of what
// set ones leave (the "unknown" subscriber of qos.unknown_hosts "own" only passes hosts through
// until they have their own, so it gets that share without taking one); ceilings not set are
// qos.user_ceil_* or the subport's rate; with borrow off a subscriber's ceil is its guarantee.
std::vector<PortNode> build_hierarchy(const Config& config, const std::vector<LiveSubscriber>& subscribers,
                                      const LinkRates& links);
// The same for the configuration as it starts.
std::vector<PortNode> build_hierarchy(const Config& config);

// As `qos-tree` prints it and tools/sched-graph reads it.
nlohmann::ordered_json hierarchy_json(const std::vector<PortNode>& ports);

}  // namespace fairgate
