// Workers end to end on in-process ring ethdevs (rte_eth_from_rings): what goes into a port's
// RX rings comes out of the right TX ring, rewritten, or lands in the punt ring. Every test
// runs with 1 and with 2 workers, and checks that every mbuf is back in its pool at the end.
#include "mgmt/frame_builder.h"
#include "pipeline/pipeline_spec.h"
#include "pipeline/worker.h"
#include "ring_device.h"
#include "test_env.h"

#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace fairgate::test {
namespace {

constexpr uint16_t kLan = 0, kWan = 1;
constexpr unsigned kPoolSize = 4095;

std::vector<rte_mbuf*> dequeue_all(rte_ring* ring) {
  std::vector<rte_mbuf*> out;
  void* object;
  while (rte_ring_dequeue(ring, &object) == 0) out.push_back(static_cast<rte_mbuf*>(object));
  return out;
}

// A UDP packet whose IPv4 id tells the test which one it is.
Bytes lan_to_internet(uint16_t id, uint8_t ttl = 64) {
  return ethernet(port_mac(kLan), lan_host_mac(), kEtherIpv4,
                  ipv4(lan_host(), internet_host(), kProtoUdp, udp(lan_host(), internet_host(), 40000, 443, payload_bytes(40)),
                       {.ttl = ttl, .id = id}));
}
Bytes internet_to(uint32_t host, uint16_t id) {
  return ethernet(port_mac(kWan), wan_gw_mac(), kEtherIpv4,
                  ipv4(internet_host(), host, kProtoUdp, udp(internet_host(), host, 443, 40000, payload_bytes(40)), {.id = id}));
}
uint16_t ip_id(const Frame& frame) { return get16(frame.bytes, frame.l3 + 4); }

class WorkerTest : public ::testing::TestWithParam<unsigned> {
 protected:
  void SetUp() override {
    static unsigned instance = 0;
    prefix = "fw" + std::to_string(++instance);
    worker_count = GetParam();
    config = parse_config(kTwoPortConfig, worker_count);
    config.dataplane.idle_backoff = true;  // the worker lcores share one CPU with this thread
    config.dataplane.max_sleep_us = 100;
    pool = rte_pktmbuf_pool_create((prefix + "pool").c_str(), kPoolSize, 0, kMbufPrivSize, RTE_MBUF_DEFAULT_BUF_SIZE,
                                   static_cast<int>(rte_socket_id()));
    ASSERT_NE(pool, nullptr) << rte_strerror(rte_errno);

    for (uint16_t p = 0; p < config.ports.size(); ++p) {
      devices.push_back(std::make_unique<RingDevice>(prefix + "p" + std::to_string(p), config.ports[p].rx_queues,
                                                     config.ports[p].tx_queues));
      config.ports[p].device = devices.back()->name();  // what open_ports looks the device up by
    }
    ports = open_ports(config, pool);
    ports_open = true;
    // Ring ethdevs have no MAC of their own (all zero, and it cannot be set): give each port
    // the one make_port_table would, so frames can be told apart.
    for (uint16_t p = 0; p < ports.ports.size(); ++p) ports.ports[p].mac = port_mac(p);

    pipeline = load_pipeline_spec(std::string(FAIRGATE_SOURCE_DIR) + "/pipelines/forward.json");
    NeighborTable table(config.neighbors);
    table.add_static(kWan, wan_gw(), wan_gw_mac());
    table.add_static(kLan, lan_host(), lan_host_mac());
    published.publish(table.snapshot());
  }

  void make_workers(rte_rcu_qsbr* qsbr = nullptr) {
    deps = std::make_unique<WorkerDeps>(WorkerDeps{config, ports, pipeline, published, qsbr});
    for (uint16_t w = 0; w < worker_count; ++w) workers.push_back(std::make_unique<Worker>(w, config.workers[w], *deps));
  }

  void TearDown() override {
    workers.clear();  // frees what is left in their punt and management rings
    for (auto& device : devices) device->clear();
    if (ports_open) close_ports(ports);
    devices.clear();
    if (pool != nullptr) {
      EXPECT_EQ(rte_mempool_avail_count(pool), kPoolSize) << "mbufs lost";
      rte_mempool_free(pool);
    }
  }

  std::vector<rte_mbuf*> mbufs(const std::vector<Bytes>& frames, uint16_t port) {
    std::vector<rte_mbuf*> out;
    for (const auto& frame : frames) out.push_back(to_mbuf(frame, port, pool));
    return out;
  }
  void process(unsigned w, uint16_t port, const std::vector<Bytes>& frames) {
    auto pkts = mbufs(frames, port);
    workers[w]->process_burst(port, pkts.data(), static_cast<uint16_t>(pkts.size()));
  }
  std::vector<Frame> sent(uint16_t port, unsigned queue) { return devices[port]->take(queue); }
  unsigned tx_total() const {
    unsigned total = 0;
    for (const auto& device : devices) total += device->tx_count();
    return total;
  }

  std::string prefix;
  unsigned worker_count = 1;
  Config config;
  rte_mempool* pool = nullptr;
  std::vector<std::unique_ptr<RingDevice>> devices;
  PortTable ports;
  bool ports_open = false;
  PipelineSpec pipeline;
  RcuPublished<NeighborSnapshot> published;
  std::unique_ptr<WorkerDeps> deps;
  std::vector<std::unique_ptr<Worker>> workers;
};

std::string worker_count_name(const ::testing::TestParamInfo<unsigned>& info) {
  return std::to_string(info.param) + (info.param == 1 ? "_worker" : "_workers");
}

TEST_P(WorkerTest, PortsOpenWithAQueuePairPerWorker) {
  for (const auto& port : ports.ports) {
    rte_eth_dev_info info;
    ASSERT_EQ(rte_eth_dev_info_get(port.dpdk_port, &info), 0);
    EXPECT_EQ(info.nb_rx_queues, worker_count) << "one RX queue per worker, each polled";
    EXPECT_EQ(info.nb_tx_queues, worker_count) << "one TX queue per worker";
    EXPECT_EQ(port.rx_queues, worker_count);
    EXPECT_EQ(port.tx_queues, worker_count);
  }
  EXPECT_NE(ports.ports[kLan].dpdk_port, ports.ports[kWan].dpdk_port);
}

TEST_P(WorkerTest, ForwardsLanToWanThroughItsOwnTxQueue) {
  make_workers();
  for (unsigned w = 0; w < worker_count; ++w) {
    SCOPED_TRACE("worker " + std::to_string(w));
    std::vector<Bytes> frames;
    for (uint16_t i = 0; i < 8; ++i) frames.push_back(lan_to_internet(static_cast<uint16_t>(100 * w + i)));
    process(w, kLan, frames);
    EXPECT_EQ(tx_total(), 0u) << "buffered until a full burst or a flush";
    workers[w]->flush_tx();
    for (unsigned q = 0; q < worker_count; ++q) {
      if (q != w) {
        EXPECT_EQ(rte_ring_count(devices[kWan]->tx(q)), 0u) << "another worker's queue";
      }
      EXPECT_EQ(rte_ring_count(devices[kLan]->tx(q)), 0u);
    }
    auto out = sent(kWan, w);
    ASSERT_EQ(out.size(), 8u);
    for (uint16_t i = 0; i < 8; ++i) {
      const Frame& frame = out[i];
      EXPECT_EQ(ip_id(frame), 100 * w + i) << "in order";
      EXPECT_EQ(mac_text(frame.dst), mac_text(wan_gw_mac()));
      EXPECT_EQ(mac_text(frame.src), mac_text(port_mac(kWan)));
      EXPECT_EQ(frame.ethertype, kEtherIpv4);
      EXPECT_EQ(frame.ttl(), 63);
      EXPECT_TRUE(frame.ip_checksum_valid());
      EXPECT_EQ(frame.ip_src(), lan_host());
      EXPECT_EQ(frame.ip_dst(), internet_host());
    }
    const auto& counters = workers[w]->counters();
    EXPECT_EQ(counters.ports[kLan].rx_packets.get(), 8u);
    EXPECT_EQ(counters.ports[kWan].tx_packets.get(), 8u);
    EXPECT_EQ(counters.ports[kLan].rx_dropped.get(), 0u);
    for (std::size_t s = 0; s < 3; ++s) {
      EXPECT_EQ(counters.stage_packets[0][s].get(), 8u) << "stage " << s;
    }
  }
}

TEST_P(WorkerTest, ForwardsWanToLanAndFullBurstsGoOutWithoutAFlush) {
  make_workers();
  for (unsigned w = 0; w < worker_count; ++w) {
    std::vector<Bytes> frames;
    for (uint16_t i = 0; i < kBurstSize; ++i) frames.push_back(internet_to(lan_host(), i));
    process(w, kWan, frames);
    auto out = sent(kLan, w);
    ASSERT_EQ(out.size(), kBurstSize) << "a full TX buffer is sent at once";
    for (const auto& frame : out) {
      EXPECT_EQ(mac_text(frame.dst), mac_text(lan_host_mac()));
      EXPECT_EQ(mac_text(frame.src), mac_text(port_mac(kLan)));
      EXPECT_EQ(frame.ip_dst(), lan_host());
      EXPECT_TRUE(frame.ip_checksum_valid());
    }
    EXPECT_EQ(workers[w]->counters().stage_packets[1][0].get(), kBurstSize) << "the from_wan pipeline ran";
  }
}

TEST_P(WorkerTest, PuntsLandInThePuntRingWithTheIngressPort) {
  make_workers();
  for (unsigned w = 0; w < worker_count; ++w) {
    SCOPED_TRACE("worker " + std::to_string(w));
    std::vector<Bytes> frames = {
        padded(ethernet(broadcast_mac(), lan_host_mac(), kEtherArp, arp(1, lan_host_mac(), lan_host(), zero_mac(), lan_gw()))),
        lan_to_internet(1),
        ethernet(port_mac(kLan), lan_host_mac(), kEtherIpv4, ipv4(lan_host(), lan_gw(), kProtoIcmp, icmp_echo(1, 1))),
        lan_to_internet(2, 1),
        ethernet(port_mac(kLan), lan_host_mac(), kEtherIpv4,
                 ipv4(lan_host(), ip("10.10.0.99"), kProtoUdp, udp(lan_host(), ip("10.10.0.99"), 1, 2, {}))),
        ethernet(port_mac(kLan), lan_host_mac(), kEtherIpv4,
                 ipv4(lan_host(), internet_host(), kProtoUdp, payload_bytes(8), {.bad_checksum = true})),
    };
    process(w, kLan, frames);
    workers[w]->flush_tx();
    auto punts = dequeue_all(workers[w]->punt_ring());
    ASSERT_EQ(punts.size(), 4u);
    const PuntReason expected[] = {PuntReason::kArp, PuntReason::kLocal, PuntReason::kTtlExceeded, PuntReason::kResolve};
    for (std::size_t i = 0; i < punts.size(); ++i) {
      EXPECT_EQ(static_cast<PuntReason>(packet_meta(punts[i])->punt_reason), expected[i]);
      EXPECT_EQ(punts[i]->port, kLan) << "the ingress port index";
      rte_pktmbuf_free(punts[i]);
    }
    EXPECT_EQ(sent(kWan, w).size(), 1u);
    const auto& counters = workers[w]->counters();
    EXPECT_EQ(counters.punts[static_cast<std::size_t>(PuntReason::kArp)].get(), 1u);
    EXPECT_EQ(counters.punts[static_cast<std::size_t>(PuntReason::kResolve)].get(), 1u);
    EXPECT_EQ(counters.drops[static_cast<std::size_t>(DropReason::kIpv4BadChecksum)].get(), 1u);
    EXPECT_EQ(counters.ports[kLan].rx_dropped.get(), 1u);
    for (unsigned other = 0; other < worker_count; ++other)
      if (other != w) {
        EXPECT_EQ(rte_ring_count(workers[other]->punt_ring()), 0u);
      }

    // From the WAN side the punt carries the WAN port's index.
    process(w, kWan,
            {padded(ethernet(broadcast_mac(), wan_gw_mac(), kEtherArp, arp(1, wan_gw_mac(), wan_gw(), zero_mac(), wan_own())))});
    auto wan_punts = dequeue_all(workers[w]->punt_ring());
    ASSERT_EQ(wan_punts.size(), 1u);
    EXPECT_EQ(wan_punts[0]->port, kWan);
    EXPECT_EQ(static_cast<PuntReason>(packet_meta(wan_punts[0])->punt_reason), PuntReason::kArp);
    rte_pktmbuf_free(wan_punts[0]);
  }
}

TEST_P(WorkerTest, ManagementFramesGoOutThroughTheWorker) {
  make_workers();
  for (unsigned w = 0; w < worker_count; ++w) {
    rte_mbuf* frame = build_arp_request(pool, ports.ports[kWan], wan_gw());
    ASSERT_NE(frame, nullptr);
    frame->port = kWan;
    ASSERT_EQ(rte_ring_enqueue(workers[w]->tx_ring(), frame), 0);
    workers[w]->drain_management_tx();
    workers[w]->flush_tx();
    auto out = sent(kWan, w);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].ethertype, kEtherArp);
    EXPECT_EQ(out[0].arp_tip(), wan_gw());
    EXPECT_EQ(mac_text(out[0].src), mac_text(port_mac(kWan)));
    EXPECT_EQ(workers[w]->counters().ports[kWan].tx_packets.get(), 1u);
  }
}

TEST_P(WorkerTest, FullTxQueueIsCountedAndFreed) {
  make_workers();
  const unsigned w = worker_count - 1;
  // Fill the WAN TX ring of this worker's queue so the driver refuses everything.
  std::vector<rte_mbuf*> filler;
  while (rte_ring_free_count(devices[kWan]->tx(w)) > 0) {
    rte_mbuf* mbuf = rte_pktmbuf_alloc(pool);
    ASSERT_NE(mbuf, nullptr);
    ASSERT_EQ(rte_ring_enqueue(devices[kWan]->tx(w), mbuf), 0);
  }
  std::vector<Bytes> frames;
  for (uint16_t i = 0; i < 5; ++i) frames.push_back(lan_to_internet(i));
  process(w, kLan, frames);
  workers[w]->flush_tx();
  const auto& counters = workers[w]->counters();
  EXPECT_EQ(counters.drops[static_cast<std::size_t>(DropReason::kTxFull)].get(), 5u);
  EXPECT_EQ(counters.ports[kWan].tx_dropped.get(), 5u);
  // TearDown checks the refused packets went back to the pool.
}

TEST_P(WorkerTest, FullPuntRingDropsAndCounts) {
  make_workers();
  // More punts than the ring holds: the rest are dropped, counted, and freed.
  const unsigned capacity = rte_ring_get_capacity(workers[0]->punt_ring());
  std::vector<Bytes> frames(kBurstSize, lan_to_internet(1, 1));
  unsigned sent_count = 0;
  while (sent_count < capacity + kBurstSize) {
    process(0, kLan, frames);
    sent_count += kBurstSize;
  }
  EXPECT_EQ(rte_ring_count(workers[0]->punt_ring()), capacity);
  EXPECT_EQ(workers[0]->counters().drops[static_cast<std::size_t>(DropReason::kPuntRingFull)].get(),
            sent_count - capacity);
}

// The real loop on worker lcores: packets pushed into every RX ring come out of the TX ring of
// the worker that polls them, a snapshot published while it runs is used, and it stops.
struct Launch {
  Worker* worker;
  const std::atomic<bool>* stop;
};
int run_worker(void* arg) {
  auto* launch = static_cast<Launch*>(arg);
  launch->worker->run(*launch->stop);
  return 0;
}

TEST_P(WorkerTest, RunForwardsOnWorkerLcoresAndStops) {
  ASSERT_GE(rte_lcore_count(), worker_count + 1) << "the suite starts EAL with lcores 0, 1 and 2";
  const auto qsbr_size = rte_rcu_qsbr_get_memsize(worker_count);
  auto* qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("qsbr", qsbr_size, RTE_CACHE_LINE_SIZE));
  ASSERT_NE(qsbr, nullptr);
  ASSERT_EQ(rte_rcu_qsbr_init(qsbr, worker_count), 0);
  published.set_qsbr(qsbr);
  make_workers(qsbr);

  std::atomic<bool> stop{false};
  std::vector<Launch> launches;
  for (auto& worker : workers) launches.push_back({worker.get(), &stop});
  std::vector<unsigned> lcores;
  unsigned lcore = rte_get_next_lcore(-1, 1, 0);
  for (auto& launch : launches) {
    ASSERT_LT(lcore, static_cast<unsigned>(RTE_MAX_LCORE));
    ASSERT_EQ(rte_eal_remote_launch(run_worker, &launch, lcore), 0);
    lcores.push_back(lcore);
    lcore = rte_get_next_lcore(lcore, 1, 0);
  }

  auto wait_for = [&](unsigned expected, const char* what) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (tx_total() < expected && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(tx_total(), expected) << what;
  };

  constexpr uint16_t kPerQueue = 100;
  for (unsigned q = 0; q < worker_count; ++q) {
    std::vector<Bytes> lan, wan;
    for (uint16_t i = 0; i < kPerQueue; ++i) {
      lan.push_back(lan_to_internet(static_cast<uint16_t>(1000 * q + i)));
      wan.push_back(internet_to(lan_host(), static_cast<uint16_t>(1000 * q + i)));
    }
    for (auto* mbuf : mbufs(lan, kLan)) {
      ASSERT_EQ(rte_ring_enqueue(devices[kLan]->rx(q), mbuf), 0);
    }
    for (auto* mbuf : mbufs(wan, kWan)) {
      ASSERT_EQ(rte_ring_enqueue(devices[kWan]->rx(q), mbuf), 0);
    }
  }
  wait_for(2u * kPerQueue * worker_count, "every packet forwarded");
  for (unsigned q = 0; q < worker_count; ++q) {
    SCOPED_TRACE("queue " + std::to_string(q));
    auto to_wan = sent(kWan, q);
    auto to_lan = sent(kLan, q);
    ASSERT_EQ(to_wan.size(), kPerQueue) << "what worker " << q << " polled leaves through its own queue";
    ASSERT_EQ(to_lan.size(), kPerQueue);
    for (uint16_t i = 0; i < kPerQueue; ++i) {
      EXPECT_EQ(ip_id(to_wan[i]), 1000 * q + i);
      EXPECT_EQ(mac_text(to_wan[i].dst), mac_text(wan_gw_mac()));
      EXPECT_EQ(to_wan[i].ttl(), 63);
      EXPECT_TRUE(to_wan[i].ip_checksum_valid());
      EXPECT_EQ(ip_id(to_lan[i]), 1000 * q + i);
      EXPECT_EQ(mac_text(to_lan[i].dst), mac_text(lan_host_mac()));
    }
  }

  // A second LAN host appears in a new snapshot while the workers run.
  NeighborTable table(config.neighbors);
  table.add_static(kWan, wan_gw(), wan_gw_mac());
  table.add_static(kLan, lan_host(), lan_host_mac());
  table.add_static(kLan, lan_host2(), lan_host2_mac());
  published.publish(table.snapshot());
  for (unsigned q = 0; q < worker_count; ++q) {
    auto pkts = mbufs({internet_to(lan_host2(), 7)}, kWan);
    ASSERT_EQ(rte_ring_enqueue(devices[kWan]->rx(q), pkts[0]), 0);
  }
  wait_for(worker_count, "forwarded with the new snapshot");
  for (unsigned q = 0; q < worker_count; ++q) {
    auto out = sent(kLan, q);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(mac_text(out[0].dst), mac_text(lan_host2_mac()));
  }
  // The old snapshot is freed once every worker has passed a quiescent state.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (rte_rcu_qsbr_check(qsbr, rte_rcu_qsbr_start(qsbr), false) != 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  published.reclaim();

  // Punts reach the management side while the loop runs.
  for (unsigned q = 0; q < worker_count; ++q) {
    auto pkts = mbufs({lan_to_internet(9, 1)}, kLan);
    ASSERT_EQ(rte_ring_enqueue(devices[kLan]->rx(q), pkts[0]), 0);
  }
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto punted = [&] {
    unsigned total = 0;
    for (auto& worker : workers) total += rte_ring_count(worker->punt_ring());
    return total;
  };
  while (punted() < worker_count && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(punted(), worker_count);

  stop.store(true);
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (unsigned id : lcores) {
    while (rte_eal_get_lcore_state(id) != WAIT && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_EQ(rte_eal_get_lcore_state(id), WAIT) << "worker on lcore " << id << " did not stop";
    EXPECT_EQ(rte_eal_wait_lcore(id), 0);
  }
  for (unsigned w = 0; w < worker_count; ++w) {
    const auto& counters = workers[w]->counters();
    EXPECT_EQ(counters.ports[kLan].rx_packets.get(), kPerQueue + 1u) << "worker " << w;
    EXPECT_EQ(counters.ports[kWan].rx_packets.get(), kPerQueue + 1u) << "worker " << w;
    EXPECT_GT(counters.busy_polls.get(), 0u);
    EXPECT_GT(counters.idle_polls.get(), 0u);
  }
  workers.clear();  // before the RCU state they report to
  published.set_qsbr(nullptr);
  rte_free(qsbr);
  // TearDown: every mbuf back in the pool (the punted ones freed with the workers' rings).
}

INSTANTIATE_TEST_SUITE_P(Workers, WorkerTest, ::testing::Values(1u, 2u), worker_count_name);

}  // namespace
}  // namespace fairgate::test
