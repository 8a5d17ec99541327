// The p2p stage over synthetic frames, after parse, guard, classify and nat as in the gateway
// pipeline (classify before nat from the LAN, after it from the WAN), with the shipped
// signature set: which flows get the P2P class, what the policies do to them, the peer cache,
// UDP and protocols switched off, a signature reload; and the rate caps the policies charge,
// on a clock the tests drive.
#include "classify/p2p_control.h"
#include "classify/p2p_dataplane.h"
#include "classify/p2p_signatures.h"
#include "config/json_path.h"
#include "qos/hierarchy.h"
#include "qos/subscriber_map.h"
#include "stages/guard/guard_stage.h"
#include "stages/nat/nat_stage.h"
#include "stages/p2p/p2p_stage.h"
#include "stages/parse/parse_stage.h"
#include "stages/qos/classify_stage.h"
#include "test_env.h"

#include <rte_cycles.h>
#include <rte_lcore.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace fairgate::test {
namespace {

constexpr uint16_t kLan = 0, kWan = 1;
constexpr uint8_t kSyn = 0x02, kPsh = 0x08, kAck = 0x10;  // TCP flags
constexpr auto kBitTorrent = P2pProtocol::kBitTorrent;
constexpr auto kP2pClass = static_cast<uint8_t>(TrafficClass::kP2p);

uint32_t remote() { return internet_host(); }  // 192.0.2.10
uint32_t remote2() { return ip("203.0.113.20"); }
uint32_t remote3() { return ip("203.0.113.30"); }

const std::filesystem::path kConfDir = std::filesystem::path(FAIRGATE_SOURCE_DIR) / "conf";

// ---- payloads ------------------------------------------------------------------------------

Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }
Bytes operator+(Bytes a, const Bytes& b) {
  append(a, b);
  return a;
}
Bytes le32(uint32_t v) {
  return {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 24)};
}
Bytes id20() { return text(std::string_view("\x9a\x11\x03\xe1\x4b\x00\x7f\xf2\x10\x22\x8c\xa9\x01\x02\x03\x04\x05\x06\x07\x08", 20)); }

// BEP 3 peer wire handshake: pstrlen 19, the protocol string, 8 reserved bytes, info hash, peer id.
Bytes bittorrent_handshake() {
  return text("\x13" "BitTorrent protocol") + Bytes(8, 0) + id20() + text("-TR2940-k8hj0wgej6ch");
}
// BEP 5 DHT get_peers query.
Bytes dht_query() {
  return text("d1:ad2:id20:") + id20() + text("9:info_hash20:") + id20() + text("e1:q9:get_peers1:t2:aa1:y1:qe");
}
// eDonkey TCP message: header byte, little-endian length of opcode and data, opcode, data.
Bytes edonkey(uint8_t header, uint8_t opcode, const Bytes& data) {
  return Bytes{header} + le32(static_cast<uint32_t>(data.size() + 1)) + Bytes{opcode} + data;
}
Bytes edonkey_hello() { return edonkey(0xe3, 0x01, Bytes{0x10} + Bytes(16, 0x33) + Bytes(6, 0) + le32(0)); }
Bytes edonkey_hello_answer() { return edonkey(0xe3, 0x4c, Bytes{0x10} + Bytes(16, 0x44) + Bytes(6, 0) + le32(0)); }
// What an encrypted stream (BitTorrent's MSE) looks like to a signature: noise.
Bytes random_bytes(std::size_t length, uint32_t seed) {
  std::mt19937 generator(seed);
  Bytes out(length);
  for (auto& byte : out) byte = static_cast<uint8_t>(generator());
  return out;
}
Bytes http_request(int n) {
  return text("GET /page" + std::to_string(n) + ".html HTTP/1.1\r\nHost: www.example.com\r\n"
              "User-Agent: Mozilla/5.0\r\nAccept: text/html\r\n\r\n");
}
Bytes http_response(int n) {
  return text("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 120\r\n\r\n<html><body>page " +
              std::to_string(n) + "</body></html>");
}

// ---- packets -------------------------------------------------------------------------------


Bytes tcp(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t flags, const Bytes& payload) {
  Bytes out;
  put16(out, sport);
  put16(out, dport);
  put32(out, 1000);
  put32(out, 0);
  put8(out, 5 << 4);
  put8(out, flags);
  put16(out, 64240);
  put16(out, 0);  // checksum
  put16(out, 0);  // urgent pointer
  append(out, payload);
  set16(out, 16, transport_checksum(src, dst, kProtoTcp, out));
  return out;
}

Bytes from_lan(const Bytes& packet, const rte_ether_addr& mac = lan_host_mac()) {
  return ethernet(port_mac(kLan), mac, kEtherIpv4, packet);
}
Bytes from_wan(const Bytes& packet) { return ethernet(port_mac(kWan), wan_gw_mac(), kEtherIpv4, packet); }

std::size_t ihl_of(const Bytes& packet) { return (packet.at(0) & 0x0f) * 4u; }
uint16_t sport_of(const Bytes& packet) { return get16(packet, ihl_of(packet)); }

// A TCP or UDP flow from a LAN host to a remote endpoint. The external port is what the NAT
// gave it, learnt from its first translated packet, so replies from the WAN can reach it.
struct Flow {
  uint8_t proto = kProtoTcp;
  uint32_t inside = lan_host();
  uint16_t inside_port = 40000;
  uint32_t remote = 0;
  uint16_t remote_port = 0;
  uint16_t external_port = 0;

  Bytes out_packet(uint8_t flags, const Bytes& payload) const {
    return ipv4(inside, remote, proto,
                proto == kProtoTcp ? tcp(inside, remote, inside_port, remote_port, flags, payload)
                                   : udp(inside, remote, inside_port, remote_port, payload));
  }
  Bytes in_packet(uint8_t flags, const Bytes& payload) const {
    return ipv4(remote, wan_own(), proto,
                proto == kProtoTcp ? tcp(remote, wan_own(), remote_port, external_port, flags, payload)
                                   : udp(remote, wan_own(), remote_port, external_port, payload));
  }
  Bytes out_frame(uint8_t flags, const Bytes& payload) const { return from_lan(out_packet(flags, payload)); }
  Bytes in_frame(uint8_t flags, const Bytes& payload) const { return from_wan(in_packet(flags, payload)); }
};

Flow tcp_flow(uint16_t inside_port, uint32_t remote_address, uint16_t remote_port) {
  return Flow{.proto = kProtoTcp, .inside_port = inside_port, .remote = remote_address, .remote_port = remote_port};
}
Flow udp_flow(uint16_t inside_port, uint32_t remote_address, uint16_t remote_port) {
  return Flow{.proto = kProtoUdp, .inside_port = inside_port, .remote = remote_address, .remote_port = remote_port};
}

// ---- the shipped signatures ----------------------------------------------------------------

// Compiled once for the whole suite (Hyperscan takes a while), the way the gateway loads them:
// the configuration's default file name, relative to the configuration's directory.
std::shared_ptr<const P2pDatabase> shipped_signatures() {
  static const std::shared_ptr<const P2pDatabase> database =
      load_configured_signatures(P2pConfig{}, kConfDir, nullptr).current();
  return database;
}

// ---- the stages ----------------------------------------------------------------------------

struct P2pSetup {
  std::string p2p = "{}";  // the config's "p2p" section
};

std::string config_text(const P2pSetup& setup) {
  nlohmann::json c = nlohmann::json::parse(kTwoPortConfig);
  c["p2p"] = nlohmann::json::parse(setup.p2p);
  return c.dump();
}

// What became of one packet.
struct Outcome {
  Action action = Action::kDrop;
  DropReason reason = DropReason::kCount;  // when dropped
  uint8_t class_before = 0;                // as classify left it
  uint8_t traffic_class = 0;               // after the p2p stage
  uint32_t session = kNoNatSession;
  uint32_t bytes = 0;  // the frame's length

  bool passed() const { return action == Action::kContinue; }
  bool p2p() const { return passed() && traffic_class == kP2pClass; }
  // Passed with the class classify gave it.
  bool untouched() const { return passed() && traffic_class == class_before; }
};

std::ostream& operator<<(std::ostream& out, const Outcome& o) {
  out << o.action;
  if (o.action == Action::kDrop) out << " (" << o.reason << ")";
  return out << ", class " << int{o.class_before} << " -> " << int{o.traffic_class};
}

// parse, guard, classify and nat as the gateway pipeline orders them, then the p2p stage: one
// instance per direction, as a worker builds its two stage lists. One worker, no shaping
// (qos null, no pipes), so every host has the global policy.
class P2pFixture : public PoolCheckedTest {
 protected:
  explicit P2pFixture(const P2pSetup& setup = {})
      : config(parse_config(config_text(setup))),
        ports(make_port_table(config)),
        sessions(config.nat, 4096, 0, 1, rte_socket_id(), static_cast<uint8_t>(ports.ports.size())),
        guard(ports, config.lan_prefixes()),
        nat(config, ports, sessions, worker_counters, 0, 1),
        classify(ports, config.qos),
        dataplane(config.p2p, 1, 0, shipped_signatures()),
        p2p_from_lan(ports, dataplane, sessions, nullptr, worker_counters, 0),
        p2p_from_wan(ports, dataplane, sessions, nullptr, worker_counters, 0) {}
  ~P2pFixture() override { release(); }

  void release() {
    for (uint16_t i = 0; i < burst.count; ++i)
      if (burst.action[i] != Action::kSent) rte_pktmbuf_free(burst.pkts[i]);
    burst.count = 0;
  }

  // One burst through the stages; the outcome of each packet.
  std::vector<Outcome> run(uint16_t port, const std::vector<Bytes>& frames) {
    release();
    fill_burst(burst, port, frames);
    if (port == kLan) run_stages(burst, {&parse, &guard, &classify, &nat});
    else run_stages(burst, {&parse, &guard, &nat, &classify});
    std::vector<Outcome> outcomes(burst.count);
    for (uint16_t i = 0; i < burst.count; ++i) {
      EXPECT_EQ(burst.action[i], Action::kContinue) << "packet " << i << " did not reach the p2p stage: "
                                                    << burst.drop_reason[i];
      outcomes[i].class_before = packet_meta(burst.pkts[i])->traffic_class;
    }
    (port == kLan ? p2p_from_lan : p2p_from_wan).process(burst);
    for (uint16_t i = 0; i < burst.count; ++i) {
      const PacketMeta* meta = packet_meta(burst.pkts[i]);
      outcomes[i].action = burst.action[i];
      if (burst.action[i] == Action::kDrop) outcomes[i].reason = burst.drop_reason[i];
      outcomes[i].traffic_class = meta->traffic_class;
      outcomes[i].session = meta->nat_session;
      outcomes[i].bytes = rte_pktmbuf_pkt_len(burst.pkts[i]);
    }
    return outcomes;
  }

  Outcome send(uint16_t port, const Bytes& frame) { return run(port, {frame})[0]; }

  // A packet of `flow` from the LAN host; the flow learns its external port from the first.
  Outcome out(Flow& flow, uint8_t flags, const Bytes& payload = {}) {
    Outcome o = send(kLan, flow.out_frame(flags, payload));
    if (flow.external_port == 0 && o.passed()) flow.external_port = sport_of(Frame::of(burst.pkts[0]).ip_packet());
    return o;
  }
  // A packet of `flow` from the remote end, addressed as the NAT translated the flow.
  Outcome in(const Flow& flow, uint8_t flags, const Bytes& payload = {}) {
    EXPECT_NE(flow.external_port, 0) << "the flow has not been out yet";
    return send(kWan, flow.in_frame(flags, payload));
  }
  // The TCP handshake, neither packet with payload to recognise.
  void connect(Flow& flow) {
    Outcome syn = out(flow, kSyn);
    EXPECT_TRUE(syn.untouched()) << syn;
    Outcome syn_ack = in(flow, kSyn | kAck);
    EXPECT_TRUE(syn_ack.untouched()) << syn_ack;
  }
  // A flow's session (the one its last packet out or in had).
  const P2pFlowState& state_of(const Outcome& o) const { return sessions.p2p(o.session); }

  const P2pWorkerCounters& p2p_counters() const { return dataplane.counters(0); }
  const P2pWorkerCounters::Usage& usage(P2pProtocol protocol) const {
    return p2p_counters().protocols[static_cast<std::size_t>(protocol)];
  }

  void publish_global_policy(const P2pPolicy& policy) {
    auto table = std::make_unique<P2pPolicyTable>();
    table->global = policy;
    dataplane.policies().publish(std::move(table));
  }

  Config config;
  PortTable ports;
  WorkerCounters worker_counters;
  SessionTable sessions;
  ParseStage parse{ports};
  GuardStage guard;
  NatStage nat;
  ClassifyStage classify;
  P2pDataplane dataplane;
  P2pStage p2p_from_lan;
  P2pStage p2p_from_wan;
  Burst burst;
};

class P2pStageTest : public P2pFixture {};

// ---- recognition ---------------------------------------------------------------------------

TEST_F(P2pStageTest, ABitTorrentHandshakeMakesTheWholeFlowP2pBothWays) {
  Flow flow = tcp_flow(40000, remote(), 6881);
  connect(flow);
  Outcome handshake = out(flow, kPsh | kAck, bittorrent_handshake());
  EXPECT_NE(handshake.class_before, kP2pClass) << "classify alone does not know P2P";
  EXPECT_TRUE(handshake.p2p()) << "the packet that gives the verdict is in the P2P class: " << handshake;
  EXPECT_EQ(state_of(handshake).protocol, kBitTorrent);

  // The rest of the connection, both ways.
  Outcome answer = in(flow, kPsh | kAck, bittorrent_handshake());
  EXPECT_TRUE(answer.p2p()) << answer;
  Outcome piece_request = out(flow, kAck, random_bytes(1200, 1));
  EXPECT_TRUE(piece_request.p2p()) << piece_request;
  Outcome piece = in(flow, kAck, random_bytes(1400, 2));
  EXPECT_TRUE(piece.p2p()) << piece;
  EXPECT_EQ(answer.session, handshake.session);
  EXPECT_EQ(piece.session, handshake.session);

  // Counted from the packet that gave the verdict on; the handshake's SYNs were not P2P yet.
  const uint64_t bytes = handshake.bytes + answer.bytes + piece_request.bytes + piece.bytes;
  EXPECT_EQ(usage(kBitTorrent).flows.get(), 1u);
  EXPECT_EQ(usage(kBitTorrent).packets.get(), 4u);
  EXPECT_EQ(usage(kBitTorrent).bytes.get(), bytes);
  EXPECT_EQ(usage(kBitTorrent).dropped.get(), 0u);
  EXPECT_EQ(usage(P2pProtocol::kEdonkey).packets.get(), 0u);
  const auto& no_subscriber = p2p_counters().pipes.at(dataplane.slot_of(SubscriberMap::kNoPipe));
  EXPECT_EQ(no_subscriber.flows.get(), 1u);
  EXPECT_EQ(no_subscriber.packets.get(), 4u);
  EXPECT_EQ(no_subscriber.bytes.get(), bytes);
  // Once the verdict is given the flow costs no scan.
  EXPECT_EQ(p2p_counters().scanned_packets.get(), 1u);
  EXPECT_EQ(p2p_counters().scanned_bytes.get(), bittorrent_handshake().size());
  EXPECT_EQ(p2p_counters().from_peer_cache.get(), 0u);
}

TEST_F(P2pStageTest, AnOrdinaryWebFlowKeepsItsClassAndNoProtocol) {
  Flow flow = tcp_flow(40000, remote(), 80);
  connect(flow);
  // More payload packets each way than are inspected (8).
  for (int n = 0; n < 11; ++n) {
    Outcome request = out(flow, kPsh | kAck, http_request(n));
    ASSERT_NE(request.class_before, kP2pClass);
    EXPECT_TRUE(request.untouched()) << "request " << n << ": " << request;
    Outcome response = in(flow, kPsh | kAck, http_response(n));
    EXPECT_TRUE(response.untouched()) << "response " << n << ": " << response;
    EXPECT_EQ(state_of(response).protocol, P2pProtocol::kNone);
  }
  Outcome last = out(flow, kAck);
  EXPECT_TRUE(state_of(last).done()) << "inspection ends after packets_per_flow payload packets each way";
  EXPECT_EQ(p2p_counters().scanned_packets.get(), 16u) << "8 each way, no more";
  for (std::size_t p = 0; p < kP2pProtocolCount; ++p)
    EXPECT_EQ(p2p_counters().protocols[p].packets.get(), 0u) << p2p_protocol_name(static_cast<P2pProtocol>(p));
}

TEST_F(P2pStageTest, PacketsWithoutANatSessionPassUntouched) {
  // Under a drop policy, so that a packet the stage took for P2P would show as dropped.
  publish_global_policy({.action = P2pPolicy::Action::kDrop, .drop_marked = true});
  struct Case {
    const char* what;
    uint16_t port;
    Bytes frame;
  };
  const Case cases[] = {
      {"LAN host to LAN host", kLan,
       from_lan(ipv4(lan_host(), lan_host2(), kProtoTcp, tcp(lan_host(), lan_host2(), 40000, 6881, kPsh | kAck,
                                                             bittorrent_handshake())))},
      {"LAN host to the gateway's LAN address", kLan,
       from_lan(ipv4(lan_host(), lan_gw(), kProtoUdp, udp(lan_host(), lan_gw(), 6881, 6881, dht_query())))},
      {"WAN to the gateway's WAN address, no mapping", kWan,
       from_wan(ipv4(remote(), wan_own(), kProtoUdp, udp(remote(), wan_own(), 6881, 6881, dht_query())))},
  };
  for (const auto& c : cases) {
    Outcome o = send(c.port, c.frame);
    EXPECT_EQ(o.session, kNoNatSession) << c.what;
    EXPECT_TRUE(o.untouched()) << c.what << ": " << o;
  }
  EXPECT_EQ(sessions.size(), 0u);
  EXPECT_EQ(p2p_counters().scanned_packets.get(), 0u) << "not even inspected";
}

// ---- policies ------------------------------------------------------------------------------

TEST_F(P2pStageTest, DropPolicyDropsNewlyRecognisedFlowsButLetsEarlierOnesFinish) {
  Flow earlier = tcp_flow(40000, remote(), 6881);
  connect(earlier);
  ASSERT_TRUE(out(earlier, kPsh | kAck, bittorrent_handshake()).p2p());

  publish_global_policy({.action = P2pPolicy::Action::kDrop});
  Flow later = tcp_flow(40001, remote2(), 6881);
  connect(later);  // not recognised yet: its SYNs pass
  Outcome handshake = out(later, kPsh | kAck, bittorrent_handshake());
  ASSERT_EQ(handshake.action, Action::kDrop);
  EXPECT_EQ(handshake.reason, DropReason::kP2pDropped);
  Outcome more = out(later, kAck, random_bytes(500, 3));
  ASSERT_EQ(more.action, Action::kDrop) << "the whole flow, not only the packet that gave the verdict";
  EXPECT_EQ(more.reason, DropReason::kP2pDropped);
  Outcome answer = in(later, kAck, random_bytes(500, 4));
  EXPECT_EQ(answer.action, Action::kDrop) << "both ways";

  // Without drop_marked a flow recognised before the policy changed finishes, in the P2P class.
  Outcome earlier_out = out(earlier, kAck, random_bytes(500, 5));
  EXPECT_TRUE(earlier_out.p2p()) << earlier_out;
  Outcome earlier_in = in(earlier, kAck, random_bytes(500, 6));
  EXPECT_TRUE(earlier_in.p2p()) << earlier_in;

  EXPECT_EQ(usage(kBitTorrent).flows.get(), 2u);
  EXPECT_EQ(usage(kBitTorrent).dropped.get(), 3u);
  EXPECT_EQ(p2p_counters().pipes.at(dataplane.slot_of(SubscriberMap::kNoPipe)).dropped.get(), 3u);
}

TEST_F(P2pStageTest, DropMarkedDropsFlowsRecognisedBeforeTheDropPolicyToo) {
  Flow earlier = tcp_flow(40000, remote(), 6881);
  connect(earlier);
  ASSERT_TRUE(out(earlier, kPsh | kAck, bittorrent_handshake()).p2p());
  publish_global_policy({.action = P2pPolicy::Action::kDrop, .drop_marked = true});
  Outcome next_out = out(earlier, kAck, random_bytes(500, 5));
  ASSERT_EQ(next_out.action, Action::kDrop);
  EXPECT_EQ(next_out.reason, DropReason::kP2pDropped);
  Outcome next_in = in(earlier, kAck, random_bytes(500, 6));
  ASSERT_EQ(next_in.action, Action::kDrop);
  EXPECT_EQ(next_in.reason, DropReason::kP2pDropped);
}

TEST_F(P2pStageTest, AFlowBlockedUnderDropPassesAgainOnceThePolicyAllows) {
  publish_global_policy({.action = P2pPolicy::Action::kDrop});
  Flow flow = tcp_flow(40000, remote(), 6881);
  connect(flow);
  ASSERT_EQ(out(flow, kPsh | kAck, bittorrent_handshake()).action, Action::kDrop);
  // A blocked flow is dropped while the drop policy holds, not for ever.
  publish_global_policy({});
  Outcome o = out(flow, kAck, random_bytes(500, 5));
  EXPECT_TRUE(o.p2p()) << o;
  EXPECT_EQ(state_of(o).protocol, kBitTorrent);
}

TEST_F(P2pStageTest, NonP2pFlowsPassAnyPolicy) {
  publish_global_policy({.action = P2pPolicy::Action::kDrop, .drop_marked = true});
  Flow web = tcp_flow(40000, remote(), 80);
  connect(web);
  for (int n = 0; n < 3; ++n) {
    Outcome request = out(web, kPsh | kAck, http_request(n));
    EXPECT_TRUE(request.untouched()) << request;
    Outcome response = in(web, kPsh | kAck, http_response(n));
    EXPECT_TRUE(response.untouched()) << response;
  }
}

class P2pUploadCapTest : public P2pFixture {
 protected:
  // 8 kbit/s: the bucket holds its minimum, P2pRateCaps::kBurstBytes (64 KiB), worth a minute.
  P2pUploadCapTest() : P2pFixture({.p2p = R"({"policy": {"action": "cap", "up": "8kbit"}})"}) {}
};

// Frames of `count` full-size packets of `flow` in one direction.
std::vector<Bytes> full_size(const Flow& flow, bool outbound, int count, uint8_t seed) {
  std::vector<Bytes> frames;
  for (int i = 0; i < count; ++i) {
    Bytes payload = random_bytes(1400, static_cast<uint8_t>(seed + i));
    frames.push_back(outbound ? flow.out_frame(kAck, payload) : flow.in_frame(kAck, payload));
  }
  return frames;
}

TEST_F(P2pUploadCapTest, PacketsBeyondTheCapAreDroppedAndTheOtherDirectionIsFree) {
  Flow flow = tcp_flow(40000, remote(), 6881);
  connect(flow);
  ASSERT_NE(flow.external_port, 0);
  // Within microseconds, so the bucket does not refill: about 45 KB in the first burst fit the
  // bucket, the next 45 KB do not all fit.
  std::vector<Bytes> first = full_size(flow, true, 31, 1);
  first.insert(first.begin(), flow.out_frame(kPsh | kAck, bittorrent_handshake()));
  for (const auto& outcome : run(kLan, first)) EXPECT_TRUE(outcome.p2p()) << outcome;
  uint64_t passed = 0, capped = 0;
  for (const auto& outcome : run(kLan, full_size(flow, true, 32, 40))) {
    if (outcome.p2p()) ++passed;
    if (outcome.action == Action::kDrop) {
      EXPECT_EQ(outcome.reason, DropReason::kP2pCapped);
      ++capped;
    }
  }
  EXPECT_GT(passed, 0u) << "the bucket had room left after the first burst";
  EXPECT_GT(capped, 0u) << "the bucket overflows in the second burst";
  EXPECT_EQ(passed + capped, 32u);
  // Downloads have no cap in this policy.
  for (const auto& outcome : run(kWan, full_size(flow, false, 32, 80))) EXPECT_TRUE(outcome.p2p()) << outcome;
  EXPECT_EQ(usage(kBitTorrent).dropped.get(), capped);
  EXPECT_EQ(usage(kBitTorrent).packets.get(), 96u) << "dropped packets count as the protocol's too";
}

class P2pBothCapsTest : public P2pFixture {
 protected:
  P2pBothCapsTest() : P2pFixture({.p2p = R"({"policy": {"action": "cap", "down": "8kbit", "up": "8kbit"}})"}) {}
};

TEST_F(P2pBothCapsTest, DownloadsHaveABucketOfTheirOwn) {
  Flow flow = tcp_flow(40000, remote(), 6881);
  connect(flow);
  ASSERT_TRUE(out(flow, kPsh | kAck, bittorrent_handshake()).p2p());
  for (int round = 0; round < 2; ++round)  // empty the upload bucket
    run(kLan, full_size(flow, true, 32, static_cast<uint8_t>(round * 32)));
  ASSERT_EQ(out(flow, kAck, random_bytes(1400, 200)).reason, DropReason::kP2pCapped);
  for (const auto& outcome : run(kWan, full_size(flow, false, 31, 100)))
    EXPECT_TRUE(outcome.p2p()) << "the download bucket is still full: " << outcome;
  uint64_t capped = 0;
  for (const auto& outcome : run(kWan, full_size(flow, false, 32, 150))) capped += outcome.reason == DropReason::kP2pCapped;
  EXPECT_GT(capped, 0u);
}

TEST_F(P2pBothCapsTest, FlowsNotRecognisedAreNotCharged) {
  Flow web = tcp_flow(40000, remote(), 80);
  connect(web);
  std::vector<Outcome> up = run(kLan, {web.out_frame(kPsh | kAck, http_request(1)), web.out_frame(kPsh | kAck, http_request(2)),
                                       web.out_frame(kPsh | kAck, http_request(3))});
  for (std::size_t i = 0; i < up.size(); ++i) EXPECT_TRUE(up[i].untouched()) << i << ": " << up[i];
}

// ---- the peer cache ------------------------------------------------------------------------

TEST_F(P2pStageTest, ALaterFlowToAKnownPeerIsP2pFromItsFirstPacket) {
  Flow first = tcp_flow(40000, remote(), 6881);
  connect(first);
  ASSERT_TRUE(out(first, kPsh | kAck, bittorrent_handshake()).p2p());

  // Another connection to the same peer, encrypted: nothing in it a signature knows.
  Flow encrypted = tcp_flow(40001, remote(), 6881);
  Outcome syn = out(encrypted, kSyn);
  EXPECT_TRUE(syn.p2p()) << "labelled on its SYN: " << syn;
  EXPECT_EQ(state_of(syn).protocol, kBitTorrent);
  EXPECT_TRUE(state_of(syn).flags & P2pFlowState::kFromCache);
  EXPECT_TRUE(in(encrypted, kSyn | kAck).p2p());
  EXPECT_TRUE(out(encrypted, kPsh | kAck, random_bytes(96, 11)).p2p());
  EXPECT_EQ(p2p_counters().from_peer_cache.get(), 1u);
  EXPECT_EQ(usage(kBitTorrent).flows.get(), 2u);

  // The same bytes to a peer nobody has seen, and to another port of the known one, are not P2P.
  for (Flow other : {tcp_flow(40002, remote2(), 6881), tcp_flow(40003, remote(), 443)}) {
    connect(other);
    Outcome o = out(other, kPsh | kAck, random_bytes(96, 11));
    EXPECT_TRUE(o.untouched()) << o;
    EXPECT_EQ(state_of(o).protocol, P2pProtocol::kNone);
  }
  EXPECT_EQ(p2p_counters().from_peer_cache.get(), 1u);
}

TEST_F(P2pStageTest, APeerRecognisedByItsAnswerIsKnownToTheNextFlowFromTheLan) {
  // eDonkey needs both sides: the verdict comes with the remote peer's answer, a packet from the
  // WAN. The peer it teaches must label the next flow the LAN host opens to it.
  Flow first = tcp_flow(40000, remote(), 4662);
  connect(first);
  Outcome hello = out(first, kPsh | kAck, edonkey_hello());
  EXPECT_TRUE(hello.untouched()) << "one side alone is not enough: " << hello;
  Outcome answer = in(first, kPsh | kAck, edonkey_hello_answer());
  ASSERT_TRUE(answer.p2p()) << answer;
  ASSERT_EQ(state_of(answer).protocol, P2pProtocol::kEdonkey);

  Flow next = tcp_flow(40001, remote(), 4662);
  Outcome syn = out(next, kSyn);
  EXPECT_TRUE(syn.p2p()) << syn;
  EXPECT_EQ(state_of(syn).protocol, P2pProtocol::kEdonkey);
  EXPECT_EQ(p2p_counters().from_peer_cache.get(), 1u);
}

// ---- UDP and protocols ---------------------------------------------------------------------

TEST_F(P2pStageTest, UdpFlowsAreInspectedByDefault) {
  Flow dht = udp_flow(6881, remote(), 6881);
  Outcome query = out(dht, 0, dht_query());
  EXPECT_TRUE(query.p2p()) << query;
  EXPECT_EQ(state_of(query).protocol, kBitTorrent);
}

class P2pWithoutUdpTest : public P2pFixture {
 protected:
  P2pWithoutUdpTest() : P2pFixture({.p2p = R"({"udp": false})"}) {}
};

TEST_F(P2pWithoutUdpTest, UdpFlowsAreNotInspected) {
  Flow dht = udp_flow(6881, remote(), 6881);
  Outcome query = out(dht, 0, dht_query());
  EXPECT_TRUE(query.untouched()) << query;
  EXPECT_EQ(state_of(query).protocol, P2pProtocol::kNone);
  Outcome reply = in(dht, 0, dht_query());
  EXPECT_TRUE(reply.untouched()) << reply;
  EXPECT_EQ(p2p_counters().scanned_packets.get(), 0u);
  // TCP still is.
  Flow peer = tcp_flow(40000, remote2(), 6881);
  connect(peer);
  EXPECT_TRUE(out(peer, kPsh | kAck, bittorrent_handshake()).p2p());
}

class P2pEdonkeyOnlyTest : public P2pFixture {
 protected:
  P2pEdonkeyOnlyTest() : P2pFixture({.p2p = R"({"protocols": "--edk"})"}) {}
};

TEST_F(P2pEdonkeyOnlyTest, ProtocolsLeftOutAreNotRecognised) {
  Flow bittorrent = tcp_flow(40000, remote(), 6881);
  connect(bittorrent);
  Outcome handshake = out(bittorrent, kPsh | kAck, bittorrent_handshake());
  EXPECT_TRUE(handshake.untouched()) << handshake;
  EXPECT_EQ(state_of(handshake).protocol, P2pProtocol::kNone);
  // The protocol that is on still is recognised.
  Flow edk = tcp_flow(40001, remote2(), 4662);
  connect(edk);
  out(edk, kPsh | kAck, edonkey_hello());
  Outcome answer = in(edk, kPsh | kAck, edonkey_hello_answer());
  EXPECT_TRUE(answer.p2p()) << answer;
}

// ---- reloads -------------------------------------------------------------------------------

TEST_F(P2pStageTest, ANewSignatureDatabaseIsUsedFromTheNextBurst) {
  Flow before = tcp_flow(40000, remote(), 6881);
  connect(before);
  ASSERT_TRUE(out(before, kPsh | kAck, bittorrent_handshake()).p2p());

  // A signature set of AppleJuice alone: BitTorrent handshakes are no longer known.
  P2pSignatureLoader loader;
  std::string error;
  ASSERT_TRUE(loader.reload(R"({"signatures": [{"name": "applejuice", "protocol": "applejuice", "transport": "tcp",
                                "direction": "client", "pattern": "ajprot\\r\\n", "flags": ["anchored"],
                                "comment": "IPP2P search_apple"}]})",
                            error))
      << error;
  dataplane.database().publish(std::make_unique<P2pDatabaseVersion>(P2pDatabaseVersion{loader.current(), 1}));

  Flow after = tcp_flow(40001, remote2(), 6881);
  connect(after);
  Outcome handshake = out(after, kPsh | kAck, bittorrent_handshake());
  EXPECT_TRUE(handshake.untouched()) << handshake;
  EXPECT_EQ(state_of(handshake).protocol, P2pProtocol::kNone);
  Flow applejuice = tcp_flow(40002, remote3(), 9850);
  connect(applejuice);
  Outcome request = out(applejuice, kPsh | kAck, text("ajprot\r\n"));
  EXPECT_TRUE(request.p2p()) << request;
  EXPECT_EQ(state_of(request).protocol, P2pProtocol::kAppleJuice);
  // A verdict given before stays with its flow.
  EXPECT_TRUE(out(before, kAck, random_bytes(100, 1)).p2p());
}

// ---- the session listing -------------------------------------------------------------------

TEST_F(P2pStageTest, SessionListingNamesTheProtocol) {
  Flow bittorrent = tcp_flow(40000, remote(), 6881);
  connect(bittorrent);
  out(bittorrent, kPsh | kAck, bittorrent_handshake());
  Flow web = tcp_flow(40001, remote(), 80);
  connect(web);
  out(web, kPsh | kAck, http_request(1));

  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  std::size_t matched = 0;
  sessions.list(0, 0, 0, static_cast<uint32_t>(rte_rdtsc() / rte_get_tsc_hz()), 0, 100, &matched, rows);
  ASSERT_EQ(rows.size(), 2u);
  std::map<std::string, std::string> protocol_by_remote;
  for (const auto& row : rows) protocol_by_remote[row.at("remote").get<std::string>()] = row.at("p2p").get<std::string>();
  EXPECT_EQ(protocol_by_remote["192.0.2.10:6881"], "bittorrent");
  EXPECT_EQ(protocol_by_remote["192.0.2.10:80"], "none");
}

// ---- the policy table, the slots and the control side ---------------------------------------

TEST(P2pDataplane, PipesWithoutAPolicyOfTheirOwnHaveTheGlobalOne) {
  P2pPolicyTable table;
  table.global = {.action = P2pPolicy::Action::kDrop};
  table.by_pipe = {P2pPolicy{}, P2pPolicy{.action = P2pPolicy::Action::kCap, .cap_down_bps = 1'000'000}};
  EXPECT_EQ(table.of(0), P2pPolicy{});
  EXPECT_EQ(table.of(1).action, P2pPolicy::Action::kCap);
  EXPECT_EQ(table.of(2), table.global) << "a pipe past the table";
  EXPECT_EQ(table.of(SubscriberMap::kNoPipe), table.global) << "a host without a subscriber";
}

TEST(P2pDataplane, HostsWithoutAPipeShareTheLastSlot) {
  P2pConfig config;
  config.policy = {.action = P2pPolicy::Action::kCap, .cap_up_bps = 64'000};
  P2pDataplane dataplane(config, 2, 4, shipped_signatures());
  EXPECT_EQ(dataplane.workers(), 2);
  EXPECT_EQ(dataplane.slot_of(0), 0u);
  EXPECT_EQ(dataplane.slot_of(3), 3u);
  EXPECT_EQ(dataplane.slot_of(4), 4u);
  EXPECT_EQ(dataplane.slot_of(SubscriberMap::kNoPipe), 4u);
  EXPECT_EQ(dataplane.caps().slots(), 5u);
  EXPECT_EQ(dataplane.counters(1).pipes.size(), 5u);
  EXPECT_EQ(dataplane.policies().current()->global, config.policy) << "the configuration's policy to start with";
  EXPECT_EQ(dataplane.database().current()->generation, 0u);
}

TEST(P2pControl, SubscribersWithTheirOwnPolicyGetItAndTheRestTheGlobalOne) {
  P2pConfig config;
  P2pDataplane dataplane(config, 1, 4, shipped_signatures());
  std::filesystem::path path;
  P2pControl control(dataplane, load_configured_signatures(config, kConfDir, &path), path);
  EXPECT_EQ(path, kConfDir / "p2p_signatures.json");
  const P2pPolicy capped{.action = P2pPolicy::Action::kCap, .cap_down_bps = 2'000'000};
  std::vector<LiveSubscriber> subscribers(2);
  subscribers[0].plan.name = "anna";
  subscribers[0].pipe = 2;
  subscribers[0].plan.p2p = capped;
  subscribers[1].plan.name = "ben";
  subscribers[1].pipe = 3;
  control.follow(subscribers);
  control.set_global_policy({.action = P2pPolicy::Action::kDrop});
  const P2pPolicyTable& table = *dataplane.policies().current();
  EXPECT_EQ(table.of(2), capped);
  EXPECT_EQ(table.of(3).action, P2pPolicy::Action::kDrop) << "ben has none of his own";
  EXPECT_EQ(table.of(SubscriberMap::kNoPipe).action, P2pPolicy::Action::kDrop);
}

TEST(P2pControl, AReloadPublishesANewGeneration) {
  P2pConfig config;
  std::filesystem::path path;
  P2pSignatureLoader loader = load_configured_signatures(config, kConfDir, &path);
  P2pDataplane dataplane(config, 1, 0, loader.current());
  P2pControl control(dataplane, std::move(loader), path);
  std::string error;
  ASSERT_TRUE(control.reload(error)) << error;
  const P2pDatabaseVersion* version = dataplane.database().current();
  EXPECT_NE(version->generation, 0u) << "the workers compare generations to notice a reload";
  EXPECT_EQ(version->generation, control.loader().generation());
  EXPECT_EQ(version->database, control.loader().current());
}

TEST(P2pControl, ASignatureFileThatDoesNotLoadNamesTheField) {
  P2pConfig config;
  config.signatures = "no-such-signatures.json";
  try {
    load_configured_signatures(config, kConfDir, nullptr);
    FAIL() << "loaded";
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), "p2p.signatures") << error.what();
    EXPECT_NE(std::string(error.what()).find((kConfDir / "no-such-signatures.json").string()), std::string::npos)
        << "the path, resolved against the configuration's directory: " << error.what();
  }
}

// ---- the rate caps, on a clock the tests drive ---------------------------------------------

class P2pRateCapsTest : public ::testing::Test {
 protected:
  // TSC cycles of `seconds`, from a start far from zero.
  uint64_t at(double seconds) const { return start_ + static_cast<uint64_t>(seconds * static_cast<double>(hz_)); }
  // Bytes admitted of `packets` packets of `bytes` each offered at `at(seconds)`.
  uint64_t offer_at_once(P2pRateCaps& caps, uint32_t slot, bool download, int packets, uint32_t bytes, uint64_t rate_bps,
                         double seconds) {
    uint64_t admitted = 0;
    for (int i = 0; i < packets; ++i)
      if (caps.admit(slot, download, bytes, rate_bps, at(seconds))) admitted += bytes;
    return admitted;
  }

  const uint64_t hz_ = rte_get_tsc_hz();
  const uint64_t start_ = 1'000 * hz_;
  static constexpr uint64_t kRate = 1'000'000;                                    // 1 Mbit/s
  // The larger of kBurstMs at the rate (12.5 KB) and the minimum, 64 KiB.
  static constexpr uint64_t kBurstBytes = std::max(kRate / 8 * P2pRateCaps::kBurstMs / 1000, P2pRateCaps::kBurstBytes);
};

TEST_F(P2pRateCapsTest, AdmitsTheRateOverTimePlusOneBurst) {
  struct Case {
    const char* what;
    uint32_t packet_bytes;
    double interval_s;  // between packets offered
    double span_s;
  };
  const Case cases[] = {
      {"8 times the rate in 1000-byte packets", 1000, 0.001, 2.0},
      {"3 times the rate in 100-byte packets", 100, 100.0 * 8 / 3 / kRate, 1.0},
      {"full-size packets, 10 s", 1500, 0.0012, 10.0},
  };
  for (const auto& c : cases) {
    P2pRateCaps caps(1);
    uint64_t admitted = 0;
    for (double t = 0; t < c.span_s; t += c.interval_s)
      if (caps.admit(0, true, c.packet_bytes, kRate, at(t))) admitted += c.packet_bytes;
    const double allowed = static_cast<double>(kRate) / 8 * c.span_s;
    EXPECT_LE(admitted, allowed + kBurstBytes + c.packet_bytes) << c.what;
    EXPECT_GE(admitted, allowed - c.packet_bytes) << c.what << ": the cap must let its rate through";
  }
}

TEST_F(P2pRateCapsTest, TrafficBelowTheRateIsNeverRefused) {
  P2pRateCaps caps(1);
  // 1000 bytes every 10 ms: 800 kbit/s under a 1 Mbit/s cap.
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(caps.admit(0, false, 1000, kRate, at(i * 0.010))) << "packet " << i;
}

TEST_F(P2pRateCapsTest, SlotsAndDirectionsHaveBucketsOfTheirOwn) {
  P2pRateCaps caps(3);
  EXPECT_EQ(caps.slots(), 3u);
  // Slot 1's downloads empty their bucket.
  EXPECT_LE(offer_at_once(caps, 1, true, 100, 1000, kRate, 0), kBurstBytes + 1000);
  EXPECT_FALSE(caps.admit(1, true, 1000, kRate, at(0)));
  // Its uploads, and the other slots both ways, still have a full bucket each.
  for (auto [slot, download] : {std::pair{1u, false}, std::pair{0u, true}, std::pair{0u, false}, std::pair{2u, true},
                                std::pair{2u, false}}) {
    EXPECT_GE(offer_at_once(caps, slot, download, 100, 1000, kRate, 0), kBurstBytes)
        << "slot " << slot << (download ? " down" : " up");
  }
  EXPECT_FALSE(caps.admit(1, true, 1000, kRate, at(0))) << "and they did not refill slot 1's";
}

TEST_F(P2pRateCapsTest, AnIdleBucketHoldsNoMoreThanOneBurst) {
  for (double idle_s : {1.0, 60.0, 3600.0}) {
    P2pRateCaps caps(1);
    offer_at_once(caps, 0, true, 100, 100, kRate, 0);  // empty it
    uint64_t after_idle = offer_at_once(caps, 0, true, 1000, 100, kRate, idle_s);
    EXPECT_GE(after_idle, kBurstBytes) << "idle " << idle_s << " s";
    EXPECT_LE(after_idle, kBurstBytes + 100) << "idle " << idle_s << " s";
  }
}

TEST_F(P2pRateCapsTest, ASlowCapStillTakesTheMinimumBurst) {
  // At 8 kbit/s 100 ms are 100 bytes: the bucket still holds kBurstBytes, so a TCP window gets
  // through at once and the flow slows down instead of timing out.
  P2pRateCaps caps(1);
  uint64_t at_once = offer_at_once(caps, 0, false, 100, 1500, 8'000, 0);
  EXPECT_GE(at_once, P2pRateCaps::kBurstBytes);
  EXPECT_LE(at_once, P2pRateCaps::kBurstBytes + 1500);
  EXPECT_FALSE(caps.admit(0, false, 1500, 8'000, at(0)));
  EXPECT_TRUE(caps.admit(0, false, 1500, 8'000, at(3.0))) << "3 s at 8 kbit/s refill 3000 bytes";
}

}  // namespace
}  // namespace fairgate::test
