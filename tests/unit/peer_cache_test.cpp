#include "classify/peer_cache.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdint>
#include <stdexcept>

namespace fairgate {
namespace {

constexpr uint32_t kPeer = 0xc6336407;  // 198.51.100.7
constexpr P2pProtocol kBt = P2pProtocol::kBitTorrent;
constexpr P2pProtocol kEdk = P2pProtocol::kEdonkey;
constexpr P2pProtocol kNone = P2pProtocol::kNone;

TEST(P2pPeerCache, FindsWhatWasInsertedByAddressAndPort) {
  P2pPeerCache cache(16, 60);
  cache.insert(kPeer, 6881, kBt, 100);
  EXPECT_EQ(cache.find(kPeer, 6881, 100), kBt);
  EXPECT_EQ(cache.find(kPeer, 6882, 100), kNone) << "another port of the same host";
  EXPECT_EQ(cache.find(kPeer + 1, 6881, 100), kNone) << "the same port on another host";
  EXPECT_EQ(cache.size(), 1u);
  // A new verdict for the same peer replaces the protocol, not adds an entry.
  cache.insert(kPeer, 6881, kEdk, 101);
  EXPECT_EQ(cache.find(kPeer, 6881, 101), kEdk);
  EXPECT_EQ(cache.size(), 1u);
}

TEST(P2pPeerCache, EntriesExpireOnThePassedClock) {
  P2pPeerCache cache(16, 60);
  cache.insert(kPeer, 6881, kBt, 1000);
  EXPECT_EQ(cache.find(kPeer, 6881, 1059), kBt);
  // A hit does not extend the life: only a new payload verdict (insert) does.
  EXPECT_EQ(cache.find(kPeer, 6881, 1060), kNone);
  EXPECT_EQ(cache.size(), 0u) << "an expired entry found is removed";

  cache.insert(kPeer, 6881, kBt, 2000);
  cache.insert(kPeer, 6881, kBt, 2050);  // confirmed again
  EXPECT_EQ(cache.find(kPeer, 6881, 2100), kBt);
  EXPECT_EQ(cache.find(kPeer, 6881, 2110), kNone);

  // Across the clock's wrap.
  cache.insert(kPeer, 4662, kEdk, UINT32_MAX - 10);
  EXPECT_EQ(cache.find(kPeer, 4662, 20), kEdk);
  EXPECT_EQ(cache.find(kPeer, 4662, 49), kNone);
}

TEST(P2pPeerCache, AFullCacheEvictsTheLeastRecentlyUsed) {
  P2pPeerCache cache(3, 600);
  cache.insert(kPeer + 1, 1001, kBt, 0);
  cache.insert(kPeer + 2, 1002, kBt, 0);
  cache.insert(kPeer + 3, 1003, kBt, 0);
  EXPECT_EQ(cache.size(), 3u);
  // Use the oldest: the second becomes least recently used.
  EXPECT_EQ(cache.find(kPeer + 1, 1001, 1), kBt);
  cache.insert(kPeer + 4, 1004, kEdk, 2);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.evictions(), 1u);
  EXPECT_EQ(cache.find(kPeer + 2, 1002, 3), kNone);
  EXPECT_EQ(cache.find(kPeer + 1, 1001, 3), kBt);
  EXPECT_EQ(cache.find(kPeer + 3, 1003, 3), kBt);
  EXPECT_EQ(cache.find(kPeer + 4, 1004, 3), kEdk);
  // Re-inserting refreshes too: now 1 is the oldest, then 3, 4.
  cache.insert(kPeer + 3, 1003, kBt, 4);
  cache.insert(kPeer + 4, 1004, kEdk, 4);
  cache.insert(kPeer + 5, 1005, kBt, 5);
  EXPECT_EQ(cache.find(kPeer + 1, 1001, 6), kNone);
  EXPECT_EQ(cache.find(kPeer + 5, 1005, 6), kBt);
}

TEST(P2pPeerCache, ExpiredEntriesAreNotCountedAsEvictions) {
  P2pPeerCache cache(2, 10);
  cache.insert(kPeer + 1, 1001, kBt, 0);
  cache.insert(kPeer + 2, 1002, kBt, 0);
  cache.insert(kPeer + 3, 1003, kBt, 100);
  EXPECT_EQ(cache.evictions(), 0u);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(P2pPeerCache, ManyPeersThroughASmallCache) {
  // Far more peers than entries, colliding in buckets: what is found is always what was last
  // inserted for that peer, and the newest `capacity` peers are all there.
  constexpr uint32_t kCapacity = 64;
  P2pPeerCache cache(kCapacity, 1u << 30);
  for (uint32_t i = 0; i < 10000; ++i) cache.insert(kPeer + i % 997, static_cast<uint16_t>(1024 + i % 13), kBt, i);
  EXPECT_EQ(cache.size(), kCapacity);
  for (uint32_t i = 10000 - kCapacity; i < 10000; ++i)
    EXPECT_EQ(cache.find(kPeer + i % 997, static_cast<uint16_t>(1024 + i % 13), 10000), kBt) << i;
  EXPECT_EQ(cache.find(kPeer + 5000 % 997, static_cast<uint16_t>(1024 + 5000 % 13), 10000), kNone);
}

TEST(P2pPeerCache, NoAllocationAfterConstruction) {
  P2pPeerCache cache(1024, 60);
  auto allocated = [] { return mallinfo2().uordblks + mallinfo2().hblkhd; };
  std::size_t before = allocated();
  for (uint32_t i = 0; i < 100000; ++i) {
    cache.insert(kPeer + i, static_cast<uint16_t>(i), kBt, i / 100);
    cache.find(kPeer + i / 2, static_cast<uint16_t>(i / 2), i / 100);
  }
  EXPECT_EQ(allocated(), before);
}

TEST(P2pPeerCache, CapacityMustBePositive) {
  EXPECT_THROW(P2pPeerCache(0, 60), std::invalid_argument);
  P2pPeerCache one(1, 60);
  one.insert(kPeer, 1, kBt, 0);
  one.insert(kPeer, 2, kEdk, 0);
  EXPECT_EQ(one.find(kPeer, 1, 0), kNone);
  EXPECT_EQ(one.find(kPeer, 2, 0), kEdk);
}

}  // namespace
}  // namespace fairgate
