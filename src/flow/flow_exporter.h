// Flow and NAT event export to collectors: IPFIX (RFC 7011) or NetFlow v9 (RFC 3954) messages
// built from the management thread's FlowReports and NatEventReports. No sockets and no clock:
// the caller passes the time in and sends each message as one UDP payload, so the encoding is
// tested byte for byte and usable by offline tools. Management thread only (it allocates).
//
// Records are unidirectional, as collectors expect: a FlowReport becomes one record per
// direction that carried packets. Both formats use the same two templates, sent together in one
// template set (IPFIX set 2, NetFlow v9 flowset 0) in the first message and again whenever a
// refresh is due (ExporterConfig); over UDP a collector that restarted learns them from there.
// All fields are fixed length, IANA information elements (no enterprise numbers), network byte
// order. NetFlow v9 field types are the same numbers: below 128 the two registries agree, and
// v9 collectors (nfdump, Wireshark) read the higher ones as IANA assigned them.
//
// Flow record, template 256 (IPFIX 101 bytes, NetFlow v9 92 bytes):
//   IE   IPFIX name / NetFlow v9 name            bytes  value
//   152  flowStartMilliseconds                    8     IPFIX: first_ms (ms since the UNIX epoch)
//   153  flowEndMilliseconds                      8     IPFIX: last_ms
//    22  FIRST_SWITCHED                           4     v9: first_ms as sysUptime ms (see below)
//    21  LAST_SWITCHED                            4     v9: last_ms as sysUptime ms
//     8  sourceIPv4Address                        4     as the packets arrived at the gateway
//    12  destinationIPv4Address                   4
//     7  sourceTransportPort                      2
//    11  destinationTransportPort                 2
//     4  protocolIdentifier                       1
//   225  postNATSourceIPv4Address                 4     as the packets left the gateway
//   226  postNATDestinationIPv4Address            4
//   227  postNAPTSourceTransportPort              2
//   228  postNAPTDestinationTransportPort         2
//     1  octetDeltaCount                          8     IPv4 bytes of this direction, this report
//     2  packetDeltaCount                         8
//     6  tcpControlBits                           2/1   IPFIX 2 bytes (RFC 7125), v9 1 byte
//    10  ingressInterface                         4     port index + 1; 0: unknown (kFlowPortUnknown)
//    14  egressInterface                          4     port index + 1
//   136  flowEndReason                            1     FlowEndReason (kActive is 0, which IPFIX
//                                                       reserves: export ended or timed-out reports)
//   239  biflowDirection                          1     1: the source is the initiator (original
//                                                       direction), 2: the destination is (reply)
//   100  className                               16     the traffic class, zero padded
//    96  applicationName                         16     the P2P protocol, zero padded; all zero
//                                                       when none was recognised
// Original direction: addresses and ports from report.original, post-NAT from
// report.translated, interfaces ingress_port -> egress_port, counters [0]. Reply direction:
// report.translated.reversed() and report.original.reversed(), egress_port -> ingress_port,
// counters [1]. Both records carry the report's times, end reason and names.
//
// biflowDirection (RFC 5103) rather than flowDirection (IE 61): flowDirection says whether the
// flow was observed entering (0) or leaving (1) an interface, and every flow fairgate forwards
// does both, on the two interfaces the record names; reusing it for original/reply would mislead
// a collector that reads it as the standard says. biflowDirection says which end started it.
//
// ICMP: the IPFIX convention puts type and code in destinationTransportPort; fairgate's flow key
// holds the echo identifier as a port instead (nat/flow_key.h), and the record carries the key
// as it is: the identifier in the ports that hold it, the other ports 0. The type is not known
// here, and the identifier is what relates a request to its reply and to its NAT mapping.
//
// Names longer than 16 bytes are cut at a UTF-8 character boundary.
//
// NAT event record, template 257 (46 bytes in both formats), RFC 8158:
//   IE   name                                   bytes  value
//   323  observationTimeMilliseconds              8     at_ms
//   230  natEvent                                 1     NatEventType
//   466  natQuotaExceededEvent                    4     NatQuotaEvent; 0 when not kQuotaExceeded
//   471  maxSessionEntries                        4     limit, with kMaxSessionEntries; else 0
//   473  maxEntriesPerUser                        4     limit, with kMaxEntriesPerUser; else 0
//     8  sourceIPv4Address                        4     original.src
//    12  destinationIPv4Address                   4     original.dst
//     7  sourceTransportPort                      2     original.sport
//    11  destinationTransportPort                 2     original.dport
//     4  protocolIdentifier                       1     original.proto
//   225  postNATSourceIPv4Address                 4     translated.src
//   226  postNATDestinationIPv4Address            4     translated.dst
//   227  postNAPTSourceTransportPort              2     translated.sport
//   228  postNAPTDestinationTransportPort         2     translated.dport
// RFC 8158 suggests a template per event; one template with the limits zero where they do not
// apply keeps every event in one set and costs 8 bytes a record.
//
// Messages:
//   IPFIX      version 10 | length | export time (s) | sequence | observation domain,
//              then sets, unpadded. sequence: data records sent in this observation domain
//              before this message, modulo 2^32 (template records are not counted).
//   NetFlow v9 version 9 | count | sysUptime (ms) | UNIX secs | sequence | source id, then
//              flowsets padded to 4 bytes (RFC 3954 SHOULD) with zeros. count: records in the
//              packet, template records included; sequence: packets sent before this one,
//              modulo 2^32. sysUptime and the records' FIRST/LAST_SWITCHED are milliseconds
//              since boot_ms, modulo 2^32 like a router's uptime (they wrap after 49.7 days).
//              The header's sysUptime is that of the whole second UNIX secs names, not of
//              now_ms: collectors recover the boot time as UNIX secs * 1000 - sysUptime, which
//              is then boot_ms exactly, and the records' times to the millisecond.
// A message is at most ExporterConfig::max_message_bytes and holds as many whole records as fit:
// a record is never split. In each message flow records go first and NAT events fill the room
// they leave; each kind leaves in the order it was queued.
#pragma once

#include "flow/flow_report.h"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace fairgate {

enum class ExportFormat : uint8_t { kIpfix, kNetflowV9 };

inline constexpr uint16_t kFlowTemplateId = 256;
inline constexpr uint16_t kNatEventTemplateId = 257;

struct ExporterConfig {
  ExportFormat format = ExportFormat::kIpfix;
  uint32_t observation_domain = 1;  // IPFIX observation domain id; NetFlow v9 source id
  // Templates are resent in the first message taken when this many milliseconds have passed
  // since they were last sent, or this many messages after the one that last carried them,
  // whichever comes first. Both at least 1.
  uint32_t template_refresh_ms = 60000;
  uint32_t template_refresh_messages = 100;
  // No message is longer, so that one fits an IPv4/UDP datagram under a 1500-byte MTU with
  // room for tunnel headers. At least FlowExporter::kMinMessageBytes, at most 65507 (a UDP
  // payload over IPv4).
  uint32_t max_message_bytes = 1400;
  // The first message's sequence number. A new exporter starts at 0; tests start near 2^32 to
  // see the wrap without sending 2^32 records.
  uint32_t first_sequence = 0;
};

class FlowExporter {
 public:
  // The smallest max_message_bytes: the templates and one record of each kind fit one message,
  // in either format.
  static constexpr uint32_t kMinMessageBytes = 319;

  // boot_ms: wall-clock milliseconds since the UNIX epoch when fairgate started, NetFlow v9's
  // sysUptime zero. Throws std::invalid_argument when the config is out of range.
  FlowExporter(const ExporterConfig& config, uint64_t boot_ms);

  // Queues one record per direction with packets (packets[d] > 0).
  void add_flow(const FlowReport& report);
  void add_nat_event(const NatEventReport& event);

  // Everything queued as complete messages, each one UDP payload, in the order to send them;
  // the queue is then empty. Templates lead each message for which they are due (the first
  // message ever, then per ExporterConfig). When nothing is queued and they are due they make a
  // message alone, so that an idle exporter still refreshes them. now_ms: wall-clock
  // milliseconds since the UNIX epoch (IPFIX export time, NetFlow v9 UNIX secs and sysUptime,
  // the template refresh clock).
  std::vector<std::vector<uint8_t>> take_messages(uint64_t now_ms);

  std::size_t records_queued() const;
  // Since construction, in the messages taken. Records: data records, templates not counted.
  uint64_t records_exported() const { return records_exported_; }
  uint64_t messages_exported() const { return messages_exported_; }
  uint64_t templates_exported() const { return templates_exported_; }  // template sets sent

 private:
  // How far take_messages has put the queued records into messages: bytes of each queue.
  struct Cursor {
    std::size_t flow_bytes = 0, nat_event_bytes = 0;
  };
  bool templates_due(uint64_t now_ms) const;
  // One message: the header, the templates when `with_templates`, then as many of the queued
  // records from `cursor` on as fit; moves `cursor` past them.
  std::vector<uint8_t> next_message(uint64_t now_ms, bool with_templates, Cursor& cursor);
  std::size_t put_data_set(std::vector<uint8_t>& message, uint16_t template_id, const std::vector<uint8_t>& queue,
                           std::size_t record_bytes, std::size_t* taken) const;

  ExporterConfig config_;
  uint64_t boot_ms_;
  std::size_t flow_record_bytes_, nat_record_bytes_;  // this format's
  std::vector<uint8_t> flows_, nat_events_;           // queued records, encoded, back to back

  uint32_t sequence_;  // the next message's: IPFIX data records sent, v9 packets sent; modulo 2^32
  bool templates_sent_ = false;
  uint64_t templates_sent_ms_ = 0;          // when the templates were last sent
  uint32_t messages_since_templates_ = 0;  // messages since then, counting the one with them
  uint64_t records_exported_ = 0, messages_exported_ = 0, templates_exported_ = 0;
};

std::string_view flow_end_reason_name(FlowEndReason reason);  // "idle-timeout", ...; "active"
std::string_view nat_event_name(NatEventType event);           // "session-create", ...

}  // namespace fairgate
