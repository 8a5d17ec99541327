// The inspector with the shipped signature set (conf/p2p_signatures.json): what each protocol's
// first packets are recognised as, the rules around them (both directions for eDonkey, the
// N-packet limit, protocols and UDP switched off) and what bad input does.
#include "classify/p2p_inspector.h"
#include "classify/p2p_signatures.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace fairgate {
namespace {

using Bytes = std::string;  // binary payloads; std::string keeps the test tables readable

Bytes repeat(char c, std::size_t n) { return Bytes(n, c); }
Bytes le32(uint32_t v) {
  return Bytes{static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
}
Bytes le16(uint16_t v) { return Bytes{static_cast<char>(v), static_cast<char>(v >> 8)}; }
Bytes be16(uint16_t v) { return Bytes{static_cast<char>(v >> 8), static_cast<char>(v)}; }
Bytes be32(uint32_t v) { return be16(static_cast<uint16_t>(v >> 16)) + be16(static_cast<uint16_t>(v)); }

// eDonkey TCP message: header byte, little-endian length of opcode and data, opcode, data.
Bytes edonkey(char header, char opcode, const Bytes& data) {
  return Bytes(1, header) + le32(static_cast<uint32_t>(data.size() + 1)) + opcode + data;
}
// uTP header (BEP 29): type and version, extension, connection id, timestamps, window, seq, ack.
Bytes utp(uint8_t type, uint8_t extension, uint16_t connection, uint32_t timestamp_diff, uint32_t window,
          uint16_t seq, uint16_t ack) {
  return Bytes(1, static_cast<char>(type << 4 | 1)) + static_cast<char>(extension) + be16(connection) +
         be32(0x10eeb2f0) + be32(timestamp_diff) + be32(window) + be16(seq) + be16(ack);
}
// A Gnutella message: GUID, payload type, TTL, hops, little-endian payload length, payload.
Bytes gnutella(char type, const Bytes& payload) {
  return repeat('\x5a', 16) + type + '\x07' + '\x00' + le32(static_cast<uint32_t>(payload.size())) + payload;
}
Bytes id20() { return Bytes("\x9a\x11\x03\xe1\x4b\x00\x7f\xf2\x10\x22\x8c\xa9\x01\x02\x03\x04\x05\x06\x07\x08", 20); }

class P2pInspectorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    database_ = P2pDatabase::compile(load_p2p_signatures(std::string(FAIRGATE_SOURCE_DIR) + "/conf/p2p_signatures.json"));
  }
  static void TearDownTestSuite() { database_.reset(); }

  // The flow's verdict after its packets, each {from_client, payload}.
  P2pProtocol run(const std::vector<std::pair<bool, Bytes>>& packets, P2pTransport transport,
                  const P2pInspectorConfig& config = {}) {
    P2pInspector inspector(*database_, config);
    P2pFlowState state;
    P2pProtocol verdict = P2pProtocol::kNone;
    for (const auto& [from_client, payload] : packets)
      verdict = inspector.inspect(state, reinterpret_cast<const uint8_t*>(payload.data()),
                                  static_cast<uint32_t>(payload.size()), transport, from_client);
    return verdict;
  }
  P2pProtocol one(const Bytes& payload, P2pTransport transport, bool from_client = true) {
    return run({{from_client, payload}}, transport);
  }

  static std::unique_ptr<P2pDatabase> database_;
};
std::unique_ptr<P2pDatabase> P2pInspectorTest::database_;

constexpr P2pTransport kTcp = P2pTransport::kTcp;
constexpr P2pTransport kUdp = P2pTransport::kUdp;

struct PayloadCase {
  const char* what;
  Bytes payload;
  P2pTransport transport;
  bool from_client;
  P2pProtocol expected;
};

TEST_F(P2pInspectorTest, OnePacketVerdicts) {
  const Bytes handshake = "\x13" "BitTorrent protocol" + repeat('\0', 8) + id20() + "-TR2940-k8hj0wgej6ch";
  const Bytes dht_query = "d1:ad2:id20:" + id20() + "9:info_hash20:" + id20() + "e1:q9:get_peers1:t2:aa1:y1:qe";
  const Bytes dht_reply = "d1:rd2:id20:" + id20() + "5:nodes0:5:token8:aoeusnthe1:t2:aa1:y1:re";
  const Bytes dht_reply_ip = Bytes("d2:ip6:\xc0\x00\x02\x0a\x1a\xe1", 13) + "1:rd2:id20:" + id20() + "e1:t2:aa1:y1:re";
  const Bytes utp_syn = utp(4, 0, 0x4567, 0, 0x00100000, 0x23c6, 0);
  const Bytes utp_syn_ext = utp(4, 2, 0xa060, 0, 0x00040000, 0x6b26, 0) + Bytes("\x00\x08", 2) + repeat('\0', 8);
  const Bytes udp_tracker = Bytes("\x00\x00\x04\x17\x27\x10\x19\x80\x00\x00\x00\x00", 12) + "\x12\x34\x56\x78";
  const Bytes gnutella_ping = gnutella('\x00', "");
  const Bytes gnutella_query = gnutella('\x80', Bytes("\x00\x00", 2) + "linux iso" + Bytes(1, '\0'));
  const Bytes soulseek_login = [] {
    Bytes body = le32(1) + le32(5) + "alice" + le32(6) + "secret" + le32(160);
    return le32(static_cast<uint32_t>(body.size())) + body;
  }();
  const std::vector<PayloadCase> cases = {
      // BitTorrent
      {"peer wire handshake", handshake, kTcp, true, P2pProtocol::kBitTorrent},
      {"handshake answered", handshake, kTcp, false, P2pProtocol::kBitTorrent},
      {"tracker announce", "GET /announce?info_hash=%9a%11%03%e1K%00&peer_id=-TR2940-k8hj0wgej6ch&port=51413 HTTP/1.1\r\n"
                           "Host: tracker.example\r\n\r\n", kTcp, true, P2pProtocol::kBitTorrent},
      {"tracker scrape", "GET /scrape.php?passkey=abc&info_hash=%9a%11 HTTP/1.0\r\n\r\n", kTcp, true, P2pProtocol::kBitTorrent},
      {"tracker reply", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nd8:completei5e10:incompletei2e8:intervali1800e5:peers0:e",
       kTcp, false, P2pProtocol::kBitTorrent},
      {"webseed by a BitTorrent client", "GET /pub/debian.iso HTTP/1.1\r\nHost: cdimage.example\r\nUser-Agent: Transmission/2.94\r\n"
                                         "Range: bytes=0-16383\r\n\r\n", kTcp, true, P2pProtocol::kBitTorrent},
      {"DHT get_peers", dht_query, kUdp, true, P2pProtocol::kBitTorrent},
      {"DHT reply", dht_reply, kUdp, false, P2pProtocol::kBitTorrent},
      {"DHT reply with BEP 42 ip", dht_reply_ip, kUdp, false, P2pProtocol::kBitTorrent},
      {"DHT error", "d1:eli201e23:A Generic Error Ocurred1:t2:aa1:y1:ee", kUdp, false, P2pProtocol::kBitTorrent},
      {"uTP SYN", utp_syn, kUdp, true, P2pProtocol::kBitTorrent},
      {"uTP SYN with extension bits", utp_syn_ext, kUdp, true, P2pProtocol::kBitTorrent},
      {"UDP tracker connect", udp_tracker, kUdp, true, P2pProtocol::kBitTorrent},
      {"local service discovery", "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: "
                                  "9a1103e14b007ff210228ca90102030405060708\r\n\r\n\r\n", kUdp, true, P2pProtocol::kBitTorrent},
      // Gnutella
      {"Gnutella handshake", "GNUTELLA CONNECT/0.6\r\nUser-Agent: gtk-gnutella/1.2.2\r\nX-Ultrapeer: False\r\n\r\n", kTcp, true,
       P2pProtocol::kGnutella},
      {"Gnutella handshake reply", "GNUTELLA/0.6 200 OK\r\nUser-Agent: Shareaza 2.7.10.2\r\n\r\n", kTcp, false, P2pProtocol::kGnutella},
      {"Gnutella download by URN", "GET /uri-res/N2R?urn:sha1:LXIP2A72T5H3BU3GRUMZFYNU3OYDK6FI HTTP/1.1\r\n\r\n", kTcp, true,
       P2pProtocol::kGnutella},
      {"Gnutella download by index", "GET /get/42/song.mp3 HTTP/1.1\r\nHost: 192.0.2.7:6346\r\nX-Queue: 0.1\r\n\r\n", kTcp, true,
       P2pProtocol::kGnutella},
      {"Gnutella push", "GIV 12:0123456789ABCDEF0123456789ABCDEF/song.mp3\n\n", kTcp, true, P2pProtocol::kGnutella},
      {"Gnutella UDP ping", gnutella_ping, kUdp, true, P2pProtocol::kGnutella},
      {"Gnutella UDP query", gnutella_query, kUdp, true, P2pProtocol::kGnutella},
      {"Gnutella semi-reliable UDP", Bytes("GND\x10\x3e\x8f\x01\x01", 8) + "T\x0bQKRP\x06RNA", kUdp, true, P2pProtocol::kGnutella},
      // The others
      {"FastTrack download", "GET /.hash=0123456789abcdef0123456789abcdef01234567 HTTP/1.1\r\n\r\n", kTcp, true,
       P2pProtocol::kFastTrack},
      {"FastTrack header", "HTTP/1.1 200 OK\r\nX-Kazaa-Username: bob\r\n\r\n", kTcp, false, P2pProtocol::kFastTrack},
      {"FastTrack UDP", Bytes("\x27\x00\x00\x00\xa9\x80", 6) + "KaZaA" + Bytes(1, '\0'), kUdp, true, P2pProtocol::kFastTrack},
      {"DirectConnect NMDC", "$MyNick bob|$Lock EXTENDEDPROTOCOLABCABCABCABCABCABC Pk=DCPLUSPLUS0.777|", kTcp, true,
       P2pProtocol::kDirectConnect},
      {"DirectConnect hub lock", "$Lock EXTENDEDPROTOCOL_verlihub Pk=version0.9.8e-r2|", kTcp, false, P2pProtocol::kDirectConnect},
      {"DirectConnect ADC", "HSUP ADBASE ADTIGR\n", kTcp, true, P2pProtocol::kDirectConnect},
      {"DirectConnect UDP search result", "$SR bob music\\a.mp3\x05" "4000 1/3\x05" "TTH:ABC (192.0.2.1:411)|", kUdp, false,
       P2pProtocol::kDirectConnect},
      {"AppleJuice", "ajprot\r\n", kTcp, true, P2pProtocol::kAppleJuice},
      {"SoulSeek login", soulseek_login, kTcp, true, P2pProtocol::kSoulSeek},
      {"SoulSeek peer init", [] {
         Bytes body = Bytes(1, '\x01') + le32(5) + "alice" + le32(1) + "P" + le32(0x11223344);
         return le32(static_cast<uint32_t>(body.size())) + body;
       }(), kTcp, true, P2pProtocol::kSoulSeek},
      {"SoulSeek pierce firewall", le32(5) + Bytes(1, '\0') + le32(0x11223344), kTcp, true, P2pProtocol::kSoulSeek},
      {"WinMX transfer", "SEND alice \"C:\\shared\\song.mp3\" 0 4096", kTcp, true, P2pProtocol::kWinMx},
      {"Ares login", Bytes("\x03\x00\x5a\x04\x03\x05", 6), kTcp, true, P2pProtocol::kAres},
      {"Ares download", "GET hash:sha1:0123456789ABCDEF0123456789ABCDEF01234567 HTTP/1.1\r\n\r\n", kTcp, true, P2pProtocol::kAres},
      {"XDCC request", "PRIVMSG Bot|Files :XDCC SEND #12\r\n", kTcp, true, P2pProtocol::kXdcc},
      {"PPStream UDP", le16(16) + "\x44\xb1\x71" + repeat('\x01', 11), kUdp, true, P2pProtocol::kPpStream},
      {"Kontiki keep-alive", Bytes("\x02\x01\x01\x00", 4), kUdp, true, P2pProtocol::kKontiki},
      {"Aimini", "GET /search/?q=x HTTP/1.1\r\nHost: www.aimini.net\r\n\r\n", kTcp, true, P2pProtocol::kAimini},

      // Ordinary traffic, and P2P-looking payloads that are not.
      {"web request", "GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0\r\n\r\n", kTcp, true,
       P2pProtocol::kNone},
      {"info_hash in a path, not a parameter", "GET /docs/info_hash=.html HTTP/1.1\r\n\r\n", kTcp, true, P2pProtocol::kNone},
      {"/get/ without Gnutella headers", "GET /get/12/setup.exe HTTP/1.1\r\nHost: downloads.example\r\n\r\n", kTcp, true,
       P2pProtocol::kNone},
      {"tracker reply from the client", "HTTP/1.1 200 OK\r\n\r\nd8:intervali1800ee", kTcp, true, P2pProtocol::kNone},
      {"SSH banner", "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", kTcp, false, P2pProtocol::kNone},
      {"TLS client hello", Bytes("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + repeat('\x42', 64), kTcp, true,
       P2pProtocol::kNone},
      {"DNS query", Bytes("\x6f\xf1\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x08utorrent\x03" "com\x00\x00\x01\x00\x01", 30), kUdp,
       true, P2pProtocol::kNone},
      {"STUN binding request", Bytes("\x00\x01\x00\x00\x21\x12\xa4\x42", 8) + repeat('\x07', 12), kUdp, true, P2pProtocol::kNone},
      {"DHT query over TCP", dht_query, kTcp, true, P2pProtocol::kNone},
      {"BitTorrent handshake not at the start", "xx" + handshake, kTcp, true, P2pProtocol::kNone},
      {"uTP SYN one byte too long", utp_syn + "x", kUdp, true, P2pProtocol::kNone},
      {"UDP tracker connect one byte short", udp_tracker.substr(0, 15), kUdp, true, P2pProtocol::kNone},
      {"Gnutella UDP with a wrong length", gnutella_ping + "x", kUdp, true, P2pProtocol::kNone},
      {"SoulSeek login with a wrong length", soulseek_login + "x", kTcp, true, P2pProtocol::kNone},
      {"eDonkey hello alone", edonkey('\xe3', '\x01', "\x10" + repeat('\x33', 16) + repeat('\0', 6) + le32(0)), kTcp, true,
       P2pProtocol::kNone},
      {"a single uTP state packet", utp(2, 0, 0x4567, 0, 0x00100000, 1, 2), kUdp, false, P2pProtocol::kNone},
      {"Kad ping alone", Bytes("\xe4\x60", 2), kUdp, true, P2pProtocol::kNone},
  };
  for (const auto& c : cases)
    EXPECT_EQ(one(c.payload, c.transport, c.from_client), c.expected)
        << c.what << ": got " << p2p_protocol_name(one(c.payload, c.transport, c.from_client));
}

TEST_F(P2pInspectorTest, EdonkeyNeedsBothDirections) {
  Bytes hello = edonkey('\xe3', '\x01', "\x10" + repeat('\x33', 16) + repeat('\0', 6) + le32(0));
  Bytes answer = edonkey('\xe3', '\x4c', "\x10" + repeat('\x44', 16) + repeat('\0', 6) + le32(0));
  Bytes emule_info = edonkey('\xc5', '\x01', Bytes("\x3c\x01", 2) + le32(0));
  EXPECT_EQ(run({{true, hello}}, kTcp), P2pProtocol::kNone);
  EXPECT_EQ(run({{false, answer}}, kTcp), P2pProtocol::kNone);
  EXPECT_EQ(run({{true, hello}, {false, answer}}, kTcp), P2pProtocol::kEdonkey);
  EXPECT_EQ(run({{true, hello}, {false, emule_info}}, kTcp), P2pProtocol::kEdonkey);
  // Two messages from the same side are still one side's word.
  EXPECT_EQ(run({{true, hello}, {true, emule_info}, {true, hello}}, kTcp), P2pProtocol::kNone);
  // The answer must come from the server, the hello from the client.
  EXPECT_EQ(run({{false, hello}, {true, answer}}, kTcp), P2pProtocol::kEdonkey)
      << "the generic message signature accepts either side";
  Bytes bad_length = answer;
  bad_length[1] = static_cast<char>(bad_length[1] + 1);
  EXPECT_EQ(run({{true, hello}, {false, bad_length}}, kTcp), P2pProtocol::kNone);
  // Over UDP: Kad2 ping and pong, server status request and reply.
  EXPECT_EQ(run({{true, Bytes("\xe4\x60", 2)}, {false, Bytes("\xe4\x61\x1a\xe1", 4)}}, kUdp), P2pProtocol::kEdonkey);
  EXPECT_EQ(run({{true, Bytes("\xe3\x96\x01\x02\x03\x04", 6)}, {false, Bytes("\xe3\x97\x01\x02\x03\x04", 6) + le32(10) + le32(90)}},
                kUdp),
            P2pProtocol::kEdonkey);
  EXPECT_EQ(run({{true, Bytes("\xe4\x60", 2)}, {true, Bytes("\xe4\x60", 2)}}, kUdp), P2pProtocol::kNone);
}

TEST_F(P2pInspectorTest, UtpMidFlowNeedsASecondPacket) {
  Bytes state = utp(2, 0, 0xacd2, 0x3a3b3c3d, 0x00100000, 7, 9);
  Bytes data = utp(0, 0, 0xefcb, 0x0102, 0x00100000, 8, 9) + "payload bytes";
  EXPECT_EQ(run({{true, state}}, kUdp), P2pProtocol::kNone);
  EXPECT_EQ(run({{true, state}, {true, state}}, kUdp), P2pProtocol::kBitTorrent);
  EXPECT_EQ(run({{true, data}, {false, state}}, kUdp), P2pProtocol::kBitTorrent);
  // A window of 16 MiB or more is not uTP's.
  Bytes wide = utp(2, 0, 0xacd2, 0, 0x01000000, 7, 9);
  EXPECT_EQ(run({{true, wide}, {true, wide}}, kUdp), P2pProtocol::kNone);
}

TEST_F(P2pInspectorTest, ScansOnlyTheFirstNPayloadPacketsOfEachDirection) {
  Bytes noise = repeat('\x5c', 100);
  Bytes handshake = "\x13" "BitTorrent protocol" + repeat('\0', 48);
  P2pInspectorConfig three;
  three.packets_per_direction = 3;
  // Handshake as the third payload packet from the server: within N = 3, not N = 2.
  std::vector<std::pair<bool, Bytes>> flow = {{true, noise}, {false, noise}, {true, noise}, {false, noise},
                                              {true, noise}, {false, handshake}};
  EXPECT_EQ(run(flow, kTcp, three), P2pProtocol::kBitTorrent);
  P2pInspectorConfig two;
  two.packets_per_direction = 2;
  EXPECT_EQ(run(flow, kTcp, two), P2pProtocol::kNone);
  // Packets without payload do not count.
  P2pInspectorConfig one_packet;
  one_packet.packets_per_direction = 1;
  EXPECT_EQ(run({{true, ""}, {false, noise}, {true, ""}, {false, handshake}}, kTcp, one_packet), P2pProtocol::kNone)
      << "the server's first payload is not the handshake";
  EXPECT_EQ(run({{true, ""}, {false, ""}, {true, ""}, {false, handshake}}, kTcp, one_packet), P2pProtocol::kBitTorrent)
      << "empty segments are not payload packets";
  // The default is 8.
  EXPECT_EQ(P2pInspectorConfig{}.packets_per_direction, 8);
}

TEST_F(P2pInspectorTest, AFinishedFlowCostsNoScan) {
  P2pInspectorConfig config;
  config.packets_per_direction = 2;
  P2pInspector inspector(*database_, config);
  Bytes noise = repeat('\x5c', 1400);
  auto send = [&](P2pFlowState& state, bool from_client, const Bytes& payload) {
    return inspector.inspect(state, reinterpret_cast<const uint8_t*>(payload.data()), static_cast<uint32_t>(payload.size()),
                             kTcp, from_client);
  };
  P2pFlowState unknown;
  for (int i = 0; i < 2; ++i) {
    send(unknown, true, noise);
    send(unknown, false, noise);
  }
  EXPECT_TRUE(unknown.done());
  EXPECT_EQ(inspector.counters().scanned_packets, 4u);
  EXPECT_EQ(inspector.counters().scanned_bytes, 4u * 1400);
  for (int i = 0; i < 100; ++i) send(unknown, i % 2 == 0, noise);
  EXPECT_EQ(inspector.counters().scanned_packets, 4u) << "inspection goes on after N packets each way";
  EXPECT_EQ(unknown.protocol, P2pProtocol::kNone);

  P2pFlowState p2p;
  unsigned signature = 999;
  Bytes handshake = "\x13" "BitTorrent protocol" + repeat('\0', 48);
  EXPECT_EQ(inspector.inspect(p2p, reinterpret_cast<const uint8_t*>(handshake.data()),
                              static_cast<uint32_t>(handshake.size()), kTcp, true, &signature),
            P2pProtocol::kBitTorrent);
  EXPECT_EQ(database_->name(signature), "bt-handshake");
  EXPECT_TRUE(p2p.done());
  EXPECT_FALSE(p2p.flags & P2pFlowState::kFromCache);
  EXPECT_EQ(inspector.counters().verdicts, 1u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(send(p2p, i % 2 == 0, noise), P2pProtocol::kBitTorrent);
  EXPECT_EQ(inspector.counters().scanned_packets, 5u);
  // A flow one side of which stays quiet: once that side is past N, nothing more is scanned.
  P2pFlowState one_way;
  for (int i = 0; i < 10; ++i) send(one_way, true, noise);
  EXPECT_EQ(inspector.counters().scanned_packets, 7u);
}

TEST_F(P2pInspectorTest, ProtocolsAndUdpCanBeSwitchedOff) {
  Bytes handshake = "\x13" "BitTorrent protocol" + repeat('\0', 48);
  Bytes connect = "GNUTELLA CONNECT/0.6\r\n\r\n";
  Bytes dht = "d1:ad2:id20:" + id20() + "e1:q4:ping1:t2:aa1:y1:qe";
  P2pInspectorConfig no_bittorrent;
  no_bittorrent.protocols = parse_p2p_protocols("--edk --gnu --kazaa --dc");
  EXPECT_EQ(run({{true, handshake}}, kTcp, no_bittorrent), P2pProtocol::kNone);
  EXPECT_EQ(run({{true, dht}}, kUdp, no_bittorrent), P2pProtocol::kNone);
  EXPECT_EQ(run({{true, connect}}, kTcp, no_bittorrent), P2pProtocol::kGnutella);

  P2pInspectorConfig tcp_only;
  tcp_only.udp = false;
  P2pInspector inspector(*database_, tcp_only);
  P2pFlowState udp_flow, tcp_flow;
  EXPECT_EQ(inspector.inspect(udp_flow, reinterpret_cast<const uint8_t*>(dht.data()), static_cast<uint32_t>(dht.size()), kUdp, true),
            P2pProtocol::kNone);
  EXPECT_EQ(inspector.counters().scanned_packets, 0u) << "UDP is not even scanned";
  EXPECT_EQ(inspector.inspect(tcp_flow, reinterpret_cast<const uint8_t*>(handshake.data()),
                              static_cast<uint32_t>(handshake.size()), kTcp, true),
            P2pProtocol::kBitTorrent);
  // Switched back on at run time.
  inspector.configure({});
  EXPECT_EQ(inspector.inspect(udp_flow, reinterpret_cast<const uint8_t*>(dht.data()), static_cast<uint32_t>(dht.size()), kUdp, true),
            P2pProtocol::kBitTorrent);
}

TEST_F(P2pInspectorTest, ALabelFromThePeerCacheEndsInspection) {
  P2pInspector inspector(*database_, {});
  P2pFlowState state;
  P2pInspector::label(state, P2pProtocol::kBitTorrent);
  Bytes encrypted = repeat('\x9d', 96);
  EXPECT_EQ(inspector.inspect(state, reinterpret_cast<const uint8_t*>(encrypted.data()),
                              static_cast<uint32_t>(encrypted.size()), kTcp, true),
            P2pProtocol::kBitTorrent);
  EXPECT_TRUE(state.flags & P2pFlowState::kFromCache);
  EXPECT_EQ(inspector.counters().scanned_packets, 0u);
}

TEST_F(P2pInspectorTest, BadInputNeverCrashesNorMatches) {
  P2pInspector inspector(*database_, {});
  // Zero length and no pointer at all.
  P2pFlowState state;
  EXPECT_EQ(inspector.inspect(state, nullptr, 0, kTcp, true), P2pProtocol::kNone);
  uint8_t byte = 0x13;
  EXPECT_EQ(inspector.inspect(state, &byte, 0, kUdp, false), P2pProtocol::kNone);
  EXPECT_EQ(state.inspected[0] + state.inspected[1], 0);
  // Every prefix of every recognisable payload, scanned from a buffer that ends where the
  // prefix does (the sanitizer build catches a read past it).
  const std::vector<std::pair<Bytes, P2pTransport>> payloads = {
      {"\x13" "BitTorrent protocol" + repeat('\0', 48), kTcp},
      {edonkey('\xe3', '\x01', "\x10" + repeat('\x33', 16)), kTcp},
      {gnutella('\x00', ""), kUdp},
      {le16(16) + "\x44\xb1\x71" + repeat('\x01', 11), kUdp},
      {le32(5) + Bytes(1, '\0') + le32(0x11223344), kTcp},
  };
  for (const auto& [payload, transport] : payloads)
    for (std::size_t n = 1; n < payload.size(); ++n) {
      std::vector<uint8_t> prefix(payload.begin(), payload.begin() + static_cast<long>(n));
      P2pFlowState s;
      inspector.inspect(s, prefix.data(), static_cast<uint32_t>(prefix.size()), transport, true);
    }
  // Random garbage, of every size up to a jumbo payload, both transports, both directions:
  // the signatures are specific enough that none of it is recognised.
  std::mt19937 random(20241204);
  std::uniform_int_distribution<int> size(1, 9000);
  int recognised = 0;
  for (int flow = 0; flow < 1000; ++flow) {
    P2pFlowState s;
    for (int packet = 0; packet < 16; ++packet) {
      std::vector<uint8_t> garbage(static_cast<std::size_t>(packet < 8 ? packet * 3 + 1 : size(random)));
      for (auto& b : garbage) b = static_cast<uint8_t>(random());
      if (inspector.inspect(s, garbage.data(), static_cast<uint32_t>(garbage.size()), flow % 2 ? kUdp : kTcp,
                            packet % 2 == 0) != P2pProtocol::kNone) {
        ++recognised;
        break;
      }
    }
  }
  EXPECT_EQ(recognised, 0);
  EXPECT_EQ(inspector.counters().scan_errors, 0u);
}

TEST_F(P2pInspectorTest, SwitchingDatabaseKeepsWorking) {
  auto small = P2pDatabase::compile(parse_p2p_signatures(R"({"signatures": [
    {"name": "lsd", "protocol": "bittorrent", "transport": "udp", "pattern": "BT-SEARCH ", "flags": ["anchored"], "comment": "BEP 14"}]})"));
  P2pInspector inspector(*small, {});
  Bytes connect = "GNUTELLA CONNECT/0.6\r\n\r\n";
  P2pFlowState before, after;
  EXPECT_EQ(inspector.inspect(before, reinterpret_cast<const uint8_t*>(connect.data()), static_cast<uint32_t>(connect.size()),
                              kTcp, true),
            P2pProtocol::kNone);
  inspector.use(*database_);
  EXPECT_EQ(inspector.inspect(after, reinterpret_cast<const uint8_t*>(connect.data()), static_cast<uint32_t>(connect.size()),
                              kTcp, true),
            P2pProtocol::kGnutella);
}

}  // namespace
}  // namespace fairgate
