// Scheduler costs on synthetic mbufs: SchedPort (librte_sched) enqueue + dequeue at 1 k, 4 k and
// 16 k subscribers, and the memory a port takes per subscriber; also a LAN port of a gateway with
// two WANs (an internet subport per WAN, every subscriber with a pipe in each).
//
//   build/perf/sched_bench --benchmark_counters_tabular=true
//
// The port is a LAN download port of 100 Gbit/s with one pipe per subscriber (guarantee link/N,
// ceil the link), the local subport at 1 Gbit/s, PIE on every queue (the default AQM); at that
// rate no token bucket runs dry, so dequeue hands back what is queued and the figures are the
// scheduler's own work, not its shaping. The scheduler holds a standing backlog (primed before
// the timed loop); every iteration enqueues a burst of 32 64-byte packets and dequeues up to 32,
// whose mbufs are tagged again and become the next burst (topped up from the pool while the
// backlog is below its target). Tagging is outside the timed region; cycles are TSC cycles read
// around enqueue and dequeue only, per packet dequeued, and Mpps per core is the TSC rate
// divided by them; packets_per_dequeue shows whether dequeue handed back full bursts.
// BM_RingPassThrough, the reference, moves the same bursts through an rte_ring holding the same
// backlog: a plain FIFO, the stage without scheduling.
#include "bench_common.h"
#include "core/packet_meta.h"
#include "pipeline/stage.h"
#include "qos/hierarchy.h"
#include "qos/sched_port.h"

#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <malloc.h>

#include <memory>
#include <stdexcept>
#include <string>

using namespace fairgate;

namespace {

constexpr uint64_t kLinkBps = 100'000'000'000;  // fast enough that no rate limits a core
constexpr uint64_t kLocalBps = 1'000'000'000;
constexpr uint16_t kMtu = 1500;
// Packets the scheduler holds between bursts when they are spread over every pipe: 4 per pipe at
// 1 k subscribers, far below what a pipe's queues hold (SchedPort::kQueuePackets each).
constexpr uint32_t kSpreadBacklog = 4096;
// Into one pipe: strict priority and the best-effort weights serve P2P last, so the standing
// backlog gathers in the pipe's one P2P queue (64 packets); the target and a burst fit in it.
constexpr uint32_t kOnePipeBacklog = 16;
// The backlog, a burst and the pool's per-lcore cache, with room to spare.
constexpr unsigned kPoolMbufs = 16383;

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

rte_mempool* pool() {
  static rte_mempool* instance = [] {
    rte_mempool* created = rte_pktmbuf_pool_create("sched_bench_pool", kPoolMbufs, 256, kMbufPrivSize,
                                                   RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(rte_socket_id()));
    if (created == nullptr) throw std::runtime_error("cannot create the mbuf pool");
    return created;
  }();
  return instance;
}

// `count` 64-byte packets from the pool; librte_sched reads only their length and tag, so their
// bytes are left as they are. False when the pool ran dry.
bool allocate(rte_mbuf** packets, uint32_t count) {
  if (rte_pktmbuf_alloc_bulk(pool(), packets, count) != 0) return false;
  for (uint32_t i = 0; i < count; ++i) rte_pktmbuf_append(packets[i], bench::kFrameLen);
  return true;
}

// A download port as build_hierarchy makes it for `subscribers` subscribers with equal shares,
// behind `wans` WAN links that split kLinkBps between them.
PortNode port_node(uint32_t subscribers, uint32_t wans) {
  PortNode node;
  node.name = "lan0";
  node.download = true;
  node.rate_bps = kLinkBps;
  node.link_bps = kLinkBps;
  for (uint32_t w = 0; w < wans; ++w) {
    uint64_t link_bps = kLinkBps / wans;
    SubportNode internet{.name = "internet via wan" + std::to_string(w),
                         .rate_bps = link_bps,
                         .ceil_bps = link_bps,
                         .wan_port = static_cast<int>(w + 1)};
    internet.pipes.reserve(subscribers);
    for (uint32_t i = 0; i < subscribers; ++i)
      internet.pipes.push_back(PipeNode{.pipe = i,
                                        .name = "subscriber" + std::to_string(i),
                                        .rate_bps = link_bps / subscribers,
                                        .ceil_bps = link_bps});
    node.subports.push_back(std::move(internet));
  }
  node.subports.push_back(SubportNode{.name = "local", .rate_bps = kLocalBps, .ceil_bps = kLocalBps});
  return node;
}


// Mostly web and streaming (normal) and downloads (bulk), some interactive, some P2P.
TrafficClass traffic_class(uint64_t draw) {
  switch (draw % 8) {
    case 0: return TrafficClass::kInteractive;
    case 1: case 2: case 3: return TrafficClass::kNormal;
    case 4: case 5: case 6: return TrafficClass::kBulk;
    default: return TrafficClass::kP2p;
  }
}

void report(benchmark::State& state, uint64_t cycles, uint64_t packets) {
  double per_packet = static_cast<double>(cycles) / static_cast<double>(packets);
  state.counters["cycles_per_packet"] = per_packet;
  state.counters["Mpps_per_core"] = static_cast<double>(rte_get_tsc_hz()) / per_packet / 1e6;
}

// The timed loop for the scheduler; `spread` draws a pipe per packet over all subscribers, else
// every packet goes to pipe 0. With `wans` > 1 each packet also draws the WAN it came by.
// `count_drops`: the port counts dropped downloads (qos.count_download_drops), which costs a
// reference more on every packet while librte_sched takes it, a look at every packet dequeued
// and a charge queue per pipe; nothing is dropped here.
void run_sched(benchmark::State& state, bool spread, uint32_t wans = 1, bool count_drops = false) {
  auto subscribers = static_cast<uint32_t>(state.range(0));
  uint32_t backlog_target = spread ? kSpreadBacklog : kOnePipeBacklog;
  PortNode node = port_node(subscribers, wans);
  SchedPort::Options options{.mtu = kMtu,
                             .socket = static_cast<int>(rte_socket_id()),
                             .pipe_capacity = subscribers,
                             .aqm = QosConfig::Aqm::kPie,
                             .count_drops = count_drops};
  std::size_t heap_before = bench::heap_allocated(), cxx_before = bench::cxx_heap_allocated();
  std::unique_ptr<SchedPort> port;
  try {
    port = std::make_unique<SchedPort>(node, options);
  } catch (const std::runtime_error& error) {
    state.SkipWithError(error.what());
    return;
  }
  std::size_t port_bytes = bench::heap_allocated() - heap_before + bench::cxx_heap_allocated() - cxx_before;

  uint64_t rng = 12345;
  auto tag = [&](rte_mbuf** packets, uint32_t count) {
    for (uint32_t i = 0; i < count; ++i) {
      uint64_t draw = splitmix64(rng);
      auto pipe = spread ? static_cast<uint32_t>(draw % subscribers) : 0;
      uint32_t subport = port->internet_subport(static_cast<uint16_t>(1 + (draw >> 56) % wans));
      port->tag(packets[i], subport, pipe, traffic_class(draw >> 32), static_cast<uint32_t>(draw >> 40));
    }
  };
  rte_mbuf* burst[kBurstSize];
  uint64_t backlog = 0;
  while (backlog < backlog_target) {
    if (!allocate(burst, kBurstSize)) {
      state.SkipWithError("the mbuf pool ran dry");
      return;
    }
    tag(burst, kBurstSize);
    backlog += port->enqueue(burst, kBurstSize);
  }

  uint32_t count = 0;  // packets in `burst`: what the last dequeue handed back
  uint64_t cycles = 0, dequeued = 0;
  for (auto _ : state) {
    uint32_t top_up = backlog < backlog_target ? kBurstSize - count : 0;
    if (!allocate(burst + count, top_up)) {
      rte_pktmbuf_free_bulk(burst, count);
      state.SkipWithError("the mbuf pool ran dry");
      return;
    }
    count += top_up;
    tag(burst, count);
    uint64_t start = rte_rdtsc_precise();
    uint32_t queued = port->enqueue(burst, count);
    uint32_t out = port->dequeue(burst, kBurstSize);
    cycles += rte_rdtsc_precise() - start;
    if (queued != count) {
      rte_pktmbuf_free_bulk(burst, out);
      state.SkipWithError("the scheduler dropped packets (a full queue or AQM)");
      return;
    }
    backlog += queued;
    backlog -= out;
    dequeued += out;
    count = out;
  }
  rte_pktmbuf_free_bulk(burst, count);
  port.reset();  // rte_sched_port_free returns the queued mbufs to the pool
  report(state, cycles, dequeued);
  state.counters["packets_per_dequeue"] = static_cast<double>(dequeued) / static_cast<double>(state.iterations());
  state.counters["bytes_per_subscriber"] = static_cast<double>(port_bytes) / subscribers;
}

void BM_SchedEnqueueDequeue(benchmark::State& state) { run_sched(state, true); }
BENCHMARK(BM_SchedEnqueueDequeue)->Arg(1024)->Arg(4096)->Arg(16384)->ArgName("subscribers");

// Every packet to one pipe: its queues and state stay in cache, and only one pipe has a backlog.
void BM_SchedEnqueueDequeueOnePipe(benchmark::State& state) { run_sched(state, false); }
BENCHMARK(BM_SchedEnqueueDequeueOnePipe)->Arg(1024)->Arg(4096)->Arg(16384)->ArgName("subscribers");

// Two WANs: the port has an internet subport per WAN, so twice the pipes and queues.
void BM_SchedEnqueueDequeueTwoWans(benchmark::State& state) { run_sched(state, true, 2); }
BENCHMARK(BM_SchedEnqueueDequeueTwoWans)->Arg(1024)->Arg(4096)->Arg(16384)->ArgName("subscribers");

// As a LAN port runs by default (qos.count_download_drops).
void BM_SchedEnqueueDequeueCountingDrops(benchmark::State& state) { run_sched(state, true, 1, true); }
BENCHMARK(BM_SchedEnqueueDequeueCountingDrops)->Arg(1024)->Arg(4096)->Arg(16384)->ArgName("subscribers");

void BM_RingPassThrough(benchmark::State& state) {
  rte_ring* ring = rte_ring_create("sched_bench_ring", 2 * kSpreadBacklog, static_cast<int>(rte_socket_id()),
                                   RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (ring == nullptr) {
    state.SkipWithError("cannot create the ring");
    return;
  }
  rte_mbuf* burst[kBurstSize];
  bool filled = true;  // the backlog, then the burst
  for (uint32_t backlog = 0; filled && backlog < kSpreadBacklog; backlog += kBurstSize)
    filled = allocate(burst, kBurstSize) &&
             rte_ring_enqueue_bulk(ring, reinterpret_cast<void**>(burst), kBurstSize, nullptr) == kBurstSize;
  filled = filled && allocate(burst, kBurstSize);
  if (filled) {
    uint64_t cycles = 0, dequeued = 0;
    for (auto _ : state) {
      uint64_t start = rte_rdtsc_precise();
      rte_ring_enqueue_bulk(ring, reinterpret_cast<void**>(burst), kBurstSize, nullptr);
      dequeued += rte_ring_dequeue_bulk(ring, reinterpret_cast<void**>(burst), kBurstSize, nullptr);
      cycles += rte_rdtsc_precise() - start;
    }
    rte_pktmbuf_free_bulk(burst, kBurstSize);
    report(state, cycles, dequeued);
  } else {
    state.SkipWithError("the mbuf pool ran dry");
  }
  void* held;
  while (rte_ring_dequeue(ring, &held) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(held));
  rte_ring_free(ring);
}
BENCHMARK(BM_RingPassThrough);

}  // namespace

int main(int argc, char** argv) {
  // The mbuf pool (about 40 MiB) and one port of up to twice 16 k pipes (about 170 MiB) at a time.
  if (!fairgate::bench::init_eal("sched_bench", 384)) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  rte_eal_cleanup();
  return 0;
}
