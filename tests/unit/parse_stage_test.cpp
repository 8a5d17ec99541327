#include "stages/parse/parse_stage.h"
#include "test_env.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace fairgate::test {
namespace {

// Port 0: untagged LAN, port 1: WAN, port 2: LAN on VLAN 20.
constexpr const char* kParseConfig = R"({"ports": [
  {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
  {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1"},
  {"name": "lan1", "role": "lan", "device": "net_ring2", "address": "10.20.0.1/24", "vlan": 20}]})";

constexpr uint16_t kLan = 0, kWan = 1, kVlanLan = 2;

struct ParseCase {
  std::string name;
  uint16_t port;
  Bytes frame;
  Action action;
  DropReason drop = DropReason::kCount;  // for kDrop
  PuntReason punt = PuntReason::kCount;  // for kPunt
  uint16_t l2_len = 0;                   // for kContinue and kPunt
  uint16_t l3_len = 0;
  uint16_t vlan = 0;
  uint32_t pkt_len = 0;  // after the stage; 0: the frame's length
  uint64_t ol_flags = 0;  // what the NIC reported
};

void PrintTo(const ParseCase& c, std::ostream* out) { *out << c.name; }

Bytes udp_packet(uint32_t src, uint32_t dst, const Ipv4Fields& fields = {}) {
  return ipv4(src, dst, kProtoUdp, udp(src, dst, 40000, 53, payload_bytes(18)), fields);
}
Bytes from_host(uint16_t port, uint16_t ethertype, const Bytes& payload, std::initializer_list<uint16_t> vlans = {}) {
  return ethernet(port_mac(port), lan_host_mac(), ethertype, payload, vlans);
}
Bytes lan_udp(const Ipv4Fields& fields = {}) {
  return from_host(kLan, kEtherIpv4, udp_packet(lan_host(), internet_host(), fields));
}
Bytes with_source(uint32_t source) { return from_host(kLan, kEtherIpv4, udp_packet(source, internet_host())); }
Bytes arp_request() {
  return ethernet(broadcast_mac(), lan_host_mac(), kEtherArp, arp(1, lan_host_mac(), lan_host(), zero_mac(), lan_gw()));
}
Bytes truncated(Bytes frame, std::size_t length) {
  frame.resize(length);
  return frame;
}
Bytes with_bytes(Bytes frame, std::size_t offset, uint16_t value) {
  set16(frame, offset, value);
  return frame;
}

const Bytes kOptions = {0x01, 0x01, 0x01, 0x00};  // NOP NOP NOP EOL
constexpr uint16_t kUdpIpLen = 20 + 8 + 18;

std::vector<ParseCase> parse_cases() {
  Bytes valid = lan_udp();
  return {
      {"valid_ipv4", kLan, valid, Action::kContinue, {}, {}, 14, 20},
      {"valid_ipv4_from_wan", kWan, ethernet(port_mac(kWan), wan_gw_mac(), kEtherIpv4, udp_packet(internet_host(), lan_host())),
       Action::kContinue, {}, {}, 14, 20},
      {"ipv4_with_options", kLan, lan_udp({.options = kOptions}), Action::kContinue, {}, {}, 14, 24},
      {"tagged_on_vlan_port", kVlanLan, from_host(kVlanLan, kEtherIpv4, udp_packet(ip("10.20.0.5"), internet_host()), {20}),
       Action::kContinue, {}, {}, 18, 20, 20},
      {"tagged_with_priority_bits", kVlanLan,
       from_host(kVlanLan, kEtherIpv4, udp_packet(ip("10.20.0.5"), internet_host()), {0x6000 | 20}), Action::kContinue,
       {}, {}, 18, 20, 20},
      {"tagged_on_untagged_port", kLan, from_host(kLan, kEtherIpv4, udp_packet(lan_host(), internet_host()), {20}),
       Action::kDrop, DropReason::kVlanUnknown},
      {"untagged_on_vlan_port", kVlanLan, from_host(kVlanLan, kEtherIpv4, udp_packet(ip("10.20.0.5"), internet_host())),
       Action::kDrop, DropReason::kVlanUnknown},
      {"other_vlan_on_vlan_port", kVlanLan,
       from_host(kVlanLan, kEtherIpv4, udp_packet(ip("10.20.0.5"), internet_host()), {30}), Action::kDrop,
       DropReason::kVlanUnknown},
      {"stacked_tags", kVlanLan, from_host(kVlanLan, kEtherIpv4, udp_packet(ip("10.20.0.5"), internet_host()), {20, 30}),
       Action::kDrop, DropReason::kVlanStacked},
      {"stacked_qinq_outer_tag", kVlanLan,
       with_bytes(from_host(kVlanLan, kEtherIpv4, udp_packet(ip("10.20.0.5"), internet_host()), {20, 30}), 12, 0x88a8),
       Action::kDrop, DropReason::kVlanStacked},
      {"empty_frame", kLan, {}, Action::kDrop, DropReason::kEthTruncated},
      {"short_frame", kLan, truncated(valid, 13), Action::kDrop, DropReason::kEthTruncated},
      {"tag_cut_short", kVlanLan, truncated(from_host(kVlanLan, kEtherIpv4, {}, {20}), 16), Action::kDrop,
       DropReason::kVlanTruncated},
      {"ipv6", kLan, from_host(kLan, kEtherIpv6, payload_bytes(48)), Action::kDrop, DropReason::kIpv6Unsupported},
      {"lldp", kLan, ethernet(make_mac(0x01, 0x80, 0xc2, 0, 0, 0x0e), lan_host_mac(), kEtherLldp, payload_bytes(46)),
       Action::kDrop, DropReason::kEthertypeUnsupported},
      {"arp_request_broadcast", kLan, padded(arp_request()), Action::kPunt, {}, PuntReason::kArp, 14, 0},
      {"arp_on_vlan_port", kVlanLan,
       ethernet(broadcast_mac(), lan_host_mac(), kEtherArp, arp(1, lan_host_mac(), ip("10.20.0.5"), zero_mac(), ip("10.20.0.1")), {20}),
       Action::kPunt, {}, PuntReason::kArp, 18, 0, 20},
      {"arp_short_left_to_the_handler", kLan, truncated(arp_request(), 30), Action::kPunt, {}, PuntReason::kArp, 14, 0},
      {"unicast_to_another_mac", kLan,
       ethernet(host_mac(0x99), lan_host_mac(), kEtherIpv4, udp_packet(lan_host(), internet_host())), Action::kDrop,
       DropReason::kL2NotForUs},
      {"unicast_to_another_port_mac", kWan,
       ethernet(port_mac(kLan), wan_gw_mac(), kEtherIpv4, udp_packet(internet_host(), lan_host())), Action::kDrop,
       DropReason::kL2NotForUs},
      {"broadcast_accepted", kLan,
       ethernet(broadcast_mac(), lan_host_mac(), kEtherIpv4, udp_packet(lan_host(), ip("255.255.255.255"))),
       Action::kContinue, {}, {}, 14, 20},
      {"multicast_mac_accepted", kLan,
       ethernet(make_mac(0x01, 0x00, 0x5e, 0, 0, 0xfb), lan_host_mac(), kEtherIpv4, udp_packet(lan_host(), ip("224.0.0.251"))),
       Action::kContinue, {}, {}, 14, 20},
      {"version_6_in_ipv4", kLan, lan_udp({.version = 6}), Action::kDrop, DropReason::kIpv4BadVersion},
      {"ihl_4", kLan, lan_udp({.ihl = 4}), Action::kDrop, DropReason::kIpv4BadIhl},
      {"ihl_0", kLan, lan_udp({.ihl = 0}), Action::kDrop, DropReason::kIpv4BadIhl},
      {"ihl_15_short_frame", kLan, padded(from_host(kLan, kEtherIpv4, ipv4(lan_host(), internet_host(), kProtoUdp, payload_bytes(8), {.ihl = 15}))),
       Action::kDrop, DropReason::kIpv4Truncated},
      {"ipv4_header_cut_short", kLan, truncated(valid, 14 + 19), Action::kDrop, DropReason::kIpv4Truncated},
      {"total_length_below_header", kLan, lan_udp({.total_length = 19}), Action::kDrop, DropReason::kIpv4BadTotalLength},
      {"total_length_below_options", kLan, lan_udp({.options = kOptions, .total_length = 20}), Action::kDrop,
       DropReason::kIpv4BadTotalLength},
      {"total_length_beyond_frame", kLan, lan_udp({.total_length = kUdpIpLen + 1}), Action::kDrop,
       DropReason::kIpv4Truncated},
      {"bad_checksum", kLan, lan_udp({.bad_checksum = true}), Action::kDrop, DropReason::kIpv4BadChecksum},
      {"nic_says_checksum_bad", kLan, lan_udp(), Action::kDrop, DropReason::kIpv4BadChecksum, {}, 0, 0, 0, 0,
       RTE_MBUF_F_RX_IP_CKSUM_BAD},
      {"nic_says_checksum_good", kLan, lan_udp({.bad_checksum = true}), Action::kContinue, {}, {}, 14, 20, 0, 0,
       RTE_MBUF_F_RX_IP_CKSUM_GOOD},
      {"source_multicast", kLan, with_source(ip("224.1.1.1")), Action::kDrop, DropReason::kIpv4BadSource},
      {"source_zero", kLan, with_source(ip("0.0.0.0")), Action::kDrop, DropReason::kIpv4BadSource},
      {"source_loopback", kLan, with_source(ip("127.0.0.1")), Action::kDrop, DropReason::kIpv4BadSource},
      {"source_broadcast", kLan, with_source(ip("255.255.255.255")), Action::kDrop, DropReason::kIpv4BadSource},
      {"source_class_e", kLan, with_source(ip("240.0.0.1")), Action::kDrop, DropReason::kIpv4BadSource},
      {"ethernet_padding_trimmed", kLan,
       padded(from_host(kLan, kEtherIpv4, ipv4(lan_host(), internet_host(), kProtoIcmp, icmp_echo(7, 1, 0)))),
       Action::kContinue, {}, {}, 14, 20, 0, 14 + 28},
      {"tagged_padding_trimmed", kVlanLan,
       padded(from_host(kVlanLan, kEtherIpv4, ipv4(ip("10.20.0.5"), internet_host(), kProtoIcmp, icmp_echo(7, 1, 0)), {20})),
       Action::kContinue, {}, {}, 18, 20, 20, 18 + 28},
  };
}

class ParseStageTest : public PoolCheckedTest {
 protected:
  Config config = parse_config(kParseConfig);
  PortTable ports = make_port_table(config);
  ParseStage parse{ports};

  // Checks one packet's verdict and metadata after the stage.
  static void expect_result(const ParseCase& c, const Burst& burst, uint16_t i) {
    SCOPED_TRACE(c.name);
    rte_mbuf* mbuf = burst.pkts[i];
    const PacketMeta* meta = packet_meta(mbuf);
    ASSERT_EQ(burst.action[i], c.action);
    if (c.action == Action::kDrop) {
      EXPECT_EQ(burst.drop_reason[i], c.drop);
      return;
    }
    if (c.action == Action::kPunt) {
      EXPECT_EQ(static_cast<PuntReason>(meta->punt_reason), c.punt);
    }
    EXPECT_EQ(meta->l2_len, c.l2_len);
    EXPECT_EQ(meta->l3_len, c.l3_len);
    EXPECT_EQ(meta->vlan_id, c.vlan);
    EXPECT_EQ(meta->ethertype, c.action == Action::kPunt ? kEtherArp : kEtherIpv4);
    uint32_t expected_len = c.pkt_len ? c.pkt_len : static_cast<uint32_t>(c.frame.size());
    EXPECT_EQ(rte_pktmbuf_pkt_len(mbuf), expected_len);
    EXPECT_EQ(rte_pktmbuf_data_len(mbuf), expected_len);
    // Nothing but the padding changes.
    Bytes after = bytes_of(mbuf);
    EXPECT_TRUE(std::equal(after.begin(), after.end(), c.frame.begin()));
  }
};

class ParseCases : public ParseStageTest, public ::testing::WithParamInterface<ParseCase> {};

TEST_P(ParseCases, VerdictAndMeta) {
  const ParseCase& c = GetParam();
  Burst burst;
  fill_burst(burst, c.port, {c.frame});
  burst.pkts[0]->ol_flags |= c.ol_flags;
  parse.process(burst);
  expect_result(c, burst, 0);
  free_burst(burst);
}

INSTANTIATE_TEST_SUITE_P(Table, ParseCases, ::testing::ValuesIn(parse_cases()),
                         [](const ::testing::TestParamInfo<ParseCase>& info) { return info.param.name; });

// The same cases mixed in full bursts (the stage prefetches ahead and must keep each packet's
// verdict to itself), each port's cases repeated to fill bursts of 32.
TEST_F(ParseStageTest, MixedBurstsGiveEachPacketItsOwnVerdict) {
  std::map<uint16_t, std::vector<ParseCase>> by_port;
  for (const auto& c : parse_cases()) by_port[c.port].push_back(c);
  for (const auto& [port, cases] : by_port) {
    std::vector<const ParseCase*> order;
    for (std::size_t i = 0; order.size() < kBurstSize; ++i) order.push_back(&cases[(i * 7) % cases.size()]);
    Burst burst;
    std::vector<Bytes> frames;
    for (const auto* c : order) frames.push_back(c->frame);
    fill_burst(burst, port, frames);
    for (uint16_t i = 0; i < burst.count; ++i) burst.pkts[i]->ol_flags |= order[i]->ol_flags;
    parse.process(burst);
    for (uint16_t i = 0; i < burst.count; ++i) expect_result(*order[i], burst, i);
    free_burst(burst);
  }
}

TEST_F(ParseStageTest, LeavesPacketsThatAlreadyHaveAVerdict) {
  Burst burst;
  fill_burst(burst, kLan, {lan_udp({.bad_checksum = true}), lan_udp()});
  burst.drop(0, DropReason::kNoRoute);
  burst.action[1] = Action::kPunt;
  parse.process(burst);
  EXPECT_EQ(burst.action[0], Action::kDrop);
  EXPECT_EQ(burst.drop_reason[0], DropReason::kNoRoute);
  EXPECT_EQ(burst.action[1], Action::kPunt);
  free_burst(burst);
}

// Every prefix 0..60 bytes of a few frames, each placed right before an unmapped page: the
// stage must give a verdict without reading a byte past the frame (a read faults).
struct SweepBase {
  std::string name;
  uint16_t port;
  Bytes frame;
  uint16_t l2_len;
  bool arp;
  std::size_t complete;  // shortest prefix that is a whole packet (IPv4), 0: never
};

TEST_F(ParseStageTest, EveryLengthUpTo60NeverReadsPastTheFrame) {
  const std::vector<SweepBase> bases = {
      {"ipv4_padded", kLan,
       padded(from_host(kLan, kEtherIpv4, ipv4(lan_host(), internet_host(), kProtoIcmp, icmp_echo(1, 1, 0)))), 14, false,
       14 + 28},
      {"ipv4_options_tagged", kVlanLan,
       padded(from_host(kVlanLan, kEtherIpv4,
                        ipv4(ip("10.20.0.5"), internet_host(), kProtoIcmp, icmp_echo(1, 1, 0), {.options = kOptions}), {20})),
       18, false, 18 + 32},
      {"ipv4_ihl_15", kLan,
       padded(from_host(kLan, kEtherIpv4, ipv4(lan_host(), internet_host(), kProtoUdp, payload_bytes(4), {.ihl = 15}))), 14,
       false, 0},
      {"ipv4_total_length_max", kLan, padded(lan_udp({.total_length = 0xffff})), 14, false, 0},
      {"arp", kLan, padded(arp_request()), 14, true, 0},
      {"arp_tagged", kVlanLan,
       padded(ethernet(broadcast_mac(), lan_host_mac(), kEtherArp, arp(1, lan_host_mac(), ip("10.20.0.5"), zero_mac(), ip("10.20.0.1")), {20})),
       18, true, 0},
  };
  for (const auto& base : bases) {
    for (std::size_t length = 0; length <= 60 && length <= base.frame.size(); ++length) {
      SCOPED_TRACE(base.name + " cut to " + std::to_string(length) + " bytes");
      GuardedFrame guarded(truncated(base.frame, length), base.port);
      Burst burst;
      burst.reset(base.port, 1);
      burst.pkts[0] = guarded.mbuf();
      parse.process(burst);
      if (length < 14) {
        EXPECT_EQ(burst.action[0], Action::kDrop);
        EXPECT_EQ(burst.drop_reason[0], DropReason::kEthTruncated);
      } else if (length < base.l2_len) {
        EXPECT_EQ(burst.action[0], Action::kDrop);
        EXPECT_EQ(burst.drop_reason[0], DropReason::kVlanTruncated);
      } else if (base.arp) {
        EXPECT_EQ(burst.action[0], Action::kPunt);
      } else if (base.complete != 0 && length >= base.complete) {
        EXPECT_EQ(burst.action[0], Action::kContinue);
        EXPECT_EQ(rte_pktmbuf_pkt_len(guarded.mbuf()), base.complete) << "padding trimmed";
      } else {
        EXPECT_EQ(burst.action[0], Action::kDrop);
        EXPECT_EQ(burst.drop_reason[0], DropReason::kIpv4Truncated);
      }
      rte_pktmbuf_free(guarded.mbuf());
    }
  }
}

}  // namespace
}  // namespace fairgate::test
