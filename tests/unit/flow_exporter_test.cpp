// The IPFIX and NetFlow v9 encoder. The expected messages are written out byte by byte from
// RFC 7011, RFC 3954 and the IANA registry, not produced by the encoder, so that a mistake in
// it shows here rather than at a collector. The other tests read messages with a small parser
// of their own (sets and headers only).
#include "flow/flow_exporter.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace fairgate {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes all;
  for (const Bytes& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}

constexpr uint32_t ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return uint32_t{a} << 24 | uint32_t{b} << 16 | uint32_t{c} << 8 | d;
}
constexpr uint8_t kTcp = 6, kUdp = 17, kIcmp = 1;

// Wall clock: fairgate started at 2025-12-05 07:33:20 UTC; the flow ran from 07:59:12.123 to
// 07:59:31.456 and is exported at 07:59:32.789.
constexpr uint64_t kBootMs = 1'764'920'000'000;
constexpr uint64_t kFirstMs = 1'764'921'552'123;
constexpr uint64_t kLastMs = 1'764'921'571'456;
constexpr uint64_t kNowMs = 1'764'921'572'789;

// A BitTorrent connection from a LAN host, through the NAT, to a peer; ended by FIN.
FlowReport bittorrent_flow() {
  FlowReport report;
  report.original = {ipv4(192, 168, 1, 10), ipv4(85, 17, 20, 33), 51413, 6881, kTcp};
  report.translated = {ipv4(203, 0, 113, 5), ipv4(85, 17, 20, 33), 40001, 6881, kTcp};
  report.first_ms = kFirstMs;
  report.last_ms = kLastMs;
  report.packets[0] = 12;
  report.packets[1] = 10;
  report.bytes[0] = 1840;
  report.bytes[1] = 9620;
  report.tcp_flags[0] = 0x1B;  // SYN FIN PSH ACK
  report.tcp_flags[1] = 0x1E;  // SYN RST PSH ACK
  report.ingress_port = 0;
  report.egress_port = 1;
  report.end_reason = FlowEndReason::kEndOfFlow;
  report.inside_address = report.original.src;
  report.ingress_name = "lan0";
  report.egress_name = "wan0";
  report.wan = "wan0";
  report.subscriber = "flat-3";
  report.traffic_class = "p2p";
  report.application = "bittorrent";
  return report;
}

// That flow's NAT session being created.
NatEventReport session_create() {
  NatEventReport event;
  event.at_ms = kFirstMs;
  event.event = NatEventType::kSessionCreate;
  event.original = bittorrent_flow().original;
  event.translated = bittorrent_flow().translated;
  return event;
}

// A DNS query refused: its subscriber has 2000 sessions already.
NatEventReport quota_exceeded() {
  NatEventReport event;
  event.at_ms = 1'764'921'572'345;
  event.event = NatEventType::kQuotaExceeded;
  event.quota_event = NatQuotaEvent::kMaxEntriesPerUser;
  event.original = {ipv4(192, 168, 1, 11), ipv4(1, 1, 1, 1), 5353, 53, kUdp};
  event.translated.src = ipv4(203, 0, 113, 5);
  event.limit = 2000;
  return event;
}

ExporterConfig config(ExportFormat format) {
  ExporterConfig c;
  c.format = format;
  c.observation_domain = 7;
  return c;
}

// ---- the expected bytes ---------------------------------------------------------------------

const Bytes kIpfixFlowTemplate = {
    0x01, 0x00, 0x00, 0x14,  // template 256, 20 fields
    0x00, 0x98, 0x00, 0x08,  // 152 flowStartMilliseconds, 8
    0x00, 0x99, 0x00, 0x08,  // 153 flowEndMilliseconds, 8
    0x00, 0x08, 0x00, 0x04,  //   8 sourceIPv4Address, 4
    0x00, 0x0C, 0x00, 0x04,  //  12 destinationIPv4Address, 4
    0x00, 0x07, 0x00, 0x02,  //   7 sourceTransportPort, 2
    0x00, 0x0B, 0x00, 0x02,  //  11 destinationTransportPort, 2
    0x00, 0x04, 0x00, 0x01,  //   4 protocolIdentifier, 1
    0x00, 0xE1, 0x00, 0x04,  // 225 postNATSourceIPv4Address, 4
    0x00, 0xE2, 0x00, 0x04,  // 226 postNATDestinationIPv4Address, 4
    0x00, 0xE3, 0x00, 0x02,  // 227 postNAPTSourceTransportPort, 2
    0x00, 0xE4, 0x00, 0x02,  // 228 postNAPTDestinationTransportPort, 2
    0x00, 0x01, 0x00, 0x08,  //   1 octetDeltaCount, 8
    0x00, 0x02, 0x00, 0x08,  //   2 packetDeltaCount, 8
    0x00, 0x06, 0x00, 0x02,  //   6 tcpControlBits, 2
    0x00, 0x0A, 0x00, 0x04,  //  10 ingressInterface, 4
    0x00, 0x0E, 0x00, 0x04,  //  14 egressInterface, 4
    0x00, 0x88, 0x00, 0x01,  // 136 flowEndReason, 1
    0x00, 0xEF, 0x00, 0x01,  // 239 biflowDirection, 1
    0x00, 0x64, 0x00, 0x10,  // 100 className, 16
    0x00, 0x60, 0x00, 0x10,  //  96 applicationName, 16
};
const Bytes kNetflowV9FlowTemplate = {
    0x01, 0x00, 0x00, 0x14,  // template 256, 20 fields
    0x00, 0x16, 0x00, 0x04,  //  22 FIRST_SWITCHED, 4
    0x00, 0x15, 0x00, 0x04,  //  21 LAST_SWITCHED, 4
    0x00, 0x08, 0x00, 0x04,  //   8 IPV4_SRC_ADDR, 4
    0x00, 0x0C, 0x00, 0x04,  //  12 IPV4_DST_ADDR, 4
    0x00, 0x07, 0x00, 0x02,  //   7 L4_SRC_PORT, 2
    0x00, 0x0B, 0x00, 0x02,  //  11 L4_DST_PORT, 2
    0x00, 0x04, 0x00, 0x01,  //   4 PROTOCOL, 1
    0x00, 0xE1, 0x00, 0x04,  // 225 postNATSourceIPv4Address, 4
    0x00, 0xE2, 0x00, 0x04,  // 226 postNATDestinationIPv4Address, 4
    0x00, 0xE3, 0x00, 0x02,  // 227 postNAPTSourceTransportPort, 2
    0x00, 0xE4, 0x00, 0x02,  // 228 postNAPTDestinationTransportPort, 2
    0x00, 0x01, 0x00, 0x08,  //   1 IN_BYTES, 8
    0x00, 0x02, 0x00, 0x08,  //   2 IN_PKTS, 8
    0x00, 0x06, 0x00, 0x01,  //   6 TCP_FLAGS, 1
    0x00, 0x0A, 0x00, 0x04,  //  10 INPUT_SNMP, 4
    0x00, 0x0E, 0x00, 0x04,  //  14 OUTPUT_SNMP, 4
    0x00, 0x88, 0x00, 0x01,  // 136 flowEndReason, 1
    0x00, 0xEF, 0x00, 0x01,  // 239 biflowDirection, 1
    0x00, 0x64, 0x00, 0x10,  // 100 className, 16
    0x00, 0x60, 0x00, 0x10,  //  96 applicationName, 16
};
const Bytes kNatEventTemplate = {
    0x01, 0x01, 0x00, 0x0E,  // template 257, 14 fields
    0x01, 0x43, 0x00, 0x08,  // 323 observationTimeMilliseconds, 8
    0x00, 0xE6, 0x00, 0x01,  // 230 natEvent, 1
    0x01, 0xD2, 0x00, 0x04,  // 466 natQuotaExceededEvent, 4
    0x01, 0xD7, 0x00, 0x04,  // 471 maxSessionEntries, 4
    0x01, 0xD9, 0x00, 0x04,  // 473 maxEntriesPerUser, 4
    0x00, 0x08, 0x00, 0x04,  //   8 sourceIPv4Address, 4
    0x00, 0x0C, 0x00, 0x04,  //  12 destinationIPv4Address, 4
    0x00, 0x07, 0x00, 0x02,  //   7 sourceTransportPort, 2
    0x00, 0x0B, 0x00, 0x02,  //  11 destinationTransportPort, 2
    0x00, 0x04, 0x00, 0x01,  //   4 protocolIdentifier, 1
    0x00, 0xE1, 0x00, 0x04,  // 225 postNATSourceIPv4Address, 4
    0x00, 0xE2, 0x00, 0x04,  // 226 postNATDestinationIPv4Address, 4
    0x00, 0xE3, 0x00, 0x02,  // 227 postNAPTSourceTransportPort, 2
    0x00, 0xE4, 0x00, 0x02,  // 228 postNAPTDestinationTransportPort, 2
};

// The flow's two records from the key on: the same in both formats up to the TCP flags.
const Bytes kOriginalKeyAndCounters = {
    0xC0, 0xA8, 0x01, 0x0A, 0x55, 0x11, 0x14, 0x21,  // 192.168.1.10 -> 85.17.20.33
    0xC8, 0xD5, 0x1A, 0xE1, 0x06,                    // 51413 -> 6881, TCP
    0xCB, 0x00, 0x71, 0x05, 0x55, 0x11, 0x14, 0x21,  // post-NAT 203.0.113.5 -> 85.17.20.33
    0x9C, 0x41, 0x1A, 0xE1,                          // post-NAPT 40001 -> 6881
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x30,  // 1840 bytes
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0C,  // 12 packets
};
const Bytes kReplyKeyAndCounters = {
    0x55, 0x11, 0x14, 0x21, 0xCB, 0x00, 0x71, 0x05,  // 85.17.20.33 -> 203.0.113.5
    0x1A, 0xE1, 0x9C, 0x41, 0x06,                    // 6881 -> 40001, TCP
    0x55, 0x11, 0x14, 0x21, 0xC0, 0xA8, 0x01, 0x0A,  // post-NAT 85.17.20.33 -> 192.168.1.10
    0x1A, 0xE1, 0xC8, 0xD5,                          // post-NAPT 6881 -> 51413
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x25, 0x94,  // 9620 bytes
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0A,  // 10 packets
};
const Bytes kNames = {
    'p', '2', 'p', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,               // className "p2p"
    'b', 'i', 't', 't', 'o', 'r', 'r', 'e', 'n', 't', 0, 0, 0, 0, 0, 0,  // applicationName
};
const Bytes kOriginalInterfacesReasonDirection = {
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,  // in port 0 (lan0), out port 1 (wan0)
    0x03,                                            // end of flow
    0x01,                                            // initiator
};
const Bytes kReplyInterfacesReasonDirection = {
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01,  // in wan0, out lan0
    0x03,                                            // end of flow
    0x02,                                            // reverse initiator
};

const Bytes kIpfixTimes = {
    0x00, 0x00, 0x01, 0x9A, 0xED, 0x85, 0xAC, 0xFB,  // 1764921552123 ms
    0x00, 0x00, 0x01, 0x9A, 0xED, 0x85, 0xF8, 0x80,  // 1764921571456 ms
};
const Bytes kIpfixOriginalRecord = cat({kIpfixTimes, kOriginalKeyAndCounters, {0x00, 0x1B},  // 2-byte flags
                                        kOriginalInterfacesReasonDirection, kNames});
const Bytes kIpfixReplyRecord = cat({kIpfixTimes, kReplyKeyAndCounters, {0x00, 0x1E},
                                     kReplyInterfacesReasonDirection, kNames});

const Bytes kNetflowV9Times = {
    0x00, 0x17, 0xAE, 0xFB,  // 1552123 ms since boot
    0x00, 0x17, 0xFA, 0x80,  // 1571456 ms since boot
};
const Bytes kNetflowV9OriginalRecord = cat({kNetflowV9Times, kOriginalKeyAndCounters, {0x1B},  // 1-byte flags
                                            kOriginalInterfacesReasonDirection, kNames});
const Bytes kNetflowV9ReplyRecord = cat({kNetflowV9Times, kReplyKeyAndCounters, {0x1E},
                                         kReplyInterfacesReasonDirection, kNames});

const Bytes kSessionCreateRecord = {
    0x00, 0x00, 0x01, 0x9A, 0xED, 0x85, 0xAC, 0xFB,  // 1764921552123 ms
    0x04,                                            // NAT44 session create
    0x00, 0x00, 0x00, 0x00,                          // no quota event
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // no limits
    0xC0, 0xA8, 0x01, 0x0A, 0x55, 0x11, 0x14, 0x21,  // 192.168.1.10 -> 85.17.20.33
    0xC8, 0xD5, 0x1A, 0xE1, 0x06,                    // 51413 -> 6881, TCP
    0xCB, 0x00, 0x71, 0x05, 0x55, 0x11, 0x14, 0x21,  // post-NAT 203.0.113.5 -> 85.17.20.33
    0x9C, 0x41, 0x1A, 0xE1,                          // post-NAPT 40001 -> 6881
};
const Bytes kQuotaExceededRecord = {
    0x00, 0x00, 0x01, 0x9A, 0xED, 0x85, 0xFB, 0xF9,  // 1764921572345 ms
    0x0D,                                            // quota exceeded
    0x00, 0x00, 0x00, 0x03,                          // maximum entries per user
    0x00, 0x00, 0x00, 0x00,                          // maxSessionEntries: not this limit
    0x00, 0x00, 0x07, 0xD0,                          // maxEntriesPerUser 2000
    0xC0, 0xA8, 0x01, 0x0B, 0x01, 0x01, 0x01, 0x01,  // 192.168.1.11 -> 1.1.1.1
    0x14, 0xE9, 0x00, 0x35, 0x11,                    // 5353 -> 53, UDP
    0xCB, 0x00, 0x71, 0x05, 0x00, 0x00, 0x00, 0x00,  // the WAN address, nothing else translated
    0x00, 0x00, 0x00, 0x00,
};

// Bytes as hex, 16 to a line after their offset: a failed comparison shows the lines that differ.
std::string hex(const Bytes& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i % 16 == 0) text += (i ? "\n" : "") + std::to_string(i) + ":";
    text += {' ', kDigits[bytes[i] >> 4], kDigits[bytes[i] & 0xF]};
  }
  return text;
}

// ---- reading messages -----------------------------------------------------------------------

uint16_t get16(const Bytes& bytes, std::size_t at) { return static_cast<uint16_t>(bytes[at] << 8 | bytes[at + 1]); }
uint32_t get32(const Bytes& bytes, std::size_t at) { return uint32_t{get16(bytes, at)} << 16 | get16(bytes, at + 2); }

struct Set {
  uint16_t id;
  Bytes body;  // without the set header, with any padding
};
// The sets of a message, after checking that they tile it exactly.
std::vector<Set> sets(const Bytes& message, ExportFormat format) {
  std::vector<Set> all;
  std::size_t at = format == ExportFormat::kIpfix ? 16 : 20;
  while (at < message.size()) {
    EXPECT_GE(message.size() - at, 4u) << "a set header cut";
    if (message.size() - at < 4) break;
    uint16_t length = get16(message, at + 2);
    EXPECT_GE(length, 4u);
    EXPECT_LE(length, message.size() - at) << "a set runs past the message";
    if (length < 4 || length > message.size() - at) break;
    all.push_back({get16(message, at), Bytes(message.begin() + at + 4, message.begin() + at + length)});
    at += length;
  }
  return all;
}
bool has_templates(const Bytes& message, ExportFormat format) {
  std::vector<Set> s = sets(message, format);
  return !s.empty() && s.front().id == (format == ExportFormat::kIpfix ? 2 : 0);
}
uint32_t ipfix_sequence(const Bytes& message) { return get32(message, 8); }
uint32_t v9_sequence(const Bytes& message) { return get32(message, 12); }

// ---- whole messages ---------------------------------------------------------------------------

TEST(FlowExporterIpfix, FirstMessageHoldsTheTemplatesAndBothDirections) {
  FlowExporter exporter(config(ExportFormat::kIpfix), kBootMs);
  exporter.add_flow(bittorrent_flow());
  const Bytes expected = cat({
      {0x00, 0x0A, 0x01, 0x72},  // version 10, length 370
      {0x69, 0x32, 0x90, 0xE4},  // export time 1764921572 s
      {0x00, 0x00, 0x00, 0x00},  // sequence: no data records before this message
      {0x00, 0x00, 0x00, 0x07},  // observation domain 7
      {0x00, 0x02, 0x00, 0x94},  // template set, 148 bytes
      kIpfixFlowTemplate,
      kNatEventTemplate,
      {0x01, 0x00, 0x00, 0xCE},  // data set of template 256, 206 bytes: two 101-byte records
      kIpfixOriginalRecord,
      kIpfixReplyRecord,
  });
  ASSERT_EQ(kIpfixOriginalRecord.size(), 101u);
  ASSERT_EQ(expected.size(), 370u);

  std::vector<Bytes> messages = exporter.take_messages(kNowMs);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(hex(messages[0]), hex(expected));
  EXPECT_EQ(exporter.records_exported(), 2u);
  EXPECT_EQ(exporter.messages_exported(), 1u);
  EXPECT_EQ(exporter.templates_exported(), 1u);
  EXPECT_EQ(exporter.records_queued(), 0u);
}

TEST(FlowExporterNetflowV9, FirstPacketHoldsTheTemplatesAndBothDirections) {
  FlowExporter exporter(config(ExportFormat::kNetflowV9), kBootMs);
  exporter.add_flow(bittorrent_flow());
  const Bytes expected = cat({
      {0x00, 0x09, 0x00, 0x04},  // version 9, 4 records: 2 templates, 2 flows
      {0x00, 0x17, 0xFC, 0xA0},  // sysUptime 1572000 ms: at 07:59:32.000, the second below
      {0x69, 0x32, 0x90, 0xE4},  // UNIX secs 1764921572
      {0x00, 0x00, 0x00, 0x00},  // sequence: no packets before this one
      {0x00, 0x00, 0x00, 0x07},  // source id 7
      {0x00, 0x00, 0x00, 0x94},  // template flowset, 148 bytes
      kNetflowV9FlowTemplate,
      kNatEventTemplate,
      {0x01, 0x00, 0x00, 0xBC},  // data flowset of template 256, 188 bytes: two 92-byte records,
      kNetflowV9OriginalRecord,  // a multiple of 4 without padding
      kNetflowV9ReplyRecord,
  });
  ASSERT_EQ(kNetflowV9OriginalRecord.size(), 92u);
  ASSERT_EQ(expected.size(), 356u);

  std::vector<Bytes> messages = exporter.take_messages(kNowMs);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(hex(messages[0]), hex(expected));
}

TEST(FlowExporterIpfix, NatEvents) {
  FlowExporter exporter(config(ExportFormat::kIpfix), kBootMs);
  exporter.add_flow(bittorrent_flow());
  ASSERT_EQ(exporter.take_messages(kNowMs).size(), 1u);

  exporter.add_nat_event(session_create());
  exporter.add_nat_event(quota_exceeded());
  const Bytes expected = cat({
      {0x00, 0x0A, 0x00, 0x70},  // version 10, length 112
      {0x69, 0x32, 0x90, 0xE4},  // export time 1764921572 s
      {0x00, 0x00, 0x00, 0x02},  // sequence: the flow's two records came before
      {0x00, 0x00, 0x00, 0x07},  // observation domain 7
      {0x01, 0x01, 0x00, 0x60},  // data set of template 257, 96 bytes: two 46-byte records
      kSessionCreateRecord,
      kQuotaExceededRecord,
  });
  ASSERT_EQ(kSessionCreateRecord.size(), 46u);
  ASSERT_EQ(kQuotaExceededRecord.size(), 46u);

  std::vector<Bytes> messages = exporter.take_messages(kNowMs);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(hex(messages[0]), hex(expected));
}

TEST(FlowExporterNetflowV9, NatEventFlowsetIsPaddedToFourBytes) {
  FlowExporter exporter(config(ExportFormat::kNetflowV9), kBootMs);
  ASSERT_EQ(exporter.take_messages(kNowMs).size(), 1u) << "the templates, alone";

  exporter.add_nat_event(session_create());
  const Bytes expected = cat({
      {0x00, 0x09, 0x00, 0x01},  // version 9, 1 record
      {0x00, 0x17, 0xFC, 0xA0},  // sysUptime 1572000 ms
      {0x69, 0x32, 0x90, 0xE4},  // UNIX secs 1764921572
      {0x00, 0x00, 0x00, 0x01},  // sequence: the templates' packet came before
      {0x00, 0x00, 0x00, 0x07},  // source id 7
      {0x01, 0x01, 0x00, 0x34},  // data flowset of template 257, 52 bytes: 46 and 2 padding
      kSessionCreateRecord,
      {0x00, 0x00},  // padding
  });
  std::vector<Bytes> messages = exporter.take_messages(kNowMs);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(hex(messages[0]), hex(expected));
}

TEST(FlowExporterIpfix, FlowsGoFirstThenNatEventsInOneMessage) {
  FlowExporter exporter(config(ExportFormat::kIpfix), kBootMs);
  ASSERT_EQ(exporter.take_messages(kNowMs).size(), 1u);
  exporter.add_nat_event(session_create());
  exporter.add_flow(bittorrent_flow());
  std::vector<Bytes> messages = exporter.take_messages(kNowMs);
  ASSERT_EQ(messages.size(), 1u);
  std::vector<Set> s = sets(messages[0], ExportFormat::kIpfix);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].id, kFlowTemplateId);
  EXPECT_EQ(hex(s[0].body), hex(cat({kIpfixOriginalRecord, kIpfixReplyRecord})));
  EXPECT_EQ(s[1].id, kNatEventTemplateId);
  EXPECT_EQ(hex(s[1].body), hex(kSessionCreateRecord));
}

// ---- records ----------------------------------------------------------------------------------

TEST(FlowExporterRecords, AReplyWithoutPacketsHasNoRecord) {
  FlowReport report = bittorrent_flow();
  report.packets[1] = 0;
  report.bytes[1] = 0;
  FlowExporter exporter(config(ExportFormat::kIpfix), kBootMs);
  exporter.add_flow(report);
  EXPECT_EQ(exporter.records_queued(), 1u);
  std::vector<Bytes> messages = exporter.take_messages(kNowMs);
  ASSERT_EQ(messages.size(), 1u);
  std::vector<Set> s = sets(messages[0], ExportFormat::kIpfix);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(hex(s[1].body), hex(kIpfixOriginalRecord));
  EXPECT_EQ(exporter.records_exported(), 1u);
}

TEST(FlowExporterRecords, AReportWithoutPacketsHasNoRecords) {
  FlowReport report = bittorrent_flow();
  report.packets[0] = report.packets[1] = 0;
  FlowExporter exporter(config(ExportFormat::kIpfix), kBootMs);
  exporter.add_flow(report);
  EXPECT_EQ(exporter.records_queued(), 0u);
  std::vector<Bytes> messages = exporter.take_messages(kNowMs);
  ASSERT_EQ(messages.size(), 1u) << "the templates";
  EXPECT_EQ(sets(messages[0], ExportFormat::kIpfix).size(), 1u);
}

// The identifier of an ICMP echo stands in the ports as the key holds it.
TEST(FlowExporterRecords, IcmpEchoCarriesTheIdentifierAsTheKeyHasIt) {
  FlowReport report = bittorrent_flow();
  report.original = {ipv4(192, 168, 1, 10), ipv4(9, 9, 9, 9), 0x1234, 0, kIcmp};
  report.translated = {ipv4(203, 0, 113, 5), ipv4(9, 9, 9, 9), 0x5678, 0, kIcmp};
  FlowExporter exporter(config(ExportFormat::kIpfix), kBootMs);
  exporter.add_flow(report);
  std::vector<Set> s = sets(exporter.take_messages(kNowMs)[0], ExportFormat::kIpfix);
  ASSERT_EQ(s.size(), 2u);
  ASSERT_EQ(s[1].body.size(), 202u);
  // Ports at 24 and 26, post-NAPT ports at 37 and 39 of each record.
  const Bytes& b = s[1].body;
  EXPECT_EQ(get16(b, 24), 0x1234);
  EXPECT_EQ(get16(b, 26), 0);
  EXPECT_EQ(b[28], kIcmp);
  EXPECT_EQ(get16(b, 37), 0x5678);
  EXPECT_EQ(get16(b, 39), 0);
  EXPECT_EQ(get16(b, 101 + 24), 0) << "the reply, as it came back to the WAN address";
  EXPECT_EQ(get16(b, 101 + 26), 0x5678);
  EXPECT_EQ(get16(b, 101 + 37), 0);
  EXPECT_EQ(get16(b, 101 + 39), 0x1234);
}

// Where a forwarded flow's server would answer, before it has: interface 0, IPFIX's unknown,
// not the interface after the last.
TEST(FlowExporterRecords, AnUnknownPortIsInterfaceZero) {
  FlowReport report = bittorrent_flow();
  report.egress_port = kFlowPortUnknown;
  FlowExporter exporter(config(ExportFormat::kIpfix), kBootMs);
  exporter.add_flow(report);
  std::vector<Set> s = sets(exporter.take_messages(kNowMs)[0], ExportFormat::kIpfix);
  ASSERT_EQ(s.size(), 2u);
  ASSERT_EQ(s[1].body.size(), 202u);
  // Ingress and egress interfaces at 59 and 63 of each record.
  const Bytes& b = s[1].body;
  EXPECT_EQ(get32(b, 59), 1u) << "lan0";
  EXPECT_EQ(get32(b, 63), 0u);
  EXPECT_EQ(get32(b, 101 + 59), 0u) << "the reply arrives where the original left";
  EXPECT_EQ(get32(b, 101 + 63), 1u);
}

TEST(FlowExporterRecords, NamesAreCutAtACharacterBoundary) {
  FlowReport report = bittorrent_flow();
  report.packets[1] = 0;
  report.traffic_class = "abcdefghijklmnopq";       // 17 bytes: the last one left out
  report.application = "abcdefghijklmno\xC3\xA9xyz";  // "...oé...": the é would straddle byte 16
  FlowExporter exporter(config(ExportFormat::kIpfix), kBootMs);
  exporter.add_flow(report);
  std::vector<Set> s = sets(exporter.take_messages(kNowMs)[0], ExportFormat::kIpfix);
  ASSERT_EQ(s.size(), 2u);
  ASSERT_EQ(s[1].body.size(), 101u);
  EXPECT_EQ(Bytes(s[1].body.begin() + 69, s[1].body.begin() + 85), Bytes({'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i',
                                                                          'j', 'k', 'l', 'm', 'n', 'o', 'p'}));
  EXPECT_EQ(Bytes(s[1].body.begin() + 85, s[1].body.end()),
            Bytes({'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 0}));
}

TEST(FlowExporterRecords, QuotaOfSessionsFillsMaxSessionEntries) {
  NatEventReport event = quota_exceeded();
  event.quota_event = NatQuotaEvent::kMaxSessionEntries;
  event.limit = 65536;
  FlowExporter exporter(config(ExportFormat::kIpfix), kBootMs);
  exporter.add_nat_event(event);
  std::vector<Set> s = sets(exporter.take_messages(kNowMs)[0], ExportFormat::kIpfix);
  ASSERT_EQ(s.size(), 2u);
  ASSERT_EQ(s[1].body.size(), 46u);
  EXPECT_EQ(get32(s[1].body, 9), 1u) << "natQuotaExceededEvent: maximum session entries";
  EXPECT_EQ(get32(s[1].body, 13), 65536u) << "maxSessionEntries";
  EXPECT_EQ(get32(s[1].body, 17), 0u) << "maxEntriesPerUser";
}

TEST(FlowExporterRecords, LimitsAreZeroWithoutAQuotaEvent) {
  NatEventReport event = session_create();
  event.quota_event = NatQuotaEvent::kMaxSessionEntries;  // meaningless with a session event
  event.limit = 100;
  FlowExporter exporter(config(ExportFormat::kIpfix), kBootMs);
  exporter.add_nat_event(event);
  std::vector<Set> s = sets(exporter.take_messages(kNowMs)[0], ExportFormat::kIpfix);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(hex(s[1].body), hex(kSessionCreateRecord));
}

// sysUptime wraps after 2^32 ms (49.7 days), and the times in the records with it.
TEST(FlowExporterNetflowV9, UptimeWrapsModulo2To32) {
  const uint64_t boot_ms = kNowMs / 1000 * 1000 - (uint64_t{1} << 32) - 5000;  // 5 s past a wrap
  FlowExporter exporter(config(ExportFormat::kNetflowV9), boot_ms);
  exporter.add_flow(bittorrent_flow());
  Bytes message = exporter.take_messages(kNowMs)[0];
  EXPECT_EQ(get32(message, 4), 5000u);
  std::vector<Set> s = sets(message, ExportFormat::kNetflowV9);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(get32(s[1].body, 0), 4294952419u) << "FIRST_SWITCHED 14.877 s before the wrap: 2^32 - 14877";
  EXPECT_EQ(get32(s[1].body, 4), 4456u) << "LAST_SWITCHED 4.456 s after it";
}

// ---- sequence numbers -------------------------------------------------------------------------

TEST(FlowExporterSequence, IpfixCountsDataRecordsBeforeTheMessage) {
  FlowExporter exporter(config(ExportFormat::kIpfix), kBootMs);
  std::vector<Bytes> messages = exporter.take_messages(kNowMs);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(ipfix_sequence(messages[0]), 0u) << "templates alone";

  exporter.add_flow(bittorrent_flow());
  messages = exporter.take_messages(kNowMs);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(ipfix_sequence(messages[0]), 0u) << "template records are not counted";

  exporter.add_nat_event(session_create());
  messages = exporter.take_messages(kNowMs);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(ipfix_sequence(messages[0]), 2u);

  exporter.add_flow(bittorrent_flow());
  messages = exporter.take_messages(kNowMs);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(ipfix_sequence(messages[0]), 3u);
  EXPECT_EQ(exporter.records_exported(), 5u);
  EXPECT_EQ(exporter.messages_exported(), 4u);
}

TEST(FlowExporterSequence, NetflowV9CountsPacketsBeforeThisOne) {
  FlowExporter exporter(config(ExportFormat::kNetflowV9), kBootMs);
  for (uint32_t i = 0; i < 4; ++i) {
    exporter.add_flow(bittorrent_flow());
    std::vector<Bytes> messages = exporter.take_messages(kNowMs);
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(v9_sequence(messages[0]), i);
    EXPECT_EQ(get16(messages[0], 2), i == 0 ? 4 : 2) << "count: records, templates included";
  }
}

TEST(FlowExporterSequence, IpfixWrapsModulo2To32) {
  ExporterConfig c = config(ExportFormat::kIpfix);
  c.first_sequence = 0xFFFFFFFF;
  FlowExporter exporter(c, kBootMs);
  exporter.add_flow(bittorrent_flow());
  EXPECT_EQ(ipfix_sequence(exporter.take_messages(kNowMs)[0]), 0xFFFFFFFFu);
  exporter.add_flow(bittorrent_flow());
  EXPECT_EQ(ipfix_sequence(exporter.take_messages(kNowMs)[0]), 1u) << "0xFFFFFFFF + 2 records";
}

TEST(FlowExporterSequence, NetflowV9WrapsModulo2To32) {
  ExporterConfig c = config(ExportFormat::kNetflowV9);
  c.first_sequence = 0xFFFFFFFE;
  FlowExporter exporter(c, kBootMs);
  const uint32_t expected[] = {0xFFFFFFFE, 0xFFFFFFFF, 0, 1};
  for (uint32_t sequence : expected) {
    exporter.add_nat_event(session_create());
    std::vector<Bytes> messages = exporter.take_messages(kNowMs);
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(v9_sequence(messages[0]), sequence);
  }
}

// ---- templates --------------------------------------------------------------------------------

TEST(FlowExporterTemplates, SentAloneWhenNothingIsQueued) {
  for (ExportFormat format : {ExportFormat::kIpfix, ExportFormat::kNetflowV9}) {
    ExporterConfig c = config(format);
    c.template_refresh_ms = 1000;
    FlowExporter exporter(c, kBootMs);
    std::vector<Bytes> messages = exporter.take_messages(kNowMs);
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_TRUE(has_templates(messages[0], format));
    EXPECT_EQ(sets(messages[0], format).size(), 1u);
    EXPECT_EQ(messages[0].size(), (format == ExportFormat::kIpfix ? 16u : 20u) + 148u);
    EXPECT_EQ(exporter.records_exported(), 0u);

    EXPECT_TRUE(exporter.take_messages(kNowMs + 999).empty()) << "not due, nothing queued";
    messages = exporter.take_messages(kNowMs + 1000);
    ASSERT_EQ(messages.size(), 1u) << "an idle exporter still refreshes the templates";
    EXPECT_TRUE(has_templates(messages[0], format));
    EXPECT_EQ(exporter.templates_exported(), 2u);
  }
}

TEST(FlowExporterTemplates, RefreshedByTime) {
  ExporterConfig c = config(ExportFormat::kIpfix);
  c.template_refresh_ms = 60000;
  FlowExporter exporter(c, kBootMs);
  struct Step {
    uint64_t at_ms;
    bool templates;
  };
  const Step steps[] = {
      {kNowMs, true},           // the first message
      {kNowMs + 1000, false},
      {kNowMs + 59999, false},
      {kNowMs + 60000, true},   // 60 s after they were last sent
      {kNowMs + 60001, false},
      {kNowMs + 119999, false},
      {kNowMs + 120000, true},
      {kNowMs + 100, true},     // the clock stepped back: resend rather than wait
      {kNowMs + 200, false},
  };
  for (const Step& step : steps) {
    exporter.add_nat_event(session_create());
    std::vector<Bytes> messages = exporter.take_messages(step.at_ms);
    ASSERT_EQ(messages.size(), 1u) << step.at_ms - kNowMs;
    EXPECT_EQ(has_templates(messages[0], ExportFormat::kIpfix), step.templates) << step.at_ms - kNowMs;
  }
}

TEST(FlowExporterTemplates, RefreshedByMessageCount) {
  for (ExportFormat format : {ExportFormat::kIpfix, ExportFormat::kNetflowV9}) {
    ExporterConfig c = config(format);
    c.template_refresh_messages = 3;
    FlowExporter exporter(c, kBootMs);
    for (int i = 0; i < 7; ++i) {
      exporter.add_nat_event(session_create());
      std::vector<Bytes> messages = exporter.take_messages(kNowMs + i);
      // Due after the third message, they wait for the next record rather than go alone.
      ASSERT_EQ(messages.size(), 1u) << "message " << i;
      EXPECT_EQ(has_templates(messages[0], format), i % 3 == 0) << "message " << i;
    }
    EXPECT_EQ(exporter.templates_exported(), 3u);
  }
}

TEST(FlowExporterTemplates, RefreshedByMessageCountWithinOneTake) {
  ExporterConfig c = config(ExportFormat::kIpfix);
  c.template_refresh_messages = 2;
  c.max_message_bytes = FlowExporter::kMinMessageBytes;
  FlowExporter exporter(c, kBootMs);
  // 10 records: at this limit 1 fits beside the templates, 2 without them.
  for (int i = 0; i < 5; ++i) exporter.add_flow(bittorrent_flow());
  std::vector<Bytes> messages = exporter.take_messages(kNowMs);
  ASSERT_EQ(messages.size(), 7u);
  for (std::size_t i = 0; i < messages.size(); ++i)
    EXPECT_EQ(has_templates(messages[i], ExportFormat::kIpfix), i % 2 == 0) << "message " << i;
}

// ---- message size -----------------------------------------------------------------------------

// Checks each of `messages`: within `max_message_bytes`, sets that tile it, data sets holding
// whole records (NetFlow v9: padded to 4 bytes, and less than a record of padding), the right
// header count or length. Returns the data records in order, each with its template id.
std::vector<std::pair<uint16_t, Bytes>> check_and_split(const std::vector<Bytes>& messages, ExportFormat format,
                                                        uint32_t max_message_bytes) {
  const std::size_t flow_bytes = format == ExportFormat::kIpfix ? 101 : 92;
  const std::size_t nat_bytes = 46;
  std::vector<std::pair<uint16_t, Bytes>> records;
  for (std::size_t m = 0; m < messages.size(); ++m) {
    const Bytes& message = messages[m];
    EXPECT_LE(message.size(), max_message_bytes) << "message " << m;
    std::size_t count = 0;
    for (const Set& set : sets(message, format)) {
      if (set.id == 2 || set.id == 0) continue;  // templates
      const std::size_t record_bytes = set.id == kFlowTemplateId ? flow_bytes : nat_bytes;
      const std::size_t n = set.body.size() / record_bytes;
      EXPECT_GT(n, 0u) << "message " << m << ": an empty set";
      if (format == ExportFormat::kIpfix) {
        EXPECT_EQ(set.body.size(), n * record_bytes) << "message " << m << ": a record cut";
      } else {
        EXPECT_EQ((4 + set.body.size()) % 4, 0u) << "message " << m << ": flowset not padded";
        EXPECT_LT(set.body.size() - n * record_bytes, 4u) << "message " << m << ": a record cut";
      }
      for (std::size_t i = 0; i < n; ++i) {
        const auto first = set.body.begin() + static_cast<std::ptrdiff_t>(i * record_bytes);
        records.emplace_back(set.id, Bytes(first, first + static_cast<std::ptrdiff_t>(record_bytes)));
      }
      count += n;
    }
    if (format == ExportFormat::kIpfix) {
      EXPECT_EQ(get16(message, 2), message.size()) << "message " << m;
    } else {
      EXPECT_EQ(get16(message, 2), count + (has_templates(message, format) ? 2 : 0)) << "message " << m;
    }
  }
  return records;
}

TEST(FlowExporterSize, IpfixMessagesHoldWholeRecordsUpToTheLimit) {
  ExporterConfig c = config(ExportFormat::kIpfix);
  c.max_message_bytes = 400;
  FlowExporter exporter(c, kBootMs);
  for (uint64_t i = 0; i < 10; ++i) {
    FlowReport report = bittorrent_flow();
    report.packets[0] = 100 + i;  // tells the records apart
    report.packets[1] = 200 + i;
    exporter.add_flow(report);
  }
  for (uint64_t i = 0; i < 5; ++i) {
    NatEventReport event = session_create();
    event.at_ms = kFirstMs + i;
    exporter.add_nat_event(event);
  }
  std::vector<Bytes> messages = exporter.take_messages(kNowMs);
  // The templates and two flow records (370 bytes: a third would make 471), then three flow
  // records (323) and a NAT event in the room left (373) while they last.
  std::vector<std::size_t> sizes;
  for (const Bytes& message : messages) sizes.push_back(message.size());
  EXPECT_EQ(sizes, std::vector<std::size_t>({370, 373, 373, 373, 373, 373, 323}));

  auto records = check_and_split(messages, ExportFormat::kIpfix, 400);
  ASSERT_EQ(records.size(), 25u);
  // Each kind in order: the flows with both directions of each, the NAT events.
  std::vector<Bytes> flows, nat_events;
  for (const auto& [template_id, record] : records) (template_id == kFlowTemplateId ? flows : nat_events).push_back(record);
  ASSERT_EQ(flows.size(), 20u);
  ASSERT_EQ(nat_events.size(), 5u);
  for (uint32_t i = 0; i < 10; ++i) {
    EXPECT_EQ(get32(flows[2 * i], 53), 100 + i) << "packetDeltaCount, low half";
    EXPECT_EQ(get32(flows[2 * i + 1], 53), 200 + i);
  }
  for (uint32_t i = 0; i < 5; ++i) EXPECT_EQ(get32(nat_events[i], 4), static_cast<uint32_t>(kFirstMs + i));
  EXPECT_EQ(exporter.messages_exported(), 7u);
  EXPECT_EQ(exporter.records_exported(), 25u);
}

TEST(FlowExporterSize, NetflowV9PaddedSetsStayWithinTheLimit) {
  // At the smallest limit the padding decides whether a record fits.
  for (uint32_t max : {FlowExporter::kMinMessageBytes, 400u, 401u, 402u, 403u, 1400u}) {
    ExporterConfig c = config(ExportFormat::kNetflowV9);
    c.max_message_bytes = max;
    FlowExporter exporter(c, kBootMs);
    for (int i = 0; i < 7; ++i) exporter.add_flow(bittorrent_flow());
    for (int i = 0; i < 9; ++i) exporter.add_nat_event(session_create());
    auto records = check_and_split(exporter.take_messages(kNowMs), ExportFormat::kNetflowV9, max);
    EXPECT_EQ(records.size(), 23u) << max;
  }
}

TEST(FlowExporterSize, SmallestLimitFitsTemplatesAndOneRecordOfEachKind) {
  for (ExportFormat format : {ExportFormat::kIpfix, ExportFormat::kNetflowV9}) {
    ExporterConfig c = config(format);
    c.max_message_bytes = FlowExporter::kMinMessageBytes;
    FlowExporter exporter(c, kBootMs);
    FlowReport report = bittorrent_flow();
    report.packets[1] = 0;
    exporter.add_flow(report);
    exporter.add_nat_event(session_create());
    std::vector<Bytes> messages = exporter.take_messages(kNowMs);
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(sets(messages[0], format).size(), 3u);
  }
}

// ---- configuration and names ------------------------------------------------------------------

TEST(FlowExporterConfig, RefusesWhatItCannotHonour) {
  ExporterConfig c = config(ExportFormat::kIpfix);
  c.max_message_bytes = FlowExporter::kMinMessageBytes - 1;
  EXPECT_THROW(FlowExporter(c, kBootMs), std::invalid_argument);
  c.max_message_bytes = 65508;
  EXPECT_THROW(FlowExporter(c, kBootMs), std::invalid_argument) << "more than a UDP payload";
  c.max_message_bytes = 65507;
  EXPECT_NO_THROW(FlowExporter(c, kBootMs));

  c = config(ExportFormat::kNetflowV9);
  c.template_refresh_ms = 0;
  EXPECT_THROW(FlowExporter(c, kBootMs), std::invalid_argument);
  c = config(ExportFormat::kNetflowV9);
  c.template_refresh_messages = 0;
  EXPECT_THROW(FlowExporter(c, kBootMs), std::invalid_argument);
}

TEST(FlowExporterNames, FlowEndReasons) {
  EXPECT_EQ(flow_end_reason_name(FlowEndReason::kActive), "active");
  EXPECT_EQ(flow_end_reason_name(FlowEndReason::kIdleTimeout), "idle-timeout");
  EXPECT_EQ(flow_end_reason_name(FlowEndReason::kActiveTimeout), "active-timeout");
  EXPECT_EQ(flow_end_reason_name(FlowEndReason::kEndOfFlow), "end-of-flow");
  EXPECT_EQ(flow_end_reason_name(FlowEndReason::kForcedEnd), "forced-end");
  EXPECT_EQ(flow_end_reason_name(FlowEndReason::kLackOfResources), "lack-of-resources");
}

TEST(FlowExporterNames, NatEvents) {
  EXPECT_EQ(nat_event_name(NatEventType::kSessionCreate), "session-create");
  EXPECT_EQ(nat_event_name(NatEventType::kSessionDelete), "session-delete");
  EXPECT_EQ(nat_event_name(NatEventType::kAddressesExhausted), "addresses-exhausted");
  EXPECT_EQ(nat_event_name(NatEventType::kPortsExhausted), "ports-exhausted");
  EXPECT_EQ(nat_event_name(NatEventType::kQuotaExceeded), "quota-exceeded");
}

}  // namespace
}  // namespace fairgate
