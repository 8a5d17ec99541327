#include "stages/l3/l3_stage.h"
#include "stages/l3/route_table.h"
#include "stages/parse/parse_stage.h"
#include "test_env.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace fairgate::test {
namespace {

constexpr uint16_t kLan = 0, kWan = 1;

// The two-port layout with a smaller WAN MTU, to see frag_needed with frames that fit an mbuf.
constexpr const char* kL3Config = R"({"ports": [
  {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
  {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1",
   "mtu": 1400}]})";

Bytes lan_frame(uint32_t dst, const Ipv4Fields& fields = {}, std::size_t payload = 18) {
  return ethernet(port_mac(kLan), lan_host_mac(), kEtherIpv4,
                  ipv4(lan_host(), dst, kProtoUdp, udp(lan_host(), dst, 40000, 53, payload_bytes(payload)), fields));
}
Bytes wan_frame(uint32_t dst, const Ipv4Fields& fields = {}) {
  return ethernet(port_mac(kWan), wan_gw_mac(), kEtherIpv4,
                  ipv4(internet_host(), dst, kProtoUdp, udp(internet_host(), dst, 443, 40000, payload_bytes(30)), fields));
}
// A datagram to a multicast group, sent to the group's MAC (RFC 1112) as modems send their
// LPA advertisements to 224.0.0.2; from the WAN gateway (the modem) or a LAN host.
Bytes group_frame(uint16_t port, uint32_t group, const Ipv4Fields& fields = {}) {
  rte_ether_addr group_mac = make_mac(0x01, 0x00, 0x5e, static_cast<uint8_t>((group >> 16) & 0x7f),
                                      static_cast<uint8_t>(group >> 8), static_cast<uint8_t>(group));
  uint32_t src = port == kWan ? wan_gw() : lan_host();
  return ethernet(group_mac, port == kWan ? wan_gw_mac() : lan_host_mac(), kEtherIpv4,
                  ipv4(src, group, kProtoUdp, udp(src, group, 4950, 4950, payload_bytes(40)), fields));
}
uint32_t all_routers() { return ip("224.0.0.2"); }

// Runs parse and l3 on frames from one port with a neighbour table, as a worker would.
class L3Fixture : public PoolCheckedTest {
 protected:
  explicit L3Fixture(const char* config_text = kL3Config)
      : config(parse_config(config_text)), ports(make_port_table(config)), table(config.neighbors) {
    table.add_static(kWan, wan_gw(), wan_gw_mac());
    table.add_static(kLan, lan_host(), lan_host_mac());
    published.publish(table.snapshot());
  }

  Burst& run(uint16_t port, const std::vector<Bytes>& frames) {
    fill_burst(burst, port, frames);
    run_stages(burst, {&parse, &l3});
    return burst;
  }
  ~L3Fixture() override { free_burst(burst); }

  Config config;
  PortTable ports;
  NeighborTable table;
  RcuPublished<NeighborSnapshot> published;
  ParseStage parse{ports};
  L3Stage l3{ports, published};
  Burst burst;
};

struct L3Case {
  std::string name;
  uint16_t port;
  Bytes frame;
  Action action;
  DropReason drop = DropReason::kCount;
  PuntReason punt = PuntReason::kCount;
  uint16_t egress_port = 0;  // forward, resolve and frag_needed
  uint32_t next_hop = 0;
};
void PrintTo(const L3Case& c, std::ostream* out) { *out << c.name; }

std::vector<L3Case> l3_cases() {
  return {
      {"lan_to_internet", kLan, lan_frame(internet_host()), Action::kForward, {}, {}, kWan, wan_gw()},
      {"lan_to_wan_gateway", kLan, lan_frame(wan_gw()), Action::kForward, {}, {}, kWan, wan_gw()},
      {"wan_to_lan_host", kWan, wan_frame(lan_host()), Action::kForward, {}, {}, kLan, lan_host()},
      {"lan_to_lan_host_hairpin", kLan, lan_frame(lan_host()), Action::kForward, {}, {}, kLan, lan_host()},
      {"to_own_lan_address", kLan, lan_frame(lan_gw()), Action::kPunt, {}, PuntReason::kLocal},
      {"to_own_wan_address_from_lan", kLan, lan_frame(wan_own()), Action::kPunt, {}, PuntReason::kLocal},
      {"to_own_wan_address_from_wan", kWan, wan_frame(wan_own()), Action::kPunt, {}, PuntReason::kLocal},
      {"to_own_address_ttl_1", kLan, lan_frame(lan_gw(), {.ttl = 1}), Action::kPunt, {}, PuntReason::kLocal},
      {"ttl_1", kLan, lan_frame(internet_host(), {.ttl = 1}), Action::kPunt, {}, PuntReason::kTtlExceeded},
      {"ttl_0", kLan, lan_frame(internet_host(), {.ttl = 0}), Action::kPunt, {}, PuntReason::kTtlExceeded},
      {"ttl_2_forwarded", kLan, lan_frame(internet_host(), {.ttl = 2}), Action::kForward, {}, {}, kWan, wan_gw()},
      {"unknown_lan_neighbor", kWan, wan_frame(ip("10.10.0.99")), Action::kPunt, {}, PuntReason::kResolve, kLan,
       ip("10.10.0.99")},
      {"limited_broadcast", kLan, lan_frame(ip("255.255.255.255")), Action::kDrop, DropReason::kIpv4NotForwardable},
      {"lan_directed_broadcast", kLan, lan_frame(ip("10.10.0.255")), Action::kDrop, DropReason::kIpv4NotForwardable},
      {"wan_directed_broadcast", kLan, lan_frame(ip("198.51.100.127")), Action::kDrop, DropReason::kIpv4NotForwardable},
      {"multicast", kLan, lan_frame(ip("224.0.0.251")), Action::kDrop, DropReason::kIpv4NotForwardable},
      // 224.0.0.2, all routers: link-local, for the gateway itself (modems' LPA), never routed;
      // its TTL is 1 by design, so it must not be answered with time exceeded.
      {"all_routers_from_wan", kWan, group_frame(kWan, all_routers()), Action::kPunt, {}, PuntReason::kLocal},
      {"all_routers_from_wan_ttl_1", kWan, group_frame(kWan, all_routers(), {.ttl = 1}), Action::kPunt, {},
       PuntReason::kLocal},
      {"all_routers_from_wan_ttl_0", kWan, group_frame(kWan, all_routers(), {.ttl = 0}), Action::kPunt, {},
       PuntReason::kLocal},
      {"all_routers_from_lan_ttl_1", kLan, group_frame(kLan, all_routers(), {.ttl = 1}), Action::kPunt, {},
       PuntReason::kLocal},
      {"all_routers_to_the_port_mac", kWan, wan_frame(all_routers(), {.ttl = 1}), Action::kPunt, {},
       PuntReason::kLocal},
      {"all_hosts_group", kWan, group_frame(kWan, ip("224.0.0.1"), {.ttl = 1}), Action::kDrop,
       DropReason::kIpv4NotForwardable},
      {"group_after_all_routers", kWan, group_frame(kWan, ip("224.0.0.3"), {.ttl = 1}), Action::kDrop,
       DropReason::kIpv4NotForwardable},
      {"all_routers_bits_in_another_group", kLan, group_frame(kLan, ip("239.0.0.2")), Action::kDrop,
       DropReason::kIpv4NotForwardable},
      {"class_e", kLan, lan_frame(ip("240.0.0.1")), Action::kDrop, DropReason::kIpv4NotForwardable},
      {"bigger_than_egress_mtu", kLan, lan_frame(internet_host(), {}, 1401 - 28), Action::kPunt, {},
       PuntReason::kFragNeeded, kWan, wan_gw()},
      {"exactly_egress_mtu", kLan, lan_frame(internet_host(), {}, 1400 - 28), Action::kForward, {}, {}, kWan, wan_gw()},
  };
}

class L3Cases : public L3Fixture, public ::testing::WithParamInterface<L3Case> {};

TEST_P(L3Cases, Verdict) {
  const L3Case& c = GetParam();
  run(c.port, {c.frame});
  ASSERT_EQ(burst.action[0], c.action);
  const PacketMeta* meta = packet_meta(burst.pkts[0]);
  if (c.action == Action::kDrop) {
    EXPECT_EQ(burst.drop_reason[0], c.drop);
  }
  if (c.action == Action::kPunt) {
    EXPECT_EQ(static_cast<PuntReason>(meta->punt_reason), c.punt);
  }
  if (c.action == Action::kForward || c.punt == PuntReason::kResolve || c.punt == PuntReason::kFragNeeded) {
    EXPECT_EQ(meta->egress_port, c.egress_port);
    EXPECT_EQ(meta->next_hop, c.next_hop) << format_ipv4(meta->next_hop);
  }
}

INSTANTIATE_TEST_SUITE_P(Table, L3Cases, ::testing::ValuesIn(l3_cases()),
                         [](const ::testing::TestParamInfo<L3Case>& info) { return info.param.name; });

class L3StageTest : public L3Fixture {};

TEST_F(L3StageTest, LanToWanRewritesAndDecrementsTtl) {
  Bytes in = lan_frame(internet_host(), {.ttl = 64});
  run(kLan, {in});
  ASSERT_EQ(burst.action[0], Action::kForward);
  Frame in_frame(in);
  Frame out = Frame::of(burst.pkts[0]);
  EXPECT_EQ(out.bytes.size(), in.size());
  EXPECT_EQ(mac_text(out.dst), mac_text(wan_gw_mac()));
  EXPECT_EQ(mac_text(out.src), mac_text(port_mac(kWan)));
  EXPECT_EQ(out.vlan, -1);
  EXPECT_EQ(out.ethertype, kEtherIpv4);
  EXPECT_EQ(out.ttl(), 63);
  EXPECT_TRUE(out.ip_checksum_valid()) << "checksum " << std::hex << out.ip_checksum();
  EXPECT_EQ(out.ip_src(), lan_host());
  EXPECT_EQ(out.ip_dst(), internet_host());
  // Only TTL and checksum differ in the IPv4 packet.
  Bytes expected = in_frame.ip_packet();
  Bytes got = out.ip_packet();
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    if (i != 8 && i != 10 && i != 11) {
      EXPECT_EQ(got[i], expected[i]) << "IPv4 byte " << i;
    }
  EXPECT_EQ(packet_meta(burst.pkts[0])->l2_len, 14);
}

TEST_F(L3StageTest, WanToLanHost) {
  run(kWan, {wan_frame(lan_host(), {.ttl = 50})});
  ASSERT_EQ(burst.action[0], Action::kForward);
  Frame out = Frame::of(burst.pkts[0]);
  EXPECT_EQ(mac_text(out.dst), mac_text(lan_host_mac()));
  EXPECT_EQ(mac_text(out.src), mac_text(port_mac(kLan)));
  EXPECT_EQ(out.ttl(), 49);
  EXPECT_TRUE(out.ip_checksum_valid());
  EXPECT_EQ(packet_meta(burst.pkts[0])->egress_port, kLan);
}

TEST_F(L3StageTest, ChecksumStaysValidForEveryTtlAndHeader) {
  // Incremental update over many headers: TTLs 2..255, with and without options, varied ids.
  for (int ttl = 2; ttl <= 255; ttl += 3) {
    std::vector<Bytes> frames;
    for (uint16_t id : {0x0000, 0x1234, 0xffff, 0x8001})
      frames.push_back(lan_frame(internet_host(), {.ttl = static_cast<uint8_t>(ttl), .id = id,
                                                   .options = id & 1 ? Bytes{1, 1, 1, 0} : Bytes{}}));
    run(kLan, frames);
    for (uint16_t i = 0; i < burst.count; ++i) {
      ASSERT_EQ(burst.action[i], Action::kForward);
      Frame out = Frame::of(burst.pkts[i]);
      ASSERT_EQ(out.ttl(), ttl - 1);
      ASSERT_TRUE(out.ip_checksum_valid()) << "TTL " << ttl << " packet " << i;
    }
    free_burst(burst);
  }
}

TEST_F(L3StageTest, TtlExceededPuntLeavesThePacketUnchanged) {
  Bytes in = lan_frame(internet_host(), {.ttl = 1});
  run(kLan, {in});
  ASSERT_EQ(burst.action[0], Action::kPunt);
  EXPECT_EQ(bytes_of(burst.pkts[0]), in);
}

TEST_F(L3StageTest, ResolvePuntIsRoutedAlready) {
  // Without the gateway's MAC the packet waits in the management thread, routed: TTL
  // decremented with a valid checksum, next hop and port chosen, Ethernet header untouched.
  NeighborTable empty(config.neighbors);
  published.publish(empty.snapshot());
  Bytes in = lan_frame(internet_host(), {.ttl = 9});
  run(kLan, {in});
  ASSERT_EQ(burst.action[0], Action::kPunt);
  const PacketMeta* meta = packet_meta(burst.pkts[0]);
  EXPECT_EQ(static_cast<PuntReason>(meta->punt_reason), PuntReason::kResolve);
  EXPECT_EQ(meta->next_hop, wan_gw());
  EXPECT_EQ(meta->egress_port, kWan);
  Frame out = Frame::of(burst.pkts[0]);
  EXPECT_EQ(out.ttl(), 8);
  EXPECT_TRUE(out.ip_checksum_valid());
  EXPECT_EQ(mac_text(out.dst), mac_text(port_mac(kLan)));
}

TEST_F(L3StageTest, NoSnapshotPublishedPuntsResolve) {
  RcuPublished<NeighborSnapshot> nothing;
  L3Stage bare(ports, nothing);
  fill_burst(burst, kLan, {lan_frame(internet_host())});
  run_stages(burst, {&parse, &bare});
  ASSERT_EQ(burst.action[0], Action::kPunt);
  EXPECT_EQ(static_cast<PuntReason>(packet_meta(burst.pkts[0])->punt_reason), PuntReason::kResolve);
}

TEST_F(L3StageTest, NewSnapshotIsSeenOnTheNextBurst) {
  NeighborTable table2(config.neighbors);
  table2.add_static(kWan, wan_gw(), make_mac(0x02, 0xbb, 0, 0, 0, 0x42));
  published.publish(table2.snapshot());
  run(kWan, {wan_frame(lan_host())});
  EXPECT_EQ(burst.action[0], Action::kPunt) << "the LAN host is not in the new table";
  free_burst(burst);
  run(kLan, {lan_frame(internet_host())});
  ASSERT_EQ(burst.action[0], Action::kForward);
  EXPECT_EQ(mac_text(Frame::of(burst.pkts[0]).dst), "02:bb:00:00:00:42");
}

class L3VlanTest : public L3Fixture {
 protected:
  L3VlanTest() : L3Fixture(kVlanLanConfig) {}
};

TEST_F(L3VlanTest, TaggedInUntaggedOut) {
  Bytes in = ethernet(port_mac(kLan), lan_host_mac(), kEtherIpv4,
                      ipv4(lan_host(), internet_host(), kProtoUdp, udp(lan_host(), internet_host(), 1, 2, payload_bytes(20))),
                      {10});
  run(kLan, {in});
  ASSERT_EQ(burst.action[0], Action::kForward);
  Frame out = Frame::of(burst.pkts[0]);
  EXPECT_EQ(out.bytes.size(), in.size() - 4);
  EXPECT_EQ(out.vlan, -1);
  EXPECT_EQ(out.ethertype, kEtherIpv4);
  EXPECT_EQ(mac_text(out.dst), mac_text(wan_gw_mac()));
  EXPECT_EQ(mac_text(out.src), mac_text(port_mac(kWan)));
  EXPECT_EQ(out.ttl(), 63);
  EXPECT_TRUE(out.ip_checksum_valid());
  EXPECT_EQ(out.ip_src(), lan_host());
  EXPECT_EQ(packet_meta(burst.pkts[0])->l2_len, 14);
}

TEST_F(L3VlanTest, UntaggedInTaggedOut) {
  Bytes in = wan_frame(lan_host());
  run(kWan, {in});
  ASSERT_EQ(burst.action[0], Action::kForward);
  Frame out = Frame::of(burst.pkts[0]);
  EXPECT_EQ(out.bytes.size(), in.size() + 4);
  EXPECT_EQ(out.vlan, 10);
  EXPECT_EQ(get16(out.bytes, 12), kEtherVlan);
  EXPECT_EQ(out.ethertype, kEtherIpv4);
  EXPECT_EQ(mac_text(out.dst), mac_text(lan_host_mac()));
  EXPECT_EQ(mac_text(out.src), mac_text(port_mac(kLan)));
  EXPECT_EQ(out.ttl(), 63);
  EXPECT_TRUE(out.ip_checksum_valid());
  EXPECT_EQ(out.ip_dst(), lan_host());
  EXPECT_EQ(packet_meta(burst.pkts[0])->l2_len, 18);
}

// ---- the route table the stage uses ---------------------------------------------------------

TEST(RouteTable, ConnectedLongestPrefixThenDefault) {
  Config config = parse_config(R"({"ports": [
    {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/16"},
    {"name": "lan1", "role": "lan", "device": "net_ring1", "address": "10.10.5.1/24", "vlan": 5},
    {"name": "wan0", "role": "wan", "device": "net_ring2", "address": "198.51.100.2/25", "gateway": "198.51.100.1"},
    {"name": "wan1", "role": "wan", "device": "net_ring3", "address": "203.0.113.2/25", "gateway": "203.0.113.1"}]})");
  PortTable ports = make_port_table(config);
  RouteTable routes(ports);
  Route route{};
  ASSERT_TRUE(routes.lookup(ip("10.10.5.9"), &route));
  EXPECT_EQ(route.port, 1) << "the /24 wins over the /16";
  EXPECT_EQ(route.next_hop, ip("10.10.5.9"));
  ASSERT_TRUE(routes.lookup(ip("10.10.6.9"), &route));
  EXPECT_EQ(route.port, 0);
  ASSERT_TRUE(routes.lookup(ip("203.0.113.77"), &route));
  EXPECT_EQ(route.port, 3);
  EXPECT_EQ(route.next_hop, ip("203.0.113.77"));
  ASSERT_TRUE(routes.lookup(ip("8.8.8.8"), &route));
  EXPECT_EQ(route.port, 2) << "default through the first WAN port";
  EXPECT_EQ(route.next_hop, ip("198.51.100.1"));
}

TEST(RouteTable, NotForwardable) {
  Config config = parse_config(kTwoPortConfig);
  PortTable ports = make_port_table(config);
  RouteTable routes(ports);
  for (const char* address : {"255.255.255.255", "224.0.0.1", "239.255.255.250", "240.0.0.1", "10.10.0.255", "198.51.100.127"})
    EXPECT_TRUE(routes.not_forwardable(ip(address))) << address;
  for (const char* address : {"10.10.0.11", "192.0.2.10", "198.51.100.1", "223.255.255.255", "10.10.0.0"})
    EXPECT_FALSE(routes.not_forwardable(ip(address))) << address;
}

TEST(RouteTable, LocalAddresses) {
  Config config = parse_config(kTwoPortConfig);
  RouteTable routes(make_port_table(config));
  for (const auto& port : config.ports) EXPECT_TRUE(routes.is_local(port.address.address)) << port.name;
  for (const char* address : {"10.10.0.11", "198.51.100.1", "10.10.0.255", "0.0.0.0"})
    EXPECT_FALSE(routes.is_local(ip(address))) << address;
}

// ---- two WANs: routes through the WAN a NAT session leaves by -------------------------------

// Port 0: LAN 10.10.0.1/24. Port 1: wan0 198.51.100.2/25 behind .1. Port 2: wan1
// 203.0.113.2/25 behind .1, MTU 1400.
constexpr const char* kTwoWanConfig = R"({"ports": [
  {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
  {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1"},
  {"name": "wan1", "role": "wan", "device": "net_ring2", "address": "203.0.113.2/25", "gateway": "203.0.113.1",
   "mtu": 1400}]})";
constexpr uint16_t kWan1 = 2;
uint32_t wan1_gw() { return ip("203.0.113.1"); }
rte_ether_addr wan1_gw_mac() { return host_mac(0x02); }

struct WanRouteCase {
  std::string name;
  uint32_t destination;
  uint8_t wan_port;  // what the nat stage says the packet leaves by
  uint16_t port;
  uint32_t next_hop;
};
void PrintTo(const WanRouteCase& c, std::ostream* out) { *out << c.name; }

std::vector<WanRouteCase> wan_route_cases() {
  const uint32_t internet = internet_host();
  return {
      {"internet_by_wan0", internet, kWan, kWan, wan_gw()},
      {"internet_by_wan1", internet, kWan1, kWan1, wan1_gw()},
      {"internet_no_wan_takes_the_default", internet, kNoWanPort, kWan, wan_gw()},
      {"internet_lan_port_has_no_gateway", internet, kLan, kWan, wan_gw()},
      {"internet_wan_port_out_of_range", internet, 7, kWan, wan_gw()},
      {"lan_host_connected_wins_over_wan1", lan_host(), kWan1, kLan, lan_host()},
      {"wan0_neighbour_connected_wins_over_wan1", ip("198.51.100.77"), kWan1, kWan, ip("198.51.100.77")},
      {"wan1_neighbour_connected_wins_over_wan0", ip("203.0.113.77"), kWan, kWan1, ip("203.0.113.77")},
      {"wan1_gateway_itself_by_wan0", wan1_gw(), kWan, kWan1, wan1_gw()},
  };
}

class RouteTableTwoWans : public ::testing::TestWithParam<WanRouteCase> {};

TEST_P(RouteTableTwoWans, ConnectedThenTheSessionsWanThenTheDefault) {
  const WanRouteCase& c = GetParam();
  Config config = parse_config(kTwoWanConfig);
  RouteTable routes(make_port_table(config));
  Route route{99, 0};
  ASSERT_TRUE(routes.lookup(c.destination, &route, c.wan_port));
  EXPECT_EQ(route.port, c.port);
  EXPECT_EQ(route.next_hop, c.next_hop) << format_ipv4(route.next_hop);
}

INSTANTIATE_TEST_SUITE_P(Table, RouteTableTwoWans, ::testing::ValuesIn(wan_route_cases()),
                         [](const ::testing::TestParamInfo<WanRouteCase>& info) { return info.param.name; });

TEST(RouteTable, DefaultIsTheFirstWanWithAGateway) {
  // parse_config requires a gateway on every WAN port; a port table whose first WAN has none
  // (as the route table allows) takes the default through the next one.
  Config config = parse_config(kTwoWanConfig);
  PortTable ports = make_port_table(config);
  ports.ports[kWan].gateway = 0;
  RouteTable routes(ports);
  Route route{};
  ASSERT_TRUE(routes.lookup(internet_host(), &route));
  EXPECT_EQ(route.port, kWan1);
  EXPECT_EQ(route.next_hop, wan1_gw());
  ASSERT_TRUE(routes.lookup(internet_host(), &route, kWan)) << "wan0 has no gateway: the default";
  EXPECT_EQ(route.port, kWan1);
  EXPECT_EQ(route.next_hop, wan1_gw());
  // With no gateway anywhere, only connected prefixes are reachable.
  ports.ports[kWan1].gateway = 0;
  RouteTable none(ports);
  EXPECT_FALSE(none.lookup(internet_host(), &route));
  EXPECT_FALSE(none.lookup(internet_host(), &route, kWan1));
  EXPECT_TRUE(none.lookup(lan_host(), &route, kWan1));
}

// The l3 stage routes by PacketMeta::wan_port (set by the nat stage): to that WAN's gateway,
// with its MAC and MTU.
// wan1's gateway is not resolved here (the fixture knows wan0's only).
class L3TwoWanFixture : public L3Fixture {
 protected:
  L3TwoWanFixture() : L3Fixture(kTwoWanConfig) {}
  // A LAN frame through parse, then wan_port set as the nat stage would, then l3.
  Burst& route(const Bytes& frame, uint8_t wan_port) {
    fill_burst(burst, kLan, {frame});
    parse.process(burst);
    EXPECT_EQ(burst.action[0], Action::kContinue);
    EXPECT_EQ(packet_meta(burst.pkts[0])->wan_port, kNoWanPort) << "the parse stage starts every packet without one";
    packet_meta(burst.pkts[0])->wan_port = wan_port;
    l3.process(burst);
    return burst;
  }
};

class L3TwoWanTest : public L3TwoWanFixture {
 protected:
  L3TwoWanTest() {
    table.add_static(kWan1, wan1_gw(), wan1_gw_mac());
    published.publish(table.snapshot());
  }
};

TEST_F(L3TwoWanTest, LeavesByTheWanItWasGivenWithThatGatewaysMac) {
  struct Case {
    uint8_t wan_port;
    uint16_t egress;
    uint32_t next_hop;
    rte_ether_addr mac;
  };
  const Case cases[] = {
      {kWan1, kWan1, wan1_gw(), wan1_gw_mac()},
      {kWan, kWan, wan_gw(), wan_gw_mac()},
      {kNoWanPort, kWan, wan_gw(), wan_gw_mac()},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("wan_port " + std::to_string(c.wan_port));
    route(lan_frame(internet_host(), {.ttl = 9}), c.wan_port);
    ASSERT_EQ(burst.action[0], Action::kForward);
    const PacketMeta* meta = packet_meta(burst.pkts[0]);
    EXPECT_EQ(meta->egress_port, c.egress);
    EXPECT_EQ(meta->next_hop, c.next_hop) << format_ipv4(meta->next_hop);
    Frame out = Frame::of(burst.pkts[0]);
    EXPECT_EQ(mac_text(out.dst), mac_text(c.mac));
    EXPECT_EQ(mac_text(out.src), mac_text(port_mac(c.egress)));
    EXPECT_EQ(out.ttl(), 8);
    EXPECT_TRUE(out.ip_checksum_valid());
    free_burst(burst);
  }
}

TEST_F(L3TwoWanTest, TheGivenWansMtuApplies) {
  // 1401 bytes fit wan0 (1500) but not wan1 (1400).
  route(lan_frame(internet_host(), {}, 1401 - 28), kWan);
  EXPECT_EQ(burst.action[0], Action::kForward);
  free_burst(burst);
  route(lan_frame(internet_host(), {}, 1401 - 28), kWan1);
  ASSERT_EQ(burst.action[0], Action::kPunt);
  EXPECT_EQ(static_cast<PuntReason>(packet_meta(burst.pkts[0])->punt_reason), PuntReason::kFragNeeded);
  EXPECT_EQ(packet_meta(burst.pkts[0])->egress_port, kWan1);
}

TEST_F(L3TwoWanFixture, UnresolvedWanGatewayIsPuntedForThatGateway) {
  route(lan_frame(internet_host()), kWan1);
  ASSERT_EQ(burst.action[0], Action::kPunt);
  const PacketMeta* meta = packet_meta(burst.pkts[0]);
  EXPECT_EQ(static_cast<PuntReason>(meta->punt_reason), PuntReason::kResolve);
  EXPECT_EQ(meta->egress_port, kWan1);
  EXPECT_EQ(meta->next_hop, wan1_gw());
}

}  // namespace
}  // namespace fairgate::test
