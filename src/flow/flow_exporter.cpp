#include "flow/flow_exporter.h"

#include <algorithm>
#include <array>
#include <span>
#include <stdexcept>
#include <string>

namespace fairgate {
namespace {

// IANA IPFIX information element ids; NetFlow v9 field types are the same numbers.
enum class Ie : uint16_t {
  kOctetDeltaCount = 1,
  kPacketDeltaCount = 2,
  kProtocolIdentifier = 4,
  kTcpControlBits = 6,
  kSourceTransportPort = 7,
  kSourceIpv4Address = 8,
  kIngressInterface = 10,
  kDestinationTransportPort = 11,
  kDestinationIpv4Address = 12,
  kEgressInterface = 14,
  kFlowEndSysUpTime = 21,    // NetFlow v9 LAST_SWITCHED
  kFlowStartSysUpTime = 22,  // NetFlow v9 FIRST_SWITCHED
  kApplicationName = 96,
  kClassName = 100,
  kFlowEndReason = 136,
  kFlowStartMilliseconds = 152,
  kFlowEndMilliseconds = 153,
  kPostNatSourceIpv4Address = 225,
  kPostNatDestinationIpv4Address = 226,
  kPostNaptSourceTransportPort = 227,
  kPostNaptDestinationTransportPort = 228,
  kNatEvent = 230,
  kBiflowDirection = 239,
  kObservationTimeMilliseconds = 323,
  kNatQuotaExceededEvent = 466,
  kMaxSessionEntries = 471,
  kMaxEntriesPerUser = 473,
};

// A template's field specifier: which element, how many bytes.
struct Field {
  Ie ie;
  uint16_t bytes;
};

// The templates, in record order; the header file lists them with their values. The encoders
// walk these same tables, so a record always matches the template it is sent under.
constexpr std::array<Field, 20> kIpfixFlowFields = {{
    {Ie::kFlowStartMilliseconds, 8},
    {Ie::kFlowEndMilliseconds, 8},
    {Ie::kSourceIpv4Address, 4},
    {Ie::kDestinationIpv4Address, 4},
    {Ie::kSourceTransportPort, 2},
    {Ie::kDestinationTransportPort, 2},
    {Ie::kProtocolIdentifier, 1},
    {Ie::kPostNatSourceIpv4Address, 4},
    {Ie::kPostNatDestinationIpv4Address, 4},
    {Ie::kPostNaptSourceTransportPort, 2},
    {Ie::kPostNaptDestinationTransportPort, 2},
    {Ie::kOctetDeltaCount, 8},
    {Ie::kPacketDeltaCount, 8},
    {Ie::kTcpControlBits, 2},
    {Ie::kIngressInterface, 4},
    {Ie::kEgressInterface, 4},
    {Ie::kFlowEndReason, 1},
    {Ie::kBiflowDirection, 1},
    {Ie::kClassName, 16},
    {Ie::kApplicationName, 16},
}};
// NetFlow v9 has no absolute timestamps in its base field set: times are uptime milliseconds,
// which every v9 collector reads; and TCP flags are one byte.
constexpr std::array<Field, 20> kNetflowV9FlowFields = {{
    {Ie::kFlowStartSysUpTime, 4},
    {Ie::kFlowEndSysUpTime, 4},
    {Ie::kSourceIpv4Address, 4},
    {Ie::kDestinationIpv4Address, 4},
    {Ie::kSourceTransportPort, 2},
    {Ie::kDestinationTransportPort, 2},
    {Ie::kProtocolIdentifier, 1},
    {Ie::kPostNatSourceIpv4Address, 4},
    {Ie::kPostNatDestinationIpv4Address, 4},
    {Ie::kPostNaptSourceTransportPort, 2},
    {Ie::kPostNaptDestinationTransportPort, 2},
    {Ie::kOctetDeltaCount, 8},
    {Ie::kPacketDeltaCount, 8},
    {Ie::kTcpControlBits, 1},
    {Ie::kIngressInterface, 4},
    {Ie::kEgressInterface, 4},
    {Ie::kFlowEndReason, 1},
    {Ie::kBiflowDirection, 1},
    {Ie::kClassName, 16},
    {Ie::kApplicationName, 16},
}};
constexpr std::array<Field, 14> kNatEventFields = {{
    {Ie::kObservationTimeMilliseconds, 8},
    {Ie::kNatEvent, 1},
    {Ie::kNatQuotaExceededEvent, 4},
    {Ie::kMaxSessionEntries, 4},
    {Ie::kMaxEntriesPerUser, 4},
    {Ie::kSourceIpv4Address, 4},
    {Ie::kDestinationIpv4Address, 4},
    {Ie::kSourceTransportPort, 2},
    {Ie::kDestinationTransportPort, 2},
    {Ie::kProtocolIdentifier, 1},
    {Ie::kPostNatSourceIpv4Address, 4},
    {Ie::kPostNatDestinationIpv4Address, 4},
    {Ie::kPostNaptSourceTransportPort, 2},
    {Ie::kPostNaptDestinationTransportPort, 2},
}};

constexpr std::size_t record_bytes(std::span<const Field> fields) {
  std::size_t bytes = 0;
  for (const Field& field : fields) bytes += field.bytes;
  return bytes;
}
constexpr std::size_t template_record_bytes(std::span<const Field> fields) { return 4 + 4 * fields.size(); }

constexpr uint16_t kIpfixVersion = 10, kNetflowV9Version = 9;
constexpr std::size_t kIpfixHeaderBytes = 16, kNetflowV9HeaderBytes = 20;
constexpr uint16_t kIpfixTemplateSetId = 2, kNetflowV9TemplateFlowsetId = 0;
constexpr std::size_t kSetHeaderBytes = 4;  // set (flowset) id, length
constexpr uint32_t kMaxUdpPayloadBytes = 65507;
constexpr uint8_t kBiflowInitiator = 1, kBiflowReverseInitiator = 2;  // RFC 5103 biflowDirection

constexpr std::size_t round_up4(std::size_t bytes) { return (bytes + 3) & ~std::size_t{3}; }

// What FlowExporter::kMinMessageBytes must cover: header, template set, and a set of one record
// of each kind (NetFlow v9 sets padded).
constexpr std::size_t kTemplateSetBytes =
    kSetHeaderBytes + template_record_bytes(kIpfixFlowFields) + template_record_bytes(kNatEventFields);
static_assert(template_record_bytes(kIpfixFlowFields) == template_record_bytes(kNetflowV9FlowFields));
static_assert(kTemplateSetBytes % 4 == 0, "NetFlow v9 would pad the template flowset");
constexpr std::size_t kIpfixMinBytes = kIpfixHeaderBytes + kTemplateSetBytes + kSetHeaderBytes +
                                       record_bytes(kIpfixFlowFields) + kSetHeaderBytes +
                                       record_bytes(kNatEventFields);
constexpr std::size_t kNetflowV9MinBytes = kNetflowV9HeaderBytes + round_up4(kTemplateSetBytes) +
                                           round_up4(kSetHeaderBytes + record_bytes(kNetflowV9FlowFields)) +
                                           round_up4(kSetHeaderBytes + record_bytes(kNatEventFields));
static_assert(FlowExporter::kMinMessageBytes == std::max(kIpfixMinBytes, kNetflowV9MinBytes));

void put16(std::vector<uint8_t>& bytes, uint16_t value) {
  bytes.push_back(static_cast<uint8_t>(value >> 8));
  bytes.push_back(static_cast<uint8_t>(value));
}
// `value`'s low `bytes` bytes, network order.
void put_uint(std::vector<uint8_t>& out, uint64_t value, uint16_t bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(value >> shift));
}
// A fixed-length string field: `name` zero padded, or cut to `bytes` without splitting a UTF-8
// character (a collector would show a broken one as garbage).
void put_name(std::vector<uint8_t>& out, std::string_view name, uint16_t bytes) {
  std::size_t length = std::min<std::size_t>(name.size(), bytes);
  if (length < name.size()) {
    // name[length] is the first byte left out: when it continues a character, that character
    // started inside the field; leave it all out.
    while (length > 0 && (static_cast<uint8_t>(name[length]) & 0xC0) == 0x80) --length;
  }
  out.insert(out.end(), name.begin(), name.begin() + static_cast<std::ptrdiff_t>(length));
  out.insert(out.end(), bytes - length, 0);
}
void patch16(std::vector<uint8_t>& bytes, std::size_t at, std::size_t value) {
  bytes[at] = static_cast<uint8_t>(value >> 8);
  bytes[at + 1] = static_cast<uint8_t>(value);
}
void patch32(std::vector<uint8_t>& bytes, std::size_t at, uint32_t value) {
  patch16(bytes, at, value >> 16);
  patch16(bytes, at + 2, value & 0xFFFF);
}

// One direction of a FlowReport as its record states it.
struct Direction {
  FlowKey pre_nat, post_nat;
  uint64_t packets, bytes;
  uint8_t tcp_flags;
  uint16_t ingress_port, egress_port;
  uint8_t biflow_direction;
};

// What an interface field carries for a port index: 0 is IPFIX's "unknown".
uint32_t interface_index(uint16_t port) { return port == kFlowPortUnknown ? 0 : uint32_t{port} + 1; }

// The direction's value of a numeric field of the flow templates. `uptime` turns a wall-clock
// time into NetFlow v9 sysUptime milliseconds.
template <typename Uptime>
uint64_t flow_value(Ie ie, const FlowReport& report, const Direction& d, Uptime uptime) {
  switch (ie) {
    case Ie::kFlowStartMilliseconds: return report.first_ms;
    case Ie::kFlowEndMilliseconds: return report.last_ms;
    case Ie::kFlowStartSysUpTime: return uptime(report.first_ms);
    case Ie::kFlowEndSysUpTime: return uptime(report.last_ms);
    case Ie::kSourceIpv4Address: return d.pre_nat.src;
    case Ie::kDestinationIpv4Address: return d.pre_nat.dst;
    case Ie::kSourceTransportPort: return d.pre_nat.sport;
    case Ie::kDestinationTransportPort: return d.pre_nat.dport;
    case Ie::kProtocolIdentifier: return d.pre_nat.proto;
    case Ie::kPostNatSourceIpv4Address: return d.post_nat.src;
    case Ie::kPostNatDestinationIpv4Address: return d.post_nat.dst;
    case Ie::kPostNaptSourceTransportPort: return d.post_nat.sport;
    case Ie::kPostNaptDestinationTransportPort: return d.post_nat.dport;
    case Ie::kOctetDeltaCount: return d.bytes;
    case Ie::kPacketDeltaCount: return d.packets;
    case Ie::kTcpControlBits: return d.tcp_flags;
    case Ie::kIngressInterface: return interface_index(d.ingress_port);
    case Ie::kEgressInterface: return interface_index(d.egress_port);
    case Ie::kFlowEndReason: return static_cast<uint8_t>(report.end_reason);
    case Ie::kBiflowDirection: return d.biflow_direction;
    default: break;
  }
  throw std::logic_error("flow template field " + std::to_string(static_cast<int>(ie)) + " has no value");
}

uint64_t nat_event_value(Ie ie, const NatEventReport& event) {
  const bool quota = event.event == NatEventType::kQuotaExceeded;
  switch (ie) {
    case Ie::kObservationTimeMilliseconds: return event.at_ms;
    case Ie::kNatEvent: return static_cast<uint8_t>(event.event);
    case Ie::kNatQuotaExceededEvent: return quota ? static_cast<uint8_t>(event.quota_event) : 0;
    case Ie::kMaxSessionEntries: return quota && event.quota_event == NatQuotaEvent::kMaxSessionEntries ? event.limit : 0;
    case Ie::kMaxEntriesPerUser: return quota && event.quota_event == NatQuotaEvent::kMaxEntriesPerUser ? event.limit : 0;
    case Ie::kSourceIpv4Address: return event.original.src;
    case Ie::kDestinationIpv4Address: return event.original.dst;
    case Ie::kSourceTransportPort: return event.original.sport;
    case Ie::kDestinationTransportPort: return event.original.dport;
    case Ie::kProtocolIdentifier: return event.original.proto;
    case Ie::kPostNatSourceIpv4Address: return event.translated.src;
    case Ie::kPostNatDestinationIpv4Address: return event.translated.dst;
    case Ie::kPostNaptSourceTransportPort: return event.translated.sport;
    case Ie::kPostNaptDestinationTransportPort: return event.translated.dport;
    default: break;
  }
  throw std::logic_error("NAT event template field " + std::to_string(static_cast<int>(ie)) + " has no value");
}

void put_template(std::vector<uint8_t>& out, uint16_t template_id, std::span<const Field> fields) {
  put16(out, template_id);
  put16(out, static_cast<uint16_t>(fields.size()));
  for (const Field& field : fields) {
    put16(out, static_cast<uint16_t>(field.ie));
    put16(out, field.bytes);
  }
}

}  // namespace

FlowExporter::FlowExporter(const ExporterConfig& config, uint64_t boot_ms)
    : config_(config),
      boot_ms_(boot_ms),
      flow_record_bytes_(record_bytes(config.format == ExportFormat::kIpfix ? std::span<const Field>(kIpfixFlowFields)
                                                                            : std::span<const Field>(kNetflowV9FlowFields))),
      nat_record_bytes_(record_bytes(kNatEventFields)),
      sequence_(config.first_sequence) {
  if (config.template_refresh_ms == 0) throw std::invalid_argument("template_refresh_ms must be at least 1");
  if (config.template_refresh_messages == 0) throw std::invalid_argument("template_refresh_messages must be at least 1");
  if (config.max_message_bytes < kMinMessageBytes || config.max_message_bytes > kMaxUdpPayloadBytes)
    throw std::invalid_argument("max_message_bytes " + std::to_string(config.max_message_bytes) + " is not within " +
                                std::to_string(kMinMessageBytes) + ".." + std::to_string(kMaxUdpPayloadBytes));
}

void FlowExporter::add_flow(const FlowReport& report) {
  const bool ipfix = config_.format == ExportFormat::kIpfix;
  const std::span<const Field> fields = ipfix ? std::span<const Field>(kIpfixFlowFields)
                                              : std::span<const Field>(kNetflowV9FlowFields);
  auto uptime = [this](uint64_t ms) { return static_cast<uint32_t>(ms - boot_ms_); };  // modulo 2^32
  const Direction directions[2] = {
      {report.original, report.translated, report.packets[0], report.bytes[0], report.tcp_flags[0],
       report.ingress_port, report.egress_port, kBiflowInitiator},
      {report.translated.reversed(), report.original.reversed(), report.packets[1], report.bytes[1],
       report.tcp_flags[1], report.egress_port, report.ingress_port, kBiflowReverseInitiator},
  };
  for (const Direction& d : directions) {
    if (d.packets == 0) continue;
    for (const Field& field : fields) {
      if (field.ie == Ie::kClassName) {
        put_name(flows_, report.traffic_class, field.bytes);
      } else if (field.ie == Ie::kApplicationName) {
        put_name(flows_, report.application, field.bytes);
      } else {
        put_uint(flows_, flow_value(field.ie, report, d, uptime), field.bytes);
      }
    }
  }
}

void FlowExporter::add_nat_event(const NatEventReport& event) {
  for (const Field& field : kNatEventFields) put_uint(nat_events_, nat_event_value(field.ie, event), field.bytes);
}

std::size_t FlowExporter::records_queued() const {
  return flows_.size() / flow_record_bytes_ + nat_events_.size() / nat_record_bytes_;
}

bool FlowExporter::templates_due(uint64_t now_ms) const {
  if (!templates_sent_) return true;
  // A clock stepped back makes the difference wrap to a huge one: resend rather than wait.
  return now_ms - templates_sent_ms_ >= config_.template_refresh_ms ||
         messages_since_templates_ >= config_.template_refresh_messages;
}

std::vector<std::vector<uint8_t>> FlowExporter::take_messages(uint64_t now_ms) {
  std::vector<std::vector<uint8_t>> messages;
  Cursor cursor;
  for (;;) {
    const bool templates = templates_due(now_ms);
    const bool records_left = cursor.flow_bytes < flows_.size() || cursor.nat_event_bytes < nat_events_.size();
    // Templates alone only from an idle exporter: after the last record they wait for the next.
    if (!records_left && !(templates && messages.empty())) break;
    messages.push_back(next_message(now_ms, templates, cursor));
  }
  flows_.clear();
  nat_events_.clear();
  return messages;
}

// Appends to `message` a data set of template `template_id` holding as many of the records
// queued in `queue` (`record_bytes` each) from `*taken` on as fit, and moves *taken past them.
// Returns how many; with none, appends nothing.
std::size_t FlowExporter::put_data_set(std::vector<uint8_t>& message, uint16_t template_id,
                                       const std::vector<uint8_t>& queue, std::size_t record_bytes,
                                       std::size_t* taken) const {
  const bool pad = config_.format == ExportFormat::kNetflowV9;
  const std::size_t room = config_.max_message_bytes - message.size();
  if (room < kSetHeaderBytes) return 0;
  std::size_t count = std::min((queue.size() - *taken) / record_bytes, (room - kSetHeaderBytes) / record_bytes);
  auto set_bytes = [&](std::size_t records) {
    std::size_t bytes = kSetHeaderBytes + records * record_bytes;
    return pad ? round_up4(bytes) : bytes;
  };
  while (count > 0 && set_bytes(count) > room) --count;  // the padding did not fit
  if (count == 0) return 0;

  put16(message, template_id);
  put16(message, static_cast<uint16_t>(set_bytes(count)));
  const auto first = queue.begin() + static_cast<std::ptrdiff_t>(*taken);
  message.insert(message.end(), first, first + static_cast<std::ptrdiff_t>(count * record_bytes));
  message.resize(message.size() + set_bytes(count) - kSetHeaderBytes - count * record_bytes, 0);
  *taken += count * record_bytes;
  return count;
}

std::vector<uint8_t> FlowExporter::next_message(uint64_t now_ms, bool with_templates, Cursor& cursor) {
  const bool ipfix = config_.format == ExportFormat::kIpfix;
  std::vector<uint8_t> message(ipfix ? kIpfixHeaderBytes : kNetflowV9HeaderBytes);  // written last
  message.reserve(config_.max_message_bytes);

  std::size_t template_records = 0;
  if (with_templates) {
    put16(message, ipfix ? kIpfixTemplateSetId : kNetflowV9TemplateFlowsetId);
    put16(message, static_cast<uint16_t>(kTemplateSetBytes));
    put_template(message, kFlowTemplateId,
                 ipfix ? std::span<const Field>(kIpfixFlowFields) : std::span<const Field>(kNetflowV9FlowFields));
    put_template(message, kNatEventTemplateId, kNatEventFields);
    template_records = 2;
  }
  std::size_t records = put_data_set(message, kFlowTemplateId, flows_, flow_record_bytes_, &cursor.flow_bytes);
  records += put_data_set(message, kNatEventTemplateId, nat_events_, nat_record_bytes_, &cursor.nat_event_bytes);

  const auto unix_secs = static_cast<uint32_t>(now_ms / 1000);
  if (ipfix) {
    patch16(message, 0, kIpfixVersion);
    patch16(message, 2, message.size());
    patch32(message, 4, unix_secs);
    patch32(message, 8, sequence_);
    patch32(message, 12, config_.observation_domain);
    sequence_ += static_cast<uint32_t>(records);  // modulo 2^32
  } else {
    patch16(message, 0, kNetflowV9Version);
    patch16(message, 2, template_records + records);
    // sysUptime at the start of the second UNIX secs names: a collector takes the boot time to
    // be UNIX secs * 1000 - sysUptime, and with the current millisecond here instead it would
    // place every record up to 999 ms early.
    patch32(message, 4, static_cast<uint32_t>(now_ms / 1000 * 1000 - boot_ms_));  // modulo 2^32
    patch32(message, 8, unix_secs);
    patch32(message, 12, sequence_);
    patch32(message, 16, config_.observation_domain);
    ++sequence_;  // modulo 2^32
  }

  if (with_templates) {
    templates_sent_ = true;
    templates_sent_ms_ = now_ms;
    messages_since_templates_ = 0;
    ++templates_exported_;
  }
  ++messages_since_templates_;
  records_exported_ += records;
  ++messages_exported_;
  return message;
}

std::string_view flow_end_reason_name(FlowEndReason reason) {
  switch (reason) {
    case FlowEndReason::kActive: return "active";
    case FlowEndReason::kIdleTimeout: return "idle-timeout";
    case FlowEndReason::kActiveTimeout: return "active-timeout";
    case FlowEndReason::kEndOfFlow: return "end-of-flow";
    case FlowEndReason::kForcedEnd: return "forced-end";
    case FlowEndReason::kLackOfResources: return "lack-of-resources";
  }
  return "unknown";
}

std::string_view nat_event_name(NatEventType event) {
  switch (event) {
    case NatEventType::kAddressesExhausted: return "addresses-exhausted";
    case NatEventType::kSessionCreate: return "session-create";
    case NatEventType::kSessionDelete: return "session-delete";
    case NatEventType::kPortsExhausted: return "ports-exhausted";
    case NatEventType::kQuotaExceeded: return "quota-exceeded";
  }
  return "unknown";
}

}  // namespace fairgate
