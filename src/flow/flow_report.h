// A flow as the management thread reports it: to collectors (IPFIX, NetFlow v9), in the
// `flows` snapshot and on `flow-watch` streams. Built from the workers' FlowRecords with the
// names resolved (ports, subscriber, class, application), so exporters and filters need no
// knowledge of the gateway's tables. One report covers both directions of a flow; exporters
// that speak unidirectional records send one per direction that carried packets.
#pragma once

#include "nat/flow_key.h"

#include <cstdint>
#include <string>

namespace fairgate {

// IPFIX flowEndReason (IE 136, RFC 7011 / IANA registry) values; kActive: the flow has not
// ended (a snapshot row, or the start event on a watch stream).
enum class FlowEndReason : uint8_t {
  kActive = 0,
  kIdleTimeout = 1,
  kActiveTimeout = 2,
  kEndOfFlow = 3,
  kForcedEnd = 4,
  kLackOfResources = 5,
};

// RFC 8158 natEvent (IE 230) values fairgate reports.
enum class NatEventType : uint8_t {
  kAddressesExhausted = 3,
  kSessionCreate = 4,
  kSessionDelete = 5,
  kPortsExhausted = 12,
  kQuotaExceeded = 13,
};

// RFC 8158 natQuotaExceededEvent (IE 466) values, with kQuotaExceeded.
enum class NatQuotaEvent : uint8_t {
  kNone = 0,
  kMaxSessionEntries = 1,
  kMaxEntriesPerUser = 3,
};

// A port index nothing has told: no packet came that way and the session does not say.
inline constexpr uint8_t kFlowPortUnknown = UINT8_MAX;

struct FlowReport {
  // As the initiator sent it (pre-NAT) and as it left the gateway (post-NAT). For a port
  // forward the initiator is the remote host: `original` is addressed to the WAN address,
  // `translated` to the inside server. Host byte order; ICMP echo: identifier as the port.
  FlowKey original, translated;
  // Wall-clock milliseconds since the UNIX epoch: first and last packet of this report's span
  // (an active-timeout report covers the packets since the previous report of the flow).
  uint64_t first_ms = 0, last_ms = 0;
  // [0] original direction (initiator to responder), [1] reply direction. Bytes are IPv4
  // bytes (total length), what IPFIX octetDeltaCount counts.
  uint64_t packets[2] = {0, 0}, bytes[2] = {0, 0};
  uint8_t tcp_flags[2] = {0, 0};  // OR of the TCP flag bytes seen in each direction
  // Port indices of the original direction: where its packets arrived and left, or
  // kFlowPortUnknown (where a forwarded flow's server would answer, before it has). The reply
  // direction arrives on `egress_port` and leaves by `ingress_port`.
  uint16_t ingress_port = 0, egress_port = 0;
  FlowEndReason end_reason = FlowEndReason::kActive;
  uint32_t inside_address = 0;  // the LAN host (host order): initiator, or a forward's server
  // Names, empty when unknown.
  std::string ingress_name, egress_name;  // port names ("lan0", "wan0")
  std::string wan;          // the WAN port the flow uses
  std::string subscriber;   // the subscriber's name
  std::string traffic_class;  // "interactive", "normal", "bulk", "p2p"
  std::string application;  // P2P protocol ("bittorrent"), empty when none was recognised
};

// A NAT event (RFC 8158): a session created or deleted, or a refusal.
struct NatEventReport {
  uint64_t at_ms = 0;  // wall-clock milliseconds since the UNIX epoch
  NatEventType event = NatEventType::kSessionCreate;
  NatQuotaEvent quota_event = NatQuotaEvent::kNone;
  // Session events: the session's original and translated keys. Refusals: `original` is the
  // flow that was refused and `translated` is zero but for the WAN address in `translated.src`.
  FlowKey original, translated;
  uint32_t limit = 0;  // with kQuotaExceeded: the limit that was reached (sessions)
};

}  // namespace fairgate
