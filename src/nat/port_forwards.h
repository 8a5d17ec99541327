// The port-forward rules the NAT stage follows. Immutable once published: the management
// thread publishes a new table through RCU when a rule is added or removed at run time, so
// forwarding changes touch no session and stop no worker.
#pragma once

#include "config/config.h"

#include <netinet/in.h>

#include <vector>

namespace fairgate {

struct PortForwardTable {
  std::vector<PortForwardRule> rules;

  // The rule for traffic to external `port` with `proto`, or nullptr.
  const PortForwardRule* find(uint8_t proto, uint16_t port) const {
    for (const auto& rule : rules)
      if (((proto == IPPROTO_TCP && rule.tcp) || (proto == IPPROTO_UDP && rule.udp)) && port >= rule.external_first &&
          port <= rule.external_last)
        return &rule;
    return nullptr;
  }
};

}  // namespace fairgate
