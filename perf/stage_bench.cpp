// Per-stage cost of the forwarding path on synthetic mbufs: bursts of 32, warm caches.
// Reports cycles per packet (TSC) and packets per second per core. The baseline is the same
// loop with no stage at all (ring RX -> ring TX), so the ratio to it is the pipeline's cost.
//
//   build/perf/stage_bench --benchmark_counters_tabular=true
#include "bench_common.h"
#include "config/config.h"
#include "core/checksum.h"
#include "core/ipv4_rewrite.h"
#include "core/packet_meta.h"
#include "core/rcu_published.h"
#include "neigh/neighbor_table.h"
#include "pipeline/pipeline_spec.h"
#include "pipeline/worker.h"
#include "qos/qos_control.h"
#include "qos/qos_dataplane.h"
#include "ports/ports.h"
#include "stages/l3/l3_stage.h"
#include "stages/parse/parse_stage.h"

#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

using namespace fairgate;

namespace {

constexpr const char* kConfig = R"({
  "ports": [
    {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
    {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1"}
  ]})";

// The same ports, shaped: the upload link is far faster than any run here, so the scheduler
// never holds packets back and the figure is its cost, not its rate.
constexpr const char* kShapedConfig = R"({
  "ports": [
    {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
    {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1",
     "rate_down": "100gbit", "rate_up": "100gbit"}
  ],
  "qos": {"download": false},
  "subscribers": [{"name": "bench", "addresses": ["10.10.0.0/28"]}]})";

constexpr uint32_t kLanHost = 0x0a0a000b;    // 10.10.0.11
constexpr uint32_t kInetHost = 0xc000020a;   // 192.0.2.10

struct Fixture {
  rte_mempool* pool = nullptr;
  Config config;
  PortTable ports;
  std::vector<rte_ring*> rx_rings, tx_rings;
  RcuPublished<NeighborSnapshot> neighbors;
  PipelineSpec pipeline;

  Fixture() {
    config = parse_config(kConfig);
    ports = make_port_table(config);
    pool = rte_pktmbuf_pool_create("bench_pool", 8191, 256, kMbufPrivSize, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    for (uint16_t p = 0; p < ports.ports.size(); ++p) {
      auto name = std::to_string(p);
      rx_rings.push_back(rte_ring_create(("brx" + name).c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ));
      tx_rings.push_back(rte_ring_create(("btx" + name).c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ));
      int id = rte_eth_from_rings(("bench_ring" + name).c_str(), &rx_rings[p], 1, &tx_rings[p], 1, 0);
      auto port_id = static_cast<uint16_t>(id);
      ports.ports[p].dpdk_port = port_id;
      rte_eth_conf eth_conf{};
      rte_eth_dev_configure(port_id, 1, 1, &eth_conf);
      rte_eth_rx_queue_setup(port_id, 0, 1024, 0, nullptr, pool);
      rte_eth_tx_queue_setup(port_id, 0, 1024, 0, nullptr);
      rte_eth_dev_start(port_id);
    }
    NeighborTable table(config.neighbors);
    table.add_static(1, 0xc6336401, rte_ether_addr{{0x02, 0, 0, 0, 0x99, 0x01}});  // WAN gateway
    table.add_static(0, kLanHost, rte_ether_addr{{0x02, 0, 0x0a, 0x0a, 0, 0x0b}});
    neighbors.publish(table.snapshot());
    pipeline = parse_pipeline_spec(R"({"name": "forward", "from_lan": ["parse", "l3", "tx"],
                                       "from_wan": ["parse", "l3", "tx"]})");
  }
};

Fixture& fixture() {
  static Fixture instance;
  return instance;
}


std::vector<rte_mbuf*> make_burst(Fixture& f) {
  std::vector<rte_mbuf*> pkts(kBurstSize);
  rte_pktmbuf_alloc_bulk(f.pool, pkts.data(), kBurstSize);
  FlowKey key;
  key.src = kLanHost;
  key.dst = kInetHost;
  key.sport = 40000;
  key.dport = 5201;
  key.proto = IPPROTO_UDP;
  for (auto* mbuf : pkts) bench::write_udp_frame(mbuf, f.ports.ports[0].mac, key);
  return pkts;
}

// The l3 stage rewrites TTL and MACs; restoring those fields keeps every iteration identical.
void restore_frames(rte_mbuf** pkts, const PortInfo& lan) {
  for (uint16_t i = 0; i < kBurstSize; ++i) {
    auto* eth = rte_pktmbuf_mtod(pkts[i], rte_ether_hdr*);
    eth->dst_addr = lan.mac;
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
    ipv4_set_ttl(ip, 64);
  }
}

void report(benchmark::State& state, uint64_t cycles) {
  double packets = static_cast<double>(state.iterations()) * kBurstSize;
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.counters["cycles_per_packet"] = static_cast<double>(cycles) / packets;
  state.counters["Mpps_per_core"] =
      benchmark::Counter(packets / 1e6, benchmark::Counter::kIsRate);
}

void BM_Parse(benchmark::State& state) {
  Fixture& f = fixture();
  auto pkts = make_burst(f);
  ParseStage parse(f.ports);
  Burst burst;
  uint64_t cycles = 0;
  for (auto _ : state) {
    uint64_t start = rte_rdtsc_precise();
    burst.reset(0, kBurstSize);
    std::copy(pkts.begin(), pkts.end(), burst.pkts);
    parse.process(burst);
    cycles += rte_rdtsc_precise() - start;
    benchmark::DoNotOptimize(burst.action);
  }
  report(state, cycles);
  rte_pktmbuf_free_bulk(pkts.data(), kBurstSize);
}
BENCHMARK(BM_Parse);

void BM_ParseL3(benchmark::State& state) {
  Fixture& f = fixture();
  auto pkts = make_burst(f);
  ParseStage parse(f.ports);
  L3Stage l3(f.ports, f.neighbors);
  Burst burst;
  uint64_t cycles = 0;
  for (auto _ : state) {
    restore_frames(pkts.data(), f.ports.ports[0]);
    uint64_t start = rte_rdtsc_precise();
    burst.reset(0, kBurstSize);
    std::copy(pkts.begin(), pkts.end(), burst.pkts);
    parse.process(burst);
    l3.process(burst);
    cycles += rte_rdtsc_precise() - start;
    if (burst.action[0] != Action::kForward) state.SkipWithError("packet not forwarded");
  }
  report(state, cycles);
  rte_pktmbuf_free_bulk(pkts.data(), kBurstSize);
}
BENCHMARK(BM_ParseL3);

// RX ring -> worker pipeline -> TX ring, and back for the next round. Arg 0: the baseline
// without stages (RX burst straight to the TX buffer); 1: parse, l3, tx; 2: parse, classify,
// l3, sched, tx with the upload shaped (the scheduler owner is the same worker).
void BM_Worker(benchmark::State& state) {
  Fixture& f = fixture();
  bool with_pipeline = state.range(0) >= 1;
  bool shaped = state.range(0) == 2;
  WorkerConfig worker_config{{{0, 0}, {1, 0}}};
  Config shaped_config = parse_config(kShapedConfig);
  PipelineSpec shaped_pipeline = parse_pipeline_spec(R"({"name": "shaped",
      "from_lan": ["parse", "classify", "l3", "sched", "tx"], "from_wan": ["parse", "classify", "l3", "sched", "tx"]})");
  std::unique_ptr<QosDataplane> qos;
  std::unique_ptr<QosControl> qos_control;
  if (shaped) {
    qos = std::make_unique<QosDataplane>(shaped_config, build_hierarchy(shaped_config), 1, 0);
    qos_control = std::make_unique<QosControl>(shaped_config, *qos,
                                               [](uint16_t, const std::function<void()>& work) { return work(), true; });
  }
  WorkerDeps deps{shaped ? shaped_config : f.config, f.ports, shaped ? shaped_pipeline : f.pipeline, f.neighbors, nullptr,
                  nullptr, nullptr, qos.get()};
  Worker worker(0, worker_config, deps);
  auto pkts = make_burst(f);
  rte_mbuf* rx[kBurstSize];
  uint16_t lan = f.ports.ports[0].dpdk_port, wan = f.ports.ports[1].dpdk_port;
  uint64_t cycles = 0;
  rte_ring_enqueue_bulk(f.rx_rings[0], reinterpret_cast<void**>(pkts.data()), kBurstSize, nullptr);
  for (auto _ : state) {
    uint64_t start = rte_rdtsc_precise();
    uint16_t count = rte_eth_rx_burst(lan, 0, rx, kBurstSize);
    if (with_pipeline) {
      worker.process_burst(0, rx, count);
      // The scheduler's grinders may need a few calls to release a whole burst.
      if (shaped)
        while (qos->scheduler(1)->sched->backlog() != 0 || rte_ring_count(qos->scheduler(1)->inbox) != 0) worker.service_schedulers();
    } else {
      for (uint16_t i = 0; i < count; ++i) packet_meta(rx[i])->egress_port = 1;
      rte_eth_tx_burst(wan, 0, rx, count);
    }
    worker.flush_tx();
    cycles += rte_rdtsc_precise() - start;
    // Loop the frames back to the LAN RX ring, restored, outside the timed region.
    unsigned out = rte_ring_dequeue_burst(f.tx_rings[1], reinterpret_cast<void**>(rx), kBurstSize, nullptr);
    if (out != kBurstSize) {
      state.SkipWithError("frames lost");
      break;
    }
    restore_frames(rx, f.ports.ports[0]);
    rte_ring_enqueue_bulk(f.rx_rings[0], reinterpret_cast<void**>(rx), out, nullptr);
  }
  report(state, cycles);
  unsigned left = rte_ring_dequeue_burst(f.rx_rings[0], reinterpret_cast<void**>(rx), kBurstSize, nullptr);
  rte_pktmbuf_free_bulk(rx, left);
}
BENCHMARK(BM_Worker)->Arg(0)->Arg(1)->Arg(2)->ArgName("pipeline");

}  // namespace

int main(int argc, char** argv) {
  if (!fairgate::bench::init_eal("stage_bench", 256)) return 1;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  rte_eal_cleanup();
  return 0;
}
