#include "classify/peer_cache.h"

#include <stdexcept>

namespace fairgate {

P2pPeerCache::P2pPeerCache(uint32_t capacity, uint32_t lifetime_s) : lifetime_s_(lifetime_s) {
  if (capacity == 0 || capacity > (1u << 30)) throw std::invalid_argument("peer cache capacity must be 1..2^30");
  entries_.resize(capacity);
  // Twice as many buckets as entries keeps chains to a probe or two.
  uint32_t buckets = 1;
  while (buckets < 2 * capacity) buckets <<= 1;
  buckets_.assign(buckets, kNil);
  bucket_mask_ = buckets - 1;
  for (uint32_t i = capacity; i-- > 0;) {
    entries_[i].chain = free_;
    free_ = i;
  }
}

uint32_t P2pPeerCache::bucket(uint32_t address, uint16_t port) const {
  uint64_t key = (static_cast<uint64_t>(address) << 16) | port;
  key *= 0x9e3779b97f4a7c15ull;  // neighbouring addresses and ports land far apart
  return static_cast<uint32_t>(key >> 32) & bucket_mask_;
}

uint32_t P2pPeerCache::lookup(uint32_t address, uint16_t port) const {
  for (uint32_t i = buckets_[bucket(address, port)]; i != kNil; i = entries_[i].chain)
    if (entries_[i].address == address && entries_[i].port == port) return i;
  return kNil;
}

void P2pPeerCache::unlink(uint32_t index) {
  Entry& e = entries_[index];
  if (e.newer != kNil) entries_[e.newer].older = e.older; else newest_ = e.older;
  if (e.older != kNil) entries_[e.older].newer = e.newer; else oldest_ = e.newer;
  e.newer = e.older = kNil;
}

void P2pPeerCache::push_newest(uint32_t index) {
  Entry& e = entries_[index];
  e.newer = kNil;
  e.older = newest_;
  if (newest_ != kNil) entries_[newest_].newer = index; else oldest_ = index;
  newest_ = index;
}

void P2pPeerCache::remove(uint32_t index) {
  unlink(index);
  Entry& e = entries_[index];
  uint32_t* link = &buckets_[bucket(e.address, e.port)];
  while (*link != index) link = &entries_[*link].chain;
  *link = e.chain;
  e.chain = free_;
  free_ = index;
  --size_;
}

void P2pPeerCache::insert(uint32_t address, uint16_t port, P2pProtocol protocol, uint32_t now_s) {
  uint32_t index = lookup(address, port);
  if (index != kNil) {
    unlink(index);
  } else {
    if (free_ == kNil) {
      if (!expired(entries_[oldest_], now_s)) ++evictions_;
      remove(oldest_);
    }
    index = free_;
    free_ = entries_[index].chain;
    uint32_t& head = buckets_[bucket(address, port)];
    entries_[index].chain = head;
    head = index;
    entries_[index].address = address;
    entries_[index].port = port;
    ++size_;
  }
  entries_[index].protocol = protocol;
  entries_[index].expires_s = now_s + lifetime_s_;
  push_newest(index);
}

P2pProtocol P2pPeerCache::find(uint32_t address, uint16_t port, uint32_t now_s) {
  uint32_t index = lookup(address, port);
  if (index == kNil) return P2pProtocol::kNone;
  if (expired(entries_[index], now_s)) {
    remove(index);
    return P2pProtocol::kNone;
  }
  unlink(index);
  push_newest(index);
  return entries_[index].protocol;
}

}  // namespace fairgate
