// The flow filter and field selection of the `flows` and `flow-watch` commands: every refusal
// naming the member and the reason, which flows each kind of criterion admits, the filter
// echoed as understood, and the records the selection renders.
#include "flow/flow_filter.h"

#include "config/json_path.h"
#include "core/ipv4.h"
#include "flow/flow_report.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace fairgate {
namespace {

using nlohmann::json;
using Ordered = nlohmann::ordered_json;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

FlowFilter filter_of(const std::string& args_text) {
  json args = json::parse(args_text);
  return FlowFilter::parse(JsonField(args, "args"));
}

FlowFieldSelection selection_of(const std::string& args_text) {
  json args = json::parse(args_text);
  return FlowFieldSelection::parse(JsonField(args, "args"));
}

struct RefusalCase {
  std::string args;      // the command's args, JSON
  std::string field;     // the member the error names
  std::string fragment;  // part of the reason
};

// Asserts that `parse` refuses each case naming its field, with its fragment in the reason.
template <typename Parse>
void expect_refused(const std::vector<RefusalCase>& cases, Parse parse) {
  for (const auto& c : cases) {
    try {
      parse(c.args);
      ADD_FAILURE() << "accepted: " << c.args;
    } catch (const FieldError& error) {
      std::string message = error.what();
      EXPECT_EQ(error.field(), c.field) << c.args << " -> " << message;
      EXPECT_EQ(message.rfind(c.field + ": ", 0), 0u) << "the message starts with the field: " << message;
      EXPECT_TRUE(contains(message, c.fragment)) << c.args << ": expected \"" << c.fragment << "\" in: " << message;
    }
  }
}

// ---- refusals -------------------------------------------------------------------------------

TEST(FlowFilter, EveryBadCriterionIsRefusedNamingTheMemberAndTheReason) {
  expect_refused(
      {
          // addresses
          {R"({"src": "10.0.1.300"})", "args.src", R"("10.0.1.300" is not an IPv4 address)"},
          {R"({"src": "10.0.1.300/24"})", "args.src", R"("10.0.1.300/24": "10.0.1.300" is not an IPv4 address)"},
          {R"({"src": ""})", "args.src", R"("" is not an IPv4 address)"},
          {R"({"src": "host.example"})", "args.src", "is not an IPv4 address"},
          {R"({"src": "010.0.1.0/24"})", "args.src", "is not an IPv4 address"},
          {R"({"src": "10.0.1.0/33"})", "args.src", R"("10.0.1.0/33": the prefix length must be 0 to 32)"},
          {R"({"src": "10.0.1.0/"})", "args.src", "the prefix length must be 0 to 32"},
          {R"({"src": "10.0.1.0/x"})", "args.src", "the prefix length must be 0 to 32"},
          {R"({"src": "10.0.1.0/-1"})", "args.src", "the prefix length must be 0 to 32"},
          {R"({"dst": "10.0.1.0/255.0.255.0"})", "args.dst", "mask 255.0.255.0 is not contiguous"},
          {R"({"dst": "10.0.1.0/0.0.0.255"})", "args.dst", "mask 0.0.0.255 is not contiguous"},
          {R"({"dst": "10.0.1.0/255.255.256.0"})", "args.dst", R"("255.255.256.0" is not a dotted mask)"},
          {R"({"dst": "10.0.1.0/255.255.255"})", "args.dst", "is not a dotted mask"},
          {R"({"src": 167772160})", "args.src", "must be a string or an array of them, not number"},
          {R"({"src": {"address": "10.0.0.1"}})", "args.src", "must be a string or an array of them, not object"},
          {R"({"src": null})", "args.src", "not null"},
          {R"({"src": []})", "args.src", "empty list"},
          {R"({"src": ["10.0.0.0/8", 5]})", "args.src[1]", "must be a string, not number"},
          {R"({"src": [["10.0.0.0/8"]]})", "args.src[0]", "must be a string, not array"},
          {R"({"dst": ["10.0.0.0/8", "10.0.0.0/40"]})", "args.dst[1]", "the prefix length must be 0 to 32"},
          // ports
          {R"({"dport": 70000})", "args.dport", "70000 is out of range 0..65535"},
          {R"({"dport": -1})", "args.dport", "must be an integer between 0 and 65535"},
          {R"({"dport": 80.5})", "args.dport", "must be an integer between 0 and 65535"},
          {R"({"dport": "70000"})", "args.dport", "port 70000 is over 65535"},
          {R"({"dport": "99999999999999999999999"})", "args.dport", "is over 65535"},
          {R"({"dport": "1-70000"})", "args.dport", R"("1-70000": port 70000 is over 65535)"},
          {R"({"dport": "8100-8000"})", "args.dport", R"(range "8100-8000" runs backwards: 8100 is above 8000)"},
          {R"({"dport": "80,,443"})", "args.dport", R"("80,,443" has an empty item)"},
          {R"({"dport": "80,"})", "args.dport", "has an empty item"},
          {R"({"dport": ",80"})", "args.dport", "has an empty item"},
          {R"({"dport": ""})", "args.dport", "empty; give e.g. \"80,443,8000-8100\""},
          {R"({"dport": "http"})", "args.dport", R"("http" is not a port number (0-65535))"},
          {R"({"dport": "80-"})", "args.dport", R"("80-": "" is not a port number)"},
          {R"({"dport": "-80"})", "args.dport", R"("-80": "" is not a port number)"},
          {R"({"dport": "1-2-3"})", "args.dport", R"("1-2-3": "2-3" is not a port number)"},
          {R"({"dport": "+80"})", "args.dport", "is not a port number"},
          {R"({"dport": "80, 443"})", "args.dport", R"(" 443" is not a port number)"},
          {R"({"sport": "tcp"})", "args.sport", R"("tcp" is not a port number)"},
          {R"({"sport": true})", "args.sport", "must be a number, a string or an array of them, not boolean"},
          {R"({"sport": {"first": 1}})", "args.sport", "not object"},
          {R"({"sport": []})", "args.sport", "empty list"},
          {R"({"sport": [80, [443]]})", "args.sport[1]", "must be a number or a string, not array"},
          {R"({"sport": [80, "443,70000"]})", "args.sport[1]", "port 70000 is over 65535"},
          {R"({"sport": [80, 65536]})", "args.sport[1]", "65536 is out of range 0..65535"},
          // protocols
          {R"({"proto": 256})", "args.proto", "256 is out of range 0..255"},
          {R"({"proto": "256"})", "args.proto", "protocol 256 is over 255"},
          {R"({"proto": "6,17,300"})", "args.proto", "protocol 300 is over 255"},
          {R"({"proto": "gre"})", "args.proto", R"("gre" is not a protocol number (0-255) or name (tcp, udp, icmp))"},
          {R"({"proto": "TCP"})", "args.proto", R"("TCP" is not a protocol number)"},
          {R"({"proto": "17-6"})", "args.proto", "runs backwards"},
          {R"({"proto": "tcp,,udp"})", "args.proto", "has an empty item"},
          {R"({"proto": ""})", "args.proto", "empty"},
          {R"({"proto": ["tcp", false]})", "args.proto[1]", "must be a number or a string, not boolean"},
          // names
          {R"({"subscriber": ""})", "args.subscriber", "empty name"},
          {R"({"subscriber": 5})", "args.subscriber", "must be a string or an array of them, not number"},
          {R"({"subscriber": ["alice", ""]})", "args.subscriber[1]", "empty name"},
          {R"({"subscriber": []})", "args.subscriber", "empty list"},
          {R"({"wan": {"port": "wan0"}})", "args.wan", "not object"},
          {R"({"wan": ["wan0", 1]})", "args.wan[1]", "must be a string, not number"},
          {R"({"class": "vip"})", "args.class", R"("vip" is not a class: interactive, normal, bulk, p2p)"},
          {R"({"class": ["bulk", "Bulk"]})", "args.class[1]", R"("Bulk" is not a class)"},
          {R"({"class": []})", "args.class", "empty list"},
          {R"({"class": 2})", "args.class", "must be a string or an array of them, not number"},
          // the args themselves
          {R"(["src", "10.0.0.0/8"])", "args", "must be an object, not array"},
      },
      filter_of);
}

TEST(FlowFilter, MembersOtherThanTheFiltersAreLeftToTheCommand) {
  EXPECT_NO_THROW(filter_of(R"({"dport": 443, "fields": "src,dst", "page": 2})"));
  // The command rejects what neither the filter nor it knows.
  std::vector<std::string_view> known(kFlowFilterKeys.begin(), kFlowFilterKeys.end());
  known.push_back("fields");
  json good = json::parse(R"({"src": "10.0.0.0/8", "dport": 443, "class": "bulk", "fields": "src"})");
  EXPECT_NO_THROW(JsonField(good, "args").reject_unknown(known));
  json typo = json::parse(R"({"src": "10.0.0.0/8", "dest": "1.1.1.1"})");
  try {
    JsonField(typo, "args").reject_unknown(known);
    ADD_FAILURE() << "accepted dest";
  } catch (const FieldError& error) {
    EXPECT_EQ(std::string(error.what()), "args.dest: unknown field");
  }
}

// ---- matching -------------------------------------------------------------------------------

FlowReport report(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t proto,
                  const char* subscriber, const char* wan, const char* traffic_class) {
  FlowReport r;
  r.original.src = *parse_ipv4(src);
  r.original.sport = sport;
  r.original.dst = *parse_ipv4(dst);
  r.original.dport = dport;
  r.original.proto = proto;
  r.translated = r.original;
  r.subscriber = subscriber;
  r.wan = wan;
  r.traffic_class = traffic_class;
  return r;
}

// Five flows the cases below pick from, by letter.
std::map<char, FlowReport> sample_flows() {
  std::map<char, FlowReport> flows;
  flows['A'] = report("10.0.1.7", 40000, "93.184.216.34", 443, 6, "alice", "wan0", "normal");
  flows['A'].translated.src = *parse_ipv4("198.51.100.2");
  flows['A'].translated.sport = 61000;
  flows['B'] = report("10.0.2.9", 5353, "8.8.8.8", 53, 17, "bob", "wan1", "interactive");
  // ICMP echo: the identifier as the source port, 0 as the destination port.
  flows['C'] = report("10.0.1.8", 77, "1.1.1.1", 0, 1, "alice", "wan0", "interactive");
  // A port forward: the remote host sent to the WAN address; NAT sent it on to the server.
  flows['D'] = report("203.0.113.50", 51000, "198.51.100.2", 8080, 6, "alice", "wan0", "bulk");
  flows['D'].translated.dst = *parse_ipv4("10.0.1.20");
  flows['D'].translated.dport = 80;
  flows['E'] = report("10.0.3.3", 6881, "45.1.2.3", 6881, 17, "carol", "wan1", "p2p");
  flows['E'].application = "bittorrent";
  return flows;
}

TEST(FlowFilterMatch, EachCriterionAdmitsTheFlowsItNames) {
  struct Case {
    std::string filter;
    std::string admitted;  // the letters of the sample flows that match
  };
  const std::vector<Case> cases = {
      {R"({})", "ABCDE"},
      // addresses: prefix, dotted mask, host bits cleared, lists, the original direction only
      {R"({"src": "10.0.1.0/24"})", "AC"},
      {R"({"src": "10.0.1.0/255.255.255.0"})", "AC"},
      {R"({"src": "10.0.1.99/24"})", "AC"},
      {R"({"src": "10.0.1.7"})", "A"},
      {R"({"src": "10.0.1.7/32"})", "A"},
      {R"({"src": ["10.0.2.0/24", "10.0.3.0/24"]})", "BE"},
      {R"({"src": "0.0.0.0/0"})", "ABCDE"},
      {R"({"src": "10.0.0.0/0.0.0.0"})", "ABCDE"},
      {R"({"dst": "198.51.100.2"})", "D"},
      {R"({"dst": "10.0.1.20"})", ""},
      {R"({"src": "198.51.100.2"})", ""},
      // ports: values, ranges, lists, JSON numbers and arrays
      {R"({"dport": 443})", "A"},
      {R"({"dport": "443"})", "A"},
      {R"({"dport": "53,443"})", "AB"},
      {R"({"dport": "0-1023"})", "ABC"},
      {R"({"dport": "8000-8100"})", "D"},
      {R"({"dport": [53, "8000-8100"]})", "BD"},
      {R"({"dport": "80"})", ""},
      {R"({"sport": "40000-65535"})", "AD"},
      {R"({"sport": "77"})", "C"},
      {R"({"sport": "6881", "dport": 6881})", "E"},
      {R"({"sport": "1-100,5000-6000,40000"})", "ABC"},
      // protocols: numbers, names, ranges, lists
      {R"({"proto": "tcp"})", "AD"},
      {R"({"proto": 17})", "BE"},
      {R"({"proto": "icmp,udp"})", "BCE"},
      {R"({"proto": ["icmp", 6]})", "ACD"},
      {R"({"proto": "0-5"})", "C"},
      {R"({"proto": "0-255"})", "ABCDE"},
      {R"({"proto": 47})", ""},
      // names
      {R"({"subscriber": "alice"})", "ACD"},
      {R"({"subscriber": ["bob", "carol"]})", "BE"},
      {R"({"subscriber": "dave"})", ""},
      {R"({"wan": "wan1"})", "BE"},
      {R"({"wan": ["wan0", "wan1"]})", "ABCDE"},
      {R"({"class": ["interactive", "p2p"]})", "BCE"},
      {R"({"class": "bulk"})", "D"},
      // all criteria must hold
      {R"({"proto": "tcp", "dport": 443})", "A"},
      {R"({"src": "10.0.0.0/8", "proto": "udp", "class": "p2p"})", "E"},
      {R"({"src": "10.0.1.0/24", "subscriber": "bob"})", ""},
      {R"({"subscriber": "alice", "wan": "wan0", "class": "interactive", "proto": 1})", "C"},
  };
  const auto flows = sample_flows();
  for (const auto& c : cases) {
    FlowFilter filter = filter_of(c.filter);
    std::string admitted;
    for (const auto& [letter, flow] : flows)
      if (filter.matches(flow)) admitted += letter;
    EXPECT_EQ(admitted, c.admitted) << c.filter;
  }
}

TEST(FlowFilterMatch, PortRangesAreInclusiveAtBothEnds) {
  FlowFilter filter = filter_of(R"({"dport": "0,1000-1002,65535"})");
  auto flow_to = [](uint16_t dport) { return report("10.0.0.1", 1, "10.0.0.2", dport, 6, "", "", ""); };
  for (uint16_t port : {0, 1000, 1001, 1002, 65535}) EXPECT_TRUE(filter.matches(flow_to(port))) << port;
  for (uint16_t port : {1, 999, 1003, 65534}) EXPECT_FALSE(filter.matches(flow_to(port))) << port;
}

// ---- the echo -------------------------------------------------------------------------------

TEST(FlowFilter, EchoesTheFilterAsUnderstood) {
  FlowFilter filter = filter_of(R"({
    "class": "bulk", "wan": ["wan0", "wan1"], "subscriber": "alice",
    "proto": "udp,tcp,50,51,icmp,6",
    "dport": "8000-8100,443,80,81,8101,8050", "sport": 0,
    "dst": ["1.1.1.1", "0.0.0.0/0"], "src": "10.0.1.99/255.255.255.0"})");
  // In kFlowFilterKeys' order; networks with their lengths; ranges sorted and merged;
  // protocols by name where they have one.
  EXPECT_EQ(filter.to_json().dump(),
            R"({"src":["10.0.1.0/24"],"dst":["1.1.1.1/32","0.0.0.0/0"],"sport":[0],"dport":["80-81",443,"8000-8101"],)"
            R"("proto":["icmp","tcp","udp","50-51"],"subscriber":["alice"],"wan":["wan0","wan1"],"class":["bulk"]})");
}

TEST(FlowFilter, EchoOfNoCriteriaIsEmpty) { EXPECT_EQ(filter_of("{}").to_json().dump(), "{}"); }

TEST(FlowFilter, EchoOfAllProtocolsIsOneRange) {
  EXPECT_EQ(filter_of(R"({"proto": "0-255"})").to_json().dump(), R"({"proto":["0-255"]})");
  EXPECT_EQ(filter_of(R"({"proto": "1-6"})").to_json().dump(), R"({"proto":["1-6"]})");
}

TEST(FlowFilter, EchoParsesBackToTheSameFilter) {
  Ordered echo = filter_of(R"({"src": ["10.0.1.7/24", "192.0.2.1"], "dport": "443,80-90,85-100",
                              "proto": "tcp,47", "class": ["p2p", "bulk"]})")
                     .to_json();
  EXPECT_EQ(filter_of(echo.dump()).to_json(), echo);
}

// ---- field selection ------------------------------------------------------------------------

FlowReport full_report() {
  FlowReport r = sample_flows()['A'];
  r.first_ms = 1700000000000;
  r.last_ms = 1700000004250;
  r.packets[0] = 12;
  r.packets[1] = 10;
  r.bytes[0] = 1500;
  r.bytes[1] = 9000;
  r.tcp_flags[0] = 0x1b;  // ACK PSH SYN FIN
  r.tcp_flags[1] = 0x12;  // SYN ACK
  r.ingress_name = "lan0";
  r.egress_name = "wan0";
  r.end_reason = FlowEndReason::kEndOfFlow;
  return r;
}

TEST(FlowFieldSelection, WithoutFieldsTheRecordHasEveryFieldInOrder) {
  Ordered record = selection_of("{}").render(full_report(), "end");
  EXPECT_EQ(record.dump(),
            R"({"event":"end","src":"10.0.1.7","sport":40000,"dst":"93.184.216.34","dport":443,"proto":6,)"
            R"("nat_src":"198.51.100.2","nat_sport":61000,"nat_dst":"93.184.216.34","nat_dport":443,)"
            R"("subscriber":"alice","wan":"wan0","in":"lan0","out":"wan0","class":"normal","application":"",)"
            R"("first_ms":1700000000000,"last_ms":1700000004250,"duration_ms":4250,)"
            R"("packets":12,"bytes":1500,"reply_packets":10,"reply_bytes":9000,)"
            R"("tcp_flags":"...AP.SF","reply_tcp_flags":"...A..S.","end_reason":"end-of-flow"})");
  std::vector<std::string_view> keys;
  for (const auto& item : record.items()) keys.push_back(item.key());
  EXPECT_EQ(keys, std::vector<std::string_view>(kFlowFieldNames.begin(), kFlowFieldNames.end()));
}

TEST(FlowFieldSelection, ChosenFieldsInRecordOrderAndEventAlways) {
  EXPECT_EQ(selection_of(R"({"fields": "bytes,dport,src"})").render(full_report(), "update").dump(),
            R"({"event":"update","src":"10.0.1.7","dport":443,"bytes":1500})");
  EXPECT_EQ(selection_of(R"({"fields": ["tcp_flags", "event"]})").render(full_report(), "start").dump(),
            R"({"event":"start","tcp_flags":"...AP.SF"})");
  EXPECT_EQ(selection_of(R"({"fields": ["nat_src,nat_sport", "end_reason", "nat_src"]})")
                .render(full_report(), "active")
                .dump(),
            R"({"event":"active","nat_src":"198.51.100.2","nat_sport":61000,"end_reason":"end-of-flow"})");
  EXPECT_EQ(selection_of(R"({"fields": "event"})").render(full_report(), "end").dump(), R"({"event":"end"})");
}

TEST(FlowFieldSelection, DurationIsZeroWhenTheClockSteppedBack) {
  FlowReport r = full_report();
  r.last_ms = r.first_ms - 1000;
  EXPECT_EQ(selection_of(R"({"fields": "duration_ms"})").render(r, "end")["duration_ms"], 0);
}

TEST(FlowFieldSelection, EchoesTheChosenNames) {
  EXPECT_EQ(selection_of(R"({"fields": "bytes,src"})").to_json().dump(), R"(["event","src","bytes"])");
  Ordered all = selection_of("{}").to_json();
  ASSERT_EQ(all.size(), kFlowFieldNames.size());
  for (std::size_t i = 0; i < kFlowFieldNames.size(); ++i) EXPECT_EQ(all[i], kFlowFieldNames[i]);
}

TEST(FlowFieldSelection, BadFieldsAreRefusedNamingTheMemberAndTheReason) {
  expect_refused(
      {
          {R"({"fields": ""})", "args.fields", "empty; give e.g. \"src,dst,bytes\""},
          {R"({"fields": "src,,dst"})", "args.fields", R"("src,,dst" has an empty item)"},
          {R"({"fields": "src,"})", "args.fields", "has an empty item"},
          {R"({"fields": "src,foo"})", "args.fields", R"("foo" is not a field; the fields: event, src, sport,)"},
          {R"({"fields": "src dst"})", "args.fields", R"("src dst" is not a field)"},
          {R"({"fields": "SRC"})", "args.fields", R"("SRC" is not a field)"},
          {R"({"fields": ["src", "Dst"]})", "args.fields[1]", R"("Dst" is not a field)"},
          {R"({"fields": ["src", ""]})", "args.fields[1]", "empty"},
          {R"({"fields": []})", "args.fields", "empty list"},
          {R"({"fields": 3})", "args.fields", "must be a string or an array of them, not number"},
          {R"({"fields": {"src": true}})", "args.fields", "not object"},
          {R"({"fields": ["src", ["dst"]]})", "args.fields[1]", "must be a string, not array"},
          {R"({"fields": null})", "args.fields", "not null"},
      },
      selection_of);
}

TEST(FlowFields, TcpFlagsInNfdumpNotation) {
  EXPECT_EQ(tcp_flags_text(0), "........");
  EXPECT_EQ(tcp_flags_text(0x02), "......S.");
  EXPECT_EQ(tcp_flags_text(0x12), "...A..S.");
  EXPECT_EQ(tcp_flags_text(0x11), "...A...F");
  EXPECT_EQ(tcp_flags_text(0x04), ".....R..");
  EXPECT_EQ(tcp_flags_text(0x18), "...AP...");
  EXPECT_EQ(tcp_flags_text(0xc0), "CE......");
  EXPECT_EQ(tcp_flags_text(0x20), "..U.....");
  EXPECT_EQ(tcp_flags_text(0xff), "CEUAPRSF");
}

}  // namespace
}  // namespace fairgate
