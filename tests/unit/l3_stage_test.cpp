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

}  // namespace
}  // namespace fairgate::test
