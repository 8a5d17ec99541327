// The pieces that decide where a packet goes inside the scheduler, without the stages around
// them: ClassRules::select (the class selection table: which class a real IPv4 packet gets),
// FlowMeter (how much a flow has sent, which makes it bulk) and SubscriberMap (which
// subscriber's pipe a LAN address belongs to).
#include "qos/subscriber_map.h"
#include "qos/traffic_class.h"

#include "test_packets.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace fairgate {

// Classes by name in failure messages (internal linkage: other files may print them too).
[[maybe_unused]] static std::ostream& operator<<(std::ostream& out, TrafficClass tc) {
  return out << kTrafficClasses[static_cast<std::size_t>(tc)].name;
}

namespace {

using test::Bytes;
using test::ip;
using test::Ipv4Fields;
using test::kProtoIcmp;
using test::kProtoTcp;
using test::kProtoUdp;

constexpr auto kInteractive = TrafficClass::kInteractive;
constexpr auto kNormal = TrafficClass::kNormal;
constexpr auto kBulk = TrafficClass::kBulk;

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;  // TCP flags
constexpr uint64_t kPastBulk = 5'000'000;  // well past the default qos.bulk_after_bytes (128 KiB)

// The LAN host and the internet host every packet of the table is between.
uint32_t host() { return ip("10.10.0.11"); }
uint32_t remote() { return ip("192.0.2.10"); }

Ipv4Fields with_tos(uint8_t tos) {
  Ipv4Fields f;
  f.tos = tos;
  return f;
}

// A TCP segment: 20 header bytes plus `options` (a multiple of 4), then `payload` bytes.
Bytes tcp(uint16_t sport, uint16_t dport, uint8_t flags, std::size_t payload, const Bytes& options = {}) {
  Bytes out;
  test::put16(out, sport);
  test::put16(out, dport);
  test::put32(out, 1000);  // sequence
  test::put32(out, 0);     // acknowledgement
  test::put8(out, static_cast<uint8_t>(((20 + options.size()) / 4) << 4));
  test::put8(out, flags);
  test::put16(out, 64240);  // window
  test::put16(out, 0);      // checksum: ClassRules does not read it
  test::put16(out, 0);      // urgent pointer
  test::append(out, options);
  test::append(out, test::payload_bytes(payload));
  return out;
}

// Timestamps (NOP NOP TS): what Linux puts on every segment, so a bare ACK has a 32-byte header.
Bytes timestamps() { return {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}; }
Bytes mss() { return {2, 4, 0x05, 0xb4}; }

Bytes tcp_packet(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t flags, std::size_t payload,
                 const Bytes& options = {}, const Ipv4Fields& f = {}) {
  return test::ipv4(src, dst, kProtoTcp, tcp(sport, dport, flags, payload, options), f);
}
Bytes tcp_out(uint16_t dport, uint8_t flags, std::size_t payload, const Bytes& options = {}) {
  return tcp_packet(host(), remote(), 40000, dport, flags, payload, options);
}
Bytes tcp_in(uint16_t sport, uint8_t flags, std::size_t payload, const Bytes& options = {}) {
  return tcp_packet(remote(), host(), sport, 40000, flags, payload, options);
}
// A TCP segment with timestamps whose IPv4 total length is `total` bytes (at least 52).
Bytes tcp_sized(uint16_t sport, uint16_t dport, std::size_t total) {
  return tcp_packet(host(), remote(), sport, dport, kPsh | kAck, total - 52, timestamps());
}

Bytes udp_packet(uint16_t sport, uint16_t dport, std::size_t payload, uint8_t tos = 0) {
  return test::ipv4(host(), remote(), kProtoUdp, test::udp(host(), remote(), sport, dport, test::payload_bytes(payload)),
                    with_tos(tos));
}
// A UDP packet whose IPv4 total length is `total` bytes.
Bytes udp_sized(uint16_t sport, uint16_t dport, std::size_t total) { return udp_packet(sport, dport, total - 28); }

Bytes icmp_packet(std::size_t data = 56) {
  return test::ipv4(remote(), host(), kProtoIcmp, test::icmp_echo(7, 1, data, 0));
}

// A fragment after the first (offset 1480): its bytes are the middle of the datagram, not a
// transport header, so the classify stage passes l4 = nullptr. `data` starts with bytes that
// would read as ports 53 -> 53 if they were taken for a header.
Bytes later_fragment(uint8_t proto, std::size_t length, uint8_t tos = 0) {
  Bytes data = {0x00, 0x35, 0x00, 0x35, 0x00, 0x00, 0x00, 0x00};
  data.resize(length, 0x5a);
  Ipv4Fields f = with_tos(tos);
  f.flags_fragment = 1480 / 8;  // offset 185, no more fragments
  return test::ipv4(remote(), host(), proto, data, f);
}

// ---- ClassRules::select, the class selection table -------------------------------------------

struct ClassCase {
  std::string name;
  Bytes packet;              // an IPv4 packet as it arrives (header validated)
  TrafficClass expected;
  uint64_t flow_bytes = 0;   // what its flow sent before it
  bool l4 = true;            // false: the stage could not see a transport header (later fragment)
  QosConfig qos = {};        // the defaults unless a case is about a setting
};
void PrintTo(const ClassCase& c, std::ostream* out) { *out << c.name; }

QosConfig custom_ports() {
  QosConfig qos;
  qos.interactive_ports = {5222, 3389};
  qos.interactive_packet_bytes = 100;
  qos.bulk_after_bytes = 10'000;
  return qos;
}

std::vector<ClassCase> class_cases() {
  const Bytes video = udp_packet(40000, 5004, 1000);  // a plain UDP stream, 1028 bytes
  return {
      // DSCP/TOS marks the sender chose win over everything else, even on a flow long past bulk.
      {"dscp_ef", udp_packet(40000, 5004, 1000, 46 << 2), kInteractive, kPastBulk},
      {"dscp_ef_with_ecn_ce", udp_packet(40000, 5004, 1000, 46 << 2 | 3), kInteractive, kPastBulk},
      {"dscp_cs6", udp_packet(40000, 5004, 1000, 48 << 2), kInteractive, kPastBulk},
      {"dscp_cs7", udp_packet(40000, 5004, 1000, 56 << 2), kInteractive, kPastBulk},
      {"tos_minimise_delay", udp_packet(40000, 5004, 1000, 0x10), kInteractive},
      {"tos_minimise_delay_on_a_bulk_flow", udp_packet(40000, 5004, 1000, 0x10), kInteractive, kPastBulk},
      // Other marks are the sender's business, not a claim on the interactive band.
      {"dscp_af41", udp_packet(40000, 5004, 1000, 34 << 2), kNormal},
      {"dscp_af41_on_a_bulk_flow", udp_packet(40000, 5004, 1000, 34 << 2), kBulk, kPastBulk},
      {"dscp_af11", udp_packet(40000, 5004, 1000, 10 << 2), kNormal},
      {"dscp_af21", udp_packet(40000, 5004, 1000, 18 << 2), kNormal},
      {"dscp_cs1", udp_packet(40000, 5004, 1000, 8 << 2), kNormal},
      {"dscp_cs5_next_to_ef", udp_packet(40000, 5004, 1000, 40 << 2), kNormal},
      {"dscp_cs1_on_a_bulk_flow", udp_packet(40000, 5004, 1000, 8 << 2), kBulk, kPastBulk},
      {"tos_maximise_throughput", udp_packet(40000, 5004, 1000, 0x08), kNormal},
      {"tos_ecn_only", udp_packet(40000, 5004, 1000, 0x02), kNormal},
      // The TOS field is read as iptables' tos match reads it (RFC 1349 bits 0x1e), so the
      // AF x2 code points, which carry the minimise-delay bit, count as minimise-delay.
      {"dscp_af42_reads_as_minimise_delay", udp_packet(40000, 5004, 1000, 36 << 2), kInteractive},

      // ICMP: pings and errors measure or carry the latency FairNAT keeps low.
      {"icmp_echo", icmp_packet(), kInteractive},
      {"icmp_large_echo", icmp_packet(1400), kInteractive},
      {"icmp_on_a_bulk_flow", icmp_packet(), kInteractive, kPastBulk},

      // DNS, over UDP or TCP, either direction, however much the flow sent.
      {"dns_udp_query", udp_packet(40000, 53, 40), kInteractive},
      {"dns_udp_answer", test::ipv4(remote(), host(), kProtoUdp,
                                    test::udp(remote(), host(), 53, 40000, test::payload_bytes(1200))),
       kInteractive},
      {"dns_tcp_query_with_payload", tcp_out(53, kPsh | kAck, 60), kInteractive},
      {"dns_tcp_answer_large", tcp_in(53, kPsh | kAck, 1400), kInteractive},
      {"dns_udp_past_bulk", udp_packet(53, 40000, 1200), kInteractive, kPastBulk},
      {"dns_tcp_past_bulk", tcp_in(53, kPsh | kAck, 1400), kInteractive, kPastBulk},
      {"mdns_port_5353_is_not_dns", udp_packet(5353, 5353, 100), kNormal},

      // TCP segments without payload keep the other direction's transfer going.
      {"tcp_pure_ack", tcp_in(443, kAck, 0), kInteractive},
      {"tcp_ack_with_timestamps", tcp_in(443, kAck, 0, timestamps()), kInteractive},
      {"tcp_syn_with_mss", tcp_out(443, kSyn, 0, mss()), kInteractive},
      {"tcp_syn_ack", tcp_in(443, kSyn | kAck, 0, mss()), kInteractive},
      {"tcp_fin", tcp_out(443, kFin | kAck, 0), kInteractive},
      {"tcp_rst", tcp_out(443, kRst, 0), kInteractive},
      {"tcp_ack_of_a_bulk_flow", tcp_out(443, kAck, 0, timestamps()), kInteractive, kPastBulk},
      {"tcp_ack_behind_ip_options",
       [] {
         Ipv4Fields f;
         f.options = {1, 1, 1, 0};  // the header is 24 bytes: its length comes from the IHL
         return tcp_packet(remote(), host(), 443, 40000, kAck, 0, {}, f);
       }(),
       kInteractive},
      {"tcp_one_byte_of_payload", tcp_in(443, kPsh | kAck, 1), kNormal},
      {"tcp_one_byte_after_timestamps", tcp_in(443, kPsh | kAck, 1, timestamps()), kNormal},
      {"tcp_syn_with_data", tcp_out(443, kSyn, 100, mss()), kNormal},
      {"tcp_full_segment", tcp_in(443, kAck, 1448, timestamps()), kNormal},

      // Interactive ports (22 and 23 by default): small packets are keystrokes, large ones scp.
      {"ssh_keystroke_to_22", tcp_sized(40000, 22, 88), kInteractive},
      {"ssh_echo_from_22", tcp_sized(22, 40000, 88), kInteractive},
      {"ssh_at_256_bytes", tcp_sized(40000, 22, 256), kInteractive},
      {"ssh_at_257_bytes", tcp_sized(40000, 22, 257), kNormal},
      {"scp_to_22", tcp_sized(40000, 22, 1500), kNormal},
      {"scp_from_22", tcp_sized(22, 40000, 1500), kNormal},
      {"scp_past_bulk", tcp_sized(22, 40000, 1500), kBulk, kPastBulk},
      {"ssh_keystroke_on_a_long_session", tcp_sized(40000, 22, 88), kInteractive, kPastBulk},
      {"telnet_keystroke", tcp_sized(40000, 23, 60), kInteractive},
      {"udp_small_to_22", udp_sized(40000, 22, 100), kInteractive},
      {"ssh_on_another_port_is_not_known", tcp_sized(40000, 2222, 88), kNormal},

      // A flow becomes bulk once it has sent qos.bulk_after_bytes (131 072 by default).
      {"flow_just_below_bulk", video, kNormal, 131'072},
      {"flow_just_past_bulk", video, kBulk, 131'073},
      {"tcp_flow_past_bulk", tcp_in(443, kAck, 1448, timestamps()), kBulk, 131'073},
      {"other_protocol", test::ipv4(host(), remote(), 47, test::payload_bytes(500)), kNormal},
      {"other_protocol_past_bulk", test::ipv4(host(), remote(), 47, test::payload_bytes(500)), kBulk, kPastBulk},

      // Without a transport header (a later fragment) only DSCP, ICMP and the flow's bytes count:
      // its first bytes are data, not ports, however much they look like DNS.
      {"fragment_not_dns", later_fragment(kProtoUdp, 200), kNormal, 0, false},
      {"fragment_small_tcp_not_an_ack", later_fragment(kProtoTcp, 8), kNormal, 0, false},
      {"fragment_dscp_ef", later_fragment(kProtoUdp, 200, 46 << 2), kInteractive, kPastBulk, false},
      {"fragment_icmp", later_fragment(kProtoIcmp, 200), kInteractive, 0, false},
      {"fragment_past_bulk", later_fragment(kProtoUdp, 200), kBulk, kPastBulk, false},
      {"no_l4_small_ssh_packet", tcp_sized(40000, 22, 88), kNormal, 0, false},

      // Configured interactive ports and size replace the defaults; the bulk threshold is honoured.
      {"configured_port_at_the_size", tcp_sized(40000, 5222, 100), kInteractive, 0, true, custom_ports()},
      {"configured_port_one_byte_over", tcp_sized(40000, 5222, 101), kNormal, 0, true, custom_ports()},
      {"configured_port_as_source", udp_sized(3389, 40000, 60), kInteractive, 0, true, custom_ports()},
      {"default_port_22_no_longer_listed", tcp_sized(40000, 22, 88), kNormal, 0, true, custom_ports()},
      {"default_port_23_no_longer_listed", tcp_sized(40000, 23, 60), kNormal, 0, true, custom_ports()},
      {"configured_bulk_below", video, kNormal, 9'999, true, custom_ports()},
      {"configured_bulk_past", video, kBulk, 10'001, true, custom_ports()},
      {"dns_is_not_a_configurable_port", udp_packet(53, 40000, 1200), kInteractive, kPastBulk, true, custom_ports()},
  };
}

class QosClassSelection : public ::testing::TestWithParam<ClassCase> {};

TEST_P(QosClassSelection, PicksTheClass) {
  const ClassCase& c = GetParam();
  ClassRules rules(c.qos);
  const auto* header = reinterpret_cast<const rte_ipv4_hdr*>(c.packet.data());
  const uint8_t* l4 = c.l4 ? c.packet.data() + (c.packet[0] & 0x0f) * 4 : nullptr;
  EXPECT_EQ(rules.select(header, l4, c.flow_bytes), c.expected);
}

INSTANTIATE_TEST_SUITE_P(QosClassify, QosClassSelection, ::testing::ValuesIn(class_cases()),
                         [](const ::testing::TestParamInfo<ClassCase>& info) { return info.param.name; });

TEST(QosClassRules, AFlowThatSentExactlyBulkAfterBytesIsNotBulkYet) {
  QosConfig qos;
  ClassRules rules(qos);
  const Bytes packet = udp_packet(40000, 5004, 1000);
  const auto* header = reinterpret_cast<const rte_ipv4_hdr*>(packet.data());
  EXPECT_EQ(rules.select(header, packet.data() + 20, qos.bulk_after_bytes), kNormal);
  EXPECT_EQ(rules.select(header, packet.data() + 20, qos.bulk_after_bytes + 1), kBulk);
}

TEST(QosClassRules, TheTableAssumesTheConfiguredDefaults) {
  // The table's "default" cases rely on these; a qos section without the fields gives the same.
  Config config = parse_config(R"({
    "ports": [
      {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
      {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1",
       "rate_down": "10mbit", "rate_up": "2mbit"}
    ],
    "qos": {}
  })");
  EXPECT_EQ(config.qos.interactive_ports, (std::vector<uint16_t>{22, 23}));
  EXPECT_EQ(config.qos.interactive_packet_bytes, 256);
  EXPECT_EQ(config.qos.bulk_after_bytes, 131'072u);
}

// ---- FlowMeter ---------------------------------------------------------------------------------

TEST(QosFlowMeter, ReturnsWhatTheFlowSentBefore) {
  FlowMeter meter;
  EXPECT_EQ(meter.add(0x1234, 100, 10), 0u) << "a new flow has sent nothing";
  EXPECT_EQ(meter.add(0x1234, 200, 10), 100u);
  EXPECT_EQ(meter.add(0x1234, 1500, 11), 300u);
  EXPECT_EQ(meter.add(0x1234, 1, 12), 1800u);
}

TEST(QosFlowMeter, FlowsAreCountedApart) {
  FlowMeter meter;
  const uint32_t flows[] = {1, 2, 0xdeadbeef, 0x80000000};
  for (uint32_t round = 0; round < 3; ++round)
    for (std::size_t i = 0; i < std::size(flows); ++i)
      EXPECT_EQ(meter.add(flows[i], static_cast<uint32_t>(100 * (i + 1)), 5), 100 * (i + 1) * round)
          << "flow " << flows[i] << " round " << round;
}

TEST(QosFlowMeter, AFlowIdleLongerThanTheResetStartsFromZero) {
  FlowMeter meter;
  const uint32_t start = 1000;
  meter.add(7, 5000, start);
  EXPECT_EQ(meter.add(7, 100, start + FlowMeter::kIdleResetS), 5000u) << "idle exactly the reset time: kept";
  const uint32_t last = start + FlowMeter::kIdleResetS;
  EXPECT_EQ(meter.add(7, 100, last + FlowMeter::kIdleResetS + 1), 0u) << "idle longer: a new flow on the same hash";
  EXPECT_EQ(meter.add(7, 100, last + FlowMeter::kIdleResetS + 2), 100u) << "counting again from that packet";
}

TEST(QosFlowMeter, ABucketKeepsFourCollidingFlowsAndEvictsTheOneIdleLongest) {
  // Hashes that share the bucket bits (the low 14 of the default 16 k buckets) but differ above.
  constexpr uint32_t kBucketStride = 1u << 14;
  auto colliding = [](uint32_t k) { return 0x155u + k * kBucketStride; };
  FlowMeter meter;
  // Four flows in one bucket: the busiest (0) last seen at 10, flow 1 idle since 5.
  const uint32_t bytes[] = {900'000, 1'000, 2'000, 3'000};
  const uint32_t last_seen[] = {10, 5, 8, 9};
  for (uint32_t k = 0; k < 4; ++k) EXPECT_EQ(meter.add(colliding(k), bytes[k], last_seen[k]), 0u);
  for (uint32_t k = 0; k < 4; ++k)
    EXPECT_EQ(meter.add(colliding(k), 0, last_seen[k]), bytes[k]) << "four colliding flows all fit, flow " << k;

  // A fifth takes the slot of flow 1, the one idle longest, not the busiest one's.
  EXPECT_EQ(meter.add(colliding(4), 500, 11), 0u);
  EXPECT_EQ(meter.add(colliding(0), 100, 12), 900'000u) << "the busiest flow kept its count";
  EXPECT_EQ(meter.add(colliding(2), 100, 12), 2'000u);
  EXPECT_EQ(meter.add(colliding(3), 100, 12), 3'000u);
  EXPECT_EQ(meter.add(colliding(4), 100, 12), 500u) << "the newcomer is counted";
  EXPECT_EQ(meter.add(colliding(1), 100, 13), 0u) << "the evicted flow starts again from zero";
}

TEST(QosFlowMeter, FlowsInOtherBucketsAreNotEvicted) {
  FlowMeter meter(4);  // 16 buckets
  meter.add(0x3, 777, 1);
  for (uint32_t k = 1; k <= 8; ++k) meter.add(0x4 + k * 16, 10, 2);  // eight flows of another bucket
  EXPECT_EQ(meter.add(0x3, 1, 3), 777u);
}

// ---- SubscriberMap -------------------------------------------------------------------------------

Ipv4Prefix prefix(const char* text) {
  auto parsed = parse_ipv4_prefix(text);
  if (!parsed) throw std::invalid_argument(std::string("bad test prefix ") + text);
  return *parsed;
}

TEST(QosSubscriberMap, FindsHostsAndPrefixes) {
  SubscriberMap map({{prefix("10.10.0.11/32"), 1},
                     {prefix("10.10.0.12/32"), 2},
                     {prefix("10.10.0.32/28"), 3},
                     {prefix("10.20.0.0/24"), 4}});
  EXPECT_EQ(map.size(), 4u);
  struct Case {
    const char* address;
    uint32_t pipe;
  };
  const Case cases[] = {
      {"10.10.0.11", 1},
      {"10.10.0.12", 2},
      {"10.10.0.32", 3},  // the first and the last of the /28
      {"10.10.0.40", 3},
      {"10.10.0.47", 3},
      {"10.20.0.0", 4},
      {"10.20.0.200", 4},
      {"10.20.0.255", 4},
      {"10.10.0.13", SubscriberMap::kNoPipe},  // next to a host
      {"10.10.0.10", SubscriberMap::kNoPipe},
      {"10.10.0.31", SubscriberMap::kNoPipe},  // just outside the /28
      {"10.10.0.48", SubscriberMap::kNoPipe},
      {"10.20.1.0", SubscriberMap::kNoPipe},   // just outside the /24
      {"10.19.255.255", SubscriberMap::kNoPipe},
      {"192.0.2.11", SubscriberMap::kNoPipe},
      {"0.0.0.0", SubscriberMap::kNoPipe},
  };
  for (const auto& c : cases) EXPECT_EQ(map.find(ip(c.address)), c.pipe) << c.address;
}

TEST(QosSubscriberMap, TheLongestPrefixWins) {
  // A host of its own inside a prefix another subscriber has, whichever order they come in.
  const std::vector<SubscriberMap::Entry> orders[] = {
      {{prefix("10.10.0.0/24"), 5}, {prefix("10.10.0.32/28"), 6}, {prefix("10.10.0.35/32"), 7}},
      {{prefix("10.10.0.35/32"), 7}, {prefix("10.10.0.32/28"), 6}, {prefix("10.10.0.0/24"), 5}},
  };
  for (const auto& entries : orders) {
    SubscriberMap map(entries);
    EXPECT_EQ(map.find(ip("10.10.0.35")), 7u) << "the /32";
    EXPECT_EQ(map.find(ip("10.10.0.34")), 6u) << "the /28 around it";
    EXPECT_EQ(map.find(ip("10.10.0.36")), 6u);
    EXPECT_EQ(map.find(ip("10.10.0.31")), 5u) << "the /24 around both";
    EXPECT_EQ(map.find(ip("10.10.0.200")), 5u);
    EXPECT_EQ(map.find(ip("10.10.1.35")), SubscriberMap::kNoPipe);
  }
}

TEST(QosSubscriberMap, AnEmptyMapFindsNothing) {
  SubscriberMap map({});
  EXPECT_EQ(map.size(), 0u);
  EXPECT_EQ(map.find(ip("10.10.0.11")), SubscriberMap::kNoPipe);
  EXPECT_EQ(map.find(0), SubscriberMap::kNoPipe);
}

TEST(QosSubscriberMap, PrefixesAreNormalisedToTheirNetwork) {
  // "10.10.0.37/28" means the /28 it lies in, as parse_subscriber reads it.
  SubscriberMap map({{Ipv4Prefix{ip("10.10.0.37"), 28}, 9}, {Ipv4Prefix{ip("10.20.0.99"), 24}, 10}});
  EXPECT_EQ(map.find(ip("10.10.0.32")), 9u);
  EXPECT_EQ(map.find(ip("10.10.0.37")), 9u);
  EXPECT_EQ(map.find(ip("10.10.0.47")), 9u);
  EXPECT_EQ(map.find(ip("10.10.0.48")), SubscriberMap::kNoPipe);
  EXPECT_EQ(map.find(ip("10.20.0.1")), 10u);
}

TEST(QosSubscriberMap, TwentyThousandHostsAreAllFound) {
  // More hosts than any LAN has, consecutive (the worst case for a weak hash), and a /16 over
  // part of them that must not hide any.
  constexpr uint32_t kHosts = 20'000;
  const uint32_t first = ip("10.64.0.1");
  std::vector<SubscriberMap::Entry> entries;
  for (uint32_t i = 0; i < kHosts; ++i) entries.push_back({Ipv4Prefix{first + i, 32}, i + 1});
  entries.push_back({prefix("10.64.0.0/16"), 50'000});
  SubscriberMap map(entries);
  EXPECT_EQ(map.size(), kHosts + 1);
  uint32_t wrong = 0;
  for (uint32_t i = 0; i < kHosts; ++i) wrong += map.find(first + i) != i + 1;
  EXPECT_EQ(wrong, 0u) << "hosts found with the wrong pipe or none";
  EXPECT_EQ(map.find(ip("10.64.255.254")), 50'000u) << "a /16 address no host covers";
  EXPECT_EQ(map.find(first + kHosts + 70'000), SubscriberMap::kNoPipe) << "past the /16 and the hosts";
  EXPECT_EQ(map.find(first - 2), SubscriberMap::kNoPipe);
}

}  // namespace
}  // namespace fairgate
