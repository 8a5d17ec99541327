#include "nat/flow_index.h"

#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>

#include <bit>
#include <cstring>
#include <stdexcept>
#include <string>

namespace fairgate {

FlowIndex::FlowIndex(uint32_t entries, int socket) : capacity_(entries) {
  // Twice the slots the entries need, a power of two of buckets so a hash picks one by masking.
  uint64_t buckets = std::bit_ceil(std::max<uint64_t>(1, (uint64_t{entries} * 2 + kSlots - 1) / kSlots));
  std::size_t bytes = buckets * sizeof(Bucket);
  buckets_ = static_cast<Bucket*>(rte_zmalloc_socket("nat_flow_index", bytes, alignof(Bucket), socket));
  if (buckets_ == nullptr)
    throw std::runtime_error("cannot allocate the NAT flow index (" + std::to_string(bytes >> 20) +
                             " MiB): raise eal.memory_mb or lower nat.sessions");
  mask_ = static_cast<uint32_t>(buckets - 1);
}

FlowIndex::~FlowIndex() { rte_free(buckets_); }

uint32_t FlowIndex::hash(const FlowKey& key) {
  uint64_t words[2];
  std::memcpy(words, &key, sizeof words);
  return rte_hash_crc_8byte(words[1], rte_hash_crc_8byte(words[0], 0x9e3779b9));
}

void FlowIndex::prefetch(uint32_t hash) const { rte_prefetch0(&buckets_[hash & mask_]); }

bool FlowIndex::insert(uint32_t hash, uint32_t ref) {
  if (size_ == capacity_) return false;
  uint32_t bucket = hash & mask_;
  for (;;) {
    Bucket& b = buckets_[bucket];
    if (uint32_t free = signature_hits(b, 0); free != 0) {
      uint32_t slot = static_cast<uint32_t>(__builtin_ctz(free));
      b.sig[slot] = signature(hash);
      b.ref[slot] = ref;
      ++size_;
      return true;
    }
    // Never loops forever: at most half the slots are in use.
    ++b.overflow;
    bucket = (bucket + 1) & mask_;
  }
}

bool FlowIndex::erase(uint32_t hash, uint32_t ref) {
  uint32_t home = hash & mask_, bucket = home;
  uint16_t sig = signature(hash);
  for (uint32_t probed = 0; probed <= mask_; ++probed) {
    Bucket& b = buckets_[bucket];
    for (uint32_t hits = signature_hits(b, sig); hits != 0; hits &= hits - 1) {
      uint32_t slot = static_cast<uint32_t>(__builtin_ctz(hits));
      if (b.ref[slot] != ref) continue;
      b.sig[slot] = 0;
      --size_;
      // The buckets it was pushed past no longer send lookups on for it.
      for (uint32_t passed = home; passed != bucket; passed = (passed + 1) & mask_) --buckets_[passed].overflow;
      return true;
    }
    if (b.overflow == 0) return false;
    bucket = (bucket + 1) & mask_;
  }
  return false;
}

}  // namespace fairgate
