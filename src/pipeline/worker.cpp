#include "pipeline/worker.h"

#include "core/packet_meta.h"

#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <time.h>

namespace fairgate {
namespace {

constexpr unsigned kSpinRoundsBeforeSleep = 256;  // empty polls spent in rte_pause() first
constexpr unsigned kFirstSleepUs = 10;
constexpr uint64_t kTxDrainUs = 100;  // longest a packet waits in a part-filled TX buffer
constexpr uint32_t kExpireBusy = 8;    // NAT sessions examined per busy loop round
constexpr uint32_t kExpireIdle = 256;  // and per idle batch
constexpr uint64_t kExpireIdleUs = 100;  // between idle batches
constexpr unsigned kSchedBurst = 64;     // packets per scheduler enqueue and dequeue
// While a scheduler holds packets the rates will release soon, sleep no longer than this.
constexpr uint64_t kShapingSleepUs = 50;

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
  auto workers = static_cast<uint16_t>(deps.config.workers.size());
  auto uses = [&](const char* stage) {
    return std::find(deps.pipeline.from_lan.begin(), deps.pipeline.from_lan.end(), stage) != deps.pipeline.from_lan.end() ||
           std::find(deps.pipeline.from_wan.begin(), deps.pipeline.from_wan.end(), stage) != deps.pipeline.from_wan.end();
  };
  if (uses("nat")) {
    uint32_t capacity = std::max<uint32_t>(64, deps.config.nat.max_sessions / workers);
    nat_ = std::make_unique<SessionTable>(deps.config.nat, capacity, index, workers, rte_socket_id(),
                                          static_cast<uint8_t>(deps.ports.ports.size()));
    if (uses("flow")) {
      const FlowConfig& flows = deps.config.flows;
      flows_ = std::make_unique<FlowAccounting>(capacity, index, rte_socket_id(),
                                                FlowTimeouts{flows.inactive_timeout_s, flows.active_timeout_s},
                                                flows.ring_records);
      nat_->set_flow_accounting(flows_.get());
    }
    // The gateway's own WAN conversations are never taken for outbound mappings: probe
    // identifiers (ICMP) and the LPA port (UDP), whose answers are the management thread's.
    if (deps.config.wan.enabled)
      for (const auto& link : deps.config.wan.links) {
        for (uint16_t ident = kWanProbeIdentifierBase; ident < kWanProbeIdentifierBase + WanSelector::kMaxWans; ++ident)
          nat_->reserve_port(IPPROTO_ICMP, static_cast<uint8_t>(link.port), ident, true);
        nat_->reserve_port(IPPROTO_UDP, static_cast<uint8_t>(link.port), deps.config.wan.lpa_port, true);
      }
    // Forwarded ports are never handed out to outbound mappings.
    for (const auto& rule : deps.config.nat.port_forwards)
      for (uint8_t p = 0; p < deps.ports.ports.size(); ++p)
        if (deps.ports.ports[p].role == PortRole::kWan)
          for (uint32_t port = rule.external_first; port <= rule.external_last; ++port) {
            if (rule.tcp) nat_->reserve_port(IPPROTO_TCP, p, static_cast<uint16_t>(port), true);
            if (rule.udp) nat_->reserve_port(IPPROTO_UDP, p, static_cast<uint16_t>(port), true);
          }
  }
  StageEnv env{deps.config,   deps.ports, deps.neighbors, counters_,          tx_,
               index,         workers,    nat_.get(),     deps.port_forwards, deps.qos,
               deps.p2p,      deps.wan_routing, flows_.get()};
  if (deps.qos != nullptr)
    for (const auto& scheduler : deps.qos->schedulers())
      if (scheduler->owner == index) schedulers_.push_back(scheduler.get());
  for (const auto& name : deps.pipeline.from_lan) from_lan_.push_back(create_stage(name, env));
  for (const auto& name : deps.pipeline.from_wan) from_wan_.push_back(create_stage(name, env));
  // Single producer, single consumer: each ring connects this worker and the management thread.
  auto suffix = std::to_string(index) + "_" + std::to_string(reinterpret_cast<uintptr_t>(this) & 0xffffff);
  punt_ring_ = make_ring("punt" + suffix, RING_F_SP_ENQ | RING_F_SC_DEQ);
  tx_ring_ = make_ring("mgtx" + suffix, RING_F_SP_ENQ | RING_F_SC_DEQ);
  // Any worker may hand packets to this one.
  handoff_ring_ = make_ring("hand" + suffix, RING_F_SC_DEQ);
  job_ring_ = make_ring("jobs" + suffix, RING_F_SP_ENQ | RING_F_SC_DEQ);
}

Worker::~Worker() {
  rte_mbuf* mbuf;
  while (rte_ring_dequeue(punt_ring_, reinterpret_cast<void**>(&mbuf)) == 0) rte_pktmbuf_free(mbuf);
  while (rte_ring_dequeue(tx_ring_, reinterpret_cast<void**>(&mbuf)) == 0) rte_pktmbuf_free(mbuf);
  while (rte_ring_dequeue(handoff_ring_, reinterpret_cast<void**>(&mbuf)) == 0) rte_pktmbuf_free(mbuf);
  run_jobs();
  rte_ring_free(punt_ring_);
  rte_ring_free(tx_ring_);
  rte_ring_free(handoff_ring_);
  rte_ring_free(job_ring_);
  for (auto* buffer : tx_.buffer) rte_free(buffer);
}

void Worker::process_burst(uint16_t rx_port, rte_mbuf** pkts, uint16_t count, bool handed_off) {
  Burst& burst = burst_;
  burst.reset(rx_port, count);
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < count; ++i) {
    burst.pkts[i] = pkts[i];
    bytes += rte_pktmbuf_pkt_len(pkts[i]);
  }
  if (!handed_off) {
    counters_.ports[rx_port].rx_packets.add(count);
    counters_.ports[rx_port].rx_bytes.add(bytes);
  }

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
      case Action::kHandoff: {
        rte_mbuf* mbuf = burst.pkts[i];
        mbuf->port = burst.rx_port;
        uint8_t owner = packet_meta(mbuf)->handoff_worker;
        if (deps_.handoff_rings == nullptr || owner >= deps_.handoff_rings->size() ||
            rte_ring_enqueue((*deps_.handoff_rings)[owner], mbuf) != 0) {
          counters_.drop(DropReason::kHandoffFull);
          counters_.ports[burst.rx_port].rx_dropped.add();
          rte_pktmbuf_free(mbuf);
        }
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
    EgressScheduler* scheduler = deps_.qos ? deps_.qos->scheduler(port) : nullptr;
    if (scheduler != nullptr) {
      // The gateway's own traffic has its share of a shaped link: the local subport.
      uint32_t local = scheduler->sched->local_subport();
      scheduler->sched->tag(frames[i], local, 0, TrafficClass::kInteractive, 0);
      packet_meta(frames[i])->frame_len = frames[i]->pkt_len;
      frames[i]->pkt_len = scheduler->sched->wire_bytes(local, frames[i]->pkt_len);
      if (rte_ring_enqueue(scheduler->inbox, frames[i]) != 0) {
        counters_.drop(DropReason::kSchedInboxFull);
        rte_pktmbuf_free(frames[i]);
      }
      continue;
    }
    counters_.ports[port].tx_packets.add();
    counters_.ports[port].tx_bytes.add(rte_pktmbuf_pkt_len(frames[i]));
    tx_.send(port, frames[i]);
  }
}

unsigned Worker::service_schedulers() {
  unsigned moved = 0;
  rte_mbuf* pkts[kSchedBurst];
  for (EgressScheduler* scheduler : schedulers_) {
    SchedPort& sched = *scheduler->sched;
    unsigned arrived = rte_ring_dequeue_burst(scheduler->inbox, reinterpret_cast<void**>(pkts), kSchedBurst, nullptr);
    if (arrived != 0) {
      uint32_t queued = sched.enqueue(pkts, arrived);  // the rest was freed (or charged) by the scheduler
      if (queued < arrived) counters_.drop(DropReason::kSchedQueueFull, arrived - queued);
      moved += arrived;
    }
    if (sched.backlog() == 0) continue;
    uint32_t released = sched.dequeue(pkts, kSchedBurst);
    moved += released;
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < released; ++i) {
      rte_mbuf* mbuf = pkts[i];
      mbuf->pkt_len = packet_meta(mbuf)->frame_len;  // it carried its wire bytes through the scheduler
      uint32_t length = mbuf->pkt_len;
      PipeCounters& pipe =
          sched.subport_of(mbuf) == sched.local_subport() ? scheduler->gateway : scheduler->pipes[sched.pipe_of(mbuf)];
      auto tc = static_cast<std::size_t>(SchedPort::class_of(mbuf));
      pipe.bytes[tc].add(length);
      pipe.packets[tc].add();
      bytes += length;
      tx_.send(scheduler->port, mbuf);
    }
    counters_.ports[scheduler->port].tx_packets.add(released);
    counters_.ports[scheduler->port].tx_bytes.add(bytes);
  }
  return moved;
}

unsigned Worker::drain_handoff() {
  rte_mbuf* pkts[kBurstSize];
  unsigned count = rte_ring_dequeue_burst(handoff_ring_, reinterpret_cast<void**>(pkts), kBurstSize, nullptr);
  // Runs of packets from the same receive port go through the pipeline together.
  unsigned start = 0;
  for (unsigned i = 1; i <= count; ++i) {
    if (i == count || pkts[i]->port != pkts[start]->port) {
      process_burst(pkts[start]->port, pkts + start, static_cast<uint16_t>(i - start), true);
      start = i;
    }
  }
  return count;
}

unsigned Worker::run_jobs() {
  WorkerJob* job = nullptr;
  unsigned done = 0;
  while (rte_ring_dequeue(job_ring_, reinterpret_cast<void**>(&job)) == 0) {
    if (job->state.load(std::memory_order_acquire) != 2) job->work();
    if (job->state.exchange(1, std::memory_order_acq_rel) == 2) delete job;
    ++done;
  }
  return done;
}

bool Worker::run_job(std::function<void()> work, unsigned timeout_ms, bool worker_running) {
  if (!worker_running) {  // before start or after stop the caller's thread is the only one
    work();
    return true;
  }
  auto* job = new WorkerJob{std::move(work), {0}};
  if (rte_ring_enqueue(job_ring_, job) != 0) {
    delete job;
    return false;
  }
  for (unsigned waited_us = 0; waited_us < timeout_ms * 1000; waited_us += 50) {
    if (job->state.load(std::memory_order_acquire) == 1) {
      delete job;
      return true;
    }
    timespec pause{0, 50'000};
    nanosleep(&pause, nullptr);
  }
  // Timed out: the worker frees the job when it gets to it (and skips its work).
  if (job->state.exchange(2, std::memory_order_acq_rel) == 1) {
    delete job;
    return true;
  }
  return false;
}

void Worker::flush_tx() {
  for (uint16_t p = 0; p < deps_.ports.ports.size(); ++p) rte_eth_tx_buffer_flush(tx_.dpdk_port[p], tx_.queue, tx_.buffer[p]);
}

void Worker::idle_backoff(unsigned& idle_rounds, bool shaping) {
  ++idle_rounds;
  if (!deps_.config.dataplane.idle_backoff || idle_rounds < kSpinRoundsBeforeSleep) {
    rte_pause();
    return;
  }
  // Sleep longer the longer the worker stays idle: from 10 us up to max_sleep_us, or up to
  // kShapingSleepUs while a scheduler waits for its rates to release packets.
  unsigned shift = std::min(idle_rounds - kSpinRoundsBeforeSleep, 10u);
  uint64_t longest = shaping ? std::min<uint64_t>(kShapingSleepUs, deps_.config.dataplane.max_sleep_us)
                             : deps_.config.dataplane.max_sleep_us;
  uint64_t sleep_us = std::min<uint64_t>(uint64_t{kFirstSleepUs} << shift, longest);
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
  const uint64_t tsc_hz = rte_get_tsc_hz();
  const uint64_t drain_cycles = tsc_hz * kTxDrainUs / 1000000;
  uint64_t last_flush = rte_rdtsc();
  uint64_t last_idle_expiry = last_flush;
  const uint64_t expire_idle_cycles = tsc_hz * kExpireIdleUs / 1000000;
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
    received += drain_handoff();
    drain_management_tx();
    received += service_schedulers();
    run_jobs();
    uint64_t now = rte_rdtsc();
    if (received == 0 || now - last_flush > drain_cycles) {
      flush_tx();
      last_flush = now;
    }
    // Session expiry, amortised: a few sessions per busy round; when idle, a larger batch at
    // most every kExpireIdleUs, so an idle worker does not sweep memory in a tight loop.
    if (nat_ && (received != 0 || now - last_idle_expiry > expire_idle_cycles)) {
      nat_->expire(static_cast<uint32_t>(now / tsc_hz), received == 0 ? kExpireIdle : kExpireBusy,
                   FlowAccounting::tsc_to_ms(now, tsc_hz));
      if (received == 0) last_idle_expiry = now;
    }
    if (received == 0) {
      counters_.idle_polls.add();
      bool shaping = false;
      for (const EgressScheduler* scheduler : schedulers_) shaping |= scheduler->sched->backlog() != 0;
      idle_backoff(idle_rounds, shaping);
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
