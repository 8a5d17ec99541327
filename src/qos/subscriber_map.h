// Which subscriber's pipe a LAN address belongs to: the longest prefix of a subscriber that
// covers it. Immutable once built: the management thread builds a new map when subscribers
// change and publishes it (RcuPublished), so workers look up without locks.
#pragma once

#include "core/ipv4.h"

#include <cstdint>
#include <vector>

namespace fairgate {

class SubscriberMap {
 public:
  static constexpr uint32_t kNoPipe = UINT32_MAX;
  struct Entry {
    Ipv4Prefix prefix;  // network address, host byte order
    uint32_t pipe;
  };

  explicit SubscriberMap(const std::vector<Entry>& entries);

  // The pipe of the longest prefix covering `address` (host byte order), or kNoPipe.
  uint32_t find(uint32_t address) const {
    for (const auto& level : levels_) {
      uint32_t network = address & level.mask;
      for (uint32_t slot = hash(network) & level.slot_mask;; slot = (slot + 1) & level.slot_mask) {
        const Slot& s = level.slots[slot];
        if (s.pipe == kNoPipe) break;
        if (s.network == network) return s.pipe;
      }
    }
    return kNoPipe;
  }
  std::size_t size() const { return entries_; }

 private:
  struct Slot {
    uint32_t network = 0;
    uint32_t pipe = kNoPipe;  // kNoPipe: empty
  };
  // One open-addressing table per prefix length in use, longest first; tables are at most half
  // full, so a lookup ends at an empty slot after a probe or two.
  struct Level {
    uint32_t mask;
    uint32_t slot_mask;
    std::vector<Slot> slots;
  };
  static uint32_t hash(uint32_t network) {
    uint32_t h = network * 0x9e3779b1u;  // neighbouring addresses land far apart
    return h ^ (h >> 16);
  }

  std::vector<Level> levels_;
  std::size_t entries_ = 0;
};

}  // namespace fairgate
