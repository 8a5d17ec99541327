// What the `flows` snapshot and `flow-watch` streams show: which flows (FlowFilter) and which
// fields of each (FlowFieldSelection). The criteria are in the BasicMeter analyzer protocol's
// vocabulary (source and destination address with mask; ports and protocol as values, ranges
// and lists) plus fairgate's own subscriber, WAN and class. Both are parsed from a command's
// arguments; every refusal is a FieldError naming the member and the reason
// ("args.dport: range \"8100-8000\" runs backwards: ...").
#pragma once

#include "config/json_path.h"
#include "flow/flow_exporter.h"  // flow_end_reason_name
#include "flow/flow_report.h"

#include <nlohmann/json.hpp>

#include <array>
#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fairgate {

// The argument members a FlowFilter reads. A command adds its own ("fields", ...) and rejects
// the rest: parse() does not, so that it can share the args object with the command.
inline constexpr std::array<std::string_view, 8> kFlowFilterKeys{
    "src", "dst", "sport", "dport", "proto", "subscriber", "wan", "class"};

// Criteria a flow must all meet (AND); a criterion given as a list is met by any of its
// elements (OR); an absent criterion is met by every flow.
//   src, dst       an address or prefix, "10.0.1.0/24" or "10.0.1.0/255.255.255.0" (the mask
//                  must be contiguous), or an array of them. Host bits are accepted and
//                  cleared, as in subscribers and WAN policies: "10.0.1.7/24" is 10.0.1.0/24.
//   sport, dport   a port, a range "8000-8100", a list "80,443,8000-8100", a JSON number, or
//                  an array of those. ICMP echo: the identifier, as the record shows it.
//   proto          as the ports, in 0..255, and the names tcp, udp, icmp ("tcp,udp").
//   subscriber     a subscriber's name or an array of names.
//   wan            a WAN port's name or an array of names.
//   class          interactive, normal, bulk or p2p, or an array of them.
// Addresses, ports and protocol are those the initiator sent (FlowReport::original), before NAT.
// Names match exactly; whether a subscriber or WAN port of that name exists is the command's
// to check, the filter does not know the configuration.
class FlowFilter {
 public:
  // From the command's args object; members other than kFlowFilterKeys are left alone.
  static FlowFilter parse(const JsonField& args);

  bool matches(const FlowReport& report) const;

  // The filter as understood, for the operator to check: each given criterion as an array of
  // its alternatives in canonical form (prefixes as networks, port and protocol ranges sorted
  // and merged, protocols by name where they have one), which parse() accepts again. No
  // criteria: {}.
  nlohmann::ordered_json to_json() const;

 private:
  struct AddressMask {
    uint32_t network = 0;
    uint32_t mask = 0;
  };
  struct PortRange {
    uint16_t first = 0, last = 0;
  };

  // In the forms matches() tests without converting anything, as it runs once per flow on
  // every stream. Empty (or no proto_): not given.
  std::vector<AddressMask> src_, dst_;
  std::vector<PortRange> sport_, dport_;  // sorted, merged: neither overlapping nor adjacent
  std::optional<std::bitset<256>> proto_;
  std::vector<std::string> subscribers_, wans_, classes_;
};

// The fields of a flow's record, in the order render() writes them; the names "fields" takes.
inline constexpr std::array<std::string_view, 26> kFlowFieldNames{
    "event",
    "src", "sport", "dst", "dport", "proto",
    "nat_src", "nat_sport", "nat_dst", "nat_dport",
    "subscriber", "wan", "in", "out", "class", "application",
    "first_ms", "last_ms", "duration_ms",
    "packets", "bytes", "reply_packets", "reply_bytes",
    "tcp_flags", "reply_tcp_flags",
    "end_reason"};

// Which fields a flow's record shows: the "fields" argument, a comma-separated string
// ("src,dst,bytes") or an array of names, else all of them. "event" is always shown, named or
// not, so that a stream reader can tell a flow's start from its end. The record keeps
// kFlowFieldNames' order whatever the order given.
class FlowFieldSelection {
 public:
  // From the command's args object (its "fields" member; others are left alone).
  static FlowFieldSelection parse(const JsonField& args);

  // The flow's record, the selected members of:
  //   event                           `event` as given ("start", "update", "end", "active")
  //   src sport dst dport proto       FlowReport::original (addresses dotted, proto a number)
  //   nat_src nat_sport nat_dst nat_dport                       FlowReport::translated
  //   subscriber wan in out class application
  //                                   names, "" when unknown; in and out: the ports the
  //                                   original direction arrived and left by
  //   first_ms last_ms duration_ms    wall-clock ms since the UNIX epoch; last - first
  //   packets bytes reply_packets reply_bytes                   each direction
  //   tcp_flags reply_tcp_flags       tcp_flags_text() of each direction
  //   end_reason                      flow_end_reason_name()
  nlohmann::ordered_json render(const FlowReport& report, std::string_view event) const;

  // The selected names in record order, to echo to the operator.
  nlohmann::ordered_json to_json() const;

 private:
  std::bitset<kFlowFieldNames.size()> selected_;
};


// A TCP flag byte as nfdump writes it: the letters CEUAPRSF (CWR, ECE, URG, ACK, PSH, RST,
// SYN, FIN, high bit first), each in its place when set, '.' when not: SYN+ACK "...A..S.".
std::string tcp_flags_text(uint8_t flags);

}  // namespace fairgate
