// Which WAN a subscriber's new flows leave by, as the workers see it: the management thread
// builds a new table whenever a WAN's health, a weight or the policy changes and publishes it
// (RcuPublished), and the nat stage asks it when it creates a session. Flows keep the WAN they
// started on; this only decides for new ones.
#pragma once

#include "core/ipv4.h"
#include "wan/wan_health.h"

#include <cstdint>
#include <utility>
#include <vector>

namespace fairgate {

// ICMP echo identifiers of the gateway's WAN probes: this plus the link index.
inline constexpr uint16_t kWanProbeIdentifierBase = 0xf600;

struct WanRoutingTable {
  struct Link {
    uint8_t port = 0;      // port index
    uint32_t address = 0;  // the WAN's own address, host order: what NAT translates to
  };
  WanSelector selector{std::vector<uint32_t>{1}};  // the healths as they were observed
  std::vector<Link> links;                         // by link index, as in WanConfig::links
  std::vector<std::pair<Ipv4Prefix, WanPolicy>> rules;  // first match wins
  WanPolicy default_policy = WanPolicy::weighted();

  // The policy for a subscriber address (host order).
  WanPolicy policy_of(uint32_t address) const {
    for (const auto& [prefix, policy] : rules)
      if (prefix.contains(address)) return policy;
    return default_policy;
  }
  // The link for new flows of the subscriber whose key is `key` (its pipe or address) and
  // whose address is `address`; false when every WAN is down.
  bool choose(uint32_t key, uint32_t address, Link* link) const {
    auto chosen = selector.select(key, policy_of(address));
    if (!chosen) return false;
    *link = links[*chosen];
    return true;
  }
};

}  // namespace fairgate
