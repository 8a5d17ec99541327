#include "qos/subscriber_map.h"

#include <algorithm>
#include <bit>
#include <map>

namespace fairgate {

SubscriberMap::SubscriberMap(const std::vector<Entry>& entries) {
  std::map<uint8_t, std::vector<Entry>, std::greater<>> by_length;
  for (const auto& entry : entries) by_length[entry.prefix.length].push_back(entry);
  for (const auto& [length, group] : by_length) {
    Level level;
    level.mask = Ipv4Prefix{0, length}.mask();
    uint32_t slots = std::bit_ceil(std::max<uint32_t>(static_cast<uint32_t>(group.size()) * 2, 8));
    level.slot_mask = slots - 1;
    level.slots.resize(slots);
    for (const auto& entry : group) {
      uint32_t network = entry.prefix.address & level.mask;
      uint32_t slot = hash(network) & level.slot_mask;
      while (level.slots[slot].pipe != kNoPipe && level.slots[slot].network != network) slot = (slot + 1) & level.slot_mask;
      if (level.slots[slot].pipe == kNoPipe) ++entries_;
      level.slots[slot] = {network, entry.pipe};
    }
    levels_.push_back(std::move(level));
  }
}

}  // namespace fairgate
