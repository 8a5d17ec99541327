// FlowIndex: references found by hash and caller's comparison, through full buckets, wrapping
// at the end of the table, erased without breaking the probe chains of others, and checked
// against a plain map under random inserts and erases with many colliding hashes.
#include "nat/flow_index.h"

#include <gtest/gtest.h>
#include <rte_lcore.h>

#include <map>
#include <random>
#include <set>
#include <vector>

namespace fairgate {
namespace {

// A table of 64 entries has 16 buckets (mask 15): hashes differing above bit 3 share one.
constexpr uint32_t kEntries = 64;
constexpr uint32_t kBuckets = 16;

uint32_t find(const FlowIndex& index, uint32_t hash, uint32_t wanted) {
  return index.find(hash, [&](uint32_t ref) { return ref == wanted; });
}

TEST(FlowIndex, FindsWhatWasInsertedAndNothingElse) {
  FlowIndex index(kEntries, static_cast<int>(rte_socket_id()));
  EXPECT_EQ(index.capacity(), kEntries);
  EXPECT_EQ(index.bytes(), kBuckets * 64u);
  ASSERT_TRUE(index.insert(0x12345678, 7));
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(find(index, 0x12345678, 7), 7u);
  EXPECT_EQ(index.first_candidate(0x12345678), 7u);
  EXPECT_EQ(find(index, 0x12345678, 8), FlowIndex::kNone) << "the caller's comparison decides";
  EXPECT_EQ(find(index, 0x92345678, 7), FlowIndex::kNone) << "another signature in the same bucket";
  EXPECT_EQ(index.first_candidate(0x92345678), FlowIndex::kNone);
  EXPECT_TRUE(index.erase(0x12345678, 7));
  EXPECT_FALSE(index.erase(0x12345678, 7)) << "already gone";
  EXPECT_EQ(find(index, 0x12345678, 7), FlowIndex::kNone);
  EXPECT_EQ(index.size(), 0u);
}

TEST(FlowIndex, SignatureZeroStillOccupiesItsSlot) {
  // A hash whose top 16 bits are 0 must not look like a free slot.
  FlowIndex index(kEntries, static_cast<int>(rte_socket_id()));
  ASSERT_TRUE(index.insert(0x00000003, 1));
  ASSERT_TRUE(index.insert(0x00010003, 2));  // signature 1, the one 0 is stored as
  EXPECT_EQ(find(index, 0x00000003, 1), 1u);
  EXPECT_EQ(find(index, 0x00010003, 2), 2u);
  EXPECT_EQ(find(index, 0x00000003, 2), 2u) << "equal signatures: the comparison tells them apart";
  EXPECT_EQ(index.size(), 2u);
}

TEST(FlowIndex, FullBucketsOverflowIntoTheNextAndWrapAtTheEnd) {
  FlowIndex index(kEntries, static_cast<int>(rte_socket_id()));
  // 20 entries with the last bucket as home: 8 there, 8 in bucket 0, 4 in bucket 1.
  const uint32_t home = kBuckets - 1;
  std::vector<uint32_t> hashes;
  for (uint32_t i = 0; i < 20; ++i) {
    hashes.push_back(((i + 1) << 16) | home);
    ASSERT_TRUE(index.insert(hashes.back(), 100 + i));
  }
  for (uint32_t i = 0; i < 20; ++i) EXPECT_EQ(find(index, hashes[i], 100 + i), 100 + i) << i;
  // An entry whose home is bucket 0 lands after the overflow there, and is found.
  ASSERT_TRUE(index.insert(0x7fff0000, 500));
  EXPECT_EQ(find(index, 0x7fff0000, 500), 500u);

  // Erasing from the home bucket keeps the others reachable, and the freed slot is reused.
  EXPECT_TRUE(index.erase(hashes[3], 103));
  for (uint32_t i = 0; i < 20; ++i)
    EXPECT_EQ(find(index, hashes[i], 100 + i), i == 3 ? FlowIndex::kNone : 100 + i) << i;
  ASSERT_TRUE(index.insert(hashes[3], 103));
  EXPECT_EQ(index.first_candidate(hashes[3]), 103u) << "back in its home bucket";

  // Erase everything: every chain is gone, and a new entry of that home is in the home bucket.
  for (uint32_t i = 0; i < 20; ++i) EXPECT_TRUE(index.erase(hashes[i], 100 + i)) << i;
  EXPECT_TRUE(index.erase(0x7fff0000, 500));
  EXPECT_EQ(index.size(), 0u);
  for (uint32_t i = 0; i < 20; ++i) EXPECT_EQ(find(index, hashes[i], 100 + i), FlowIndex::kNone) << i;
  ASSERT_TRUE(index.insert(hashes[19], 119));
  EXPECT_EQ(index.first_candidate(hashes[19]), 119u);
}

TEST(FlowIndex, RefusesBeyondItsCapacity) {
  FlowIndex index(kEntries, static_cast<int>(rte_socket_id()));
  for (uint32_t i = 0; i < kEntries; ++i) ASSERT_TRUE(index.insert(i * 2654435761u, i)) << i;
  EXPECT_FALSE(index.insert(12345, 999));
  EXPECT_EQ(index.size(), kEntries);
  for (uint32_t i = 0; i < kEntries; ++i) EXPECT_EQ(find(index, i * 2654435761u, i), i) << i;
}

TEST(FlowIndex, AgreesWithAMapUnderRandomInsertsAndErases) {
  // Hashes drawn from few buckets and few signatures, so chains and equal signatures are common.
  FlowIndex index(512, static_cast<int>(rte_socket_id()));
  std::mt19937 random(42);
  std::map<uint32_t, uint32_t> stored;  // ref -> hash
  uint32_t next_ref = 0;
  for (int step = 0; step < 20000; ++step) {
    bool add = stored.empty() || (stored.size() < index.capacity() && random() % 2 == 0);
    if (add) {
      uint32_t hash = (random() % 8) << 16 | (random() % 4);
      ASSERT_TRUE(index.insert(hash, next_ref));
      stored[next_ref++] = hash;
    } else {
      auto it = stored.begin();
      std::advance(it, random() % stored.size());
      ASSERT_TRUE(index.erase(it->second, it->first));
      stored.erase(it);
    }
    ASSERT_EQ(index.size(), stored.size());
    if (step % 97 == 0) {
      for (const auto& [ref, hash] : stored) ASSERT_EQ(find(index, hash, ref), ref) << "step " << step;
    }
  }
  for (const auto& [ref, hash] : stored) EXPECT_EQ(find(index, hash, ref), ref);
}

}  // namespace
}  // namespace fairgate
