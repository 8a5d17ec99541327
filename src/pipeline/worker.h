// A poll-mode worker: polls its RX queues in bursts, runs the pipeline of the port's role,
// acts on the verdicts, drains what the management thread wants sent, and backs off when idle.
#pragma once

#include "config/config.h"
#include "pipeline/pipeline_spec.h"
#include "pipeline/stage.h"
#include "pipeline/stage_registry.h"
#include "pipeline/worker_state.h"

#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <atomic>
#include <memory>
#include <vector>

namespace fairgate {

inline constexpr unsigned kWorkerRingSize = 1024;  // punt and management-TX rings, mbufs

struct WorkerDeps {
  const Config& config;
  const PortTable& ports;
  const PipelineSpec& pipeline;
  const RcuPublished<NeighborSnapshot>& neighbors;
  rte_rcu_qsbr* qsbr = nullptr;  // null: no RCU reporting (single-threaded tests)
};

class alignas(RTE_CACHE_LINE_SIZE) Worker {
 public:
  Worker(uint16_t index, const WorkerConfig& worker_config, const WorkerDeps& deps);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // The lcore loop; returns when `stop` becomes true, with its TX buffers flushed.
  void run(const std::atomic<bool>& stop);

  // One burst through the pipeline for `rx_port` (port index). Used by run(), tests, benchmarks.
  void process_burst(uint16_t rx_port, rte_mbuf** pkts, uint16_t count);
  // Sends what the management thread queued and flushes the TX buffers.
  void drain_management_tx();
  void flush_tx();

  uint16_t index() const { return index_; }
  const WorkerCounters& counters() const { return counters_; }
  const std::vector<RxQueueRef>& rx_queues() const { return rx_; }
  rte_ring* punt_ring() const { return punt_ring_; }  // worker -> management
  rte_ring* tx_ring() const { return tx_ring_; }      // management -> worker (frames with mbuf->port = port index)
  // Stage names and their packet counters, per direction.
  const std::vector<std::unique_ptr<Stage>>& stages(PortRole role) const {
    return role == PortRole::kLan ? from_lan_ : from_wan_;
  }

 private:
  void dispose(Burst& burst);
  void idle_backoff(unsigned& idle_rounds);

  uint16_t index_;
  WorkerCounters counters_;
  WorkerTx tx_;
  const WorkerDeps deps_;
  std::vector<RxQueueRef> rx_;
  std::vector<std::unique_ptr<Stage>> from_lan_, from_wan_;
  rte_ring* punt_ring_ = nullptr;
  rte_ring* tx_ring_ = nullptr;
  Burst burst_;
};

}  // namespace fairgate
