// l3: IPv4 forwarding. Punts what is addressed to the gateway, what needs an ICMP error and
// what has no resolved next hop; for the rest decrements the TTL (incremental checksum),
// chooses the egress port and rewrites the Ethernet header.
#pragma once

#include "core/rcu_published.h"
#include "neigh/neighbor_table.h"
#include "pipeline/stage.h"
#include "ports/ports.h"
#include "stages/l3/route_table.h"

namespace fairgate {

class L3Stage final : public Stage {
 public:
  L3Stage(const PortTable& ports, const RcuPublished<NeighborSnapshot>& neighbors)
      : ports_(ports), routes_(ports), neighbors_(neighbors) {}
  std::string_view name() const override { return "l3"; }
  void process(Burst& burst) override;

 private:
  const PortTable& ports_;
  RouteTable routes_;
  const RcuPublished<NeighborSnapshot>& neighbors_;
};

}  // namespace fairgate
