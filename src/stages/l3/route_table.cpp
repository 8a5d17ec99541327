#include "stages/l3/route_table.h"

#include <algorithm>

namespace fairgate {

RouteTable::RouteTable(const PortTable& ports) {
  for (uint16_t i = 0; i < ports.ports.size(); ++i) {
    const auto& prefix = ports.ports[i].prefix;
    connected_.push_back({prefix.network(), prefix.mask(), i});
    if (!has_default_ && ports.ports[i].role == PortRole::kWan && ports.ports[i].gateway != 0) {
      default_ = Route{i, ports.ports[i].gateway};
      has_default_ = true;
    }
  }
  std::stable_sort(connected_.begin(), connected_.end(),
                   [](const Connected& a, const Connected& b) { return a.mask > b.mask; });
}

bool not_forwardable(const PortTable& ports, uint32_t destination) {
  if ((destination >> 28) >= 14) return true;  // multicast, class E, 255.255.255.255
  for (const auto& port : ports.ports)
    if (destination == port.prefix.broadcast()) return true;
  return false;
}

}  // namespace fairgate
