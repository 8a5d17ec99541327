// The NAT stage on synthetic frames, after the parse and guard stages as in a worker: tables of
// input packet -> expected output packet. The expected packets are built from scratch (every
// checksum computed in full by the builders), so comparing bytes also checks the stage's
// incremental checksum updates; checksums_valid() checks them once more on its own.
#include "stages/guard/guard_stage.h"
#include "stages/l3/l3_stage.h"
#include "stages/nat/nat_stage.h"
#include "stages/parse/parse_stage.h"
#include "test_env.h"

#include <rte_lcore.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace fairgate::test {
namespace {

constexpr uint16_t kLan = 0, kWan = 1;
constexpr uint8_t kSyn = 0x02, kPsh = 0x08, kAck = 0x10;  // TCP flags
constexpr uint8_t kEchoRequest = 8, kEchoReply = 0;
constexpr uint8_t kUnreachable = 3, kTimeExceeded = 11;

uint32_t remote() { return internet_host(); }        // 192.0.2.10
uint32_t remote2() { return ip("203.0.113.20"); }
uint32_t server() { return ip("10.10.0.13"); }      // the port-forward target
rte_ether_addr server_mac() { return host_mac(0x13); }

// ---- packets -------------------------------------------------------------------------------


Bytes mss_option(uint16_t mss) { return {2, 4, static_cast<uint8_t>(mss >> 8), static_cast<uint8_t>(mss)}; }

Bytes udp_without_checksum(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, const Bytes& payload) {
  Bytes out = udp(src, dst, sport, dport, payload);
  set16(out, 6, 0);
  return out;
}

Bytes from_lan(const Bytes& packet, const rte_ether_addr& mac = lan_host_mac()) {
  return ethernet(port_mac(kLan), mac, kEtherIpv4, packet);
}
Bytes from_wan(const Bytes& packet) { return ethernet(port_mac(kWan), wan_gw_mac(), kEtherIpv4, packet); }

Bytes head(const Bytes& data, std::size_t length) {
  return Bytes(data.begin(), data.begin() + static_cast<long>(std::min(length, data.size())));
}

std::size_t ihl_of(const Bytes& packet) { return (packet.at(0) & 0x0f) * 4u; }
uint16_t sport_of(const Bytes& packet) { return get16(packet, ihl_of(packet)); }
uint16_t dport_of(const Bytes& packet) { return get16(packet, ihl_of(packet) + 2); }
uint16_t echo_id_of(const Bytes& packet) { return get16(packet, ihl_of(packet) + 4); }
uint16_t tcp_mss_of(const Bytes& packet, std::size_t option_offset) { return get16(packet, ihl_of(packet) + option_offset + 2); }

// ---- checks --------------------------------------------------------------------------------

std::string hex16(uint16_t value) {
  char text[8];
  std::snprintf(text, sizeof text, "0x%04x", value);
  return text;
}

// Every checksum of an IPv4 packet recomputed in full: the header, TCP/UDP with the pseudo-
// header (a UDP checksum of 0 means none), ICMP over the message; inside an ICMP error the
// quoted header, and the quoted transport checksum when the quote holds the whole segment.
::testing::AssertionResult checksums_valid(const Bytes& packet, int depth = 0) {
  const char* what = depth > 0 ? "quoted " : "";
  if (packet.size() < 20) return ::testing::AssertionFailure() << what << "IPv4 header cut short";
  std::size_t ihl = ihl_of(packet);
  if (inet_checksum(packet.data(), ihl) != 0)
    return ::testing::AssertionFailure() << what << "IPv4 header checksum " << hex16(get16(packet, 10));
  std::size_t total = get16(packet, 2);
  bool complete = total <= packet.size();
  if (!complete && depth == 0) return ::testing::AssertionFailure() << "total length past the packet";
  if (get16(packet, 6) & 0x3fff) return ::testing::AssertionSuccess();  // a fragment
  Bytes l4(packet.begin() + static_cast<long>(ihl), packet.begin() + static_cast<long>(std::min(total, packet.size())));
  uint32_t src = get32(packet, 12), dst = get32(packet, 16);
  switch (packet[9]) {
    case kProtoTcp:
    case kProtoUdp: {
      bool is_udp = packet[9] == kProtoUdp;
      if (!complete || (is_udp && l4.size() >= 8 && get16(l4, 6) == 0)) return ::testing::AssertionSuccess();
      if (transport_checksum(src, dst, packet[9], l4) != 0)
        return ::testing::AssertionFailure() << what << (is_udp ? "UDP" : "TCP") << " checksum "
                                             << hex16(get16(l4, is_udp ? 6 : 16));
      return ::testing::AssertionSuccess();
    }
    case kProtoIcmp: {
      if (complete && inet_checksum(l4) != 0)
        return ::testing::AssertionFailure() << what << "ICMP checksum " << hex16(get16(l4, 2));
      uint8_t type = l4.at(0);
      if (depth == 0 && (type == 3 || type == 11 || type == 12) && l4.size() >= 8 + 20)
        return checksums_valid(Bytes(l4.begin() + 8, l4.end()), depth + 1);
      return ::testing::AssertionSuccess();
    }
    default:
      return ::testing::AssertionSuccess();
  }
}

std::string hex_window(const Bytes& data, std::size_t from) {
  std::ostringstream out;
  for (std::size_t i = from; i < data.size() && i < from + 8; ++i) {
    char byte[4];
    std::snprintf(byte, sizeof byte, "%02x ", data[i]);
    out << byte;
  }
  return out.str();
}

::testing::AssertionResult same_bytes(const Bytes& got, const Bytes& want) {
  if (got == want) return ::testing::AssertionSuccess();
  std::size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return ::testing::AssertionFailure() << "IPv4 packets differ from byte " << i << " (got " << got.size()
                                       << " bytes, want " << want.size() << "): got " << hex_window(got, i)
                                       << "want " << hex_window(want, i);
}

// ---- the stages ----------------------------------------------------------------------------

struct NatSetup {
  std::string nat = "{}";     // the config's "nat" section
  uint16_t worker = 0, workers = 1;
  int wan_mtu = 1500;
  uint32_t capacity = 4096;   // sessions in this worker's table
};

std::string config_text(const NatSetup& setup) {
  nlohmann::json c = nlohmann::json::parse(kTwoPortConfig);
  c["ports"][1]["mtu"] = setup.wan_mtu;
  c["nat"] = nlohmann::json::parse(setup.nat);
  return c.dump();
}

// parse, guard and nat over one port table, with this worker's session table; port forwards
// reserved in it as a worker does.
class NatFixture : public PoolCheckedTest {
 protected:
  explicit NatFixture(const NatSetup& setup = {})
      : config(parse_config(config_text(setup))),
        ports(make_port_table(config)),
        sessions(config.nat, setup.capacity, setup.worker, setup.workers, rte_socket_id(),
                 static_cast<uint8_t>(ports.ports.size())),
        guard(ports, config.lan_prefixes()),
        nat(config, ports, sessions, counters, setup.worker, setup.workers) {
    for (const auto& rule : config.nat.port_forwards)
      for (uint32_t port = rule.external_first; port <= rule.external_last; ++port) {
        if (rule.tcp) sessions.reserve_port(kProtoTcp, kWan, static_cast<uint16_t>(port), true);
        if (rule.udp) sessions.reserve_port(kProtoUdp, kWan, static_cast<uint16_t>(port), true);
      }
  }
  ~NatFixture() override { release(); }

  // Frees what the burst still owns: not the packets a stage took (kSent).
  void release() {
    for (uint16_t i = 0; i < burst.count; ++i)
      if (burst.action[i] != Action::kSent) rte_pktmbuf_free(burst.pkts[i]);
    burst.count = 0;
  }

  Burst& run(uint16_t port, const std::vector<Bytes>& frames) {
    release();
    fill_burst(burst, port, frames);
    run_stages(burst, {&parse, &guard, &nat});
    return burst;
  }

  // The IPv4 packet in slot i as the stages left it.
  Bytes out(uint16_t i = 0) const { return Frame::of(burst.pkts[i]).ip_packet(); }

  // One packet in, which must come out with no verdict yet (translated or not); the packet out.
  Bytes pass(uint16_t port, const Bytes& packet, const rte_ether_addr& lan_mac = lan_host_mac()) {
    run(port, {port == kLan ? from_lan(packet, lan_mac) : from_wan(packet)});
    EXPECT_EQ(burst.action[0], Action::kContinue)
        << (burst.action[0] == Action::kDrop ? drop_reason_name(burst.drop_reason[0]) : "");
    if (burst.action[0] != Action::kContinue) return {};
    Bytes result = out();
    EXPECT_TRUE(checksums_valid(result));
    return result;
  }

  // One packet in, which must be dropped; the reason.
  DropReason dropped(uint16_t port, const Bytes& packet) {
    run(port, {port == kLan ? from_lan(packet) : from_wan(packet)});
    EXPECT_EQ(burst.action[0], Action::kDrop);
    return burst.action[0] == Action::kDrop ? burst.drop_reason[0] : DropReason::kCount;
  }

  Config config;
  PortTable ports;
  WorkerCounters counters;
  SessionTable sessions;
  ParseStage parse{ports};
  GuardStage guard;
  NatStage nat;
  Burst burst;
};

class NatStageTest : public NatFixture {};

// ---- outbound and reply, per protocol ------------------------------------------------------

// A flow: its packets from src:sport to dst:dport (for ICMP echo the identifier is sport in a
// request and dport in a reply), `reply` for the answering direction.
struct FlowCase {
  std::string name;
  uint8_t proto;
  uint16_t inside_port;  // the LAN host's source port or echo identifier
  uint16_t remote_port;
  std::function<Bytes(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, bool reply)> packet;
  bool port_kept = true;  // the inside port is in the range (1024-65535) and free
};
void PrintTo(const FlowCase& c, std::ostream* out) { *out << c.name; }

FlowCase tcp_flow(std::string name, uint16_t inside_port, TcpFields fields, bool kept = true) {
  return {std::move(name), kProtoTcp, inside_port, 443,
          [fields](uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, bool reply) {
            TcpFields f = fields;
            if (reply) {
              f.flags = (f.flags & kSyn) ? kSyn | kAck : kAck;
              f.payload = payload_bytes(50, 9);
            }
            return ipv4(src, dst, kProtoTcp, tcp(src, dst, sport, dport, f));
          },
          kept};
}
FlowCase udp_flow(std::string name, uint16_t inside_port, std::size_t payload, bool checksum = true,
                  Ipv4Fields ip_fields = {}, bool kept = true) {
  return {std::move(name), kProtoUdp, inside_port, 53,
          [=](uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, bool reply) {
            Bytes data = payload_bytes(reply ? payload + 20 : payload, reply ? 3 : 1);
            return ipv4(src, dst, kProtoUdp,
                        checksum ? udp(src, dst, sport, dport, data) : udp_without_checksum(src, dst, sport, dport, data),
                        ip_fields);
          },
          kept};
}
FlowCase echo_flow(std::string name, uint16_t identifier, std::size_t data, bool kept = true) {
  return {std::move(name), kProtoIcmp, identifier, 0,
          [=](uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, bool reply) {
            uint16_t id = reply ? dport : sport;
            return ipv4(src, dst, kProtoIcmp,
                        icmp(reply ? kEchoReply : kEchoRequest, 0, uint32_t{id} << 16 | 7, payload_bytes(data, 5)));
          },
          kept};
}

std::vector<FlowCase> flow_cases() {
  return {
      tcp_flow("tcp_syn", 40000, {.flags = kSyn, .options = mss_option(1460)}),
      tcp_flow("tcp_syn_with_options", 40001,
               {.flags = kSyn, .options = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}}),
      tcp_flow("tcp_data_odd_length", 40002, {.flags = kPsh | kAck, .payload = payload_bytes(333)}),
      tcp_flow("tcp_inside_port_below_range", 1000, {.flags = kSyn}, false),
      tcp_flow("tcp_port_65535", 65535, {.flags = kSyn}),
      udp_flow("udp", 40000, 40),
      udp_flow("udp_odd_length", 40003, 33),
      udp_flow("udp_no_checksum_stays_zero", 40004, 40, false),
      udp_flow("udp_inside_port_below_range", 123, 48, true, {}, false),
      udp_flow("udp_with_ip_options", 40005, 20, true, {.options = {1, 1, 1, 0}}),
      udp_flow("udp_zero_payload", 40006, 0),
      echo_flow("icmp_echo", 0x4d2, 56),
      echo_flow("icmp_echo_odd_data", 0x9999, 31),
      echo_flow("icmp_echo_identifier_below_range", 1, 56, false),
  };
}

class NatFlows : public NatFixture, public ::testing::WithParamInterface<FlowCase> {
 protected:
  // The flow's first packet out; its external port or identifier.
  uint16_t go_out(Bytes* translated = nullptr) {
    const FlowCase& c = GetParam();
    Bytes result = pass(kLan, c.packet(lan_host(), c.inside_port, remote(), c.remote_port, false));
    if (result.empty()) return 0;
    if (translated) *translated = result;
    return c.proto == kProtoIcmp ? echo_id_of(result) : sport_of(result);
  }
};

TEST_P(NatFlows, OutboundGetsTheWanAddressAndTheMappedPort) {
  const FlowCase& c = GetParam();
  Bytes translated;
  uint16_t external = go_out(&translated);
  ASSERT_NE(external, 0);
  if (c.port_kept) {
    EXPECT_EQ(external, c.inside_port) << "a free port in range is kept";
  } else {
    EXPECT_NE(external, c.inside_port);
    EXPECT_GE(external, config.nat.port_min);
  }
  EXPECT_TRUE(same_bytes(translated, c.packet(wan_own(), external, remote(), c.remote_port, false)))
      << "only the source address and port (and checksums) change";
  EXPECT_EQ(sessions.size(), 1u);
  // The next packet takes the fast path to the same translation.
  EXPECT_TRUE(same_bytes(pass(kLan, c.packet(lan_host(), c.inside_port, remote(), c.remote_port, false)), translated));
  EXPECT_EQ(sessions.size(), 1u);
}

TEST_P(NatFlows, ReplyIsTranslatedBackToTheInsideHost) {
  const FlowCase& c = GetParam();
  uint16_t external = go_out();
  ASSERT_NE(external, 0);
  Bytes reply = c.packet(remote(), c.remote_port, wan_own(), external, true);
  Bytes back = pass(kWan, reply);
  EXPECT_TRUE(same_bytes(back, c.packet(remote(), c.remote_port, lan_host(), c.inside_port, true)));
  bool is_reply = false;
  FlowKey key;
  key.src = lan_host();
  key.sport = c.inside_port;
  key.dst = remote();
  key.dport = c.remote_port;
  key.proto = c.proto;
  uint32_t index = sessions.lookup(key, &is_reply);
  ASSERT_NE(index, SessionTable::kNone);
  EXPECT_GT(sessions.session(index).bytes_reply, 0u) << "the reply was counted";
}

// RFC 5508: an ICMP error about a packet we translated comes back to the inside host with the
// outer destination, the quoted packet and every checksum translated.
struct ErrorCase {
  std::string name;
  FlowCase flow;
  uint8_t type, code;
  uint32_t rest;       // the 4 bytes after the checksum (the MTU of a fragmentation needed)
  std::size_t quote;   // bytes of the offending packet quoted; 0: all of it
  bool from_remote = false;  // sent by the remote host itself rather than the WAN router
};
void PrintTo(const ErrorCase& c, std::ostream* out) { *out << c.name; }

std::vector<ErrorCase> error_cases() {
  FlowCase tcp_syn = tcp_flow("tcp", 40010, {.flags = kSyn, .options = mss_option(1460)});
  FlowCase tcp_low = tcp_flow("tcp_low", 999, {.flags = kSyn}, false);
  FlowCase tcp_data = tcp_flow("tcp_data", 40011, {.flags = kAck, .payload = payload_bytes(1200)});
  FlowCase udp_plain = udp_flow("udp", 40012, 60);
  FlowCase udp_low = udp_flow("udp_low", 53, 60, true, {}, false);
  FlowCase udp_zero = udp_flow("udp_no_checksum", 40013, 60, false);
  FlowCase echo = echo_flow("echo", 0x1234, 56);
  FlowCase echo_low = echo_flow("echo_low", 3, 56, false);
  return {
      {"tcp_time_exceeded_whole_packet", tcp_syn, kTimeExceeded, 0, 0, 0},
      {"tcp_time_exceeded_8_bytes", tcp_syn, kTimeExceeded, 0, 0, 28},
      {"tcp_time_exceeded_with_checksum", tcp_syn, kTimeExceeded, 0, 0, 40},
      {"tcp_allocated_port_time_exceeded", tcp_low, kTimeExceeded, 0, 0, 0},
      {"tcp_fragmentation_needed_576", tcp_data, kUnreachable, 4, 1400, 576 - 20 - 8},
      {"udp_time_exceeded_whole_packet", udp_plain, kTimeExceeded, 0, 0, 0},
      {"udp_time_exceeded_8_bytes", udp_plain, kTimeExceeded, 0, 0, 28},
      {"udp_allocated_port_time_exceeded", udp_low, kTimeExceeded, 0, 0, 0},
      {"udp_without_checksum_time_exceeded", udp_zero, kTimeExceeded, 0, 0, 0},
      {"udp_port_unreachable_from_the_remote", udp_plain, kUnreachable, 3, 0, 0, true},
      {"echo_time_exceeded_whole_packet", echo, kTimeExceeded, 0, 0, 0},
      {"echo_time_exceeded_8_bytes", echo, kTimeExceeded, 0, 0, 28},
      {"echo_allocated_identifier_host_unreachable", echo_low, kUnreachable, 1, 0, 0},
  };
}

class NatIcmpErrors : public NatFixture, public ::testing::WithParamInterface<ErrorCase> {};

TEST_P(NatIcmpErrors, FromTheWanAboutATranslatedPacket) {
  const ErrorCase& c = GetParam();
  const FlowCase& f = c.flow;
  Bytes original = f.packet(lan_host(), f.inside_port, remote(), f.remote_port, false);
  Bytes translated = pass(kLan, original);
  ASSERT_FALSE(translated.empty());
  std::size_t quote = c.quote ? c.quote : translated.size();
  uint32_t reporter = c.from_remote ? remote() : wan_gw();
  Bytes error = ipv4(reporter, wan_own(), kProtoIcmp, icmp(c.type, c.code, c.rest, head(translated, quote)));
  Bytes back = pass(kWan, error);
  EXPECT_TRUE(same_bytes(back, ipv4(reporter, lan_host(), kProtoIcmp, icmp(c.type, c.code, c.rest, head(original, quote)))))
      << "outer destination and quoted source back to the inside host";
  EXPECT_TRUE(checksums_valid(back));
}

TEST_P(NatIcmpErrors, FromTheInsideHostAboutAReply) {
  // The LAN host answers a reply it got with an error (a closed port, say): the error leaves
  // from the WAN address quoting the reply as it arrived from the remote.
  const ErrorCase& c = GetParam();
  const FlowCase& f = c.flow;
  Bytes translated = pass(kLan, f.packet(lan_host(), f.inside_port, remote(), f.remote_port, false));
  ASSERT_FALSE(translated.empty());
  uint16_t external = f.proto == kProtoIcmp ? echo_id_of(translated) : sport_of(translated);
  Bytes reply = f.packet(remote(), f.remote_port, wan_own(), external, true);
  Bytes delivered = pass(kWan, reply);
  ASSERT_FALSE(delivered.empty());
  std::size_t quote = c.quote ? c.quote : delivered.size();
  Bytes error = ipv4(lan_host(), remote(), kProtoIcmp, icmp(kUnreachable, 3, 0, head(delivered, quote)));
  Bytes out = pass(kLan, error);
  EXPECT_TRUE(same_bytes(out, ipv4(wan_own(), remote(), kProtoIcmp, icmp(kUnreachable, 3, 0, head(reply, quote)))));
  EXPECT_TRUE(checksums_valid(out));
}

INSTANTIATE_TEST_SUITE_P(Table, NatFlows, ::testing::ValuesIn(flow_cases()),
                         [](const ::testing::TestParamInfo<FlowCase>& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(Table, NatIcmpErrors, ::testing::ValuesIn(error_cases()),
                         [](const ::testing::TestParamInfo<ErrorCase>& info) { return info.param.name; });

// ---- several hosts, filtering, what is not NAT's -------------------------------------------

TEST_F(NatStageTest, TwoHostsWithTheSameSourcePortGetTheirOwnRepliesBack) {
  Bytes a = ipv4(lan_host(), remote(), kProtoUdp, udp(lan_host(), remote(), 5060, 5060, payload_bytes(30)));
  Bytes b = ipv4(lan_host2(), remote(), kProtoUdp, udp(lan_host2(), remote(), 5060, 5060, payload_bytes(30)));
  run(kLan, {from_lan(a), from_lan(b, lan_host2_mac())});
  ASSERT_EQ(burst.action[0], Action::kContinue);
  ASSERT_EQ(burst.action[1], Action::kContinue);
  uint16_t port_a = sport_of(out(0)), port_b = sport_of(out(1));
  EXPECT_EQ(port_a, 5060);
  EXPECT_NE(port_b, port_a);
  EXPECT_TRUE(checksums_valid(out(1)));
  for (auto [port, host] : {std::pair{port_a, lan_host()}, std::pair{port_b, lan_host2()}}) {
    Bytes back = pass(kWan, ipv4(remote(), wan_own(), kProtoUdp, udp(remote(), wan_own(), 5060, port, payload_bytes(9))));
    EXPECT_TRUE(same_bytes(back, ipv4(remote(), host, kProtoUdp, udp(remote(), host, 5060, 5060, payload_bytes(9)))))
        << format_ipv4(host);
  }
}

TEST_F(NatStageTest, PacketsOfANewFlowInOneBurstShareOneSession) {
  Bytes packet = ipv4(lan_host(), remote(), kProtoUdp, udp(lan_host(), remote(), 40000, 443, payload_bytes(100)));
  run(kLan, {from_lan(packet), from_lan(packet), from_lan(packet)});
  for (uint16_t i = 0; i < 3; ++i) {
    ASSERT_EQ(burst.action[i], Action::kContinue);
    EXPECT_EQ(sport_of(out(i)), 40000);
  }
  EXPECT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions.counters().created, 1u);
  EXPECT_EQ(sessions.subscriber_sessions(lan_host()), 1u) << "the quota counts flows, not packets";
}

TEST_F(NatStageTest, SameInsideEndpointKeepsItsExternalPortForEveryDestination) {
  for (uint32_t dst : {remote(), remote2(), ip("198.18.7.7")}) {
    Bytes out_packet = pass(kLan, ipv4(lan_host(), dst, kProtoUdp, udp(lan_host(), dst, 40000, 3478, payload_bytes(20))));
    EXPECT_EQ(sport_of(out_packet), 40000) << format_ipv4(dst);
  }
  EXPECT_EQ(sessions.size(), 3u);
}

TEST_F(NatStageTest, AddressAndPortDependentFilteringDropsOtherRemotes) {
  pass(kLan, ipv4(lan_host(), remote(), kProtoUdp, udp(lan_host(), remote(), 40000, 3478, payload_bytes(20))));
  EXPECT_EQ(dropped(kWan, ipv4(remote2(), wan_own(), kProtoUdp, udp(remote2(), wan_own(), 3478, 40000, payload_bytes(20)))),
            DropReason::kNatFiltered)
      << "another address";
  EXPECT_EQ(dropped(kWan, ipv4(remote(), wan_own(), kProtoUdp, udp(remote(), wan_own(), 3479, 40000, payload_bytes(20)))),
            DropReason::kNatFiltered)
      << "the same address, another port";
  EXPECT_EQ(sessions.size(), 1u);
  pass(kWan, ipv4(remote(), wan_own(), kProtoUdp, udp(remote(), wan_own(), 3478, 40000, payload_bytes(20))));
}

class NatEndpointIndependentTest : public NatFixture {
 protected:
  NatEndpointIndependentTest() : NatFixture({.nat = R"({"filtering": "endpoint-independent"})"}) {}
};

TEST_F(NatEndpointIndependentTest, FirstPacketFromAnotherRemoteReachesTheInsideHost) {
  pass(kLan, ipv4(lan_host(), remote(), kProtoUdp, udp(lan_host(), remote(), 40000, 3478, payload_bytes(20))));
  Bytes in = ipv4(remote2(), wan_own(), kProtoUdp, udp(remote2(), wan_own(), 3479, 40000, payload_bytes(20)));
  EXPECT_TRUE(same_bytes(pass(kWan, in),
                         ipv4(remote2(), lan_host(), kProtoUdp, udp(remote2(), lan_host(), 3479, 40000, payload_bytes(20)))));
  // TCP too (RFC 5382): a SYN from another remote to a mapped TCP port.
  pass(kLan, ipv4(lan_host(), remote(), kProtoTcp, tcp(lan_host(), remote(), 41000, 443, {.flags = kSyn})));
  Bytes syn = ipv4(remote2(), wan_own(), kProtoTcp, tcp(remote2(), wan_own(), 5000, 41000, {.flags = kSyn}));
  EXPECT_TRUE(same_bytes(pass(kWan, syn),
                         ipv4(remote2(), lan_host(), kProtoTcp, tcp(remote2(), lan_host(), 5000, 41000, {.flags = kSyn}))));
}

TEST_F(NatEndpointIndependentTest, TheSessionAnotherRemoteOpensCarriesBothDirections) {
  pass(kLan, ipv4(lan_host(), remote(), kProtoUdp, udp(lan_host(), remote(), 40000, 3478, payload_bytes(20))));
  Bytes in = ipv4(remote2(), wan_own(), kProtoUdp, udp(remote2(), wan_own(), 3479, 40000, payload_bytes(20)));
  run(kWan, {from_wan(in)});
  ASSERT_NE(burst.action[0], Action::kDrop) << drop_reason_name(burst.drop_reason[0]);
  EXPECT_EQ(sessions.size(), 2u);
  // The remote's next packet, and the inside host answering it from the same external port.
  EXPECT_TRUE(same_bytes(pass(kWan, in),
                         ipv4(remote2(), lan_host(), kProtoUdp, udp(remote2(), lan_host(), 3479, 40000, payload_bytes(20)))));
  Bytes answer = ipv4(lan_host(), remote2(), kProtoUdp, udp(lan_host(), remote2(), 40000, 3479, payload_bytes(5)));
  EXPECT_TRUE(same_bytes(pass(kLan, answer),
                         ipv4(wan_own(), remote2(), kProtoUdp, udp(wan_own(), remote2(), 40000, 3479, payload_bytes(5)))));
  EXPECT_EQ(sessions.size(), 2u);
}

TEST_F(NatEndpointIndependentTest, UnmappedPortsAreStillNotNatTraffic) {
  pass(kLan, ipv4(lan_host(), remote(), kProtoUdp, udp(lan_host(), remote(), 40000, 3478, payload_bytes(20))));
  for (Bytes in : {ipv4(remote2(), wan_own(), kProtoUdp, udp(remote2(), wan_own(), 3479, 40001, payload_bytes(20))),
                   ipv4(remote2(), wan_own(), kProtoTcp, tcp(remote2(), wan_own(), 3479, 40000, {.flags = kSyn}))}) {
    EXPECT_TRUE(same_bytes(pass(kWan, in), in)) << "another port, or the same port in another protocol";
  }
  EXPECT_EQ(sessions.size(), 1u);
}

TEST_F(NatStageTest, InboundToAnAddressBehindTheNatIsUnsolicited) {
  EXPECT_EQ(dropped(kWan, ipv4(remote(), lan_host(), kProtoUdp, udp(remote(), lan_host(), 53, 40000, payload_bytes(20)))),
            DropReason::kNatUnsolicited);
  EXPECT_EQ(dropped(kWan, ipv4(remote(), lan_host(), kProtoIcmp, icmp_echo(1, 1))), DropReason::kNatUnsolicited);
  // Even when the LAN host has a session with that remote: replies go to the WAN address.
  pass(kLan, ipv4(lan_host(), remote(), kProtoUdp, udp(lan_host(), remote(), 40000, 53, payload_bytes(20))));
  EXPECT_EQ(dropped(kWan, ipv4(remote(), lan_host(), kProtoUdp, udp(remote(), lan_host(), 53, 40000, payload_bytes(20)))),
            DropReason::kNatUnsolicited);
}

TEST_F(NatStageTest, TrafficThatIsNotNatsPassesUnchanged) {
  struct Case {
    const char* name;
    uint16_t port;
    Bytes packet;
  };
  std::vector<Case> cases = {
      {"lan_to_lan", kLan, ipv4(lan_host(), lan_host2(), kProtoUdp, udp(lan_host(), lan_host2(), 1, 2, payload_bytes(20)))},
      {"lan_to_the_gateway", kLan, ipv4(lan_host(), lan_gw(), kProtoIcmp, icmp_echo(5, 1))},
      {"lan_broadcast", kLan, ipv4(lan_host(), ip("10.10.0.255"), kProtoUdp, udp(lan_host(), ip("10.10.0.255"), 68, 67, payload_bytes(20)))},
      {"wan_ping_to_the_gateway", kWan, ipv4(remote(), wan_own(), kProtoIcmp, icmp_echo(77, 1))},
      {"wan_unmapped_port", kWan, ipv4(remote(), wan_own(), kProtoTcp, tcp(remote(), wan_own(), 5000, 22, {.flags = kSyn}))},
      {"wan_gre_to_the_gateway", kWan, ipv4(remote(), wan_own(), 47, payload_bytes(24))},
      {"wan_error_about_no_session", kWan,
       ipv4(wan_gw(), wan_own(), kProtoIcmp,
            icmp(kUnreachable, 3, 0, ipv4(wan_own(), remote(), kProtoUdp, udp(wan_own(), remote(), 1234, 53, payload_bytes(8)))))},
  };
  for (const auto& c : cases) {
    EXPECT_TRUE(same_bytes(pass(c.port, c.packet), c.packet)) << c.name;
  }
  EXPECT_EQ(sessions.size(), 0u);
}

TEST_F(NatStageTest, WhatNatCannotTranslateIsDroppedWithAReason) {
  struct Case {
    const char* name;
    uint16_t port;
    Bytes packet;
    DropReason reason;
  };
  auto cut = [](uint8_t proto, std::size_t l4_bytes) {
    return ipv4(lan_host(), remote(), proto, head(payload_bytes(40), l4_bytes));
  };
  std::vector<Case> cases = {
      {"tcp_4_bytes", kLan, cut(kProtoTcp, 4), DropReason::kNatTruncated},
      {"tcp_19_bytes", kLan, cut(kProtoTcp, 19), DropReason::kNatTruncated},
      {"udp_6_bytes", kLan, cut(kProtoUdp, 6), DropReason::kNatTruncated},
      {"icmp_4_bytes", kLan, ipv4(lan_host(), remote(), kProtoIcmp, {8, 0, 0xf7, 0xff}), DropReason::kNatTruncated},
      {"tcp_reply_cut_short", kWan, ipv4(remote(), wan_own(), kProtoTcp, head(payload_bytes(40), 10)),
       DropReason::kNatTruncated},
      {"icmp_error_quoting_too_little", kWan,
       ipv4(wan_gw(), wan_own(), kProtoIcmp, icmp(kTimeExceeded, 0, 0, head(ipv4(wan_own(), remote(), kProtoUdp,
                                                                                 udp(wan_own(), remote(), 1, 2, {})), 24))),
       DropReason::kNatTruncated},
      {"gre_to_the_internet", kLan, ipv4(lan_host(), remote(), 47, payload_bytes(24)), DropReason::kNatUnsupported},
      {"icmp_timestamp_to_the_internet", kLan, ipv4(lan_host(), remote(), kProtoIcmp, icmp(13, 0, 0, payload_bytes(12))),
       DropReason::kNatUnsupported},
      {"lan_error_about_no_session", kLan,
       ipv4(lan_host(), remote(), kProtoIcmp,
            icmp(kUnreachable, 3, 0, ipv4(remote(), lan_host(), kProtoUdp, udp(remote(), lan_host(), 53, 1234, payload_bytes(8))))),
       DropReason::kNatUnsupported},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(dropped(c.port, c.packet), c.reason) << c.name;
  }
  EXPECT_EQ(sessions.size(), 0u);
}

// ---- packets the l3 stage answers with an ICMP error ---------------------------------------

TEST_F(NatStageTest, TtlOneOutboundIsLeftForTheL3StageToAnswer) {
  Bytes ttl1 = ipv4(lan_host(), remote(), kProtoUdp, udp(lan_host(), remote(), 40000, 33434, payload_bytes(20)), {.ttl = 1});
  EXPECT_TRUE(same_bytes(pass(kLan, ttl1), ttl1)) << "the l3 stage's time exceeded must quote what the host sent";
  Bytes ttl0 = ipv4(lan_host(), remote(), kProtoUdp, udp(lan_host(), remote(), 40000, 33434, payload_bytes(20)), {.ttl = 0});
  EXPECT_TRUE(same_bytes(pass(kLan, ttl0), ttl0));
  EXPECT_EQ(sessions.size(), 0u);
  Bytes ttl2 = ipv4(lan_host(), remote(), kProtoUdp, udp(lan_host(), remote(), 40000, 33434, payload_bytes(20)), {.ttl = 2});
  EXPECT_EQ(get32(pass(kLan, ttl2), 12), wan_own()) << "TTL 2 goes out";
}

class NatSmallWanMtuTest : public NatFixture {
 protected:
  NatSmallWanMtuTest() : NatFixture({.wan_mtu = 1400}) {}
  static Bytes sized(std::size_t total, uint16_t flags) {
    return ipv4(lan_host(), remote(), kProtoUdp, udp(lan_host(), remote(), 40000, 443, payload_bytes(total - 28)),
                {.flags_fragment = flags});
  }
};

TEST_F(NatSmallWanMtuTest, TooBigWithDontFragmentIsLeftForTheL3Stage) {
  Bytes too_big = sized(1401, 0x4000);
  EXPECT_TRUE(same_bytes(pass(kLan, too_big), too_big)) << "its fragmentation needed must reach the host";
  EXPECT_EQ(sessions.size(), 0u);
  EXPECT_EQ(get32(pass(kLan, sized(1400, 0x4000)), 12), wan_own()) << "exactly the MTU";
  EXPECT_EQ(get32(pass(kLan, sized(1401, 0)), 12), wan_own()) << "no DF: translated, fragmented later";
}

// ---- fragments -----------------------------------------------------------------------------

// A UDP datagram of `payload` bytes from `src` cut in two IPv4 fragments after `first_bytes`
// of the UDP segment (a multiple of 8).
std::vector<Bytes> fragments(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, std::size_t payload,
                             std::size_t first_bytes, uint16_t id) {
  Bytes segment = udp(src, dst, sport, dport, payload_bytes(payload, 11));
  Bytes one(segment.begin(), segment.begin() + static_cast<long>(first_bytes));
  Bytes two(segment.begin() + static_cast<long>(first_bytes), segment.end());
  return {ipv4(src, dst, kProtoUdp, one, {.id = id, .flags_fragment = 0x2000}),
          ipv4(src, dst, kProtoUdp, two, {.id = id, .flags_fragment = static_cast<uint16_t>(first_bytes / 8)})};
}

TEST_F(NatStageTest, FragmentsAreReassembledThenTranslated) {
  for (bool reversed : {false, true}) {
    SCOPED_TRACE(reversed ? "last fragment first" : "first fragment first");
    uint16_t id = reversed ? 0x2222 : 0x1111;
    auto pieces = fragments(lan_host(), remote(), 40000, 4500, 1000, 512, id);
    if (reversed) std::swap(pieces[0], pieces[1]);
    run(kLan, {from_lan(pieces[0]), from_lan(pieces[1])});
    EXPECT_EQ(burst.action[0], Action::kSent) << "held for reassembly, never out untranslated";
    ASSERT_EQ(burst.action[1], Action::kContinue);
    Bytes whole = out(1);
    EXPECT_TRUE(checksums_valid(whole));
    EXPECT_TRUE(same_bytes(whole, ipv4(wan_own(), remote(), kProtoUdp, udp(wan_own(), remote(), 40000, 4500, payload_bytes(1000, 11)),
                                       {.id = id, .flags_fragment = 0})));
  }
  EXPECT_EQ(sessions.size(), 1u);
}

TEST_F(NatStageTest, FragmentsInSeparateBurstsAndFragmentedReplies) {
  auto pieces = fragments(lan_host(), remote(), 40000, 4500, 700, 256, 0x3333);
  run(kLan, {from_lan(pieces[0])});
  EXPECT_EQ(burst.action[0], Action::kSent);
  run(kLan, {from_lan(pieces[1])});
  ASSERT_EQ(burst.action[0], Action::kContinue);
  EXPECT_EQ(get32(out(), 12), wan_own());
  EXPECT_EQ(sport_of(out()), 40000);
  // The answer comes back in fragments too.
  auto replies = fragments(remote(), wan_own(), 4500, 40000, 900, 400, 0x4444);
  run(kWan, {from_wan(replies[0]), from_wan(replies[1])});
  EXPECT_EQ(burst.action[0], Action::kSent);
  ASSERT_EQ(burst.action[1], Action::kContinue);
  EXPECT_TRUE(same_bytes(out(1), ipv4(remote(), lan_host(), kProtoUdp, udp(remote(), lan_host(), 4500, 40000, payload_bytes(900, 11)),
                                      {.id = 0x4444, .flags_fragment = 0})));
}

TEST_F(NatStageTest, NoFragmentLeavesUntranslated) {
  // Lone pieces of datagrams that never complete: none may go on as they are. They are held
  // (or dropped); the reassembly table gives them back to the pool when the stage goes.
  auto a = fragments(lan_host(), remote(), 40000, 4500, 1000, 512, 0x5555);
  auto b = fragments(lan_host(), remote(), 40001, 4500, 1000, 512, 0x6666);
  auto c = fragments(remote(), wan_own(), 4500, 40000, 1000, 512, 0x7777);
  run(kLan, {from_lan(a[0]), from_lan(b[1])});
  for (uint16_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(burst.action[i] == Action::kSent || burst.action[i] == Action::kDrop) << "slot " << i << ": " << burst.action[i];
  }
  run(kWan, {from_wan(c[1])});
  EXPECT_TRUE(burst.action[0] == Action::kSent || burst.action[0] == Action::kDrop) << burst.action[0];
}

// ---- worker ownership ----------------------------------------------------------------------

uint32_t lan_host_of_worker(uint16_t worker, uint16_t workers) {
  for (uint32_t address = ip("10.10.0.20"); address < ip("10.10.0.250"); ++address)
    if (nat_owner_of_address(address, workers) == worker) return address;
  throw std::logic_error("no LAN address for that worker");
}

class NatTwoWorkersTest : public NatFixture {
 protected:
  NatTwoWorkersTest()
      : NatFixture({.nat = R"({"port_forwards": [
                       {"protocol": "tcp", "external": 8080, "internal": ")" + format_ipv4(lan_host_of_worker(1, 2)) +
                           R"(", "internal_port": 80},
                       {"protocol": "tcp", "external": 8081, "internal": ")" + format_ipv4(lan_host_of_worker(0, 2)) +
                           R"(", "internal_port": 80}]})",
                    .worker = 0,
                    .workers = 2}) {}
  uint32_t mine = lan_host_of_worker(0, 2), theirs = lan_host_of_worker(1, 2);

  void expect_handoff(uint16_t i, uint16_t worker) {
    ASSERT_EQ(burst.action[i], Action::kHandoff) << "slot " << i;
    EXPECT_EQ(packet_meta(burst.pkts[i])->handoff_worker, worker);
  }
};

TEST_F(NatTwoWorkersTest, OutboundGoesToTheInsideHostsWorker) {
  Bytes other = ipv4(theirs, remote(), kProtoUdp, udp(theirs, remote(), 40000, 53, payload_bytes(20)));
  Bytes own = ipv4(mine, remote(), kProtoUdp, udp(mine, remote(), 40001, 53, payload_bytes(20)));
  run(kLan, {from_lan(other), from_lan(own)});
  expect_handoff(0, 1);
  EXPECT_TRUE(same_bytes(out(0), other)) << "handed over untouched";
  ASSERT_EQ(burst.action[1], Action::kContinue);
  uint16_t port = sport_of(out(1));
  EXPECT_EQ(port % 2, 0) << "worker 0 of 2 gives even ports: " << port;
  EXPECT_EQ(nat_owner_of_port(port, 2), 0);
  EXPECT_EQ(sessions.size(), 1u);
  // Its reply is ours; a reply to an odd port is the other worker's.
  Bytes reply = ipv4(remote(), wan_own(), kProtoUdp, udp(remote(), wan_own(), 53, port, payload_bytes(20)));
  Bytes odd = ipv4(remote(), wan_own(), kProtoUdp, udp(remote(), wan_own(), 53, 40001, payload_bytes(20)));
  run(kWan, {from_wan(reply), from_wan(odd)});
  ASSERT_EQ(burst.action[0], Action::kContinue);
  EXPECT_EQ(get32(out(0), 16), mine);
  expect_handoff(1, 1);
}

TEST_F(NatTwoWorkersTest, ForwardsGoToTheInternalHostsWorker) {
  run(kWan, {from_wan(ipv4(remote(), wan_own(), kProtoTcp, tcp(remote(), wan_own(), 5555, 8080, {.flags = kSyn}))),
             from_wan(ipv4(remote(), wan_own(), kProtoTcp, tcp(remote(), wan_own(), 5555, 8081, {.flags = kSyn})))});
  expect_handoff(0, 1);
  ASSERT_EQ(burst.action[1], Action::kContinue);
  EXPECT_EQ(get32(out(1), 16), mine);
  EXPECT_EQ(dport_of(out(1)), 80);
}

TEST_F(NatTwoWorkersTest, IcmpErrorsGoToTheWorkerOfTheQuotedPort) {
  Bytes quoted = ipv4(wan_own(), remote(), kProtoUdp, udp(wan_own(), remote(), 40001, 53, payload_bytes(20)));
  run(kWan, {from_wan(ipv4(wan_gw(), wan_own(), kProtoIcmp, icmp(kTimeExceeded, 0, 0, quoted)))});
  expect_handoff(0, 1);
  Bytes from_them = ipv4(theirs, remote(), kProtoIcmp,
                         icmp(kUnreachable, 3, 0, ipv4(remote(), theirs, kProtoUdp, udp(remote(), theirs, 53, 40000, {}))));
  run(kLan, {from_lan(from_them)});
  expect_handoff(0, 1);
}

// ---- port forwards and hairpin -------------------------------------------------------------

class NatForwardTest : public NatFixture {
 protected:
  NatForwardTest()
      : NatFixture({.nat = R"({"port_forwards": [
          {"protocol": "tcp", "external": 8080, "internal": "10.10.0.13", "internal_port": 80},
          {"protocol": "udp", "external": "6000:6009", "internal": "10.10.0.14", "internal_port": "7000-7009"}]})"}) {}
};

TEST_F(NatForwardTest, InboundToAForwardedPortReachesTheServerAndItsReplyLeavesFromThatPort) {
  TcpFields syn{.flags = kSyn, .options = mss_option(1460)};
  Bytes in = pass(kWan, ipv4(remote(), wan_own(), kProtoTcp, tcp(remote(), wan_own(), 5555, 8080, syn)));
  EXPECT_TRUE(same_bytes(in, ipv4(remote(), server(), kProtoTcp, tcp(remote(), server(), 5555, 80, syn))));
  TcpFields syn_ack{.flags = kSyn | kAck, .options = mss_option(1460), .seq = 7000, .ack = 1001};
  Bytes reply = pass(kLan, ipv4(server(), remote(), kProtoTcp, tcp(server(), remote(), 80, 5555, syn_ack)), server_mac());
  EXPECT_TRUE(same_bytes(reply, ipv4(wan_own(), remote(), kProtoTcp, tcp(wan_own(), remote(), 8080, 5555, syn_ack))));
  EXPECT_EQ(sessions.size(), 1u);
  // A second client gets its own session to the same server.
  Bytes other = pass(kWan, ipv4(remote2(), wan_own(), kProtoTcp, tcp(remote2(), wan_own(), 5555, 8080, syn)));
  EXPECT_EQ(get32(other, 16), server());
  EXPECT_EQ(sessions.size(), 2u);
}

TEST_F(NatForwardTest, PortRangesKeepTheirOffset) {
  Bytes in = pass(kWan, ipv4(remote(), wan_own(), kProtoUdp, udp(remote(), wan_own(), 1234, 6005, payload_bytes(30))));
  EXPECT_TRUE(same_bytes(in, ipv4(remote(), ip("10.10.0.14"), kProtoUdp, udp(remote(), ip("10.10.0.14"), 1234, 7005, payload_bytes(30)))));
  // The rule is for UDP: TCP to the same port is not forwarded.
  Bytes tcp_in = ipv4(remote(), wan_own(), kProtoTcp, tcp(remote(), wan_own(), 1234, 6005, {.flags = kSyn}));
  EXPECT_TRUE(same_bytes(pass(kWan, tcp_in), tcp_in));
}

TEST_F(NatForwardTest, OutboundMappingsNeverTakeAForwardedPort) {
  Bytes out_packet = pass(kLan, ipv4(lan_host(), remote(), kProtoTcp, tcp(lan_host(), remote(), 8080, 443, {.flags = kSyn})));
  EXPECT_NE(sport_of(out_packet), 8080);
}

TEST_F(NatForwardTest, HairpinFromTheLanReachesTheServerAndBack) {
  TcpFields syn{.flags = kSyn, .options = mss_option(1460)};
  Bytes client_syn = ipv4(lan_host(), wan_own(), kProtoTcp, tcp(lan_host(), wan_own(), 50000, 8080, syn));
  Bytes to_server = pass(kLan, client_syn);
  uint16_t x = sport_of(to_server);
  EXPECT_TRUE(same_bytes(to_server, ipv4(wan_own(), server(), kProtoTcp, tcp(wan_own(), server(), x, 80, syn))))
      << "from the WAN address, so the server answers through the gateway";
  TcpFields syn_ack{.flags = kSyn | kAck, .options = mss_option(1460), .seq = 9000, .ack = 1001};
  Bytes answer = pass(kLan, ipv4(server(), wan_own(), kProtoTcp, tcp(server(), wan_own(), 80, x, syn_ack)), server_mac());
  EXPECT_TRUE(same_bytes(answer, ipv4(wan_own(), lan_host(), kProtoTcp, tcp(wan_own(), lan_host(), 8080, 50000, syn_ack))))
      << "the client sees the address and port it called";
  // The rest of the connection takes the fast path both ways.
  TcpFields ack{.flags = kAck, .payload = payload_bytes(100), .seq = 1001, .ack = 9001};
  EXPECT_TRUE(same_bytes(pass(kLan, ipv4(lan_host(), wan_own(), kProtoTcp, tcp(lan_host(), wan_own(), 50000, 8080, ack))),
                         ipv4(wan_own(), server(), kProtoTcp, tcp(wan_own(), server(), x, 80, ack))));
  EXPECT_EQ(sessions.size(), 1u);
}

TEST_F(NatForwardTest, IcmpErrorAboutAForwardedServersReplyReachesTheServer) {
  // A router on the WAN side cannot pass the server's reply on (too big, say): the error is
  // for the server, as in NatIcmpErrors for outbound flows.
  TcpFields syn{.flags = kSyn};
  pass(kWan, ipv4(remote(), wan_own(), kProtoTcp, tcp(remote(), wan_own(), 5555, 8080, syn)));
  TcpFields data{.flags = kAck, .payload = payload_bytes(1300), .seq = 7001, .ack = 1001};
  Bytes original = ipv4(server(), remote(), kProtoTcp, tcp(server(), remote(), 80, 5555, data));
  Bytes translated = pass(kLan, original, server_mac());
  ASSERT_FALSE(translated.empty());
  Bytes error = ipv4(wan_gw(), wan_own(), kProtoIcmp, icmp(kUnreachable, 4, 1280, head(translated, 548)));
  Bytes back = pass(kWan, error);
  EXPECT_TRUE(same_bytes(back, ipv4(wan_gw(), server(), kProtoIcmp, icmp(kUnreachable, 4, 1280, head(original, 548)))));
  EXPECT_TRUE(checksums_valid(back));
}

// ---- MSS clamp, TTL set --------------------------------------------------------------------

class NatMssClampTest : public NatFixture {
 protected:
  NatMssClampTest() : NatFixture({.nat = R"({"mss_clamp": 1400})"}) {}
  // A SYN from the LAN host with these options, out; and what it must look like.
  void expect_out(const Bytes& options, const Bytes& expected_options, uint16_t sport, uint8_t flags = kSyn) {
    TcpFields in{.flags = flags, .options = options};
    TcpFields want{.flags = flags, .options = expected_options};
    Bytes result = pass(kLan, ipv4(lan_host(), remote(), kProtoTcp, tcp(lan_host(), remote(), sport, 443, in)));
    EXPECT_TRUE(same_bytes(result, ipv4(wan_own(), remote(), kProtoTcp, tcp(wan_own(), remote(), sport, 443, want))));
  }
};

TEST_F(NatMssClampTest, LowersALargerMss) { expect_out(mss_option(1460), mss_option(1400), 40000); }

TEST_F(NatMssClampTest, LeavesASmallerOrEqualMss) {
  expect_out(mss_option(1300), mss_option(1300), 40000);
  expect_out(mss_option(1400), mss_option(1400), 40001);
}

TEST_F(NatMssClampTest, MssAtAnOddOffsetAfterPadding) {
  // NOP, MSS (value at odd offset 23 of the TCP header), NOP NOP NOP.
  expect_out({1, 2, 4, 0x05, 0xb4, 1, 1, 1}, {1, 2, 4, 0x05, 0x78, 1, 1, 1}, 40000);
  // Window scale, SACK permitted, MSS at offset 25 (value at 27), NOP, timestamps.
  expect_out({3, 3, 7, 4, 2, 2, 4, 0x23, 0x28, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0},
             {3, 3, 7, 4, 2, 2, 4, 0x05, 0x78, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0}, 40001);
}

TEST_F(NatMssClampTest, SynAckFromTheServerSideIsClampedToo) {
  pass(kLan, ipv4(lan_host(), remote(), kProtoTcp, tcp(lan_host(), remote(), 40000, 443, {.flags = kSyn, .options = mss_option(1400)})));
  TcpFields in{.flags = kSyn | kAck, .options = mss_option(1460)};
  TcpFields want{.flags = kSyn | kAck, .options = mss_option(1400)};
  Bytes back = pass(kWan, ipv4(remote(), wan_own(), kProtoTcp, tcp(remote(), wan_own(), 443, 40000, in)));
  EXPECT_TRUE(same_bytes(back, ipv4(remote(), lan_host(), kProtoTcp, tcp(remote(), lan_host(), 443, 40000, want))));
}

TEST_F(NatMssClampTest, OnlySynsAreClamped) {
  expect_out(mss_option(1460), mss_option(1460), 40000, kAck);
}

TEST_F(NatMssClampTest, MalformedOptionsAreLeftAlone) {
  // Zero-length option (a loop that trusts it never ends), then an MSS: untouched.
  expect_out({3, 0, 2, 4, 0x05, 0xb4, 1, 1}, {3, 0, 2, 4, 0x05, 0xb4, 1, 1}, 40000);
  // Length 1, too short to be an option.
  expect_out({8, 1, 2, 4, 0x05, 0xb4, 0, 0}, {8, 1, 2, 4, 0x05, 0xb4, 0, 0}, 40001);
  // An MSS of length 6.
  expect_out({2, 6, 0x05, 0xb4, 0, 0, 0, 0}, {2, 6, 0x05, 0xb4, 0, 0, 0, 0}, 40002);
  // End of options before the MSS.
  expect_out({0, 0, 0, 0, 2, 4, 0x05, 0xb4}, {0, 0, 0, 0, 2, 4, 0x05, 0xb4}, 40003);
}

TEST_F(NatMssClampTest, AnOptionRunningPastTheHeaderIsNotReadIntoThePayload) {
  // The header ends with an MSS kind byte whose length and value would be payload bytes: the
  // payload must stay as it is.
  Bytes payload = {4, 0x05, 0xb4, 0xaa, 0xbb, 0xcc};
  TcpFields in{.flags = kSyn, .options = {1, 1, 1, 2}, .payload = payload};
  Bytes result = pass(kLan, ipv4(lan_host(), remote(), kProtoTcp, tcp(lan_host(), remote(), 40000, 443, in)));
  EXPECT_TRUE(same_bytes(result, ipv4(wan_own(), remote(), kProtoTcp, tcp(wan_own(), remote(), 40000, 443, in))));
}

TEST_F(NatMssClampTest, DataOffsetPastTheSegmentIsNotRead) {
  // The data offset claims 60 bytes of header; the segment ends after 24, at an unmapped page.
  TcpFields in{.flags = kSyn, .options = {1, 1, 1, 1}, .data_offset = 15};
  Bytes packet = ipv4(lan_host(), remote(), kProtoTcp, tcp(lan_host(), remote(), 40000, 443, in));
  GuardedFrame frame(from_lan(packet), kLan);
  burst.reset(kLan, 1);
  burst.pkts[0] = frame.mbuf();
  run_stages(burst, {&parse, &guard, &nat});
  EXPECT_EQ(burst.action[0], Action::kContinue);
  if (burst.action[0] == Action::kContinue) {
    EXPECT_TRUE(same_bytes(out(), ipv4(wan_own(), remote(), kProtoTcp, tcp(wan_own(), remote(), 40000, 443, in))));
  }
  release();  // before the frame's memory goes
}

class NatMssClampToMtuTest : public NatFixture {
 protected:
  NatMssClampToMtuTest() : NatFixture({.nat = R"({"mss_clamp": "mtu"})", .wan_mtu = 1400}) {}
};

TEST_F(NatMssClampToMtuTest, ClampsToTheSmallerMtuOfThePathMinus40) {
  TcpFields in{.flags = kSyn, .options = mss_option(1460)};
  Bytes result = pass(kLan, ipv4(lan_host(), remote(), kProtoTcp, tcp(lan_host(), remote(), 40000, 443, in)));
  EXPECT_EQ(tcp_mss_of(result, 20), 1360);
  TcpFields syn_ack{.flags = kSyn | kAck, .options = mss_option(1460)};
  Bytes back = pass(kWan, ipv4(remote(), wan_own(), kProtoTcp, tcp(remote(), wan_own(), 443, 40000, syn_ack)));
  EXPECT_EQ(tcp_mss_of(back, 20), 1360) << "the LAN is 1500 but the packet came over the 1400 WAN";
  TcpFields small{.flags = kSyn, .options = mss_option(1200)};
  Bytes untouched = pass(kLan, ipv4(lan_host(), remote(), kProtoTcp, tcp(lan_host(), remote(), 40001, 443, small)));
  EXPECT_EQ(tcp_mss_of(untouched, 20), 1200);
}

class NatTtlSetTest : public NatFixture {
 protected:
  NatTtlSetTest()
      : NatFixture({.nat = R"({"ttl_set": 50, "port_forwards": [
          {"protocol": "tcp", "external": 8080, "internal": "10.10.0.13", "internal_port": 80}]})"}),
        neighbors(config.neighbors) {
    neighbors.add_static(kWan, wan_gw(), wan_gw_mac());
    neighbors.add_static(kLan, lan_host(), lan_host_mac());
    neighbors.add_static(kLan, server(), server_mac());
    published.publish(neighbors.snapshot());
  }
  // Through the whole of a worker's pipeline up to TX: the TTL that leaves.
  uint8_t ttl_out(uint16_t port, const Bytes& packet, const rte_ether_addr& mac = lan_host_mac()) {
    release();
    fill_burst(burst, port, {port == kLan ? from_lan(packet, mac) : from_wan(packet)});
    run_stages(burst, {&parse, &guard, &nat, &l3});
    EXPECT_EQ(burst.action[0], Action::kForward);
    Frame frame = Frame::of(burst.pkts[0]);
    EXPECT_TRUE(checksums_valid(frame.ip_packet()));
    return frame.ttl();
  }
  NeighborTable neighbors;
  RcuPublished<NeighborSnapshot> published;
  L3Stage l3{ports, published};
};

TEST_F(NatTtlSetTest, PacketsLeavingByTheWanCarryTheConfiguredTtl) {
  for (uint8_t ttl : {uint8_t{2}, uint8_t{64}, uint8_t{128}, uint8_t{255}}) {
    Bytes packet = ipv4(lan_host(), remote(), kProtoUdp, udp(lan_host(), remote(), 40000, 53, payload_bytes(20)), {.ttl = ttl});
    EXPECT_EQ(ttl_out(kLan, packet), 50) << "sent with TTL " << int{ttl};
  }
  // Replies to the LAN are routed as usual.
  EXPECT_EQ(ttl_out(kWan, ipv4(remote(), wan_own(), kProtoUdp, udp(remote(), wan_own(), 53, 40000, payload_bytes(20)), {.ttl = 64})),
            63);
  // A forwarded server's replies leave by the WAN; what comes in for it does not.
  EXPECT_EQ(ttl_out(kWan, ipv4(remote(), wan_own(), kProtoTcp, tcp(remote(), wan_own(), 5555, 8080, {.flags = kSyn}), {.ttl = 100})),
            99);
  EXPECT_EQ(ttl_out(kLan, ipv4(server(), remote(), kProtoTcp, tcp(server(), remote(), 80, 5555, {.flags = kSyn | kAck}), {.ttl = 64}),
                    server_mac()),
            50);
}

// ---- limits --------------------------------------------------------------------------------

Bytes udp_from_lan_port(uint16_t sport) {
  return from_lan(ipv4(lan_host(), remote(), kProtoUdp, udp(lan_host(), remote(), sport, 53, payload_bytes(10))));
}

class NatQuotaTest : public NatFixture {
 protected:
  NatQuotaTest() : NatFixture({.nat = R"({"sessions_per_subscriber": 2})"}) {}
};

TEST_F(NatQuotaTest, TheSubscribersThirdSessionIsDropped) {
  run(kLan, {udp_from_lan_port(40000), udp_from_lan_port(40001), udp_from_lan_port(40002)});
  EXPECT_EQ(burst.action[0], Action::kContinue);
  EXPECT_EQ(burst.action[1], Action::kContinue);
  ASSERT_EQ(burst.action[2], Action::kDrop);
  EXPECT_EQ(burst.drop_reason[2], DropReason::kNatQuota);
  EXPECT_EQ(sessions.counters().refused_quota, 1u);
  run(kLan, {udp_from_lan_port(40000)});
  EXPECT_EQ(burst.action[0], Action::kContinue) << "an existing session still works";
  EXPECT_TRUE(same_bytes(pass(kLan, ipv4(lan_host2(), remote(), kProtoUdp, udp(lan_host2(), remote(), 1, 2, {})), lan_host2_mac()),
                         ipv4(wan_own(), remote(), kProtoUdp, udp(wan_own(), remote(), 1024, 2, {}))))
      << "other subscribers are not affected";
}

class NatTableFullTest : public NatFixture {
 protected:
  NatTableFullTest() : NatFixture({.capacity = 64}) {}
};

TEST_F(NatTableFullTest, NewFlowsAreDroppedWhenNoSessionIsFree) {
  for (uint16_t first : {uint16_t{40000}, uint16_t{40032}}) {
    std::vector<Bytes> frames;
    for (uint16_t i = 0; i < 32; ++i) frames.push_back(udp_from_lan_port(static_cast<uint16_t>(first + i)));
    run(kLan, frames);
    for (uint16_t i = 0; i < 32; ++i) ASSERT_EQ(burst.action[i], Action::kContinue) << first + i;
  }
  EXPECT_EQ(sessions.size(), 64u);
  run(kLan, {udp_from_lan_port(50000), udp_from_lan_port(40005)});
  ASSERT_EQ(burst.action[0], Action::kDrop);
  EXPECT_EQ(burst.drop_reason[0], DropReason::kNatTableFull);
  EXPECT_EQ(burst.action[1], Action::kContinue) << "existing sessions go on";
}

class NatPortsExhaustedTest : public NatFixture {
 protected:
  NatPortsExhaustedTest() : NatFixture({.nat = R"({"ports": "20000-20063"})"}) {}
};

TEST_F(NatPortsExhaustedTest, NewMappingsAreDroppedWhenNoPortIsFree) {
  for (uint16_t first : {uint16_t{1}, uint16_t{33}}) {
    std::vector<Bytes> frames;
    for (uint16_t i = 0; i < 32; ++i) frames.push_back(udp_from_lan_port(static_cast<uint16_t>(first + i)));
    run(kLan, frames);
    for (uint16_t i = 0; i < 32; ++i) {
      ASSERT_EQ(burst.action[i], Action::kContinue);
      uint16_t port = sport_of(out(i));
      ASSERT_GE(port, 20000);
      ASSERT_LE(port, 20063);
    }
  }
  run(kLan, {udp_from_lan_port(100)});
  ASSERT_EQ(burst.action[0], Action::kDrop);
  EXPECT_EQ(burst.drop_reason[0], DropReason::kNatPortsExhausted);
}

// ---- two WANs: the WAN routing table picks the WAN of new flows ----------------------------

// Port 2: a second WAN, 203.0.113.2/25 behind 203.0.113.1 (link 1 of the routing table; wan0
// on port 1 is link 0).
constexpr uint16_t kWan2 = 2;
constexpr uint64_t kNowMs = 1000;  // the WAN healths' clock
uint32_t wan2_own() { return ip("203.0.113.2"); }
uint32_t wan2_gw() { return ip("203.0.113.1"); }
rte_ether_addr wan2_gw_mac() { return host_mac(0x02); }
uint32_t gateway_of(uint16_t port) { return port == kWan2 ? wan2_gw() : wan_gw(); }
rte_ether_addr gateway_mac_of(uint16_t port) { return port == kWan2 ? wan2_gw_mac() : wan_gw_mac(); }
uint32_t address_of(uint16_t port) { return port == kWan2 ? wan2_own() : wan_own(); }

std::string two_wan_config_text(const std::string& nat, int wan2_mtu) {
  nlohmann::json c = nlohmann::json::parse(kTwoPortConfig);
  c["ports"].push_back({{"name", "wan1"},
                        {"role", "wan"},
                        {"device", "net_ring2"},
                        {"address", "203.0.113.2/25"},
                        {"gateway", "203.0.113.1"},
                        {"mtu", wan2_mtu}});
  c["nat"] = nlohmann::json::parse(nat);
  return c.dump();
}

Bytes udp_from(uint32_t host, uint16_t sport) {
  return ipv4(host, remote(), kProtoUdp, udp(host, remote(), sport, 53, payload_bytes(40)));
}

// parse, guard, nat and l3 over three ports, the nat stage reading a published
// WanRoutingTable whose selector observed one WanHealth per link.
class NatTwoWanFixture : public PoolCheckedTest {
 protected:
  explicit NatTwoWanFixture(const std::string& nat = "{}", int wan2_mtu = 1500)
      : config(parse_config(two_wan_config_text(nat, wan2_mtu))),
        ports(make_port_table(config)),
        sessions(config.nat, 4096, 0, 1, rte_socket_id(), static_cast<uint8_t>(ports.ports.size())),
        guard(ports, config.lan_prefixes()),
        nat(config, ports, sessions, counters, 0, 1, nullptr, &routing, nullptr),
        neighbors(config.neighbors) {
    for (const auto& rule : config.nat.port_forwards)
      for (uint8_t wan : {uint8_t{kWan}, uint8_t{kWan2}})
        for (uint32_t port = rule.external_first; port <= rule.external_last; ++port) {
          if (rule.tcp) sessions.reserve_port(kProtoTcp, wan, static_cast<uint16_t>(port), true);
          if (rule.udp) sessions.reserve_port(kProtoUdp, wan, static_cast<uint16_t>(port), true);
        }
    neighbors.add_static(kWan, wan_gw(), wan_gw_mac());
    neighbors.add_static(kWan2, wan2_gw(), wan2_gw_mac());
    neighbors.add_static(kLan, lan_host(), lan_host_mac());
    neighbors.add_static(kLan, lan_host2(), lan_host2_mac());
    neighbors.add_static(kLan, server(), server_mac());
    published.publish(neighbors.snapshot());
  }
  ~NatTwoWanFixture() override { release(); }

  // A routing table as the management thread publishes it: links 0 and 1 (wan0, wan1) with
  // weight 1 each, their tiers from wans[0] and wans[1] now.
  void publish(WanPolicy default_policy, std::vector<std::pair<Ipv4Prefix, WanPolicy>> rules = {}) {
    auto table = std::make_unique<WanRoutingTable>();
    table->selector = WanSelector({1, 1});
    for (std::size_t i = 0; i < wans.size(); ++i) table->selector.observe(i, wans[i], kNowMs);
    table->links = {{kWan, wan_own()}, {kWan2, wan2_own()}};
    table->rules = std::move(rules);
    table->default_policy = default_policy;
    routing.publish(std::move(table));
  }
  void take_down(std::size_t link) { wans.at(link).force(false, kNowMs); }

  void release() {
    for (uint16_t i = 0; i < burst.count; ++i)
      if (burst.action[i] != Action::kSent) rte_pktmbuf_free(burst.pkts[i]);
    burst.count = 0;
  }
  // One frame through the stages from `port`; its verdict.
  Action run(uint16_t port, const Bytes& packet, const rte_ether_addr& lan_mac = lan_host_mac()) {
    release();
    const Bytes frame = port == kLan    ? from_lan(packet, lan_mac)
                        : port == kWan2 ? ethernet(port_mac(kWan2), wan2_gw_mac(), kEtherIpv4, packet)
                                        : from_wan(packet);
    fill_burst(burst, port, {frame});
    run_stages(burst, {&parse, &guard, &nat, &l3});
    return burst.action[0];
  }
  const PacketMeta& meta() const { return *packet_meta(burst.pkts[0]); }
  Frame frame() const { return Frame::of(burst.pkts[0]); }

  // One packet from the LAN that must leave by WAN port `wan` (its gateway's MAC, that WAN's
  // address, the NAT stage's wan_port); the IPv4 packet that leaves.
  Bytes leaves_by(uint16_t wan, const Bytes& packet, const rte_ether_addr& lan_mac = lan_host_mac()) {
    Action action = run(kLan, packet, lan_mac);
    EXPECT_EQ(action, Action::kForward) << (action == Action::kDrop ? drop_reason_name(burst.drop_reason[0]) : "");
    if (action != Action::kForward) return {};
    EXPECT_EQ(meta().wan_port, wan) << "the nat stage's choice";
    EXPECT_EQ(meta().egress_port, wan) << "the l3 stage's route";
    EXPECT_EQ(meta().next_hop, gateway_of(wan)) << format_ipv4(meta().next_hop);
    Frame out = frame();
    EXPECT_EQ(mac_text(out.dst), mac_text(gateway_mac_of(wan)));
    EXPECT_EQ(mac_text(out.src), mac_text(port_mac(wan)));
    Bytes result = out.ip_packet();
    EXPECT_EQ(get32(result, 12), address_of(wan)) << "source " << format_ipv4(get32(result, 12));
    EXPECT_TRUE(checksums_valid(result));
    return result;
  }
  // One packet from the LAN that must be dropped; the reason.
  DropReason dropped(const Bytes& packet, const rte_ether_addr& lan_mac = lan_host_mac()) {
    EXPECT_EQ(run(kLan, packet, lan_mac), Action::kDrop);
    return burst.action[0] == Action::kDrop ? burst.drop_reason[0] : DropReason::kCount;
  }

  Config config;
  PortTable ports;
  WorkerCounters counters;
  SessionTable sessions;
  RcuPublished<WanRoutingTable> routing;
  std::array<WanHealth, 2> wans;  // up from the start
  ParseStage parse{ports};
  GuardStage guard;
  NatStage nat;
  NeighborTable neighbors;
  RcuPublished<NeighborSnapshot> published;
  L3Stage l3{ports, published};
  Burst burst;
};

class NatTwoWanTest : public NatTwoWanFixture {};

struct WanChoiceCase {
  std::string name;
  WanPolicy policy;                // the default policy
  std::vector<std::size_t> down;   // links forced down
  uint16_t port;                   // the WAN port new flows leave by
};
void PrintTo(const WanChoiceCase& c, std::ostream* out) { *out << c.name; }

std::vector<WanChoiceCase> wan_choice_cases() {
  return {
      {"prefer_link_0", WanPolicy::preferred(0), {}, kWan},
      {"prefer_link_1", WanPolicy::preferred(1), {}, kWan2},
      {"prefer_link_1_while_it_is_down", WanPolicy::preferred(1), {1}, kWan},
      {"prefer_link_0_while_it_is_down", WanPolicy::preferred(0), {0}, kWan2},
      {"balanced_link_0_down", WanPolicy::weighted(), {0}, kWan2},
      {"balanced_link_1_down", WanPolicy::weighted(), {1}, kWan},
  };
}

class NatWanChoice : public NatTwoWanFixture, public ::testing::WithParamInterface<WanChoiceCase> {};

TEST_P(NatWanChoice, NewFlowLeavesByTheChosenWanWithItsAddress) {
  const WanChoiceCase& c = GetParam();
  for (std::size_t link : c.down) take_down(link);
  publish(c.policy);
  Bytes out = leaves_by(c.port, udp_from(lan_host(), 40000));
  EXPECT_TRUE(same_bytes(out, ipv4(address_of(c.port), remote(), kProtoUdp,
                                   udp(address_of(c.port), remote(), 40000, 53, payload_bytes(40)), {.ttl = 63})))
      << "only the source address (and checksums, TTL) change";
  EXPECT_EQ(sessions.sessions_on_wan(static_cast<uint8_t>(c.port)), 1u);
  EXPECT_EQ(sessions.size(), 1u);
  // The next packet takes the fast path to the same WAN.
  EXPECT_TRUE(same_bytes(leaves_by(c.port, udp_from(lan_host(), 40000)), out));
  EXPECT_EQ(sessions.size(), 1u);
  // The reply arrives on that WAN at its address and reaches the host.
  Bytes reply = ipv4(remote(), address_of(c.port), kProtoUdp, udp(remote(), address_of(c.port), 53, 40000, payload_bytes(9)));
  ASSERT_EQ(run(c.port, reply), Action::kForward);
  EXPECT_EQ(meta().egress_port, kLan);
  EXPECT_EQ(meta().wan_port, kNoWanPort) << "a packet to the LAN leaves by no WAN";
  EXPECT_TRUE(same_bytes(frame().ip_packet(), ipv4(remote(), lan_host(), kProtoUdp,
                                                   udp(remote(), lan_host(), 53, 40000, payload_bytes(9)), {.ttl = 63})));
}

INSTANTIATE_TEST_SUITE_P(Table, NatWanChoice, ::testing::ValuesIn(wan_choice_cases()),
                         [](const ::testing::TestParamInfo<WanChoiceCase>& info) { return info.param.name; });

TEST_F(NatTwoWanTest, EveryProtocolLeavesByThePreferredWan) {
  publish(WanPolicy::preferred(1));
  Bytes syn = leaves_by(kWan2, ipv4(lan_host(), remote(), kProtoTcp, tcp(lan_host(), remote(), 40000, 443, {.flags = kSyn})));
  EXPECT_EQ(sport_of(syn), 40000);
  Bytes echo = leaves_by(kWan2, ipv4(lan_host(), remote(), kProtoIcmp, icmp(kEchoRequest, 0, 0x4d20007, payload_bytes(20))));
  EXPECT_EQ(echo_id_of(echo), 0x4d2);
  EXPECT_EQ(sessions.sessions_on_wan(kWan2), 2u);
  EXPECT_EQ(sessions.sessions_on_wan(kWan), 0u);
}

TEST_F(NatTwoWanTest, WithBothWansDownNewFlowsAreDroppedAndSessionsStillPass) {
  publish(WanPolicy::preferred(1));
  ASSERT_FALSE(leaves_by(kWan2, udp_from(lan_host(), 40000)).empty());
  take_down(0);
  take_down(1);
  publish(WanPolicy::preferred(1));
  EXPECT_EQ(dropped(udp_from(lan_host2(), 40000), lan_host2_mac()), DropReason::kWanAllDown);
  EXPECT_EQ(dropped(udp_from(lan_host(), 40001)), DropReason::kWanAllDown) << "a new flow of a host with a session";
  EXPECT_EQ(dropped(ipv4(lan_host(), remote(), kProtoTcp, tcp(lan_host(), remote(), 40002, 443, {.flags = kSyn}))),
            DropReason::kWanAllDown);
  EXPECT_EQ(sessions.size(), 1u) << "nothing created for them";
  // The session made before still goes out, and its replies come in.
  leaves_by(kWan2, udp_from(lan_host(), 40000));
  Bytes reply = ipv4(remote(), wan2_own(), kProtoUdp, udp(remote(), wan2_own(), 53, 40000, payload_bytes(9)));
  ASSERT_EQ(run(kWan2, reply), Action::kForward);
  EXPECT_EQ(frame().ip_dst(), lan_host());
  // One WAN back: new flows go again.
  wans[0].force(std::nullopt, kNowMs + 1);
  publish(WanPolicy::preferred(1));
  leaves_by(kWan, udp_from(lan_host2(), 40000), lan_host2_mac());
}

TEST_F(NatTwoWanTest, PolicyRulesSendEachHostToItsWan) {
  // First match wins: host .11 by link 1, the rest of the LAN by link 0; default link 1.
  publish(WanPolicy::preferred(1), {{Ipv4Prefix{lan_host(), 32}, WanPolicy::preferred(1)},
                                    {Ipv4Prefix{ip("10.10.0.0"), 24}, WanPolicy::preferred(0)}});
  leaves_by(kWan2, udp_from(lan_host(), 40000));
  leaves_by(kWan, udp_from(lan_host2(), 40000), lan_host2_mac());
  EXPECT_EQ(sessions.sessions_on_wan(kWan2), 1u);
  EXPECT_EQ(sessions.sessions_on_wan(kWan), 1u);
  // Rules the other way round: the /24 now matches first for both.
  publish(WanPolicy::preferred(1), {{Ipv4Prefix{ip("10.10.0.0"), 24}, WanPolicy::preferred(0)},
                                    {Ipv4Prefix{lan_host(), 32}, WanPolicy::preferred(1)}});
  leaves_by(kWan, udp_from(lan_host(), 40001));
  // A host no rule covers takes the default. (10.10.0.13 is the server's address.)
  publish(WanPolicy::preferred(1), {{Ipv4Prefix{lan_host(), 32}, WanPolicy::preferred(0)}});
  leaves_by(kWan2, udp_from(server(), 40000), server_mac());
  leaves_by(kWan, udp_from(lan_host(), 40002));
}

TEST_F(NatTwoWanTest, ASessionKeepsItsWanWhenTheTableChanges) {
  publish(WanPolicy::preferred(1));
  Bytes first = leaves_by(kWan2, udp_from(lan_host(), 40000));
  // The preference moves to link 0: the flow stays on wan1, a new one of the same host goes by wan0.
  publish(WanPolicy::preferred(0));
  EXPECT_TRUE(same_bytes(leaves_by(kWan2, udp_from(lan_host(), 40000)), first));
  leaves_by(kWan, udp_from(lan_host(), 40001));
  // wan1 goes down: the nat stage does not move the session by itself (removing it is the
  // failover's job, SessionTable::remove_wan), so it still leaves by wan1.
  take_down(1);
  publish(WanPolicy::preferred(1));
  EXPECT_TRUE(same_bytes(leaves_by(kWan2, udp_from(lan_host(), 40000)), first));
  // Once its session is removed, the flow's next packet starts over on the WAN that works.
  EXPECT_EQ(sessions.remove_wan(kWan2), 1u);
  Bytes moved = leaves_by(kWan, udp_from(lan_host(), 40000));
  EXPECT_EQ(sport_of(moved), 40000);
  EXPECT_EQ(sessions.sessions_on_wan(kWan), 2u);
  EXPECT_EQ(sessions.sessions_on_wan(kWan2), 0u);
}

TEST_F(NatTwoWanTest, ReplyToTheOtherWansAddressIsNotTranslated) {
  publish(WanPolicy::preferred(1));
  leaves_by(kWan2, udp_from(lan_host(), 40000));
  // wan0's address has no mapping for 40000: the packet is for the gateway itself, not the host.
  Bytes wrong = ipv4(remote(), wan_own(), kProtoUdp, udp(remote(), wan_own(), 53, 40000, payload_bytes(9)));
  ASSERT_EQ(run(kWan, wrong), Action::kPunt);
  EXPECT_EQ(static_cast<PuntReason>(meta().punt_reason), PuntReason::kLocal);
  EXPECT_TRUE(same_bytes(frame().ip_packet(), wrong));
}

TEST_F(NatTwoWanTest, BeforeAnyTableIsPublishedNewFlowsTakeTheDefaultRoutesWan) {
  leaves_by(kWan, udp_from(lan_host(), 40000));
  EXPECT_EQ(sessions.sessions_on_wan(kWan), 1u);
}

class NatTwoWanForwardTest : public NatTwoWanFixture {
 protected:
  NatTwoWanForwardTest()
      : NatTwoWanFixture(R"({"port_forwards": [
          {"protocol": "tcp", "external": 8080, "internal": "10.10.0.13", "internal_port": 80}]})") {
    publish(WanPolicy::preferred(0));
  }
};

TEST_F(NatTwoWanForwardTest, TheServersReplyLeavesByTheWanTheConnectionCameIn) {
  for (uint16_t wan : {kWan2, kWan}) {
    SCOPED_TRACE("in by port " + std::to_string(wan));
    TcpFields syn{.flags = kSyn};
    uint16_t client_port = static_cast<uint16_t>(5000 + wan);
    ASSERT_EQ(run(wan, ipv4(remote(), address_of(wan), kProtoTcp, tcp(remote(), address_of(wan), client_port, 8080, syn))),
              Action::kForward);
    EXPECT_EQ(frame().ip_dst(), server());
    TcpFields syn_ack{.flags = kSyn | kAck, .seq = 7000, .ack = 1001};
    Bytes reply = leaves_by(wan, ipv4(server(), remote(), kProtoTcp, tcp(server(), remote(), 80, client_port, syn_ack)),
                            server_mac());
    EXPECT_TRUE(same_bytes(reply, ipv4(address_of(wan), remote(), kProtoTcp,
                                       tcp(address_of(wan), remote(), 8080, client_port, syn_ack), {.ttl = 63})))
        << "from the address the client connected to, whatever the routing table prefers";
  }
}

class NatTwoWanMssTest : public NatTwoWanFixture {
 protected:
  NatTwoWanMssTest() : NatTwoWanFixture(R"({"mss_clamp": "mtu"})", 1400) {}
};

TEST_F(NatTwoWanMssTest, SynsAreClampedToTheMtuOfTheWanTheyLeaveBy) {
  // wan0 and the LAN are 1500, wan1 1400: a SYN leaving by wan1 must offer at most 1360.
  TcpFields syn{.flags = kSyn, .options = mss_option(1460)};
  publish(WanPolicy::preferred(1));
  Bytes by_wan1 = leaves_by(kWan2, ipv4(lan_host(), remote(), kProtoTcp, tcp(lan_host(), remote(), 40000, 443, syn)));
  ASSERT_FALSE(by_wan1.empty());
  EXPECT_EQ(tcp_mss_of(by_wan1, 20), 1360);
  publish(WanPolicy::preferred(0));
  Bytes by_wan0 = leaves_by(kWan, ipv4(lan_host(), remote(), kProtoTcp, tcp(lan_host(), remote(), 40001, 443, syn)));
  ASSERT_FALSE(by_wan0.empty());
  EXPECT_EQ(tcp_mss_of(by_wan0, 20), 1460);
  // The answer to the first comes in over wan1: clamped for it too.
  TcpFields syn_ack{.flags = kSyn | kAck, .options = mss_option(1460)};
  ASSERT_EQ(run(kWan2, ipv4(remote(), wan2_own(), kProtoTcp, tcp(remote(), wan2_own(), 443, 40000, syn_ack))),
            Action::kForward);
  EXPECT_EQ(tcp_mss_of(frame().ip_packet(), 20), 1360);
}

}  // namespace
}  // namespace fairgate::test
