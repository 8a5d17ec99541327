// A poll-mode worker: polls its RX queues in bursts, runs the pipeline of the port's role,
// acts on the verdicts, drains what the management thread wants sent, and backs off when idle.
#pragma once

#include "config/config.h"
#include "pipeline/pipeline_spec.h"
#include "pipeline/stage.h"
#include "pipeline/stage_registry.h"
#include "pipeline/worker_state.h"
#include "nat/port_forwards.h"
#include "nat/session_table.h"
#include "classify/p2p_dataplane.h"
#include "qos/qos_dataplane.h"

#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <atomic>
#include <functional>
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
  // Every worker's handoff ring, by worker index; filled before the workers start. Null or
  // empty with a single worker.
  const std::vector<rte_ring*>* handoff_rings = nullptr;
  // Port forwards as published by the management thread; null: the configuration's.
  const RcuPublished<PortForwardTable>* port_forwards = nullptr;
  // The shaped ports' schedulers; null when nothing is shaped. This worker runs those it owns.
  QosDataplane* qos = nullptr;
  // P2P recognition's shared state; null when the configuration has no p2p section.
  P2pDataplane* p2p = nullptr;
  // Which WAN new flows leave by; null when the configuration has no wan section.
  const RcuPublished<WanRoutingTable>* wan_routing = nullptr;
};

// Work the management thread asks a worker to do on its own thread, between bursts, on state
// only that worker may touch (its NAT sessions). See Worker::run_job.
struct WorkerJob {
  std::function<void()> work;
  std::atomic<int> state{0};  // 0 queued, 1 done, 2 abandoned by a caller that timed out
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
  // `handed_off`: the packets were received by another worker and counted there.
  void process_burst(uint16_t rx_port, rte_mbuf** pkts, uint16_t count, bool handed_off = false);
  // Packets other workers handed to this one; returns how many were processed.
  unsigned drain_handoff();
  // Runs queued management jobs; returns how many.
  unsigned run_jobs();
  // Management thread: runs `work` on this worker's thread and waits for it. False when the
  // worker did not get to it within `timeout_ms` (the work is then dropped or finishes alone).
  bool run_job(std::function<void()> work, unsigned timeout_ms, bool worker_running);
  // Moves packets from the inboxes of the schedulers this worker owns into them, and sends what
  // they release. Returns how many packets moved either way.
  unsigned service_schedulers();
  // Sends what the management thread queued (through the gateway's pipe of a shaped port).
  void drain_management_tx();
  void flush_tx();

  uint16_t index() const { return index_; }
  const WorkerCounters& counters() const { return counters_; }
  const std::vector<RxQueueRef>& rx_queues() const { return rx_; }
  rte_ring* punt_ring() const { return punt_ring_; }  // worker -> management
  rte_ring* tx_ring() const { return tx_ring_; }      // management -> worker (frames with mbuf->port = port index)
  rte_ring* handoff_ring() const { return handoff_ring_; }  // other workers -> this one (mbuf->port = rx port)
  SessionTable* nat() const { return nat_.get(); }     // null when the pipeline has no nat stage
  FlowAccounting* flows() const { return flows_.get(); }  // null without a flow stage

 private:
  void dispose(Burst& burst);
  void idle_backoff(unsigned& idle_rounds, bool shaping);

  uint16_t index_;
  WorkerCounters counters_;
  WorkerTx tx_;
  const WorkerDeps deps_;
  std::vector<RxQueueRef> rx_;
  std::unique_ptr<FlowAccounting> flows_;  // before nat_: sessions report to it until they are gone
  std::unique_ptr<SessionTable> nat_;
  std::vector<std::unique_ptr<Stage>> from_lan_, from_wan_;
  std::vector<EgressScheduler*> schedulers_;  // those this worker owns
  rte_ring* punt_ring_ = nullptr;
  rte_ring* tx_ring_ = nullptr;
  rte_ring* handoff_ring_ = nullptr;
  rte_ring* job_ring_ = nullptr;
  Burst burst_;
};

}  // namespace fairgate
