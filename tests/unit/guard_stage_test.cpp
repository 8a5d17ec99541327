// The guard stage (anti-spoofing): after the parse stage, a packet whose source address may not
// arrive on its port is dropped as spoofed_source; everything else is left to the next stage.
#include "stages/guard/guard_stage.h"
#include "stages/parse/parse_stage.h"
#include "test_env.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace fairgate::test {
namespace {

constexpr uint16_t kLan = 0, kWan = 1;

Bytes udp_from(uint16_t port, uint32_t src, uint32_t dst) {
  rte_ether_addr peer = port == kLan ? lan_host_mac() : wan_gw_mac();
  return ethernet(port_mac(port), peer, kEtherIpv4,
                  ipv4(src, dst, kProtoUdp, udp(src, dst, 40000, 53, payload_bytes(20))));
}

class GuardFixture : public PoolCheckedTest {
 protected:
  explicit GuardFixture(const char* text = kTwoPortConfig)
      : config(parse_config(text)), ports(make_port_table(config)), guard(ports, config.lan_prefixes()) {}
  ~GuardFixture() override { free_burst(burst); }

  Burst& run(uint16_t port, const std::vector<Bytes>& frames) {
    free_burst(burst);
    fill_burst(burst, port, frames);
    run_stages(burst, {&parse, &guard});
    return burst;
  }

  Config config;
  PortTable ports;
  ParseStage parse{ports};
  GuardStage guard;
  Burst burst;
};

struct GuardCase {
  std::string name;
  uint16_t port;
  const char* src;
  const char* dst;
  bool spoofed;
};
void PrintTo(const GuardCase& c, std::ostream* out) { *out << c.name; }

std::vector<GuardCase> guard_cases() {
  return {
      {"lan_host_to_internet", kLan, "10.10.0.11", "192.0.2.10", false},
      {"lan_host_to_lan_host", kLan, "10.10.0.11", "10.10.0.12", false},
      {"lan_host_to_the_gateway", kLan, "10.10.0.11", "10.10.0.1", false},
      {"lan_highest_host", kLan, "10.10.0.254", "192.0.2.10", false},
      {"lan_source_outside_the_prefix", kLan, "10.10.1.11", "192.0.2.10", true},
      {"lan_source_an_internet_address", kLan, "192.0.2.10", "192.0.2.11", true},
      {"lan_source_the_gateways_lan_address", kLan, "10.10.0.1", "192.0.2.10", true},
      {"lan_source_the_gateways_wan_address", kLan, "198.51.100.2", "192.0.2.10", true},
      {"lan_source_the_wan_gateway", kLan, "198.51.100.1", "192.0.2.10", true},
      {"wan_internet_to_gateway", kWan, "192.0.2.10", "198.51.100.2", false},
      {"wan_internet_to_lan_host", kWan, "192.0.2.10", "10.10.0.11", false},
      {"wan_gateway_router", kWan, "198.51.100.1", "198.51.100.2", false},
      {"wan_source_a_lan_host", kWan, "10.10.0.11", "198.51.100.2", true},
      {"wan_source_the_lan_network", kWan, "10.10.0.0", "198.51.100.2", true},
      {"wan_source_the_gateways_lan_address", kWan, "10.10.0.1", "198.51.100.2", true},
      {"wan_source_the_gateways_wan_address", kWan, "198.51.100.2", "198.51.100.2", true},
  };
}

class GuardCases : public GuardFixture, public ::testing::WithParamInterface<GuardCase> {};

TEST_P(GuardCases, Verdict) {
  const GuardCase& c = GetParam();
  Bytes frame = udp_from(c.port, ip(c.src), ip(c.dst));
  run(c.port, {frame});
  if (c.spoofed) {
    ASSERT_EQ(burst.action[0], Action::kDrop);
    EXPECT_EQ(burst.drop_reason[0], DropReason::kSpoofedSource);
  } else {
    ASSERT_EQ(burst.action[0], Action::kContinue);
    EXPECT_EQ(bytes_of(burst.pkts[0]), frame) << "the guard changes nothing";
  }
}

INSTANTIATE_TEST_SUITE_P(Table, GuardCases, ::testing::ValuesIn(guard_cases()),
                         [](const ::testing::TestParamInfo<GuardCase>& info) { return info.param.name; });

class GuardStageTest : public GuardFixture {};

TEST_F(GuardStageTest, EachPacketOfABurstOnItsOwn) {
  run(kLan, {udp_from(kLan, lan_host(), internet_host()), udp_from(kLan, internet_host(), internet_host()),
             udp_from(kLan, lan_host2(), internet_host()), udp_from(kLan, lan_gw(), internet_host())});
  EXPECT_EQ(burst.action[0], Action::kContinue);
  EXPECT_EQ(burst.action[1], Action::kDrop);
  EXPECT_EQ(burst.action[2], Action::kContinue);
  EXPECT_EQ(burst.action[3], Action::kDrop);
}

TEST_F(GuardStageTest, NonIpv4IsIgnored) {
  // An ARP frame presented as still undecided: its bytes where an IPv4 source would sit are no
  // LAN address, so a guard that read them as IPv4 would drop it.
  Bytes frame = ethernet(port_mac(kLan), lan_host_mac(), kEtherArp,
                         arp(1, lan_host_mac(), lan_host(), zero_mac(), lan_gw()));
  fill_burst(burst, kLan, {frame});
  PacketMeta* meta = packet_meta(burst.pkts[0]);
  meta->l2_len = 14;
  meta->ethertype = kEtherArp;
  guard.process(burst);
  EXPECT_EQ(burst.action[0], Action::kContinue);

  // Through the parse stage: ARP is punted, IPv6 dropped by parse, neither touched by the guard.
  run(kWan, {ethernet(port_mac(kWan), wan_gw_mac(), kEtherArp, arp(1, wan_gw_mac(), wan_gw(), zero_mac(), wan_own())),
             ethernet(port_mac(kWan), wan_gw_mac(), kEtherIpv6, payload_bytes(60))});
  EXPECT_EQ(burst.action[0], Action::kPunt);
  EXPECT_EQ(burst.action[1], Action::kDrop);
  EXPECT_EQ(burst.drop_reason[1], DropReason::kIpv6Unsupported);
}

TEST_F(GuardStageTest, PacketsWithAVerdictAreLeftAlone) {
  fill_burst(burst, kWan, {udp_from(kWan, lan_host(), wan_own()), udp_from(kWan, lan_host(), wan_own())});
  run_stages(burst, {&parse});
  burst.action[0] = Action::kPunt;
  burst.drop(1, DropReason::kIpv4BadChecksum);
  guard.process(burst);
  EXPECT_EQ(burst.action[0], Action::kPunt);
  EXPECT_EQ(burst.drop_reason[1], DropReason::kIpv4BadChecksum) << "the first verdict stands";
}

class GuardVlanTest : public GuardFixture {
 protected:
  GuardVlanTest() : GuardFixture(kVlanLanConfig) {}
};

TEST_F(GuardVlanTest, TaggedLanPort) {
  auto frame = [](uint32_t src) {
    return ethernet(port_mac(kLan), lan_host_mac(), kEtherIpv4,
                    ipv4(src, internet_host(), kProtoUdp, udp(src, internet_host(), 1, 2, payload_bytes(20))), {10});
  };
  run(kLan, {frame(lan_host()), frame(internet_host())});
  EXPECT_EQ(burst.action[0], Action::kContinue);
  EXPECT_EQ(burst.action[1], Action::kDrop);
  EXPECT_EQ(burst.drop_reason[1], DropReason::kSpoofedSource);
}

TEST(GuardTwoLans, EitherLanPrefixIsAcceptedOnALanPortAndRefusedOnTheWan) {
  Config config = parse_config(R"({"ports": [
    {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
    {"name": "lan1", "role": "lan", "device": "net_ring1", "address": "10.20.0.1/24"},
    {"name": "wan0", "role": "wan", "device": "net_ring2", "address": "198.51.100.2/25", "gateway": "198.51.100.1"}]})");
  PortTable ports = make_port_table(config);
  ParseStage parse(ports);
  GuardStage guard(ports, config.lan_prefixes());
  auto verdict = [&](uint16_t port, const char* src) {
    Burst burst;
    Bytes frame = ethernet(port_mac(port), host_mac(9), kEtherIpv4,
                           ipv4(ip(src), internet_host(), kProtoUdp, udp(ip(src), internet_host(), 1, 2, payload_bytes(20))));
    fill_burst(burst, port, {frame});
    run_stages(burst, {&parse, &guard});
    Action action = burst.action[0];
    free_burst(burst);
    return action;
  };
  EXPECT_EQ(verdict(0, "10.10.0.11"), Action::kContinue);
  EXPECT_EQ(verdict(1, "10.20.0.11"), Action::kContinue);
  EXPECT_EQ(verdict(1, "10.10.0.1"), Action::kDrop) << "the gateway's address on the other LAN";
  EXPECT_EQ(verdict(0, "10.20.0.1"), Action::kDrop);
  EXPECT_EQ(verdict(2, "10.20.0.11"), Action::kDrop);
  EXPECT_EQ(verdict(2, "10.20.0.1"), Action::kDrop);
  EXPECT_EQ(verdict(2, "192.0.2.10"), Action::kContinue);
}

}  // namespace
}  // namespace fairgate::test
