#include "classify/p2p_dataplane.h"

#include <algorithm>

namespace fairgate {

P2pRateCaps::P2pRateCaps(uint32_t slots)
    : slots_(slots), tsc_hz_(rte_get_tsc_hz()), empty_at_(new std::atomic<uint64_t>[std::size_t{slots} * 2]) {
  for (std::size_t i = 0; i < std::size_t{slots} * 2; ++i) empty_at_[i].store(0, std::memory_order_relaxed);
}

bool P2pRateCaps::admit(uint32_t slot, bool download, uint32_t bytes, uint64_t rate_bps, uint64_t now_tsc) {
  std::atomic<uint64_t>& empty_at = empty_at_[std::size_t{slot} * 2 + download];
  // Cycles the bytes take at the cap; 128-bit so a 10 Gbit/s cap on a 4 GHz clock cannot overflow.
  auto cost = static_cast<uint64_t>(static_cast<unsigned __int128>(bytes) * 8 * tsc_hz_ / rate_bps);
  const uint64_t burst = std::max<uint64_t>(
      tsc_hz_ / 1000 * kBurstMs, static_cast<uint64_t>(static_cast<unsigned __int128>(kBurstBytes) * 8 * tsc_hz_ / rate_bps));
  uint64_t current = empty_at.load(std::memory_order_relaxed);
  for (;;) {
    uint64_t start = current > now_tsc ? current : now_tsc;  // an idle bucket is full, no fuller
    if (start - now_tsc > burst) return false;               // the bucket holds less than these bytes
    if (empty_at.compare_exchange_weak(current, start + cost, std::memory_order_relaxed)) return true;
  }
}

namespace {

P2pInspectorConfig inspector_config(const P2pConfig& config) {
  P2pInspectorConfig inspector;
  inspector.packets_per_direction = config.packets_per_direction;
  inspector.protocols = static_cast<P2pProtocolMask>(config.protocols & kAllP2pProtocols);
  inspector.udp = config.udp;
  return inspector;
}

}  // namespace

P2pWorkerState::P2pWorkerState(const P2pDatabase& database, const P2pConfig& config)
    : inspector(database, inspector_config(config)), peers(config.peer_cache_peers, config.peer_cache_lifetime_s) {}

P2pDataplane::P2pDataplane(const P2pConfig& config, uint16_t workers, uint32_t pipes,
                           std::shared_ptr<const P2pDatabase> database)
    : config_(config), pipes_(pipes), caps_(pipes + 1) {
  database_.publish(std::make_unique<P2pDatabaseVersion>(P2pDatabaseVersion{std::move(database), 0}));
  auto table = std::make_unique<P2pPolicyTable>();
  table->global = config.policy;
  policies_.publish(std::move(table));
  for (uint16_t w = 0; w < workers; ++w) {
    counters_.push_back(std::make_unique<P2pWorkerCounters>());
    counters_.back()->pipes = std::vector<P2pWorkerCounters::Usage>(pipes + 1);
    workers_.push_back(std::make_unique<P2pWorkerState>(*database_.current()->database, config));
  }
}

}  // namespace fairgate
