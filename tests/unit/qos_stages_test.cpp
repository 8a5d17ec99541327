// The classify and sched stages on synthetic bursts, as a worker runs them (after parse, with
// routing's verdict and egress port filled in): forwarded packets that cross between the LAN
// and the internet land on the right scheduler's inbox, tagged with their subscriber's pipe and
// class; everything else is left to the tx stage; LAN hosts no subscriber covers go to the
// "unknown" pipe and are reported to the management thread once.
#include "qos/qos_control.h"
#include "qos/qos_dataplane.h"
#include "stages/parse/parse_stage.h"
#include "stages/qos/classify_stage.h"
#include "stages/qos/sched_stage.h"
#include "test_env.h"

#include <rte_lcore.h>
#include <rte_ring.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace fairgate {

// Classes by name in failure messages (internal linkage: other files may print them too).
[[maybe_unused]] static std::ostream& operator<<(std::ostream& out, TrafficClass tc) {
  return out << kTrafficClasses[static_cast<std::size_t>(tc)].name;
}

namespace test {
namespace {

using nlohmann::json;

// Two LANs and two WANs, so traffic can also go LAN to LAN and WAN to WAN.
constexpr uint16_t kLan0 = 0, kWan0 = 1, kLan1 = 2, kWan1 = 3;
// Pipes of stage_config(): "unknown" 0 (kUnknownPipe), alice 1, bob 2; automatic ones next.
constexpr uint32_t kAlice = 1, kBob = 2, kFirstFree = 3;

json stage_config() {
  return json::parse(R"({
    "ports": [
      {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
      {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1",
       "rate_down": "20mbit", "rate_up": "4mbit"},
      {"name": "lan1", "role": "lan", "device": "net_ring2", "address": "10.20.0.1/24"},
      {"name": "wan1", "role": "wan", "device": "net_ring3", "address": "203.0.113.2/25", "gateway": "203.0.113.1",
       "rate_down": "10mbit", "rate_up": "2mbit"}
    ],
    "qos": {"max_subscribers": 16, "bulk_after_bytes": 1500},
    "subscribers": [
      {"name": "alice", "addresses": ["10.10.0.11"]},
      {"name": "bob", "addresses": ["10.10.0.32/28"]}
    ]
  })");
}

uint32_t bob_host() { return ip("10.10.0.35"); }
uint32_t stranger() { return ip("10.10.0.99"); }   // a LAN host no subscriber covers
uint32_t stranger2() { return ip("10.10.0.98"); }
uint32_t lan1_host() { return ip("10.20.0.5"); }
uint32_t remote() { return internet_host(); }      // 192.0.2.10

// ---- frames ------------------------------------------------------------------------------------

Bytes udp_packet(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, std::size_t payload) {
  return ipv4(src, dst, kProtoUdp, udp(src, dst, sport, dport, payload_bytes(payload)));
}
Bytes ping_reply(uint32_t src, uint32_t dst) { return ipv4(src, dst, kProtoIcmp, icmp_echo(7, 1, 24, 0)); }
// A bare TCP ACK (20-byte header, no payload).
Bytes tcp_ack(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport) {
  Bytes segment;
  put16(segment, sport);
  put16(segment, dport);
  put32(segment, 1);
  put32(segment, 1);
  put8(segment, 5 << 4);
  put8(segment, 0x10);
  put16(segment, 64240);
  put16(segment, 0);
  put16(segment, 0);
  return ipv4(src, dst, kProtoTcp, segment);
}

// A frame as it arrives on port `rx`: for the port's MAC, from its neighbour.
Bytes arriving(uint16_t rx, const Bytes& packet) {
  bool wan = rx == kWan0 || rx == kWan1;
  return padded(ethernet(port_mac(rx), wan ? wan_gw_mac() : lan_host_mac(), kEtherIpv4, packet));
}

struct Packet {
  Bytes packet;     // IPv4
  uint16_t egress;  // the port routing chose
};

// ---- the stages ----------------------------------------------------------------------------------

// The configuration's schedulers (one worker owns them all), the management side that publishes
// the subscriber map (run_on_worker runs inline: nothing else touches the schedulers here), and
// one worker's parse, classify and sched stages.
struct Shaper {
  explicit Shaper(const json& text)
      : config(parse_config(text.dump())),
        ports(make_port_table(config)),
        dataplane(config, build_hierarchy(config), 1, static_cast<int>(rte_socket_id())),
        control(config, dataplane, [](uint16_t, const std::function<void()>& work) {
          work();
          return true;
        }),
        classify(ports, config.qos),
        sched(ports, &dataplane, counters) {}
  ~Shaper() {
    release();
    for (uint16_t port = 0; port < config.ports.size(); ++port)
      for (rte_mbuf* m : take(port)) rte_pktmbuf_free(m);
  }

  // Frees what the burst still owns: not what a stage took (kSent).
  void release() {
    for (uint16_t i = 0; i < burst.count; ++i)
      if (burst.action[i] != Action::kSent) rte_pktmbuf_free(burst.pkts[i]);
    burst.count = 0;
  }

  // The packets arrive on `rx`, are parsed, routed (forwarded to their egress port), then go
  // through classify and sched.
  Burst& run(uint16_t rx, const std::vector<Packet>& packets) {
    release();
    std::vector<Bytes> frames;
    for (const auto& p : packets) frames.push_back(arriving(rx, p.packet));
    fill_burst(burst, rx, frames);
    run_stages(burst, {&parse});
    for (uint16_t i = 0; i < burst.count; ++i) {
      EXPECT_EQ(burst.action[i], Action::kContinue) << "packet " << i << " did not parse";
      if (burst.action[i] != Action::kContinue) continue;
      packet_meta(burst.pkts[i])->egress_port = packets[i].egress;
      burst.action[i] = Action::kForward;
    }
    run_stages(burst, {&classify, &sched});
    return burst;
  }

  // Everything on port `port`'s scheduler inbox, oldest first (none when it is not shaped).
  std::vector<rte_mbuf*> take(uint16_t port) {
    std::vector<rte_mbuf*> out;
    EgressScheduler* scheduler = dataplane.scheduler(port);
    if (scheduler == nullptr) return out;
    void* m;
    while (rte_ring_dequeue(scheduler->inbox, &m) == 0) out.push_back(static_cast<rte_mbuf*>(m));
    return out;
  }
  void free_all(const std::vector<rte_mbuf*>& packets) {
    for (rte_mbuf* m : packets) rte_pktmbuf_free(m);
  }

  // The unknown-host reports on the management ring, oldest first.
  std::vector<uint32_t> reports() {
    std::vector<uint32_t> hosts;
    void* report;
    while (rte_ring_dequeue(dataplane.new_hosts(), &report) == 0)
      hosts.push_back(static_cast<uint32_t>(reinterpret_cast<uintptr_t>(report)));
    return hosts;
  }

  SchedPort& sched_port(uint16_t port) { return *dataplane.scheduler(port)->sched; }

  Config config;
  PortTable ports;
  QosDataplane dataplane;
  QosControl control;
  WorkerCounters counters;
  ParseStage parse{ports};
  ClassifyStage classify;
  SchedStage sched;
  Burst burst;
};

std::string names(const std::vector<uint32_t>& hosts) {
  std::string out;
  for (uint32_t host : hosts) out += format_ipv4(host) + " ";
  return out;
}

// The test pool must be full again once the shaper and everything it queued are gone.
class QosStagesTest : public PoolCheckedTest {};

struct Expected {
  uint32_t pipe;
  TrafficClass tc;
  uint32_t lan_host;
};

// Checks that `queued` are the burst's packets in order, each tagged as `expected` says.
void expect_tagged(Shaper& shaper, uint16_t port, const Burst& burst, const std::vector<rte_mbuf*>& queued,
                   const std::vector<Expected>& expected, uint32_t subport = SchedPort::kInternetSubport) {
  ASSERT_EQ(queued.size(), expected.size()) << "packets on " << shaper.config.ports[port].name << "'s inbox";
  const SchedPort& sched = shaper.sched_port(port);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE("packet " + std::to_string(i));
    EXPECT_EQ(queued[i], burst.pkts[i]) << "inbox order is burst order";
    EXPECT_EQ(burst.action[i], Action::kSent) << "the scheduler's owner has it now";
    EXPECT_EQ(sched.subport_of(queued[i]), subport);
    EXPECT_EQ(sched.pipe_of(queued[i]), expected[i].pipe);
    EXPECT_EQ(SchedPort::class_of(queued[i]), expected[i].tc);
    EXPECT_EQ(packet_meta(queued[i])->lan_host, expected[i].lan_host)
        << format_ipv4(packet_meta(queued[i])->lan_host);
  }
}

// ---- downloads and uploads -------------------------------------------------------------------------

TEST_F(QosStagesTest, DownloadsQueueOnTheLanSchedulerInTheirSubscribersPipe) {
  Shaper shaper(stage_config());
  const std::vector<Packet> packets = {
      {udp_packet(remote(), lan_host(), 443, 40000, 1000), kLan0},
      {ping_reply(remote(), lan_host()), kLan0},
      {tcp_ack(remote(), lan_host(), 443, 40001), kLan0},
      {udp_packet(remote(), bob_host(), 443, 40000, 600), kLan0},  // inside bob's /28
      {udp_packet(ip("192.0.2.53"), bob_host(), 53, 40002, 300), kLan0},
  };
  // The parse stage trims Ethernet's padding: a frame is its header and the IPv4 packet.
  std::vector<uint32_t> frame_lengths;
  for (const auto& p : packets) frame_lengths.push_back(static_cast<uint32_t>(14 + p.packet.size()));
  Burst& burst = shaper.run(kWan0, packets);
  auto queued = shaper.take(kLan0);
  expect_tagged(shaper, kLan0, burst, queued,
                {{kAlice, TrafficClass::kNormal, lan_host()},
                 {kAlice, TrafficClass::kInteractive, lan_host()},  // ICMP
                 {kAlice, TrafficClass::kInteractive, lan_host()},  // a bare ACK
                 {kBob, TrafficClass::kNormal, bob_host()},
                 {kBob, TrafficClass::kInteractive, bob_host()}});  // DNS
  // The scheduler charges a packet its pkt_len: it carries the bytes the frame costs on the link
  // until the owner hands it to tx; the frame's own length waits in the metadata.
  for (std::size_t i = 0; i < queued.size() && i < frame_lengths.size(); ++i) {
    EXPECT_EQ(packet_meta(queued[i])->frame_len, frame_lengths[i]) << "packet " << i;
    EXPECT_EQ(rte_pktmbuf_pkt_len(queued[i]), shaper.sched_port(kLan0).wire_bytes(0, frame_lengths[i])) << "packet " << i;
  }
  for (uint16_t port : {kWan0, kLan1, kWan1}) EXPECT_TRUE(shaper.take(port).empty()) << shaper.config.ports[port].name;
  EXPECT_TRUE(shaper.reports().empty()) << "every host had a subscriber";
  shaper.free_all(queued);
}

TEST_F(QosStagesTest, DownloadsAreQueuedInTheSubportOfTheWanTheyCameBy) {
  Shaper shaper(stage_config());
  const SchedPort& lan0 = shaper.sched_port(kLan0);
  ASSERT_EQ(lan0.subport_count(), 3u) << "internet via wan0, internet via wan1, local";
  Burst& burst = shaper.run(kWan1, {{udp_packet(remote(), lan_host(), 443, 40000, 1000), kLan0},
                                    {udp_packet(remote(), bob_host(), 443, 40000, 600), kLan0}});
  auto queued = shaper.take(kLan0);
  expect_tagged(shaper, kLan0, burst, queued,
                {{kAlice, TrafficClass::kNormal, lan_host()}, {kBob, TrafficClass::kNormal, bob_host()}},
                lan0.internet_subport(kWan1));
  EXPECT_EQ(lan0.internet_subport(kWan1), 1u);
  EXPECT_EQ(lan0.subport_rate_bps(1), 9'500'000u) << "shaped to wan1's 10 mbit/s, less the margin";
  EXPECT_EQ(lan0.subport_rate_bps(0), 19'000'000u) << "wan0's 20 mbit/s";
  shaper.free_all(queued);
}

TEST_F(QosStagesTest, UploadsQueueOnTheSchedulerOfTheWanTheyLeaveBy) {
  Shaper shaper(stage_config());
  Burst& burst = shaper.run(kLan0, {{udp_packet(lan_host(), remote(), 40000, 443, 800), kWan0},
                                    {udp_packet(bob_host(), remote(), 40000, 443, 800), kWan1},
                                    {ping_reply(lan_host(), remote()), kWan0}});
  for (uint16_t i = 0; i < burst.count; ++i) EXPECT_EQ(burst.action[i], Action::kSent) << i;
  auto wan0 = shaper.take(kWan0);
  auto wan1 = shaper.take(kWan1);
  ASSERT_EQ(wan0.size(), 2u);
  ASSERT_EQ(wan1.size(), 1u);
  EXPECT_EQ(wan0[0], burst.pkts[0]);
  EXPECT_EQ(wan0[1], burst.pkts[2]);
  EXPECT_EQ(wan1[0], burst.pkts[1]);
  // From the LAN, the subscriber's host is the source.
  EXPECT_EQ(shaper.sched_port(kWan0).pipe_of(wan0[0]), kAlice);
  EXPECT_EQ(packet_meta(wan0[0])->lan_host, lan_host());
  EXPECT_EQ(SchedPort::class_of(wan0[0]), TrafficClass::kNormal);
  EXPECT_EQ(shaper.sched_port(kWan0).pipe_of(wan0[1]), kAlice);
  EXPECT_EQ(SchedPort::class_of(wan0[1]), TrafficClass::kInteractive);
  EXPECT_EQ(shaper.sched_port(kWan1).pipe_of(wan1[0]), kBob);
  EXPECT_EQ(packet_meta(wan1[0])->lan_host, bob_host());
  EXPECT_TRUE(shaper.take(kLan0).empty());
  EXPECT_TRUE(shaper.take(kLan1).empty());
  shaper.free_all(wan0);
  shaper.free_all(wan1);
}

TEST_F(QosStagesTest, TrafficThatDoesNotCrossTheInternetLinkIsLeftForTx) {
  // Only LAN <-> internet traffic is the subscribers' link: between LANs, hairpinned back to
  // the LAN it came from, or between WANs, packets go to tx as they are.
  struct Case {
    std::string name;
    uint16_t rx;
    Packet packet;
  };
  const Case cases[] = {
      {"lan_to_other_lan", kLan0, {udp_packet(lan_host(), lan1_host(), 40000, 80, 500), kLan1}},
      {"lan_hairpin", kLan0, {udp_packet(lan_host(), bob_host(), 40000, 80, 500), kLan0}},
      {"other_lan_to_lan", kLan1, {udp_packet(lan1_host(), lan_host(), 40000, 80, 500), kLan0}},
      {"wan_to_other_wan", kWan0, {udp_packet(remote(), ip("203.0.113.77"), 40000, 80, 500), kWan1}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Shaper shaper(stage_config());
    Burst& burst = shaper.run(c.rx, {c.packet});
    EXPECT_EQ(burst.action[0], Action::kForward);
    for (uint16_t port = 0; port < 4; ++port) EXPECT_TRUE(shaper.take(port).empty()) << shaper.config.ports[port].name;
    EXPECT_TRUE(shaper.reports().empty());
  }
}

TEST_F(QosStagesTest, ADirectionThatIsNotShapedIsLeftForTx) {
  json config = stage_config();
  config["qos"]["upload"] = false;
  Shaper shaper(config);
  EXPECT_EQ(shaper.dataplane.scheduler(kWan0), nullptr) << "no upload schedulers";
  Burst& up = shaper.run(kLan0, {{udp_packet(lan_host(), remote(), 40000, 443, 800), kWan0}});
  EXPECT_EQ(up.action[0], Action::kForward);
  Burst& down = shaper.run(kWan0, {{udp_packet(remote(), lan_host(), 443, 40000, 800), kLan0}});
  EXPECT_EQ(down.action[0], Action::kSent) << "downloads are still shaped";
  shaper.free_all(shaper.take(kLan0));
}

TEST_F(QosStagesTest, AFlowTurnsBulkAfterBulkAfterBytes) {
  // qos.bulk_after_bytes is 1500 here: frames of 1042 bytes make the third packet of a flow bulk
  // (2084 bytes sent before it); a DNS flow as big stays interactive, another flow is normal.
  Shaper shaper(stage_config());
  auto big = [](uint16_t sport) { return udp_packet(remote(), lan_host(), sport, 40000, 1000); };
  Burst& burst = shaper.run(kWan0, {{big(443), kLan0}, {big(443), kLan0}, {big(443), kLan0}, {big(443), kLan0},
                                    {big(53), kLan0}, {big(53), kLan0}, {big(53), kLan0}, {big(8443), kLan0}});
  auto queued = shaper.take(kLan0);
  using TC = TrafficClass;
  expect_tagged(shaper, kLan0, burst, queued,
                {{kAlice, TC::kNormal, lan_host()},
                 {kAlice, TC::kNormal, lan_host()},
                 {kAlice, TC::kBulk, lan_host()},
                 {kAlice, TC::kBulk, lan_host()},
                 {kAlice, TC::kInteractive, lan_host()},
                 {kAlice, TC::kInteractive, lan_host()},
                 {kAlice, TC::kInteractive, lan_host()},
                 {kAlice, TC::kNormal, lan_host()}});
  if (queued.size() == 8) {
    EXPECT_EQ(rte_mbuf_sched_queue_get(queued[2]), rte_mbuf_sched_queue_get(queued[3]))
        << "a bulk flow keeps to one of the bulk queues, so it is not reordered";
    EXPECT_EQ(packet_meta(queued[0])->flow_hash, packet_meta(queued[3])->flow_hash);
    EXPECT_NE(packet_meta(queued[0])->flow_hash, packet_meta(queued[7])->flow_hash);
  }
  shaper.free_all(queued);
}

// ---- hosts no subscriber covers -------------------------------------------------------------------

TEST_F(QosStagesTest, AnUnknownLanHostIsTaggedUnknownAndReportedOnce) {
  Shaper shaper(stage_config());
  Burst& burst = shaper.run(kWan0, {{udp_packet(remote(), stranger(), 443, 40000, 500), kLan0},
                                    {udp_packet(remote(), stranger(), 443, 40000, 500), kLan0},
                                    {udp_packet(remote(), stranger2(), 443, 40000, 500), kLan0},
                                    {ping_reply(remote(), stranger()), kLan0},
                                    {udp_packet(remote(), lan_host(), 443, 40000, 500), kLan0},
                                    {udp_packet(remote(), lan1_host(), 443, 40000, 500), kLan1}});
  auto lan0 = shaper.take(kLan0);
  expect_tagged(shaper, kLan0, burst, lan0,
                {{kUnknownPipe, TrafficClass::kNormal, stranger()},
                 {kUnknownPipe, TrafficClass::kNormal, stranger()},
                 {kUnknownPipe, TrafficClass::kNormal, stranger2()},
                 {kUnknownPipe, TrafficClass::kInteractive, stranger()},
                 {kAlice, TrafficClass::kNormal, lan_host()}});
  auto lan1 = shaper.take(kLan1);
  ASSERT_EQ(lan1.size(), 1u);
  EXPECT_EQ(shaper.sched_port(kLan1).pipe_of(lan1[0]), kUnknownPipe);
  // Each host once, however many of its packets the burst held, in the order they came.
  auto reports = shaper.reports();
  EXPECT_EQ(reports, (std::vector<uint32_t>{stranger(), stranger2(), lan1_host()})) << names(reports);
  shaper.free_all(lan0);
  shaper.free_all(lan1);
}

TEST_F(QosStagesTest, AddressesThatAreNoLanHostAreNotReported) {
  // The gateway's own address, a LAN's network and broadcast addresses, and addresses beyond the
  // LAN prefixes (a network routed behind a LAN router) can never become a subscriber.
  Shaper shaper(stage_config());
  Burst& burst = shaper.run(kWan0, {{udp_packet(remote(), lan_gw(), 443, 40000, 100), kLan0},
                                    {udp_packet(remote(), ip("10.10.0.0"), 443, 40000, 100), kLan0},
                                    {udp_packet(remote(), ip("10.10.0.255"), 443, 40000, 100), kLan0},
                                    {udp_packet(remote(), ip("172.16.5.5"), 443, 40000, 100), kLan0}});
  auto queued = shaper.take(kLan0);
  ASSERT_EQ(queued.size(), 4u);
  for (std::size_t i = 0; i < queued.size(); ++i) {
    EXPECT_EQ(burst.action[i], Action::kSent);
    EXPECT_EQ(shaper.sched_port(kLan0).pipe_of(queued[i]), kUnknownPipe) << i;
  }
  auto reports = shaper.reports();
  EXPECT_TRUE(reports.empty()) << names(reports);
  shaper.free_all(queued);
}

TEST_F(QosStagesTest, SharedUnknownHostsAreNotReported) {
  json config = stage_config();
  config["qos"]["unknown_hosts"] = "shared";
  Shaper shaper(config);
  Burst& burst = shaper.run(kWan0, {{udp_packet(remote(), stranger(), 443, 40000, 500), kLan0}});
  auto queued = shaper.take(kLan0);
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_EQ(burst.action[0], Action::kSent);
  EXPECT_EQ(shaper.sched_port(kLan0).pipe_of(queued[0]), kUnknownPipe) << "they share \"unknown\"";
  auto reports = shaper.reports();
  EXPECT_TRUE(reports.empty()) << names(reports);
  shaper.free_all(queued);
}

TEST_F(QosStagesTest, AReportedHostHasAPipeOfItsOwnAfterTheNextTick) {
  Shaper shaper(stage_config());
  shaper.run(kWan0, {{udp_packet(remote(), stranger(), 443, 40000, 500), kLan0}});
  shaper.free_all(shaper.take(kLan0));
  // The management loop takes the report (the ring is left for it) and publishes a new map.
  shaper.control.tick(5'000);
  const LiveSubscriber* own = shaper.control.find(format_ipv4(stranger()));
  ASSERT_NE(own, nullptr);
  EXPECT_EQ(own->kind, LiveSubscriber::Kind::kAutomatic);
  EXPECT_EQ(own->pipe, kFirstFree);

  Burst& burst = shaper.run(kWan0, {{udp_packet(remote(), stranger(), 443, 40000, 500), kLan0}});
  auto queued = shaper.take(kLan0);
  expect_tagged(shaper, kLan0, burst, queued, {{kFirstFree, TrafficClass::kNormal, stranger()}});
  EXPECT_TRUE(shaper.reports().empty()) << "it is known now";
  shaper.free_all(queued);
}

TEST_F(QosStagesTest, AFullInboxDropsWhatDoesNotFit) {
  // The owner of the scheduler is behind: its inbox has room for two more packets.
  Shaper shaper(stage_config());
  rte_ring* inbox = shaper.dataplane.scheduler(kLan0)->inbox;
  int marker = 0;  // fills the ring; never an mbuf
  while (rte_ring_free_count(inbox) > 2) ASSERT_EQ(rte_ring_enqueue(inbox, &marker), 0);
  std::vector<Packet> packets;
  for (int i = 0; i < 5; ++i) packets.push_back({udp_packet(remote(), lan_host(), 443, 40000, 100), kLan0});
  Burst& burst = shaper.run(kWan0, packets);
  EXPECT_EQ(burst.action[0], Action::kSent);
  EXPECT_EQ(burst.action[1], Action::kSent);
  for (uint16_t i = 2; i < 5; ++i) {
    EXPECT_EQ(burst.action[i], Action::kDrop) << i;
    EXPECT_EQ(burst.drop_reason[i], DropReason::kSchedInboxFull) << i;
  }
  std::vector<rte_mbuf*> queued;
  for (rte_mbuf* m : shaper.take(kLan0))
    if (static_cast<void*>(m) != &marker) queued.push_back(m);
  ASSERT_EQ(queued.size(), 2u);
  EXPECT_EQ(queued[0], burst.pkts[0]);
  EXPECT_EQ(queued[1], burst.pkts[1]);
  shaper.free_all(queued);  // the dropped ones are the worker's to free: release() does it
}

TEST_F(QosStagesTest, EveryMbufComesBack) {
  // A mixed run, then the inboxes drained by hand: the pool is full again (the fixture checks
  // it as well, after the schedulers are gone).
  const unsigned before = rte_mempool_avail_count(test_pool());
  {
    Shaper shaper(stage_config());
    shaper.run(kWan0, {{udp_packet(remote(), lan_host(), 443, 40000, 1000), kLan0},
                       {udp_packet(remote(), stranger(), 443, 40000, 1000), kLan0},
                       {udp_packet(remote(), ip("203.0.113.9"), 443, 40000, 1000), kWan1}});
    shaper.run(kLan0, {{udp_packet(lan_host(), remote(), 40000, 443, 1000), kWan0},
                       {udp_packet(lan_host(), lan1_host(), 40000, 443, 1000), kLan1}});
    shaper.release();
    std::size_t drained = 0;
    for (uint16_t port = 0; port < shaper.config.ports.size(); ++port) {
      auto queued = shaper.take(port);
      drained += queued.size();
      shaper.free_all(queued);
    }
    EXPECT_EQ(drained, 3u) << "two downloads and one upload were scheduled";
    EXPECT_EQ(rte_mempool_avail_count(test_pool()), before);
  }
  EXPECT_EQ(rte_mempool_avail_count(test_pool()), before);
}

}  // namespace
}  // namespace test
}  // namespace fairgate
