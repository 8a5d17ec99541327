#include "mgmt/frame_builder.h"
#include "test_env.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace fairgate::test {
namespace {

struct AllowedCase {
  std::string name;
  Bytes packet;  // an IPv4 packet
  bool allowed;
  std::size_t available = 0;  // 0: the whole packet
};
void PrintTo(const AllowedCase& c, std::ostream* out) { *out << c.name; }

Bytes from(uint32_t source, uint8_t proto, const Bytes& l4, const Ipv4Fields& fields = {}) {
  return ipv4(source, internet_host(), proto, l4, fields);
}
Bytes udp_from(uint32_t source, const Ipv4Fields& fields = {}) {
  return from(source, kProtoUdp, udp(source, internet_host(), 1, 2, payload_bytes(8)), fields);
}
Bytes icmp_from_host(uint8_t type) { return from(lan_host(), kProtoIcmp, icmp(type, 0, 0, payload_bytes(8))); }

class IcmpErrorAllowed : public ::testing::TestWithParam<AllowedCase> {};

TEST_P(IcmpErrorAllowed, Rfc1812Rules) {
  const AllowedCase& c = GetParam();
  uint32_t available = static_cast<uint32_t>(c.available ? c.available : c.packet.size());
  EXPECT_EQ(icmp_error_allowed(c.packet.data(), available), c.allowed);
}

INSTANTIATE_TEST_SUITE_P(
    Table, IcmpErrorAllowed,
    ::testing::Values(AllowedCase{"udp", udp_from(lan_host()), true},
                      AllowedCase{"echo_request", icmp_from_host(8), true},
                      AllowedCase{"echo_reply", icmp_from_host(0), true},
                      AllowedCase{"timestamp", icmp_from_host(13), true},
                      AllowedCase{"destination_unreachable", icmp_from_host(3), false},
                      AllowedCase{"time_exceeded", icmp_from_host(11), false},
                      AllowedCase{"redirect", icmp_from_host(5), false},
                      AllowedCase{"parameter_problem", icmp_from_host(12), false},
                      AllowedCase{"icmp_type_cut_off", icmp_from_host(8), false, 20},
                      AllowedCase{"first_fragment", udp_from(lan_host(), {.flags_fragment = 0x2000}), true},
                      AllowedCase{"later_fragment", udp_from(lan_host(), {.flags_fragment = 0x0001}), false},
                      AllowedCase{"source_zero", udp_from(ip("0.0.0.0")), false},
                      AllowedCase{"source_multicast", udp_from(ip("224.0.0.5")), false},
                      AllowedCase{"source_broadcast", udp_from(ip("255.255.255.255")), false},
                      AllowedCase{"source_loopback", udp_from(ip("127.0.0.1")), false},
                      AllowedCase{"shorter_than_a_header", udp_from(lan_host()), false, 19}),
    [](const ::testing::TestParamInfo<AllowedCase>& info) { return info.param.name; });

class FrameBuilderTest : public PoolCheckedTest {};

TEST_F(FrameBuilderTest, ArpRequestOnAVlanPortIsTagged) {
  Config config = parse_config(kVlanLanConfig);
  PortTable ports = make_port_table(config);
  rte_mbuf* mbuf = build_arp_request(test_pool(), ports.ports[0], lan_host());
  ASSERT_NE(mbuf, nullptr);
  Frame frame = Frame::of(mbuf);
  EXPECT_EQ(frame.vlan, 10);
  EXPECT_EQ(frame.ethertype, kEtherArp);
  EXPECT_EQ(frame.bytes.size(), 18u + 28u);
  EXPECT_EQ(frame.arp_op(), 1);
  EXPECT_EQ(frame.arp_sip(), lan_gw());
  EXPECT_EQ(frame.arp_tip(), lan_host());
  EXPECT_EQ(packet_meta(mbuf)->l2_len, 18);
  rte_pktmbuf_free(mbuf);
}

TEST_F(FrameBuilderTest, IcmpErrorQuotesAndChecksums) {
  Bytes original = udp_from(lan_host(), {.ttl = 1});
  rte_mbuf* mbuf = build_icmp_error(test_pool(), original.data(), static_cast<uint32_t>(original.size()), lan_gw(), 11, 0, 0);
  ASSERT_NE(mbuf, nullptr);
  EXPECT_EQ(packet_meta(mbuf)->l2_len, 0);
  // No Ethernet header yet: decode it behind a dummy one.
  Frame frame(ethernet(zero_mac(), zero_mac(), kEtherIpv4, bytes_of(mbuf)));
  EXPECT_EQ(frame.ip_src(), lan_gw());
  EXPECT_EQ(frame.ip_dst(), lan_host());
  EXPECT_EQ(frame.ttl(), 64);
  EXPECT_TRUE(frame.ip_checksum_valid());
  EXPECT_TRUE(frame.icmp_checksum_valid());
  EXPECT_EQ(frame.icmp_type(), 11);
  Bytes icmp_message = frame.l4_bytes();
  EXPECT_EQ(Bytes(icmp_message.begin() + 8, icmp_message.end()), original);
  rte_pktmbuf_free(mbuf);
}

TEST_F(FrameBuilderTest, IcmpErrorQuoteIsLimitedByTotalLengthNotPadding) {
  Bytes original = udp_from(lan_host());
  Bytes with_padding = original;
  with_padding.resize(original.size() + 10, 0);  // bytes after the packet that are not its own
  rte_mbuf* mbuf = build_icmp_error(test_pool(), with_padding.data(), static_cast<uint32_t>(with_padding.size()),
                                    lan_gw(), 3, 4, 1400);
  ASSERT_NE(mbuf, nullptr);
  Frame frame(ethernet(zero_mac(), zero_mac(), kEtherIpv4, bytes_of(mbuf)));
  Bytes icmp_message = frame.l4_bytes();
  EXPECT_EQ(icmp_message.size(), 8u + original.size());
  EXPECT_EQ(get16(icmp_message, 6), 1400) << "next-hop MTU";
  EXPECT_TRUE(frame.icmp_checksum_valid());
  rte_pktmbuf_free(mbuf);
}

}  // namespace
}  // namespace fairgate::test
