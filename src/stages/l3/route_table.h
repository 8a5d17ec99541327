// Where an IPv4 destination goes: a connected prefix of one of the ports (next hop = the
// destination itself), else the default route through the first WAN port's gateway.
#pragma once

#include "core/packet_meta.h"
#include "ports/ports.h"

#include <cstdint>
#include <vector>

namespace fairgate {

struct Route {
  uint16_t port;      // port index
  uint32_t next_hop;  // host order
};

class RouteTable {
 public:
  explicit RouteTable(const PortTable& ports);

  // One of the gateway's own addresses.
  bool is_local(uint32_t destination) const {
    for (uint32_t own : own_addresses_)
      if (own == destination) return true;
    return false;
  }
  // Limited broadcast, multicast, class E, or a connected prefix's directed broadcast.
  bool not_forwardable(uint32_t destination) const {
    if ((destination >> 28) >= 14) return true;
    for (uint32_t broadcast : broadcasts_)
      if (broadcast == destination) return true;
    return false;
  }

  // Longest matching connected prefix, else the route through WAN port `wan_port` (the WAN a
  // NAT session leaves by; kNoWanPort: none), else the default route. False when nothing matches.
  bool lookup(uint32_t destination, Route* route, uint8_t wan_port = kNoWanPort) const {
    for (const auto& connected : connected_)
      if ((destination & connected.mask) == connected.network) {
        *route = Route{connected.port, destination};
        return true;
      }
    if (wan_port < through_wan_.size() && through_wan_[wan_port].next_hop != 0) {
      *route = through_wan_[wan_port];
      return true;
    }
    if (!has_default_) return false;
    *route = default_;
    return true;
  }

 private:
  struct Connected {
    uint32_t network, mask;
    uint16_t port;
  };
  // Compact copies of what every packet is checked against, so the hot loop stays in one line.
  std::vector<uint32_t> own_addresses_, broadcasts_;
  std::vector<Connected> connected_;  // longest prefix first
  std::vector<Route> through_wan_;    // by port index: via that WAN's gateway (next_hop 0: none)
  Route default_{};
  bool has_default_ = false;
};

}  // namespace fairgate
