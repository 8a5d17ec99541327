#include "stages/l3/route_table.h"

#include <algorithm>

namespace fairgate {

RouteTable::RouteTable(const PortTable& ports) : through_wan_(ports.ports.size(), Route{0, 0}) {
  for (uint16_t i = 0; i < ports.ports.size(); ++i) {
    if (ports.ports[i].role == PortRole::kWan) through_wan_[i] = Route{i, ports.ports[i].gateway};
    const auto& prefix = ports.ports[i].prefix;
    connected_.push_back({prefix.network(), prefix.mask(), i});
    own_addresses_.push_back(prefix.address);
    broadcasts_.push_back(prefix.broadcast());
    if (!has_default_ && ports.ports[i].role == PortRole::kWan && ports.ports[i].gateway != 0) {
      default_ = Route{i, ports.ports[i].gateway};
      has_default_ = true;
    }
  }
  std::stable_sort(connected_.begin(), connected_.end(),
                   [](const Connected& a, const Connected& b) { return a.mask > b.mask; });
}


}  // namespace fairgate
