// What the workers share for P2P recognition: the signature database they scan with and the
// policy table, both published by the management thread (RcuPublished: no worker waits on a
// reload or a policy change), the rate caps every worker charges, and each worker's counters
// and peer cache.
#pragma once

#include "classify/p2p_inspector.h"
#include "classify/p2p_signatures.h"
#include "classify/peer_cache.h"
#include "config/config.h"
#include "core/counters.h"
#include "core/rcu_published.h"

#include <rte_cycles.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace fairgate {

// A compiled signature set as the workers see it; the version keeps the database alive until
// no worker can be scanning with it.
struct P2pDatabaseVersion {
  std::shared_ptr<const P2pDatabase> database;
  uint64_t generation = 0;  // 0 at start, then P2pSignatureLoader::generation() of each reload
};

// The policy of every subscriber pipe: its own, or the global one.
struct P2pPolicyTable {
  P2pPolicy global;
  std::vector<P2pPolicy> by_pipe;  // index: the subscriber's pipe id

  const P2pPolicy& of(uint32_t pipe) const { return pipe < by_pipe.size() ? by_pipe[pipe] : global; }
};

// Per-subscriber P2P rate caps, one per slot and direction, charged by every worker: a
// subscriber's hosts may be spread over workers. Each slot is a virtual-time token bucket
// (GCRA): one atomic word, the time the bucket will be empty again, so workers never lock.
class P2pRateCaps {
 public:
  // What a cap lets through at once: the larger of this time at its rate and kBurstBytes. A
  // policer that allows less than a TCP window or so makes TCP time out instead of slowing down.
  static constexpr uint64_t kBurstMs = 100;
  static constexpr uint64_t kBurstBytes = 64 * 1024;

  explicit P2pRateCaps(uint32_t slots);

  // Whether `bytes` more of the slot's P2P fit `rate_bps` at `now_tsc`; charges them if so.
  bool admit(uint32_t slot, bool download, uint32_t bytes, uint64_t rate_bps, uint64_t now_tsc);
  uint32_t slots() const { return slots_; }

 private:
  uint32_t slots_;
  uint64_t tsc_hz_;
  std::unique_ptr<std::atomic<uint64_t>[]> empty_at_;  // [slot * 2 + download], TSC cycles
};

// One worker's P2P counters; only that worker writes them.
struct alignas(64) P2pWorkerCounters {
  struct Usage {
    RelaxedCounter flows, packets, bytes, dropped;
  };
  std::array<Usage, kP2pProtocolCount> protocols;  // by P2pProtocol
  std::vector<Usage> pipes;                        // by subscriber pipe; the last: hosts without one
  RelaxedCounter from_peer_cache;  // flows labelled because their peer was seen in P2P before
  RelaxedCounter scanned_packets, scanned_bytes, scan_errors;
  RelaxedCounter peer_cache_evictions;
};

// What one worker keeps for recognition, used by the p2p stages of both its pipelines (from
// the LAN and from the WAN): one Hyperscan scratch, and one peer cache so that a peer learnt
// from either direction labels the next flow to it (eDonkey is recognised on the remote's
// answer, a packet from the WAN). Only that worker touches it.
struct P2pWorkerState {
  P2pWorkerState(const P2pDatabase& database, const P2pConfig& config);
  P2pInspector inspector;
  uint64_t generation = 0;  // of the database the inspector scans with
  P2pPeerCache peers;
};

class P2pDataplane {
 public:
  // `pipes`: subscriber pipes that exist (qos.max_subscribers; 0 without shaping).
  P2pDataplane(const P2pConfig& config, uint16_t workers, uint32_t pipes, std::shared_ptr<const P2pDatabase> database);

  const P2pConfig& config() const { return config_; }
  RcuPublished<P2pDatabaseVersion>& database() { return database_; }
  const RcuPublished<P2pDatabaseVersion>& database() const { return database_; }
  RcuPublished<P2pPolicyTable>& policies() { return policies_; }
  const RcuPublished<P2pPolicyTable>& policies() const { return policies_; }
  P2pRateCaps& caps() { return caps_; }
  P2pWorkerCounters& counters(uint16_t worker) { return *counters_[worker]; }
  const P2pWorkerCounters& counters(uint16_t worker) const { return *counters_[worker]; }
  P2pWorkerState& worker(uint16_t worker) { return *workers_[worker]; }
  P2pPeerCache& peers(uint16_t worker) { return workers_[worker]->peers; }
  uint16_t workers() const { return static_cast<uint16_t>(counters_.size()); }
  uint32_t pipes() const { return pipes_; }
  // The counter and cap slot of a pipe: hosts without a subscriber share the last one.
  uint32_t slot_of(uint32_t pipe) const { return pipe < pipes_ ? pipe : pipes_; }

  void set_qsbr(rte_rcu_qsbr* qsbr) {
    database_.set_qsbr(qsbr);
    policies_.set_qsbr(qsbr);
  }
  void reclaim() {
    database_.reclaim();
    policies_.reclaim();
  }

 private:
  P2pConfig config_;
  uint32_t pipes_;
  RcuPublished<P2pDatabaseVersion> database_;
  RcuPublished<P2pPolicyTable> policies_;
  P2pRateCaps caps_;
  std::vector<std::unique_ptr<P2pWorkerCounters>> counters_;
  std::vector<std::unique_ptr<P2pWorkerState>> workers_;
};

}  // namespace fairgate
