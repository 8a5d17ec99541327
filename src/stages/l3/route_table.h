// Where an IPv4 destination goes: a connected prefix of one of the ports (next hop = the
// destination itself), else the default route through the first WAN port's gateway.
#pragma once

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
  // Longest matching connected prefix, else the default route. False when nothing matches.
  bool lookup(uint32_t destination, Route* route) const {
    for (const auto& connected : connected_)
      if ((destination & connected.mask) == connected.network) {
        *route = Route{connected.port, destination};
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
  std::vector<Connected> connected_;  // longest prefix first
  Route default_{};
  bool has_default_ = false;
};

// True for destinations a router does not forward: limited broadcast, multicast, class E,
// and the directed broadcast of a connected prefix.
bool not_forwardable(const PortTable& ports, uint32_t destination);

}  // namespace fairgate
