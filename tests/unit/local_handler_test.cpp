#include "mgmt/frame_builder.h"
#include "mgmt/local_handler.h"
#include "stages/l3/l3_stage.h"
#include "stages/parse/parse_stage.h"
#include "test_env.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace fairgate::test {
namespace {

constexpr uint16_t kLan = 0, kWan = 1;
constexpr uint64_t kT0 = 5'000'000;  // fake clock, ms
constexpr uint8_t kEchoRequest = 8, kEchoReply = 0, kUnreachable = 3, kTimeExceeded = 11;

// The two-port layout with a WAN MTU below the LAN's, for fragmentation and "fragmentation
// needed" with frames that fit one mbuf.
constexpr const char* kHandlerConfig = R"({"ports": [
  {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
  {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1",
   "mtu": 1000}]})";

// Keeps what the handler sends, in order.
class CaptureSink final : public FrameSink {
 public:
  ~CaptureSink() override { clear(); }
  void send(uint16_t port, rte_mbuf* frame) override { frames_.emplace_back(port, frame); }
  // The frames sent so far, decoded; their mbufs go back to the pool.
  std::vector<std::pair<uint16_t, Frame>> take() {
    std::vector<std::pair<uint16_t, Frame>> out;
    for (auto& [port, mbuf] : frames_) out.emplace_back(port, Frame::of(mbuf));
    clear();
    return out;
  }
  std::size_t size() const { return frames_.size(); }
  void clear() {
    for (auto& sent : frames_) rte_pktmbuf_free(sent.second);
    frames_.clear();
  }

 private:
  std::vector<std::pair<uint16_t, rte_mbuf*>> frames_;
};

Bytes host_to(uint32_t dst, uint8_t proto, const Bytes& l4, const Ipv4Fields& fields = {}) {
  return ethernet(port_mac(kLan), lan_host_mac(), kEtherIpv4, ipv4(lan_host(), dst, proto, l4, fields));
}
Bytes host_echo(uint32_t dst, uint16_t seq, const Ipv4Fields& fields = {}) {
  return host_to(dst, kProtoIcmp, icmp_echo(0x4242, seq, 32), fields);
}
Bytes host_udp(uint32_t dst, const Ipv4Fields& fields = {}) {
  return host_to(dst, kProtoUdp, udp(lan_host(), dst, 40000, 33434, payload_bytes(12)), fields);
}
Bytes host_arp(uint16_t op, uint32_t target, const rte_ether_addr& eth_dst, const rte_ether_addr& target_mac) {
  return padded(ethernet(eth_dst, lan_host_mac(), kEtherArp, arp(op, lan_host_mac(), lan_host(), target_mac, target)));
}

class LocalHandlerTest : public PoolCheckedTest {
 protected:
  explicit LocalHandlerTest(const char* config_text = kHandlerConfig)
      : config(parse_config(config_text)), ports(make_port_table(config)) {}

  // Runs a frame through parse and l3 as a worker does, and hands the punt to the handler
  // (mbuf->port = ingress port index, PacketMeta as the stages left it). Fails when the
  // stages do not punt it for `expected`.
  void punt(uint16_t port, const Bytes& frame, PuntReason expected, uint64_t now = kT0) {
    Burst burst;
    fill_burst(burst, port, {frame});
    run_stages(burst, {&parse, &l3});
    if (burst.action[0] != Action::kPunt || static_cast<PuntReason>(packet_meta(burst.pkts[0])->punt_reason) != expected) {
      ADD_FAILURE() << "the stages did not punt the frame for " << expected << " (action " << burst.action[0] << ")";
      free_burst(burst);
      return;
    }
    handler.handle(burst.pkts[0], now);
  }
  // The LAN host asks for our address: the handler learns it (the reply is discarded).
  void host_is_known(uint64_t now = kT0) {
    punt(kLan, host_arp(1, lan_gw(), broadcast_mac(), zero_mac()), PuntReason::kArp, now);
    ASSERT_EQ(sink.size(), 1u);
    sink.clear();
    handler.tick(now);  // publishes the snapshot
  }
  void wan_gateway_is_known(uint64_t now = kT0) {
    punt(kWan,
         padded(ethernet(port_mac(kWan), wan_gw_mac(), kEtherArp, arp(2, wan_gw_mac(), wan_gw(), port_mac(kWan), wan_own()))),
         PuntReason::kArp, now);
    handler.tick(now);
  }
  uint64_t drops(DropReason reason) const { return handler.counters().drops[static_cast<std::size_t>(reason)].get(); }

  Config config;
  PortTable ports;
  RcuPublished<NeighborSnapshot> published;
  CaptureSink sink;
  LocalHandler handler{ports, config.neighbors, test_pool(), sink, published};
  ParseStage parse{ports};
  L3Stage l3{ports, published};
};

void expect_arp_request(const std::pair<uint16_t, Frame>& sent, uint16_t port, uint32_t own, uint32_t target) {
  const Frame& frame = sent.second;
  EXPECT_EQ(sent.first, port);
  EXPECT_EQ(mac_text(frame.dst), "ff:ff:ff:ff:ff:ff");
  EXPECT_EQ(mac_text(frame.src), mac_text(port_mac(port)));
  EXPECT_EQ(frame.ethertype, kEtherArp);
  EXPECT_EQ(frame.arp_op(), 1);
  EXPECT_EQ(get16(frame.bytes, frame.l3), 1) << "hardware type Ethernet";
  EXPECT_EQ(get16(frame.bytes, frame.l3 + 2), kEtherIpv4);
  EXPECT_EQ(mac_text(frame.arp_sha()), mac_text(port_mac(port)));
  EXPECT_EQ(frame.arp_sip(), own);
  EXPECT_EQ(mac_text(frame.arp_tha()), "00:00:00:00:00:00");
  EXPECT_EQ(frame.arp_tip(), target) << format_ipv4(frame.arp_tip());
}

// An ICMP error: from `source` to `destination`, type/code, quoting the start of `original`
// (an IPv4 packet), with valid checksums.
void expect_icmp_error(const Frame& frame, uint32_t source, uint32_t destination, uint8_t type, uint8_t code,
                       const Bytes& original) {
  EXPECT_EQ(frame.ethertype, kEtherIpv4);
  EXPECT_EQ(frame.ip_src(), source) << format_ipv4(frame.ip_src());
  EXPECT_EQ(frame.ip_dst(), destination) << format_ipv4(frame.ip_dst());
  EXPECT_EQ(frame.protocol(), kProtoIcmp);
  EXPECT_TRUE(frame.ip_checksum_valid());
  EXPECT_TRUE(frame.icmp_checksum_valid());
  EXPECT_EQ(frame.icmp_type(), type);
  EXPECT_EQ(frame.icmp_code(), code);
  Bytes icmp_message = frame.l4_bytes();
  ASSERT_GE(icmp_message.size(), 8u);
  Bytes quoted(icmp_message.begin() + 8, icmp_message.end());
  ASSERT_GE(quoted.size(), 28u) << "the original header and 8 bytes of its payload (RFC 792)";
  ASSERT_LE(quoted.size(), original.size());
  EXPECT_EQ(quoted, Bytes(original.begin(), original.begin() + static_cast<long>(quoted.size())));
  EXPECT_LE(frame.total_length(), 576) << "RFC 1812 4.3.2.3";
}

TEST_F(LocalHandlerTest, StartAnnouncesEveryPortAndResolvesTheWanGateway) {
  handler.start(kT0);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 3u);
  expect_arp_request(sent[0], kLan, lan_gw(), lan_gw());  // gratuitous: target = own address
  expect_arp_request(sent[1], kWan, wan_own(), wan_own());
  expect_arp_request(sent[2], kWan, wan_own(), wan_gw());
  EXPECT_EQ(handler.counters().arp_announcements_sent.get(), 2u);
  EXPECT_EQ(handler.counters().arp_requests_sent.get(), 1u);
  ASSERT_NE(handler.neighbors().find(kWan, wan_gw()), nullptr);
  EXPECT_EQ(handler.neighbors().find(kWan, wan_gw())->state, NeighborTable::State::kIncomplete);
}

TEST_F(LocalHandlerTest, ArpRequestForUsIsAnsweredAndTheSenderLearned) {
  punt(kLan, host_arp(1, lan_gw(), broadcast_mac(), zero_mac()), PuntReason::kArp);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  const auto& [port, reply] = sent[0];
  EXPECT_EQ(port, kLan);
  EXPECT_EQ(mac_text(reply.dst), mac_text(lan_host_mac()));
  EXPECT_EQ(mac_text(reply.src), mac_text(port_mac(kLan)));
  EXPECT_EQ(reply.ethertype, kEtherArp);
  EXPECT_EQ(get16(reply.bytes, 14), 1);
  EXPECT_EQ(get16(reply.bytes, 16), kEtherIpv4);
  EXPECT_EQ(reply.bytes[18], 6);
  EXPECT_EQ(reply.bytes[19], 4);
  EXPECT_EQ(reply.arp_op(), 2);
  EXPECT_EQ(mac_text(reply.arp_sha()), mac_text(port_mac(kLan)));
  EXPECT_EQ(reply.arp_sip(), lan_gw());
  EXPECT_EQ(mac_text(reply.arp_tha()), mac_text(lan_host_mac()));
  EXPECT_EQ(reply.arp_tip(), lan_host());
  EXPECT_EQ(handler.counters().arp_replies_sent.get(), 1u);

  const auto* entry = handler.neighbors().find(kLan, lan_host());
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->state, NeighborTable::State::kReachable);
  EXPECT_TRUE(same_mac(entry->mac, lan_host_mac()));
  handler.tick(kT0);
  ASSERT_NE(published.current()->lookup(kLan, lan_host()), nullptr) << "published to the workers";
}

TEST_F(LocalHandlerTest, ArpForAnotherAddressIsNotAnsweredNorLearned) {
  punt(kLan, host_arp(1, ip("10.10.0.99"), broadcast_mac(), zero_mac()), PuntReason::kArp);
  EXPECT_EQ(sink.size(), 0u);
  EXPECT_EQ(drops(DropReason::kArpNotForUs), 1u);
  EXPECT_EQ(handler.neighbors().find(kLan, lan_host()), nullptr) << "unsolicited ARP must not fill the table";
}

TEST_F(LocalHandlerTest, ArpReplyForUsIsLearnedNotAnswered) {
  punt(kLan, host_arp(2, lan_gw(), port_mac(kLan), port_mac(kLan)), PuntReason::kArp);
  EXPECT_EQ(sink.size(), 0u);
  ASSERT_NE(handler.neighbors().find(kLan, lan_host()), nullptr);
  EXPECT_EQ(drops(DropReason::kArpNotForUs), 0u);
}

TEST_F(LocalHandlerTest, ArpFromOffLinkSenderIsNotLearned) {
  Bytes frame = padded(ethernet(broadcast_mac(), lan_host_mac(), kEtherArp,
                                arp(1, lan_host_mac(), ip("192.0.2.77"), zero_mac(), lan_gw())));
  punt(kLan, frame, PuntReason::kArp);
  EXPECT_EQ(handler.neighbors().size(), 0u);
  sink.clear();
}

TEST_F(LocalHandlerTest, MalformedArpIsCounted) {
  Bytes good = arp(1, lan_host_mac(), lan_host(), zero_mac(), lan_gw());
  Bytes hlen8 = good;
  hlen8[4] = 8;
  Bytes plen6 = good;
  plen6[5] = 6;
  Bytes hardware = good;
  set16(hardware, 0, 6);
  Bytes protocol = good;
  set16(protocol, 2, kEtherIpv6);
  Bytes opcode = good;
  set16(opcode, 6, 3);
  Bytes multicast_sender = arp(1, make_mac(0x01, 0, 0x5e, 0, 0, 1), lan_host(), zero_mac(), lan_gw());
  const std::vector<std::pair<std::string, Bytes>> cases = {
      {"hlen_8", padded(ethernet(broadcast_mac(), lan_host_mac(), kEtherArp, hlen8))},
      {"plen_6", padded(ethernet(broadcast_mac(), lan_host_mac(), kEtherArp, plen6))},
      {"hardware_not_ethernet", padded(ethernet(broadcast_mac(), lan_host_mac(), kEtherArp, hardware))},
      {"protocol_not_ipv4", padded(ethernet(broadcast_mac(), lan_host_mac(), kEtherArp, protocol))},
      {"opcode_3", padded(ethernet(broadcast_mac(), lan_host_mac(), kEtherArp, opcode))},
      {"multicast_sender_mac", padded(ethernet(broadcast_mac(), lan_host_mac(), kEtherArp, multicast_sender))},
      {"short", ethernet(broadcast_mac(), lan_host_mac(), kEtherArp, Bytes(good.begin(), good.begin() + 20))},
      {"header_only", ethernet(broadcast_mac(), lan_host_mac(), kEtherArp, {})},
  };
  uint64_t expected = 0;
  for (const auto& [name, frame] : cases) {
    SCOPED_TRACE(name);
    punt(kLan, frame, PuntReason::kArp);
    EXPECT_EQ(drops(DropReason::kArpMalformed), ++expected);
    EXPECT_EQ(sink.size(), 0u);
    EXPECT_EQ(handler.neighbors().size(), 0u);
  }
}

TEST_F(LocalHandlerTest, ArpOfEveryLengthNeverReadsPastTheFrame) {
  Bytes frame = host_arp(1, lan_gw(), broadcast_mac(), zero_mac());
  for (std::size_t length = 14; length <= frame.size(); ++length) {
    SCOPED_TRACE(std::to_string(length) + " bytes");
    GuardedFrame guarded(Bytes(frame.begin(), frame.begin() + static_cast<long>(length)), kLan);
    Burst burst;
    burst.reset(kLan, 1);
    burst.pkts[0] = guarded.mbuf();
    parse.process(burst);
    ASSERT_EQ(burst.action[0], Action::kPunt);
    handler.handle(guarded.mbuf(), kT0);  // frees it, or turns it into the reply
    sink.clear();
  }
  EXPECT_EQ(drops(DropReason::kArpMalformed), 42u - 14u) << "every frame shorter than a whole ARP message";
  EXPECT_EQ(handler.counters().arp_replies_sent.get(), 60u - 42u + 1u);
}

TEST_F(LocalHandlerTest, ArpOnAVlanPortIsAnsweredTagged) {
  Config vlan_config = parse_config(kVlanLanConfig);
  PortTable vlan_ports = make_port_table(vlan_config);
  RcuPublished<NeighborSnapshot> vlan_published;
  CaptureSink vlan_sink;
  LocalHandler vlan_handler(vlan_ports, vlan_config.neighbors, test_pool(), vlan_sink, vlan_published);
  ParseStage vlan_parse(vlan_ports);
  Burst burst;
  fill_burst(burst, kLan,
             {padded(ethernet(broadcast_mac(), lan_host_mac(), kEtherArp,
                              arp(1, lan_host_mac(), lan_host(), zero_mac(), lan_gw()), {10}))});
  vlan_parse.process(burst);
  ASSERT_EQ(burst.action[0], Action::kPunt);
  vlan_handler.handle(burst.pkts[0], kT0);
  auto sent = vlan_sink.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].second.vlan, 10);
  EXPECT_EQ(sent[0].second.arp_op(), 2);
  EXPECT_EQ(sent[0].second.arp_tip(), lan_host());
}

TEST_F(LocalHandlerTest, EchoToUsFromAKnownHostIsAnswered) {
  host_is_known();
  Bytes request = host_echo(lan_gw(), 7);
  punt(kLan, request, PuntReason::kLocal);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  const auto& [port, reply] = sent[0];
  Frame original(request);
  EXPECT_EQ(port, kLan);
  EXPECT_EQ(mac_text(reply.dst), mac_text(lan_host_mac()));
  EXPECT_EQ(mac_text(reply.src), mac_text(port_mac(kLan)));
  EXPECT_EQ(reply.ethertype, kEtherIpv4);
  EXPECT_EQ(reply.ip_src(), lan_gw());
  EXPECT_EQ(reply.ip_dst(), lan_host());
  EXPECT_EQ(reply.ttl(), 64);
  EXPECT_EQ(reply.protocol(), kProtoIcmp);
  EXPECT_TRUE(reply.ip_checksum_valid());
  EXPECT_TRUE(reply.icmp_checksum_valid());
  EXPECT_EQ(reply.icmp_type(), kEchoReply);
  EXPECT_EQ(reply.icmp_code(), 0);
  // Identifier, sequence and data come back as sent.
  Bytes sent_icmp = original.l4_bytes(), got_icmp = reply.l4_bytes();
  ASSERT_EQ(got_icmp.size(), sent_icmp.size());
  EXPECT_TRUE(std::equal(got_icmp.begin() + 4, got_icmp.end(), sent_icmp.begin() + 4));
  EXPECT_EQ(handler.counters().echo_replies_sent.get(), 1u);
}

TEST_F(LocalHandlerTest, EchoToOurWanAddressFromTheLanIsAnsweredFromThatAddress) {
  host_is_known();
  punt(kLan, host_echo(wan_own(), 1), PuntReason::kLocal);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first, kLan);
  EXPECT_EQ(sent[0].second.ip_src(), wan_own());
  EXPECT_TRUE(sent[0].second.ip_checksum_valid());
}

TEST_F(LocalHandlerTest, EchoFromAnUnknownHostWaitsForArp) {
  punt(kLan, host_echo(lan_gw(), 9), PuntReason::kLocal);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u) << "the reply waits; an ARP request goes out";
  expect_arp_request(sent[0], kLan, lan_gw(), lan_host());
  EXPECT_EQ(handler.neighbors().find(kLan, lan_host())->held.size(), 1u);

  // The host answers: the reply that waited goes out.
  punt(kLan, host_arp(2, lan_gw(), port_mac(kLan), port_mac(kLan)), PuntReason::kArp, kT0 + 3);
  sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  const Frame& reply = sent[0].second;
  EXPECT_EQ(mac_text(reply.dst), mac_text(lan_host_mac()));
  EXPECT_EQ(reply.icmp_type(), kEchoReply);
  EXPECT_EQ(reply.ip_dst(), lan_host());
  EXPECT_TRUE(reply.ip_checksum_valid());
  EXPECT_TRUE(reply.icmp_checksum_valid());
}

TEST_F(LocalHandlerTest, BadEchosAreDropped) {
  host_is_known();
  Bytes bad_icmp_checksum = icmp_echo(1, 1, 8);
  bad_icmp_checksum[2] ^= 0xff;
  punt(kLan, host_to(lan_gw(), kProtoIcmp, bad_icmp_checksum), PuntReason::kLocal);
  EXPECT_EQ(drops(DropReason::kIcmpMalformed), 1u);
  punt(kLan, host_to(lan_gw(), kProtoIcmp, Bytes{8, 0, 0xf7}), PuntReason::kLocal);
  EXPECT_EQ(drops(DropReason::kIcmpMalformed), 2u) << "shorter than an ICMP header";
  punt(kLan, host_to(lan_gw(), kProtoIcmp, icmp(13, 0, 0, payload_bytes(12))), PuntReason::kLocal);
  EXPECT_EQ(drops(DropReason::kLocalUnsupported), 1u) << "timestamp requests are not answered";
  punt(kLan, host_echo(lan_gw(), 1, {.flags_fragment = 0x2000}), PuntReason::kLocal);
  EXPECT_EQ(drops(DropReason::kLocalUnsupported), 2u) << "a fragment of an echo";
  EXPECT_EQ(sink.size(), 0u);
}

TEST_F(LocalHandlerTest, TtlExceededSendsTimeExceededFromTheIngressAddress) {
  host_is_known();
  Bytes packet = host_udp(internet_host(), {.ttl = 1});
  punt(kLan, packet, PuntReason::kTtlExceeded);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first, kLan);
  EXPECT_EQ(mac_text(sent[0].second.dst), mac_text(lan_host_mac()));
  expect_icmp_error(sent[0].second, lan_gw(), lan_host(), kTimeExceeded, 0, Frame(packet).ip_packet());
  EXPECT_EQ(drops(DropReason::kTtlExceeded), 1u);
  EXPECT_EQ(handler.counters().icmp_errors_sent.get(), 1u);
}

TEST_F(LocalHandlerTest, TtlExceededFromTheWanComesFromTheWanAddress) {
  wan_gateway_is_known();
  Bytes packet = ethernet(port_mac(kWan), wan_gw_mac(), kEtherIpv4,
                          ipv4(internet_host(), lan_host(), kProtoIcmp, icmp_echo(1, 1, 16), {.ttl = 1}));
  punt(kWan, packet, PuntReason::kTtlExceeded);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first, kWan);
  EXPECT_EQ(mac_text(sent[0].second.dst), mac_text(wan_gw_mac()));
  expect_icmp_error(sent[0].second, wan_own(), internet_host(), kTimeExceeded, 0, Frame(packet).ip_packet());
}

TEST_F(LocalHandlerTest, UdpAndTcpToUsGetPortUnreachableOtherProtocolsProtocolUnreachable) {
  host_is_known();
  Bytes udp_packet = host_udp(lan_gw());
  punt(kLan, udp_packet, PuntReason::kLocal);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  expect_icmp_error(sent[0].second, lan_gw(), lan_host(), kUnreachable, 3, Frame(udp_packet).ip_packet());

  Bytes tcp_packet = host_to(lan_gw(), kProtoTcp, payload_bytes(20));
  punt(kLan, tcp_packet, PuntReason::kLocal);
  sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  expect_icmp_error(sent[0].second, lan_gw(), lan_host(), kUnreachable, 3, Frame(tcp_packet).ip_packet());

  Bytes gre_packet = host_to(lan_gw(), 47, payload_bytes(20));
  punt(kLan, gre_packet, PuntReason::kLocal);
  sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  expect_icmp_error(sent[0].second, lan_gw(), lan_host(), kUnreachable, 2, Frame(gre_packet).ip_packet());
  EXPECT_EQ(drops(DropReason::kLocalUnsupported), 3u);
}

TEST_F(LocalHandlerTest, LongPacketsAreQuotedWithin576Bytes) {
  host_is_known();
  Bytes packet = host_to(internet_host(), kProtoUdp, udp(lan_host(), internet_host(), 1, 2, payload_bytes(900)), {.ttl = 1});
  punt(kLan, packet, PuntReason::kTtlExceeded);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  expect_icmp_error(sent[0].second, lan_gw(), lan_host(), kTimeExceeded, 0, Frame(packet).ip_packet());
  EXPECT_EQ(sent[0].second.total_length(), 576);
}

TEST_F(LocalHandlerTest, NoIcmpErrorAboutAnIcmpError) {
  host_is_known();
  // An ICMP "port unreachable" with TTL 1: no time exceeded about it (RFC 1812 4.3.2.7).
  Bytes inner = ipv4(internet_host(), lan_host(), kProtoUdp, udp(internet_host(), lan_host(), 1, 2, {}));
  Bytes error = icmp(kUnreachable, 3, 0, inner);
  punt(kLan, host_to(internet_host(), kProtoIcmp, error, {.ttl = 1}), PuntReason::kTtlExceeded);
  Bytes time_exceeded = icmp(kTimeExceeded, 0, 0, inner);
  punt(kLan, host_to(internet_host(), kProtoIcmp, time_exceeded, {.ttl = 1}), PuntReason::kTtlExceeded);
  EXPECT_EQ(sink.size(), 0u);
  EXPECT_EQ(drops(DropReason::kTtlExceeded), 2u);
  EXPECT_EQ(handler.counters().icmp_errors_sent.get(), 0u);
  // An echo request with TTL 1 (traceroute) does get one.
  punt(kLan, host_echo(internet_host(), 1, {.ttl = 1}), PuntReason::kTtlExceeded);
  EXPECT_EQ(sink.size(), 1u);
  // Nor about a non-first fragment.
  punt(kLan, host_udp(internet_host(), {.ttl = 1, .flags_fragment = 0x0010}), PuntReason::kTtlExceeded);
  EXPECT_EQ(sink.size(), 1u);
  EXPECT_EQ(handler.counters().icmp_errors_sent.get(), 1u);
}

TEST_F(LocalHandlerTest, IcmpErrorsAreRateLimited) {
  host_is_known();
  for (int i = 0; i < 60; ++i) punt(kLan, host_udp(internet_host(), {.ttl = 1}), PuntReason::kTtlExceeded, kT0 + 1);
  EXPECT_EQ(sink.size(), 50u) << "a burst of 50";
  EXPECT_EQ(drops(DropReason::kIcmpRateLimited), 10u);
  EXPECT_EQ(drops(DropReason::kTtlExceeded), 60u) << "every packet is still counted as dropped";
  sink.clear();
  // 100 per second: 100 ms later there are 10 more.
  for (int i = 0; i < 15; ++i) punt(kLan, host_udp(internet_host(), {.ttl = 1}), PuntReason::kTtlExceeded, kT0 + 101);
  EXPECT_EQ(sink.size(), 10u);
  EXPECT_EQ(drops(DropReason::kIcmpRateLimited), 15u);
}

TEST_F(LocalHandlerTest, UnresolvedNextHopGetsHostUnreachableAfterRetries) {
  host_is_known(kT0);
  handler.start(kT0);  // starts resolving the WAN gateway, which never answers
  sink.clear();
  Bytes packet = host_udp(internet_host(), {.ttl = 30});
  punt(kLan, packet, PuntReason::kResolve);
  EXPECT_EQ(sink.size(), 0u) << "held; the gateway's request is already out";
  EXPECT_EQ(handler.neighbors().find(kWan, wan_gw())->held.size(), 1u);

  int requests = 1;  // from start()
  for (uint64_t t = kT0; t <= kT0 + 10'000; t += 100) {
    handler.tick(t);
    for (auto& [port, frame] : sink.take()) {
      if (frame.ethertype == kEtherArp) {
        expect_arp_request({port, frame}, kWan, wan_own(), wan_gw());
        ++requests;
        continue;
      }
      // The ICMP error, once the retries are spent.
      EXPECT_EQ(t, kT0 + uint64_t{config.neighbors.retries} * config.neighbors.retry_ms);
      EXPECT_EQ(port, kLan);
      // The held packet was routed already: its TTL is one lower in the quote.
      Bytes routed = Frame(packet).ip_packet();
      routed[8] = 29;
      set16(routed, 10, 0);
      set16(routed, 10, inet_checksum(routed.data(), 20));
      expect_icmp_error(frame, lan_gw(), lan_host(), kUnreachable, 1, routed);
      EXPECT_EQ(drops(DropReason::kNeighborUnresolved), 1u);
    }
  }
  EXPECT_EQ(requests, static_cast<int>(config.neighbors.retries));
  EXPECT_EQ(drops(DropReason::kNeighborUnresolved), 1u);
  EXPECT_EQ(handler.neighbors().find(kWan, wan_gw()), nullptr);
}

TEST_F(LocalHandlerTest, HeldPacketIsForwardedOnceTheNextHopAnswers) {
  handler.start(kT0);
  sink.clear();
  Bytes packet = host_udp(internet_host(), {.ttl = 30});
  punt(kLan, packet, PuntReason::kResolve);
  EXPECT_EQ(sink.size(), 0u);
  wan_gateway_is_known(kT0 + 10);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first, kWan);
  const Frame& out = sent[0].second;
  EXPECT_EQ(mac_text(out.dst), mac_text(wan_gw_mac()));
  EXPECT_EQ(mac_text(out.src), mac_text(port_mac(kWan)));
  EXPECT_EQ(out.ttl(), 29);
  EXPECT_TRUE(out.ip_checksum_valid());
  EXPECT_EQ(out.ip_dst(), internet_host());
  ASSERT_NE(published.current()->lookup(kWan, wan_gw()), nullptr) << "the tick published the gateway";
}

TEST_F(LocalHandlerTest, OversizeWithDfGetsFragmentationNeeded) {
  host_is_known();
  Bytes packet = host_to(internet_host(), kProtoUdp, udp(lan_host(), internet_host(), 1, 2, payload_bytes(1200)));
  punt(kLan, packet, PuntReason::kFragNeeded);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  const Frame& error = sent[0].second;
  expect_icmp_error(error, lan_gw(), lan_host(), kUnreachable, 4, Frame(packet).ip_packet());
  EXPECT_EQ(get16(error.bytes, error.l4() + 6), 1000) << "next-hop MTU";
  EXPECT_EQ(drops(DropReason::kMtuExceeded), 1u);
}

TEST_F(LocalHandlerTest, OversizeWithoutDfIsFragmented) {
  wan_gateway_is_known();
  Bytes payload = payload_bytes(1500 - 28, 5);
  Bytes packet = host_to(internet_host(), kProtoUdp, udp(lan_host(), internet_host(), 1, 2, payload),
                         {.ttl = 20, .flags_fragment = 0});
  punt(kLan, packet, PuntReason::kFragNeeded);
  auto sent = sink.take();
  ASSERT_GE(sent.size(), 2u);
  Bytes original = Frame(packet).ip_packet();
  Bytes reassembled;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    SCOPED_TRACE("fragment " + std::to_string(i));
    const auto& [port, fragment] = sent[i];
    EXPECT_EQ(port, kWan);
    EXPECT_EQ(mac_text(fragment.dst), mac_text(wan_gw_mac()));
    EXPECT_LE(fragment.total_length(), 1000);
    EXPECT_EQ(fragment.ttl(), 19);
    EXPECT_TRUE(fragment.ip_checksum_valid());
    uint16_t flags_offset = get16(fragment.bytes, fragment.l3 + 6);
    EXPECT_EQ((flags_offset & 0x1fff) * 8u, reassembled.size()) << "fragments in order, contiguous";
    EXPECT_EQ((flags_offset & 0x2000) != 0, i + 1 < sent.size()) << "MF on all but the last";
    Bytes data = fragment.l4_bytes();
    reassembled.insert(reassembled.end(), data.begin(), data.end());
  }
  EXPECT_EQ(reassembled, Bytes(original.begin() + 20, original.end()));
  EXPECT_EQ(handler.counters().fragments_sent.get(), sent.size());
}

TEST_F(LocalHandlerTest, ReleaseAllFreesHeldPackets) {
  for (int i = 0; i < 3; ++i) punt(kLan, host_echo(lan_gw(), static_cast<uint16_t>(i)), PuntReason::kLocal);
  EXPECT_EQ(handler.neighbors().find(kLan, lan_host())->held.size(), 3u);
  sink.clear();
  handler.release_all();
  EXPECT_EQ(drops(DropReason::kShutdown), 3u);
  EXPECT_EQ(handler.neighbors().size(), 0u);
}

// ---- the gateway's own conversations: WAN probes and LPA -----------------------------------

// A second WAN on port 2, 203.0.113.2/25 behind 203.0.113.1 (the modem on that link).
constexpr const char* kTwoWanHandlerConfig = R"({"ports": [
  {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
  {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1"},
  {"name": "wan1", "role": "wan", "device": "net_ring2", "address": "203.0.113.2/25", "gateway": "203.0.113.1"}]})";
constexpr uint16_t kWan2 = 2;
constexpr uint16_t kLpaPort = 4950;
uint32_t wan2_own() { return ip("203.0.113.2"); }
uint32_t wan2_gw() { return ip("203.0.113.1"); }
rte_ether_addr wan2_gw_mac() { return host_mac(0x02); }
uint32_t all_routers() { return ip("224.0.0.2"); }
rte_ether_addr all_routers_mac() { return make_mac(0x01, 0x00, 0x5e, 0x00, 0x00, 0x02); }
uint32_t probe_target() { return ip("192.0.2.10"); }

Bytes from_wan2(const Bytes& packet, const rte_ether_addr& dst = port_mac(kWan2)) {
  return ethernet(dst, wan2_gw_mac(), kEtherIpv4, packet);
}

uint16_t udp_checksum_of(const Frame& frame) {
  Bytes segment = frame.l4_bytes();
  Bytes pseudo;
  put32(pseudo, frame.ip_src());
  put32(pseudo, frame.ip_dst());
  put8(pseudo, 0);
  put8(pseudo, kProtoUdp);
  put16(pseudo, static_cast<uint16_t>(segment.size()));
  append(pseudo, segment);
  return inet_checksum(pseudo);
}
// A UDP checksum present (not 0, "none") and right over the pseudo-header.
bool udp_checksum_valid(const Frame& frame) { return get16(frame.l4_bytes(), 6) != 0 && udp_checksum_of(frame) == 0; }

struct EchoHeard {
  uint16_t port;
  uint32_t from;
  uint16_t identifier, sequence;
  uint64_t now_ms;
};
struct DatagramHeard {
  uint16_t port;
  uint32_t from;
  Bytes payload;
  uint64_t now_ms;
};

class LocalHandlerWanTest : public LocalHandlerTest {
 protected:
  LocalHandlerWanTest() : LocalHandlerTest(kTwoWanHandlerConfig) {}

  void listen_echo() {
    handler.listen_echo_replies([this](uint16_t port, uint32_t from, uint16_t identifier, uint16_t sequence,
                                       uint64_t now_ms) { echoes.push_back({port, from, identifier, sequence, now_ms}); });
  }
  void listen_udp(uint16_t udp_port = kLpaPort) {
    handler.listen_udp(udp_port, [this](uint16_t port, uint32_t from, const uint8_t* payload, uint32_t length,
                                        uint64_t now_ms) {
      datagrams.push_back({port, from, Bytes(payload, payload + length), now_ms});
    });
  }
  void wan2_gateway_is_known(uint64_t now = kT0) {
    punt(kWan2,
         padded(ethernet(port_mac(kWan2), wan2_gw_mac(), kEtherArp,
                         arp(2, wan2_gw_mac(), wan2_gw(), port_mac(kWan2), wan2_own()))),
         PuntReason::kArp, now);
    handler.tick(now);
    ASSERT_NE(handler.neighbors().find(kWan2, wan2_gw()), nullptr);
  }

  std::vector<EchoHeard> echoes;
  std::vector<DatagramHeard> datagrams;
};

// ---- echo replies ----

struct EchoReplyCase {
  std::string name;
  uint16_t port;     // ingress
  uint32_t from;     // the replying host
  uint32_t to;       // our address it answers
  uint16_t identifier, sequence;
};
void PrintTo(const EchoReplyCase& c, std::ostream* out) { *out << c.name; }

class LocalHandlerEchoReplies : public LocalHandlerWanTest, public ::testing::WithParamInterface<EchoReplyCase> {};

TEST_P(LocalHandlerEchoReplies, GoToTheListenerAndAreFreed) {
  const EchoReplyCase& c = GetParam();
  listen_echo();
  rte_ether_addr sender_mac = c.port == kWan2 ? wan2_gw_mac() : c.port == kWan ? wan_gw_mac() : lan_host_mac();
  Bytes reply = ethernet(port_mac(c.port), sender_mac, kEtherIpv4,
                         ipv4(c.from, c.to, kProtoIcmp, icmp_echo(c.identifier, c.sequence, 16, kEchoReply)));
  punt(c.port, reply, PuntReason::kLocal, kT0 + 7);
  ASSERT_EQ(echoes.size(), 1u);
  EXPECT_EQ(echoes[0].port, c.port);
  EXPECT_EQ(echoes[0].from, c.from) << format_ipv4(echoes[0].from);
  EXPECT_EQ(echoes[0].identifier, c.identifier);
  EXPECT_EQ(echoes[0].sequence, c.sequence);
  EXPECT_EQ(echoes[0].now_ms, kT0 + 7);
  EXPECT_EQ(sink.size(), 0u) << "nothing is answered";
  EXPECT_EQ(drops(DropReason::kLocalUnsupported), 0u);
  EXPECT_EQ(drops(DropReason::kIcmpMalformed), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Table, LocalHandlerEchoReplies,
    ::testing::Values(EchoReplyCase{"probe_reply_on_wan1", kWan2, probe_target(), wan2_own(), 0xf601, 77},
                      EchoReplyCase{"probe_reply_on_wan0", kWan, probe_target(), wan_own(), 0xf600, 65535},
                      EchoReplyCase{"from_the_wan1_gateway", kWan2, wan2_gw(), wan2_own(), 0xf601, 0},
                      EchoReplyCase{"from_a_lan_host", kLan, lan_host(), lan_gw(), 0x4242, 3}),
    [](const ::testing::TestParamInfo<EchoReplyCase>& info) { return info.param.name; });

TEST_F(LocalHandlerWanTest, EchoReplyWithABadChecksumIsNotHeard) {
  listen_echo();
  Bytes message = icmp_echo(0xf601, 5, 16, kEchoReply);
  message[2] ^= 0x10;
  punt(kWan2, from_wan2(ipv4(probe_target(), wan2_own(), kProtoIcmp, message)), PuntReason::kLocal);
  EXPECT_TRUE(echoes.empty());
  EXPECT_EQ(drops(DropReason::kIcmpMalformed), 1u);
  EXPECT_EQ(sink.size(), 0u);
}

TEST_F(LocalHandlerWanTest, WithoutAnEchoListenerAnEchoReplyIsDropped) {
  punt(kWan2, from_wan2(ipv4(probe_target(), wan2_own(), kProtoIcmp, icmp_echo(0xf601, 5, 16, kEchoReply))),
       PuntReason::kLocal);
  EXPECT_EQ(drops(DropReason::kLocalUnsupported), 1u);
  EXPECT_EQ(sink.size(), 0u);
}

TEST_F(LocalHandlerWanTest, EchoRequestsAreStillAnsweredWhileListeningForReplies) {
  listen_echo();
  wan_gateway_is_known();
  wan2_gateway_is_known();
  punt(kWan2, from_wan2(ipv4(probe_target(), wan2_own(), kProtoIcmp, icmp_echo(0x1111, 2, 16))), PuntReason::kLocal);
  EXPECT_TRUE(echoes.empty()) << "a request is not a reply";
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first, kWan2) << "from wan1's address, so by wan1 (wan0's ISP would drop its source)";
  EXPECT_EQ(mac_text(sent[0].second.dst), mac_text(wan2_gw_mac()));
  EXPECT_EQ(sent[0].second.icmp_type(), kEchoReply);
  EXPECT_EQ(sent[0].second.ip_src(), wan2_own());
  EXPECT_EQ(sent[0].second.ip_dst(), probe_target());
  EXPECT_TRUE(sent[0].second.ip_checksum_valid());
  EXPECT_TRUE(sent[0].second.icmp_checksum_valid());
}

TEST_F(LocalHandlerWanTest, AnswersFromAWanAddressLeaveByThatWan) {
  // Echo replies and ICMP errors from the gateway go back through the WAN whose address they
  // come from, not by the default route (wan0): wan0's ISP would drop wan1's source, and when
  // wan0 is down they would not leave at all.
  wan_gateway_is_known();
  wan2_gateway_is_known();
  struct Case {
    std::string name;
    uint16_t port;   // in by
    Bytes packet;    // from off-link
    uint8_t type;    // of what the gateway sends back
  };
  const Case cases[] = {
      {"echo_to_wan1", kWan2, ipv4(probe_target(), wan2_own(), kProtoIcmp, icmp_echo(0x2222, 1, 16)), kEchoReply},
      {"udp_to_a_closed_port_of_wan1", kWan2,
       ipv4(probe_target(), wan2_own(), kProtoUdp, udp(probe_target(), wan2_own(), 5000, 33434, payload_bytes(8))),
       kUnreachable},
      {"echo_to_wan0", kWan, ipv4(probe_target(), wan_own(), kProtoIcmp, icmp_echo(0x2222, 2, 16)), kEchoReply},
      {"udp_to_a_closed_port_of_wan0", kWan,
       ipv4(probe_target(), wan_own(), kProtoUdp, udp(probe_target(), wan_own(), 5000, 33434, payload_bytes(8))),
       kUnreachable},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const rte_ether_addr gateway_mac = c.port == kWan2 ? wan2_gw_mac() : wan_gw_mac();
    punt(c.port, ethernet(port_mac(c.port), gateway_mac, kEtherIpv4, c.packet), PuntReason::kLocal, kT0 + 1);
    auto sent = sink.take();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].first, c.port);
    EXPECT_EQ(mac_text(sent[0].second.dst), mac_text(gateway_mac));
    EXPECT_EQ(sent[0].second.ip_src(), c.port == kWan2 ? wan2_own() : wan_own());
    EXPECT_EQ(sent[0].second.ip_dst(), probe_target());
    EXPECT_EQ(sent[0].second.icmp_type(), c.type);
    EXPECT_TRUE(sent[0].second.ip_checksum_valid());
    EXPECT_TRUE(sent[0].second.icmp_checksum_valid());
  }
  // Time exceeded for a packet that came in by wan1: from wan1's address, by wan1.
  Bytes expiring = ipv4(probe_target(), lan_host(), kProtoUdp, udp(probe_target(), lan_host(), 5000, 53, payload_bytes(8)),
                        {.ttl = 1});
  punt(kWan2, from_wan2(expiring), PuntReason::kTtlExceeded, kT0 + 2);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first, kWan2);
  EXPECT_EQ(mac_text(sent[0].second.dst), mac_text(wan2_gw_mac()));
  expect_icmp_error(sent[0].second, wan2_own(), probe_target(), kTimeExceeded, 0, expiring);
}

// ---- UDP to the gateway ----

struct DatagramCase {
  std::string name;
  uint32_t to;                // our address, or 224.0.0.2
  rte_ether_addr mac;         // the frame's destination
  std::size_t payload;        // bytes
  uint8_t ttl;
  bool pad = false;           // a short frame, zero-padded to Ethernet's 60 bytes
};
void PrintTo(const DatagramCase& c, std::ostream* out) { *out << c.name; }

class LocalHandlerDatagrams : public LocalHandlerWanTest, public ::testing::WithParamInterface<DatagramCase> {};

TEST_P(LocalHandlerDatagrams, ToTheListenedPortGoToTheListenerAndAreFreed) {
  const DatagramCase& c = GetParam();
  listen_udp();
  Bytes payload = payload_bytes(c.payload, 0x30);
  Bytes frame = from_wan2(ipv4(wan2_gw(), c.to, kProtoUdp, udp(wan2_gw(), c.to, kLpaPort, kLpaPort, payload), {.ttl = c.ttl}),
                          c.mac);
  if (c.pad) frame = padded(frame);
  punt(kWan2, frame, PuntReason::kLocal, kT0 + 3);
  ASSERT_EQ(datagrams.size(), 1u);
  EXPECT_EQ(datagrams[0].port, kWan2);
  EXPECT_EQ(datagrams[0].from, wan2_gw());
  EXPECT_EQ(datagrams[0].payload, payload) << "the UDP payload, its length from the UDP header";
  EXPECT_EQ(datagrams[0].now_ms, kT0 + 3);
  EXPECT_EQ(sink.size(), 0u);
  EXPECT_EQ(drops(DropReason::kLocalUnsupported), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Table, LocalHandlerDatagrams,
    ::testing::Values(DatagramCase{"to_the_wan_address", wan2_own(), port_mac(kWan2), 48, 64},
                      DatagramCase{"to_all_routers_ttl_1", all_routers(), all_routers_mac(), 48, 1},
                      DatagramCase{"odd_length", wan2_own(), port_mac(kWan2), 37, 64},
                      DatagramCase{"empty", all_routers(), all_routers_mac(), 0, 1},
                      DatagramCase{"short_frame_padded", all_routers(), all_routers_mac(), 3, 1, true},
                      DatagramCase{"large", wan2_own(), port_mac(kWan2), 1400, 64}),
    [](const ::testing::TestParamInfo<DatagramCase>& info) { return info.param.name; });

TEST_F(LocalHandlerWanTest, UdpToAnotherPortStillGetsPortUnreachable) {
  listen_udp();
  wan2_gateway_is_known();
  Bytes packet = ipv4(wan2_gw(), wan2_own(), kProtoUdp, udp(wan2_gw(), wan2_own(), kLpaPort, kLpaPort + 1, payload_bytes(20)));
  punt(kWan2, from_wan2(packet), PuntReason::kLocal);
  EXPECT_TRUE(datagrams.empty());
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first, kWan2);
  EXPECT_EQ(mac_text(sent[0].second.dst), mac_text(wan2_gw_mac()));
  expect_icmp_error(sent[0].second, wan2_own(), wan2_gw(), kUnreachable, 3, packet);
  EXPECT_EQ(drops(DropReason::kLocalUnsupported), 1u);
}

TEST_F(LocalHandlerWanTest, UdpToAllRoutersNobodyListensOnIsDroppedWithoutAnIcmpError) {
  wan2_gateway_is_known();  // an error would leave at once, not wait for ARP
  Bytes to_lpa = ipv4(wan2_gw(), all_routers(), kProtoUdp, udp(wan2_gw(), all_routers(), kLpaPort, kLpaPort, payload_bytes(20)),
                      {.ttl = 1});
  punt(kWan2, from_wan2(to_lpa, all_routers_mac()), PuntReason::kLocal);
  EXPECT_EQ(sink.size(), 0u) << "no listener at all";
  EXPECT_EQ(drops(DropReason::kLocalUnsupported), 1u);

  listen_udp(kLpaPort + 1);
  punt(kWan2, from_wan2(to_lpa, all_routers_mac()), PuntReason::kLocal);
  EXPECT_TRUE(datagrams.empty());
  EXPECT_EQ(sink.size(), 0u) << "a listener on another port";
  EXPECT_EQ(drops(DropReason::kLocalUnsupported), 2u);

  // Not UDP either: no protocol unreachable to a group.
  punt(kWan2, from_wan2(ipv4(wan2_gw(), all_routers(), 47, payload_bytes(20), {.ttl = 1}), all_routers_mac()),
       PuntReason::kLocal);
  EXPECT_EQ(sink.size(), 0u);
  EXPECT_EQ(drops(DropReason::kLocalUnsupported), 3u);
}

TEST_F(LocalHandlerWanTest, TheUdpLengthDecidesThePayloadAndMayNotRunPastThePacket) {
  listen_udp();
  wan2_gateway_is_known();
  // UDP length 12 in a 28-byte segment: the datagram is its first 4 bytes of payload.
  Bytes segment = udp(wan2_gw(), wan2_own(), kLpaPort, kLpaPort, payload_bytes(20, 1));
  set16(segment, 4, 12);
  set16(segment, 6, 0);  // no checksum
  punt(kWan2, from_wan2(ipv4(wan2_gw(), wan2_own(), kProtoUdp, segment)), PuntReason::kLocal);
  ASSERT_EQ(datagrams.size(), 1u);
  EXPECT_EQ(datagrams[0].payload, payload_bytes(4, 1));
  // UDP length 40 in a 28-byte segment: not a datagram the listener can read.
  set16(segment, 4, 40);
  punt(kWan2, from_wan2(ipv4(wan2_gw(), wan2_own(), kProtoUdp, segment)), PuntReason::kLocal);
  EXPECT_EQ(datagrams.size(), 1u);
  // UDP length 7: shorter than its own header.
  set16(segment, 4, 7);
  punt(kWan2, from_wan2(ipv4(wan2_gw(), wan2_own(), kProtoUdp, segment)), PuntReason::kLocal);
  EXPECT_EQ(datagrams.size(), 1u);
  sink.clear();
}

// ---- packets the gateway sends from a port ----

TEST_F(LocalHandlerWanTest, ProbeLeavesByTheNamedPortToItsResolvedGateway) {
  wan_gateway_is_known();
  wan2_gateway_is_known();
  struct Case {
    uint16_t port;
    uint32_t source;
    rte_ether_addr gateway_mac;
    uint32_t destination;
  };
  const Case cases[] = {
      {kWan2, wan2_own(), wan2_gw_mac(), probe_target()},
      {kWan, wan_own(), wan_gw_mac(), probe_target()},
      // On wan0's prefix, but sent from wan1: through wan1's gateway, whatever the routes say.
      {kWan2, wan2_own(), wan2_gw_mac(), ip("198.51.100.77")},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("port " + std::to_string(c.port) + " to " + format_ipv4(c.destination));
    rte_mbuf* probe = build_echo_request(test_pool(), c.source, c.destination, 0xf601, 9, 16);
    ASSERT_NE(probe, nullptr);
    EXPECT_TRUE(handler.send_from_port(c.port, probe, kT0));
    auto sent = sink.take();
    ASSERT_EQ(sent.size(), 1u);
    const auto& [port, frame] = sent[0];
    EXPECT_EQ(port, c.port);
    EXPECT_EQ(mac_text(frame.dst), mac_text(c.gateway_mac));
    EXPECT_EQ(mac_text(frame.src), mac_text(port_mac(c.port)));
    EXPECT_EQ(frame.vlan, -1);
    EXPECT_EQ(frame.ethertype, kEtherIpv4);
    EXPECT_EQ(frame.ip_src(), c.source);
    EXPECT_EQ(frame.ip_dst(), c.destination);
    EXPECT_EQ(frame.protocol(), kProtoIcmp);
    EXPECT_EQ(frame.ttl(), 64);
    EXPECT_EQ(frame.bytes.at(frame.l3 + 1), 0xc0) << "DSCP CS6";
    EXPECT_EQ(frame.total_length(), 20 + 8 + 16);
    EXPECT_TRUE(frame.ip_checksum_valid());
    EXPECT_TRUE(frame.icmp_checksum_valid());
    EXPECT_EQ(frame.icmp_type(), kEchoRequest);
    EXPECT_EQ(frame.icmp_code(), 0);
    EXPECT_EQ(get16(frame.bytes, frame.l4() + 4), 0xf601) << "identifier";
    EXPECT_EQ(get16(frame.bytes, frame.l4() + 6), 9) << "sequence";
  }
}

TEST_F(LocalHandlerWanTest, ProbeToAnUnresolvedGatewayIsHeldForArp) {
  rte_mbuf* probe = build_echo_request(test_pool(), wan2_own(), probe_target(), 0xf601, 1, 16);
  ASSERT_NE(probe, nullptr);
  EXPECT_TRUE(handler.send_from_port(kWan2, probe, kT0));
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u) << "an ARP request, the probe held";
  expect_arp_request(sent[0], kWan2, wan2_own(), wan2_gw());
  ASSERT_NE(handler.neighbors().find(kWan2, wan2_gw()), nullptr);
  EXPECT_EQ(handler.neighbors().find(kWan2, wan2_gw())->held.size(), 1u);
  // The gateway answers: the probe goes.
  wan2_gateway_is_known(kT0 + 5);
  sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first, kWan2);
  EXPECT_EQ(mac_text(sent[0].second.dst), mac_text(wan2_gw_mac()));
  EXPECT_EQ(sent[0].second.ip_dst(), probe_target());
  EXPECT_TRUE(sent[0].second.ip_checksum_valid());
  EXPECT_TRUE(sent[0].second.icmp_checksum_valid());
}

TEST_F(LocalHandlerWanTest, DatagramToAnAddressOnThePortsPrefixGoesToThatAddress) {
  const uint32_t modem = ip("203.0.113.50");
  const rte_ether_addr modem_mac = host_mac(0x50);
  wan2_gateway_is_known();
  Bytes payload = payload_bytes(12, 9);
  rte_mbuf* datagram = build_udp_datagram(test_pool(), wan2_own(), modem, kLpaPort, kLpaPort, 1, payload.data(),
                                          static_cast<uint32_t>(payload.size()));
  ASSERT_NE(datagram, nullptr);
  EXPECT_TRUE(handler.send_from_port(kWan2, datagram, kT0));
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  expect_arp_request(sent[0], kWan2, wan2_own(), modem);  // the modem itself, not the gateway
  punt(kWan2, padded(ethernet(port_mac(kWan2), modem_mac, kEtherArp, arp(2, modem_mac, modem, port_mac(kWan2), wan2_own()))),
       PuntReason::kArp, kT0 + 2);
  sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  const auto& [port, frame] = sent[0];
  EXPECT_EQ(port, kWan2);
  EXPECT_EQ(mac_text(frame.dst), mac_text(modem_mac));
  EXPECT_EQ(mac_text(frame.src), mac_text(port_mac(kWan2)));
  EXPECT_EQ(frame.ip_src(), wan2_own());
  EXPECT_EQ(frame.ip_dst(), modem);
  EXPECT_EQ(frame.protocol(), kProtoUdp);
  EXPECT_EQ(frame.ttl(), 1);
  EXPECT_TRUE(frame.ip_checksum_valid());
  EXPECT_TRUE(udp_checksum_valid(frame));
  Bytes segment = frame.l4_bytes();
  EXPECT_EQ(get16(segment, 0), kLpaPort);
  EXPECT_EQ(get16(segment, 2), kLpaPort);
  EXPECT_EQ(get16(segment, 4), 8 + payload.size());
  EXPECT_EQ(Bytes(segment.begin() + 8, segment.end()), payload);
}

TEST_F(LocalHandlerWanTest, DatagramToAllRoutersGoesToTheGroupMacAtOnce) {
  for (uint16_t port : {kWan2, kWan}) {
    SCOPED_TRACE("port " + std::to_string(port));
    uint32_t source = port == kWan2 ? wan2_own() : wan_own();
    Bytes payload = payload_bytes(20, 4);
    rte_mbuf* datagram = build_udp_datagram(test_pool(), source, all_routers(), kLpaPort, kLpaPort, 1, payload.data(),
                                            static_cast<uint32_t>(payload.size()));
    ASSERT_NE(datagram, nullptr);
    EXPECT_TRUE(handler.send_from_port(port, datagram, kT0));
    auto sent = sink.take();
    ASSERT_EQ(sent.size(), 1u) << "no ARP for a group";
    const auto& [out_port, frame] = sent[0];
    EXPECT_EQ(out_port, port);
    EXPECT_EQ(mac_text(frame.dst), "01:00:5e:00:00:02");
    EXPECT_EQ(mac_text(frame.src), mac_text(port_mac(port)));
    EXPECT_EQ(frame.ip_src(), source);
    EXPECT_EQ(frame.ip_dst(), all_routers());
    EXPECT_EQ(frame.ttl(), 1);
    EXPECT_TRUE(frame.ip_checksum_valid());
    EXPECT_TRUE(udp_checksum_valid(frame));
    Bytes segment = frame.l4_bytes();
    EXPECT_EQ(Bytes(segment.begin() + 8, segment.end()), payload);
  }
  EXPECT_EQ(handler.neighbors().size(), 0u) << "nothing to resolve";
}

TEST_F(LocalHandlerWanTest, WhatCannotBeSentIsFreedAndSaysSo) {
  EXPECT_FALSE(handler.send_from_port(kWan2, nullptr, kT0)) << "no mbuf (the pool was empty)";
  // The LAN port has no gateway: off its prefix there is no next hop.
  rte_mbuf* probe = build_echo_request(test_pool(), lan_gw(), probe_target(), 0xf601, 1, 16);
  ASSERT_NE(probe, nullptr);
  EXPECT_FALSE(handler.send_from_port(kLan, probe, kT0));
  EXPECT_EQ(drops(DropReason::kNoRoute), 1u);
  EXPECT_EQ(sink.size(), 0u);
}

}  // namespace
}  // namespace fairgate::test
