// Remote peers (IPv4 address and port) seen in P2P flows, so that later flows to the same peer
// are labelled from their first packet, including encrypted ones no signature recognises
// (BitTorrent's message stream encryption, a uTP peer reached over TCP). A least-recently-used
// cache of fixed capacity: every entry and index slot is allocated at construction, an insert
// into a full cache evicts the entry used longest ago, and entries expire a fixed time after
// they were last confirmed. Times are seconds on whatever clock the caller passes in. One per
// worker: not thread-safe.
#pragma once

#include "classify/p2p_signatures.h"

#include <cstdint>
#include <vector>

namespace fairgate {

class P2pPeerCache {
 public:
  static constexpr uint32_t kDefaultLifetimeS = 1800;  // a swarm's peers stay reachable for a while

  // `capacity`: peers held, at least 1. `lifetime_s`: seconds an entry lives after its last
  // insert.
  P2pPeerCache(uint32_t capacity, uint32_t lifetime_s = kDefaultLifetimeS);

  // A flow to `address`:`port` (host order) was recognised as `protocol` at `now_s`: the peer
  // is (re)inserted, most recently used, and lives until now_s + lifetime_s.
  void insert(uint32_t address, uint16_t port, P2pProtocol protocol, uint32_t now_s);

  // The protocol of a live entry for the peer, which becomes the most recently used; kNone
  // when there is none. A hit does not extend the entry's life: only payload evidence does,
  // so a peer whose traffic is no longer recognised ages out.
  P2pProtocol find(uint32_t address, uint16_t port, uint32_t now_s);

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return entries_.size(); }
  uint32_t lifetime_s() const { return lifetime_s_; }
  uint64_t evictions() const { return evictions_; }  // live entries pushed out by a full cache

 private:
  static constexpr uint32_t kNil = UINT32_MAX;
  struct Entry {
    uint32_t address = 0;
    uint16_t port = 0;
    P2pProtocol protocol = P2pProtocol::kNone;
    uint32_t expires_s = 0;
    uint32_t newer = kNil, older = kNil;  // recency list
    uint32_t chain = kNil;                // next entry in the same hash bucket
  };

  uint32_t bucket(uint32_t address, uint16_t port) const;
  uint32_t lookup(uint32_t address, uint16_t port) const;  // entry index or kNil
  void unlink(uint32_t index);        // from the recency list
  void push_newest(uint32_t index);   // onto the recency list
  void remove(uint32_t index);        // from the list and its hash chain, back to the free list
  static bool expired(const Entry& entry, uint32_t now_s) {
    return static_cast<int32_t>(now_s - entry.expires_s) >= 0;  // wrap-safe
  }

  std::vector<Entry> entries_;
  std::vector<uint32_t> buckets_;  // first entry of each chain; at least twice the capacity
  uint32_t bucket_mask_ = 0;
  uint32_t newest_ = kNil, oldest_ = kNil;
  uint32_t free_ = kNil;  // free entries, chained through `chain`
  uint32_t lifetime_s_;
  std::size_t size_ = 0;
  uint64_t evictions_ = 0;
};

}  // namespace fairgate
