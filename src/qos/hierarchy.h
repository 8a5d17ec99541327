// The scheduling hierarchy fairgate builds from its configuration, one tree per egress port:
// port (the link) -> subports ("internet" for the subscribers, "local" for the gateway's own
// traffic) -> a pipe per subscriber (guaranteed rate and ceil) -> traffic classes -> queues.
// Downloads are scheduled on each LAN port's egress, uploads on each WAN port's. Rates are
// bits per second; the scheduler converts them to librte_sched's bytes per second.
#pragma once

#include "config/config.h"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
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
    {"bulk", 2, 1},
    {"p2p", 3, 4},
}};

struct PipeNode {
  std::size_t subscriber = 0;  // index into Config::subscribers
  std::string name;
  std::vector<Ipv4Prefix> addresses;
  uint64_t rate_bps = 0;  // guaranteed
  uint64_t ceil_bps = 0;  // the most it may borrow up to
};

struct SubportNode {
  std::string name;       // "internet" or "local"
  uint64_t rate_bps = 0;
  std::vector<PipeNode> pipes;
};

struct PortNode {
  uint16_t port = 0;      // index into Config::ports
  std::string name;
  bool download = false;  // a LAN egress (downloads); else a WAN egress (uploads)
  uint64_t rate_bps = 0;  // the port's rate: the link's, or a LAN's own rate when faster
  LinkFraming framing;
  std::vector<SubportNode> subports;
};

// The trees for every shaped direction (none when qos is off). Guarantees not configured are
// equal shares of what configured ones leave; ceilings not configured are qos.user_ceil_* or the
// subport's rate; with borrow off a subscriber's ceil is its guarantee.
std::vector<PortNode> build_hierarchy(const Config& config);

// As `qos-tree` prints it and tools/sched-graph reads it.
nlohmann::ordered_json hierarchy_json(const std::vector<PortNode>& ports);

}  // namespace fairgate
