#include "neigh/neighbor_table.h"
#include "test_env.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <vector>

namespace fairgate::test {
namespace {

using State = NeighborTable::State;
using HoldResult = NeighborTable::HoldResult;

constexpr uint16_t kPort = 0;
constexpr uint64_t kT0 = 1'000'000;  // fake clock, ms

NeighborConfig small_config() {
  NeighborConfig config;
  config.reachable_s = 30;
  config.max_entries = 16;
  config.hold_packets = 3;
  config.retry_ms = 1000;
  config.retries = 3;
  return config;
}

// A distinguishable packet: its first byte is `tag`.
rte_mbuf* tagged_packet(uint8_t tag) { return to_mbuf(Bytes{tag, 0, 0, 0}); }
uint8_t tag_of(rte_mbuf* mbuf) { return *rte_pktmbuf_mtod(mbuf, uint8_t*); }

void free_all(std::vector<rte_mbuf*>& mbufs) {
  for (auto* mbuf : mbufs) rte_pktmbuf_free(mbuf);
  mbufs.clear();
}

class NeighborTableTest : public PoolCheckedTest {
 protected:
  NeighborConfig config = small_config();
  NeighborTable table{config};
  rte_ether_addr mac{};
  std::optional<NeighborTable::Request> request;

  HoldResult hold(uint32_t address, rte_mbuf* packet, uint64_t now = kT0) {
    request.reset();
    return table.hold(kPort, address, packet, now, &mac, &request);
  }
};

TEST_F(NeighborTableTest, HoldCreatesAnIncompleteEntryAndAsksForOneRequest) {
  ASSERT_EQ(hold(lan_host(), tagged_packet(1)), HoldResult::kHeld);
  ASSERT_TRUE(request.has_value());
  EXPECT_EQ(request->port, kPort);
  EXPECT_EQ(request->ip, lan_host());
  const auto* entry = table.find(kPort, lan_host());
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->state, State::kIncomplete);
  EXPECT_EQ(entry->held.size(), 1u);
  EXPECT_EQ(entry->probes_sent, 1u);

  ASSERT_EQ(hold(lan_host(), tagged_packet(2)), HoldResult::kHeld);
  EXPECT_FALSE(request.has_value()) << "one request per resolution, not one per packet";
  EXPECT_EQ(table.find(kPort, lan_host())->held.size(), 2u);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.find(1, lan_host()), nullptr) << "entries are per port";
}

TEST_F(NeighborTableTest, HoldPacketsIsABound) {
  for (uint8_t i = 0; i < config.hold_packets; ++i) {
    ASSERT_EQ(hold(lan_host(), tagged_packet(i)), HoldResult::kHeld);
  }
  rte_mbuf* extra = tagged_packet(99);
  EXPECT_EQ(hold(lan_host(), extra), HoldResult::kHoldFull);
  rte_pktmbuf_free(extra);  // still the caller's
  EXPECT_EQ(table.find(kPort, lan_host())->held.size(), config.hold_packets);
}

TEST_F(NeighborTableTest, ZeroHoldPacketsHoldsNothingButStillResolves) {
  config.hold_packets = 0;
  NeighborTable strict(config);
  rte_mbuf* packet = tagged_packet(1);
  EXPECT_EQ(strict.hold(kPort, lan_host(), packet, kT0, &mac, &request), HoldResult::kHoldFull);
  EXPECT_TRUE(request.has_value());
  rte_pktmbuf_free(packet);
}

TEST_F(NeighborTableTest, MaxEntriesIsABound) {
  for (uint32_t i = 0; i < config.max_entries; ++i)
    ASSERT_EQ(hold(ip("10.10.0.100") + i, tagged_packet(static_cast<uint8_t>(i))), HoldResult::kHeld);
  rte_mbuf* extra = tagged_packet(99);
  EXPECT_EQ(hold(ip("10.10.1.1"), extra), HoldResult::kTableFull);
  EXPECT_FALSE(request.has_value());
  rte_pktmbuf_free(extra);
  EXPECT_EQ(table.size(), config.max_entries);
  // An existing entry still takes packets.
  EXPECT_EQ(hold(ip("10.10.0.100"), tagged_packet(100)), HoldResult::kHeld);
  // And learning cannot grow the table past the bound either.
  std::vector<rte_mbuf*> released;
  table.learn(kPort, ip("10.10.1.2"), lan_host_mac(), true, kT0, released);
  EXPECT_EQ(table.find(kPort, ip("10.10.1.2")), nullptr);
}

TEST_F(NeighborTableTest, LearnReleasesHeldPacketsInOrder) {
  for (uint8_t i = 1; i <= 3; ++i) {
    ASSERT_EQ(hold(lan_host(), tagged_packet(i)), HoldResult::kHeld);
  }
  std::vector<rte_mbuf*> released;
  table.learn(kPort, lan_host(), lan_host_mac(), false, kT0 + 5, released);
  ASSERT_EQ(released.size(), 3u);
  for (uint8_t i = 0; i < 3; ++i) {
    EXPECT_EQ(tag_of(released[i]), i + 1) << "oldest first";
  }
  free_all(released);
  const auto* entry = table.find(kPort, lan_host());
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->state, State::kReachable);
  EXPECT_TRUE(same_mac(entry->mac, lan_host_mac()));
  EXPECT_TRUE(entry->held.empty());
  EXPECT_EQ(entry->expires_ms, kT0 + 5 + 30'000);
  // Resolved now: the next packet is not held.
  rte_mbuf* packet = tagged_packet(4);
  EXPECT_EQ(hold(lan_host(), packet), HoldResult::kResolved);
  EXPECT_TRUE(same_mac(mac, lan_host_mac()));
  rte_pktmbuf_free(packet);
}

TEST_F(NeighborTableTest, LearnWithoutCreateDoesNotCreate) {
  std::vector<rte_mbuf*> released;
  table.learn(kPort, lan_host(), lan_host_mac(), false, kT0, released);
  EXPECT_EQ(table.find(kPort, lan_host()), nullptr);
  EXPECT_EQ(table.size(), 0u);
  table.learn(kPort, lan_host(), lan_host_mac(), true, kT0, released);
  ASSERT_NE(table.find(kPort, lan_host()), nullptr);
  EXPECT_EQ(table.find(kPort, lan_host())->state, State::kReachable);
  EXPECT_TRUE(released.empty());
}

TEST_F(NeighborTableTest, LearnUpdatesAChangedMacAndLeavesStaticEntries) {
  std::vector<rte_mbuf*> released;
  table.learn(kPort, lan_host(), lan_host_mac(), true, kT0, released);
  table.snapshot();
  EXPECT_FALSE(table.changed());
  table.learn(kPort, lan_host(), lan_host_mac(), false, kT0 + 1, released);
  EXPECT_FALSE(table.changed()) << "a confirmation with the same MAC changes nothing workers see";
  table.learn(kPort, lan_host(), lan_host2_mac(), false, kT0 + 2, released);
  EXPECT_TRUE(table.changed());
  EXPECT_TRUE(same_mac(table.find(kPort, lan_host())->mac, lan_host2_mac()));

  table.add_static(1, wan_gw(), wan_gw_mac());
  table.learn(1, wan_gw(), lan_host_mac(), true, kT0, released);
  EXPECT_TRUE(same_mac(table.find(1, wan_gw())->mac, wan_gw_mac())) << "static entries are not overwritten";
  EXPECT_EQ(table.find(1, wan_gw())->state, State::kStatic);
}

TEST_F(NeighborTableTest, TickRetriesThenGivesHeldPacketsBackAsUnreachable) {
  ASSERT_EQ(hold(lan_host(), tagged_packet(1)), HoldResult::kHeld);
  ASSERT_EQ(hold(lan_host(), tagged_packet(2)), HoldResult::kHeld);
  std::vector<NeighborTable::Request> requests;
  std::vector<rte_mbuf*> unreachable;

  table.tick(kT0 + config.retry_ms - 1, requests, unreachable);
  EXPECT_TRUE(requests.empty()) << "not before retry_ms";
  // Requests 2 and 3 (the first went out with the hold).
  for (uint32_t attempt = 2; attempt <= config.retries; ++attempt) {
    requests.clear();
    table.tick(kT0 + (attempt - 1) * config.retry_ms, requests, unreachable);
    ASSERT_EQ(requests.size(), 1u) << "attempt " << attempt;
    EXPECT_EQ(requests[0].ip, lan_host());
    EXPECT_EQ(requests[0].port, kPort);
    EXPECT_TRUE(unreachable.empty());
    EXPECT_EQ(table.find(kPort, lan_host())->probes_sent, attempt);
    requests.clear();
    table.tick(kT0 + (attempt - 1) * config.retry_ms + 1, requests, unreachable);
    EXPECT_TRUE(requests.empty()) << "one request per retry_ms";
  }
  requests.clear();
  table.tick(kT0 + config.retries * config.retry_ms, requests, unreachable);
  EXPECT_TRUE(requests.empty());
  ASSERT_EQ(unreachable.size(), 2u);
  EXPECT_EQ(tag_of(unreachable[0]), 1);
  EXPECT_EQ(tag_of(unreachable[1]), 2);
  EXPECT_EQ(table.find(kPort, lan_host()), nullptr);
  free_all(unreachable);
}

TEST_F(NeighborTableTest, ResolveStartsResolutionWithoutAPacket) {
  table.resolve(1, wan_gw(), kT0, &request);
  ASSERT_TRUE(request.has_value());
  EXPECT_EQ(request->ip, wan_gw());
  EXPECT_EQ(table.find(1, wan_gw())->state, State::kIncomplete);
  request.reset();
  table.resolve(1, wan_gw(), kT0, &request);
  EXPECT_FALSE(request.has_value()) << "already being resolved";
}

TEST_F(NeighborTableTest, ReachableTurnsProbeThenIsRemovedWhenUnanswered) {
  std::vector<rte_mbuf*> released, unreachable;
  std::vector<NeighborTable::Request> requests;
  table.learn(kPort, lan_host(), lan_host_mac(), true, kT0, released);
  table.snapshot();
  const uint64_t expiry = kT0 + uint64_t{config.reachable_s} * 1000;

  table.tick(expiry - 1, requests, unreachable);
  EXPECT_EQ(table.find(kPort, lan_host())->state, State::kReachable);
  EXPECT_TRUE(requests.empty());

  table.tick(expiry, requests, unreachable);
  EXPECT_EQ(table.find(kPort, lan_host())->state, State::kProbe);
  ASSERT_EQ(requests.size(), 1u) << "the first probe goes out at once";
  EXPECT_FALSE(table.changed()) << "a probing neighbour is still used";
  auto snapshot = table.snapshot();
  ASSERT_NE(snapshot->lookup(kPort, lan_host()), nullptr);

  for (uint32_t probe = 2; probe <= config.retries; ++probe) {
    requests.clear();
    table.tick(expiry + (probe - 1) * config.retry_ms, requests, unreachable);
    EXPECT_EQ(requests.size(), 1u);
  }
  requests.clear();
  table.tick(expiry + config.retries * config.retry_ms, requests, unreachable);
  EXPECT_TRUE(requests.empty());
  EXPECT_EQ(table.find(kPort, lan_host()), nullptr);
  EXPECT_TRUE(table.changed());
  EXPECT_EQ(table.snapshot()->lookup(kPort, lan_host()), nullptr);
  EXPECT_TRUE(unreachable.empty());
}

TEST_F(NeighborTableTest, AnsweredProbeIsReachableAgain) {
  std::vector<rte_mbuf*> released, unreachable;
  std::vector<NeighborTable::Request> requests;
  table.learn(kPort, lan_host(), lan_host_mac(), true, kT0, released);
  const uint64_t expiry = kT0 + uint64_t{config.reachable_s} * 1000;
  table.tick(expiry, requests, unreachable);
  ASSERT_EQ(table.find(kPort, lan_host())->state, State::kProbe);
  table.learn(kPort, lan_host(), lan_host_mac(), false, expiry + 10, released);
  EXPECT_EQ(table.find(kPort, lan_host())->state, State::kReachable);
  requests.clear();
  table.tick(expiry + 10 * config.retry_ms, requests, unreachable);
  EXPECT_NE(table.find(kPort, lan_host()), nullptr);
  EXPECT_TRUE(requests.empty());
}

TEST_F(NeighborTableTest, StaticEntriesNeverExpire) {
  table.add_static(kPort, lan_host(), lan_host_mac());
  std::vector<rte_mbuf*> unreachable;
  std::vector<NeighborTable::Request> requests;
  table.tick(kT0 + 1'000'000'000, requests, unreachable);
  ASSERT_NE(table.find(kPort, lan_host()), nullptr);
  EXPECT_TRUE(requests.empty());
}

TEST_F(NeighborTableTest, SnapshotHasResolvedEntriesOnly) {
  std::vector<rte_mbuf*> released;
  table.learn(kPort, lan_host(), lan_host_mac(), true, kT0, released);
  table.add_static(1, wan_gw(), wan_gw_mac());
  ASSERT_EQ(hold(lan_host2(), tagged_packet(1)), HoldResult::kHeld);
  EXPECT_TRUE(table.changed());
  auto snapshot = table.snapshot();
  EXPECT_FALSE(table.changed());
  EXPECT_EQ(snapshot->size(), 2u);
  ASSERT_NE(snapshot->lookup(kPort, lan_host()), nullptr);
  EXPECT_TRUE(same_mac(*snapshot->lookup(kPort, lan_host()), lan_host_mac()));
  ASSERT_NE(snapshot->lookup(1, wan_gw()), nullptr);
  EXPECT_TRUE(same_mac(*snapshot->lookup(1, wan_gw()), wan_gw_mac()));
  EXPECT_EQ(snapshot->lookup(kPort, lan_host2()), nullptr) << "incomplete";
  EXPECT_EQ(snapshot->lookup(1, lan_host()), nullptr) << "other port";
  EXPECT_EQ(snapshot->lookup(kPort, ip("10.10.0.200")), nullptr);
}

TEST(NeighborSnapshot, TenThousandEntries) {
  NeighborConfig config;
  config.max_entries = 20000;
  NeighborTable table(config);
  std::vector<rte_mbuf*> released;
  // Addresses that collide in the low bits and on two ports, the kind a weak hash chains.
  for (uint32_t i = 0; i < 10000; ++i) {
    uint16_t port = static_cast<uint16_t>(i % 2);
    uint32_t address = ip("10.0.0.0") + (i / 2) * 256 + (i % 7);
    rte_ether_addr mac = make_mac(0x02, 0, static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8),
                                  static_cast<uint8_t>(i), static_cast<uint8_t>(port));
    if (i % 3 == 0)
      table.add_static(port, address, mac);
    else
      table.learn(port, address, mac, true, kT0, released);
  }
  ASSERT_EQ(table.size(), 10000u);
  auto snapshot = table.snapshot();
  EXPECT_EQ(snapshot->size(), 10000u);
  for (uint32_t i = 0; i < 10000; ++i) {
    uint16_t port = static_cast<uint16_t>(i % 2);
    uint32_t address = ip("10.0.0.0") + (i / 2) * 256 + (i % 7);
    const rte_ether_addr* mac = snapshot->lookup(port, address);
    ASSERT_NE(mac, nullptr) << "entry " << i;
    EXPECT_EQ(mac->addr_bytes[4], static_cast<uint8_t>(i));
    EXPECT_EQ(mac->addr_bytes[3], static_cast<uint8_t>(i >> 8));
    EXPECT_EQ(snapshot->lookup(static_cast<uint16_t>(port + 2), address), nullptr);
  }
  for (uint32_t i = 0; i < 1000; ++i) {
    EXPECT_EQ(snapshot->lookup(0, ip("172.16.0.0") + i), nullptr);
  }
}

TEST(NeighborSnapshot, EmptyLookupTerminates) {
  NeighborSnapshot empty({});
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(empty.lookup(0, 0), nullptr);
  EXPECT_EQ(empty.lookup(3, 0xffffffff), nullptr);
}

TEST_F(NeighborTableTest, ClearReleasesEverythingAndToJsonDescribes) {
  std::vector<rte_mbuf*> released;
  table.learn(kPort, lan_host(), lan_host_mac(), true, kT0, released);
  ASSERT_EQ(hold(lan_host2(), tagged_packet(1)), HoldResult::kHeld);
  auto rows = table.to_json({"lan0", "wan0"}, kT0 + 1000, -1);
  ASSERT_EQ(rows.size(), 2u);
  bool saw_incomplete = false, saw_reachable = false;
  for (const auto& row : rows) {
    EXPECT_EQ(row["port"], "lan0");
    if (row["state"] == "incomplete") {
      saw_incomplete = true;
      EXPECT_EQ(row["address"], "10.10.0.12");
      EXPECT_EQ(row["held_packets"], 1);
      EXPECT_EQ(row["mac"], "");
    } else {
      saw_reachable = true;
      EXPECT_EQ(row["state"], "reachable");
      EXPECT_EQ(row["mac"], mac_text(lan_host_mac()));
      EXPECT_DOUBLE_EQ(row["expires_s"].get<double>(), 29.0);
    }
  }
  EXPECT_TRUE(saw_incomplete && saw_reachable);
  EXPECT_TRUE(table.to_json({"lan0", "wan0"}, kT0, 1).empty()) << "port filter";
  table.clear(released);
  EXPECT_EQ(released.size(), 1u);
  EXPECT_EQ(table.size(), 0u);
  free_all(released);
}

TEST_F(NeighborTableTest, DestructorFreesHeldPackets) {
  // The pool check of the fixture fails if these stay allocated.
  NeighborTable scoped(config);
  for (uint8_t i = 0; i < 3; ++i) scoped.hold(kPort, lan_host(), tagged_packet(i), kT0, &mac, &request);
}

}  // namespace
}  // namespace fairgate::test
