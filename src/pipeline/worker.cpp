#include "pipeline/worker.h"

#include "core/packet_meta.h"

#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>

#include <stdexcept>
#include <string>
#include <time.h>

namespace fairgate {
namespace {

constexpr unsigned kSpinRoundsBeforeSleep = 256;  // empty polls spent in rte_pause() first
constexpr unsigned kFirstSleepUs = 10;
constexpr uint64_t kTxDrainUs = 100;  // longest a packet waits in a part-filled TX buffer

void count_tx_failures(rte_mbuf** unsent, uint16_t count, void* userdata) {
  auto* sink = static_cast<WorkerTx::FailureSink*>(userdata);
  sink->counters->drop(DropReason::kTxFull, count);
  sink->counters->ports[sink->port].tx_dropped.add(count);
  rte_pktmbuf_free_bulk(unsent, count);
}

rte_ring* make_ring(const std::string& name, unsigned flags) {
  rte_ring* ring = rte_ring_create(name.c_str(), kWorkerRingSize, SOCKET_ID_ANY, flags);
  if (ring == nullptr) throw std::runtime_error("cannot create ring " + name + ": " + rte_strerror(rte_errno));
  return ring;
}

}  // namespace

Worker::Worker(uint16_t index, const WorkerConfig& worker_config, const WorkerDeps& deps)
    : index_(index), deps_(deps), rx_(worker_config.rx) {
  tx_.queue = index;
  for (uint16_t p = 0; p < deps.ports.ports.size(); ++p) {
    tx_.dpdk_port[p] = deps.ports.ports[p].dpdk_port;
    tx_.buffer[p] = static_cast<rte_eth_dev_tx_buffer*>(
        rte_zmalloc_socket("tx_buffer", RTE_ETH_TX_BUFFER_SIZE(kBurstSize), RTE_CACHE_LINE_SIZE, SOCKET_ID_ANY));
    if (tx_.buffer[p] == nullptr) throw std::runtime_error("out of memory for TX buffers");
    rte_eth_tx_buffer_init(tx_.buffer[p], kBurstSize);
    tx_.failure[p] = {&counters_, p};
    rte_eth_tx_buffer_set_err_callback(tx_.buffer[p], count_tx_failures, &tx_.failure[p]);
  }
  StageEnv env{deps.config, deps.ports, deps.neighbors, counters_, tx_, index};
  for (const auto& name : deps.pipeline.from_lan) from_lan_.push_back(create_stage(name, env));
  for (const auto& name : deps.pipeline.from_wan) from_wan_.push_back(create_stage(name, env));
  // Single producer, single consumer: each ring connects this worker and the management thread.
  auto suffix = std::to_string(index) + "_" + std::to_string(reinterpret_cast<uintptr_t>(this) & 0xffffff);
  punt_ring_ = make_ring("punt" + suffix, RING_F_SP_ENQ | RING_F_SC_DEQ);
  tx_ring_ = make_ring("mgtx" + suffix, RING_F_SP_ENQ | RING_F_SC_DEQ);
}

Worker::~Worker() {
  rte_mbuf* mbuf;
  while (rte_ring_dequeue(punt_ring_, reinterpret_cast<void**>(&mbuf)) == 0) rte_pktmbuf_free(mbuf);
  while (rte_ring_dequeue(tx_ring_, reinterpret_cast<void**>(&mbuf)) == 0) rte_pktmbuf_free(mbuf);
  rte_ring_free(punt_ring_);
  rte_ring_free(tx_ring_);
  for (auto* buffer : tx_.buffer) rte_free(buffer);
}

void Worker::process_burst(uint16_t rx_port, rte_mbuf** pkts, uint16_t count) {
  Burst& burst = burst_;
  burst.reset(rx_port, count);
  auto& port_counters = counters_.ports[rx_port];
  port_counters.rx_packets.add(count);
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < count; ++i) {
    burst.pkts[i] = pkts[i];
    bytes += rte_pktmbuf_pkt_len(pkts[i]);
  }
  port_counters.rx_bytes.add(bytes);

  PortRole role = deps_.ports.ports[rx_port].role;
  auto& stages = role == PortRole::kLan ? from_lan_ : from_wan_;
  auto& stage_counters = counters_.stage_packets[role == PortRole::kLan ? 0 : 1];
  for (std::size_t s = 0; s < stages.size(); ++s) {
    uint16_t live = 0;
    for (uint16_t i = 0; i < count; ++i)
      live += burst.action[i] == Action::kContinue || burst.action[i] == Action::kForward;
    if (live == 0) break;
    stage_counters[s].add(live);
    stages[s]->process(burst);
  }
  dispose(burst);
}

void Worker::dispose(Burst& burst) {
  rte_mbuf* punts[kBurstSize];
  unsigned punt_count = 0;
  for (uint16_t i = 0; i < burst.count; ++i) {
    switch (burst.action[i]) {
      case Action::kSent:
        break;
      case Action::kPunt: {
        PacketMeta* meta = packet_meta(burst.pkts[i]);
        burst.pkts[i]->port = burst.rx_port;  // the management thread needs the ingress port
        counters_.punts[meta->punt_reason].add();
        punts[punt_count++] = burst.pkts[i];
        break;
      }
      case Action::kDrop:
        counters_.drop(burst.drop_reason[i]);
        counters_.ports[burst.rx_port].rx_dropped.add();
        rte_pktmbuf_free(burst.pkts[i]);
        break;
      case Action::kContinue:
      case Action::kForward:
        counters_.drop(DropReason::kNoVerdict);
        counters_.ports[burst.rx_port].rx_dropped.add();
        rte_pktmbuf_free(burst.pkts[i]);
        break;
    }
  }
  if (punt_count > 0) {
    unsigned queued = rte_ring_enqueue_burst(punt_ring_, reinterpret_cast<void**>(punts), punt_count, nullptr);
    if (queued < punt_count) {
      counters_.drop(DropReason::kPuntRingFull, punt_count - queued);
      rte_pktmbuf_free_bulk(punts + queued, punt_count - queued);
    }
  }
}

void Worker::drain_management_tx() {
  rte_mbuf* frames[kBurstSize];
  unsigned count = rte_ring_dequeue_burst(tx_ring_, reinterpret_cast<void**>(frames), kBurstSize, nullptr);
  for (unsigned i = 0; i < count; ++i) {
    uint16_t port = frames[i]->port;
    counters_.ports[port].tx_packets.add();
    counters_.ports[port].tx_bytes.add(rte_pktmbuf_pkt_len(frames[i]));
    tx_.send(port, frames[i]);
  }
}

void Worker::flush_tx() {
  for (uint16_t p = 0; p < deps_.ports.ports.size(); ++p) rte_eth_tx_buffer_flush(tx_.dpdk_port[p], tx_.queue, tx_.buffer[p]);
}

void Worker::idle_backoff(unsigned& idle_rounds) {
  ++idle_rounds;
  if (!deps_.config.dataplane.idle_backoff || idle_rounds < kSpinRoundsBeforeSleep) {
    rte_pause();
    return;
  }
  // Sleep longer the longer the worker stays idle: from 10 us up to max_sleep_us.
  unsigned shift = std::min(idle_rounds - kSpinRoundsBeforeSleep, 10u);
  uint64_t sleep_us = std::min<uint64_t>(uint64_t{kFirstSleepUs} << shift, deps_.config.dataplane.max_sleep_us);
  if (deps_.qsbr) rte_rcu_qsbr_thread_offline(deps_.qsbr, index_);
  timespec duration{0, static_cast<long>(sleep_us * 1000)};
  nanosleep(&duration, nullptr);
  if (deps_.qsbr) rte_rcu_qsbr_thread_online(deps_.qsbr, index_);
  counters_.idle_sleeps.add();
}

void Worker::run(const std::atomic<bool>& stop) {
  if (deps_.qsbr) {
    rte_rcu_qsbr_thread_register(deps_.qsbr, index_);
    rte_rcu_qsbr_thread_online(deps_.qsbr, index_);
  }
  const uint64_t drain_cycles = rte_get_tsc_hz() * kTxDrainUs / 1000000;
  uint64_t last_flush = rte_rdtsc();
  unsigned idle_rounds = 0;
  rte_mbuf* pkts[kBurstSize];
  while (!stop.load(std::memory_order_relaxed)) {
    if (deps_.qsbr) rte_rcu_qsbr_quiescent(deps_.qsbr, index_);
    uint32_t received = 0;
    for (const auto& ref : rx_) {
      uint16_t count = rte_eth_rx_burst(deps_.ports.ports[ref.port].dpdk_port, ref.queue, pkts, kBurstSize);
      if (count == 0) continue;
      received += count;
      process_burst(ref.port, pkts, count);
    }
    drain_management_tx();
    uint64_t now = rte_rdtsc();
    if (received == 0 || now - last_flush > drain_cycles) {
      flush_tx();
      last_flush = now;
    }
    if (received == 0) {
      counters_.idle_polls.add();
      idle_backoff(idle_rounds);
    } else {
      counters_.busy_polls.add();
      idle_rounds = 0;
    }
  }
  drain_management_tx();
  flush_tx();
  if (deps_.qsbr) {
    rte_rcu_qsbr_thread_offline(deps_.qsbr, index_);
    rte_rcu_qsbr_thread_unregister(deps_.qsbr, index_);
  }
}

}  // namespace fairgate
