// classify-pcap's offline decoding and ground-truth reading: frames of every link type it takes,
// frames cut anywhere, and nDPI's labels.
#include "tools/ground_truth.h"
#include "tools/packet_decode.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pcap/dlt.h>

#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fairgate::tools {
namespace {

using Frame = std::vector<uint8_t>;

void put16(Frame& f, uint16_t v) {
  f.push_back(static_cast<uint8_t>(v >> 8));
  f.push_back(static_cast<uint8_t>(v));
}

// IPv4 + UDP (or TCP) carrying `payload`; addresses 192.0.2.1:5000 -> 198.51.100.7:6881.
Frame ipv4(uint8_t protocol, const std::string& payload, uint16_t fragment = 0) {
  Frame l4;
  put16(l4, 5000);
  put16(l4, 6881);
  if (protocol == IPPROTO_UDP) {
    put16(l4, static_cast<uint16_t>(8 + payload.size()));
    put16(l4, 0);
  } else {
    for (int i = 0; i < 8; ++i) l4.push_back(0);
    l4.push_back(0x50);  // data offset 5 words
    l4.push_back(0x18);  // PSH ACK
    for (int i = 0; i < 6; ++i) l4.push_back(0);
  }
  l4.insert(l4.end(), payload.begin(), payload.end());
  Frame ip = {0x45, 0};
  put16(ip, static_cast<uint16_t>(20 + l4.size()));
  put16(ip, 1);
  put16(ip, fragment);
  ip.insert(ip.end(), {64, protocol, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7});
  ip.insert(ip.end(), l4.begin(), l4.end());
  return ip;
}

Frame ethernet(const Frame& ip, uint16_t vlan = 0, uint16_t type = 0x0800) {
  Frame f(12, 0x02);
  if (vlan != 0) {
    put16(f, 0x8100);
    put16(f, vlan);
  }
  put16(f, type);
  f.insert(f.end(), ip.begin(), ip.end());
  return f;
}

Frame ipv6_udp(const std::string& payload, bool with_extension) {
  Frame f = {0x60, 0, 0, 0};
  std::size_t udp_length = 8 + payload.size();
  put16(f, static_cast<uint16_t>(udp_length + (with_extension ? 8 : 0)));
  f.push_back(with_extension ? 60 : IPPROTO_UDP);
  f.push_back(64);
  Frame src = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  Frame dst = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  f.insert(f.end(), src.begin(), src.end());
  f.insert(f.end(), dst.begin(), dst.end());
  if (with_extension) f.insert(f.end(), {IPPROTO_UDP, 0, 1, 4, 0, 0, 0, 0});  // destination options, PadN
  put16(f, 6881);
  put16(f, 6881);
  put16(f, static_cast<uint16_t>(udp_length));
  put16(f, 0);
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

TEST(PacketDecode, EthernetVlanIpv4Udp) {
  Frame frame = ethernet(ipv4(IPPROTO_UDP, "d1:ad2:id20:"), 785);
  frame.resize(frame.size() + 6, 0);  // Ethernet padding is not payload
  DecodedPacket p;
  ASSERT_EQ(decode_packet(DLT_EN10MB, frame.data(), static_cast<uint32_t>(frame.size()), p), DecodeResult::kTransport);
  EXPECT_EQ(p.protocol, IPPROTO_UDP);
  EXPECT_EQ(p.vlan, 785);
  EXPECT_EQ(p.source.to_string(), "192.0.2.1:5000");
  EXPECT_EQ(p.destination.to_string(), "198.51.100.7:6881");
  EXPECT_EQ(p.destination.ipv4(), 0xc6336407u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(p.payload), p.payload_length), "d1:ad2:id20:");
}

TEST(PacketDecode, RawIpTcpAndIpv6WithExtensionHeaders) {
  Frame tcp = ipv4(IPPROTO_TCP, "GNUTELLA CONNECT/0.6\r\n");
  DecodedPacket p;
  ASSERT_EQ(decode_packet(DLT_RAW, tcp.data(), static_cast<uint32_t>(tcp.size()), p), DecodeResult::kTransport);
  EXPECT_EQ(p.protocol, IPPROTO_TCP);
  EXPECT_EQ(p.tcp_flags, 0x18);
  EXPECT_EQ(p.payload_length, 22u);

  for (bool extension : {false, true}) {
    Frame v6 = ipv6_udp("hello", extension);
    ASSERT_EQ(decode_packet(229 /* DLT_IPV6 */, v6.data(), static_cast<uint32_t>(v6.size()), p), DecodeResult::kTransport);
    EXPECT_EQ(p.source.to_string(), "[2001:db8::1]:6881");
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(p.payload), p.payload_length), "hello");
    Frame eth = ethernet(v6, 0, 0x86dd);
    ASSERT_EQ(decode_packet(DLT_EN10MB, eth.data(), static_cast<uint32_t>(eth.size()), p), DecodeResult::kTransport);
  }
}

TEST(PacketDecode, WhatIsNotATransportPacket) {
  DecodedPacket p;
  Frame later_fragment = ethernet(ipv4(IPPROTO_UDP, "x", 0x0010));
  EXPECT_EQ(decode_packet(DLT_EN10MB, later_fragment.data(), static_cast<uint32_t>(later_fragment.size()), p),
            DecodeResult::kFragment);
  Frame icmp = ethernet(ipv4(IPPROTO_ICMP, "ping"));
  EXPECT_EQ(decode_packet(DLT_EN10MB, icmp.data(), static_cast<uint32_t>(icmp.size()), p), DecodeResult::kOtherIp);
  EXPECT_EQ(p.protocol, IPPROTO_ICMP);
  Frame arp = ethernet(Frame(28, 0), 0, 0x0806);
  EXPECT_EQ(decode_packet(DLT_EN10MB, arp.data(), static_cast<uint32_t>(arp.size()), p), DecodeResult::kNotIp);
  EXPECT_EQ(decode_packet(147 /* DLT_USER0 */, arp.data(), static_cast<uint32_t>(arp.size()), p),
            DecodeResult::kUnsupportedLink);
  EXPECT_EQ(decode_packet(DLT_EN10MB, nullptr, 0, p), DecodeResult::kTruncated);
}

TEST(PacketDecode, FramesCutAnywhereOrGarbageNeverReadPastTheirEnd) {
  std::vector<std::pair<int, Frame>> frames = {
      {DLT_EN10MB, ethernet(ipv4(IPPROTO_TCP, "\x13" "BitTorrent protocol"), 10)},
      {DLT_EN10MB, ethernet(ipv6_udp("payload", true), 0, 0x86dd)},
      {DLT_RAW, ipv4(IPPROTO_UDP, "GND")},
      {DLT_LINUX_SLL, [] { Frame f(14, 0); put16(f, 0x0800); Frame ip = ipv4(IPPROTO_UDP, "x"); f.insert(f.end(), ip.begin(), ip.end()); return f; }()},
  };
  DecodedPacket p;
  for (const auto& [linktype, frame] : frames) {
    for (std::size_t n = 0; n <= frame.size(); ++n) {
      // A copy of exactly n bytes: the sanitizer build sees any read past it.
      Frame cut(frame.begin(), frame.begin() + static_cast<long>(n));
      DecodeResult result = decode_packet(linktype, cut.data(), static_cast<uint32_t>(cut.size()), p);
      if (result == DecodeResult::kTransport) {
        EXPECT_LE(p.payload, cut.data() + cut.size());
        EXPECT_LE(p.payload + p.payload_length, cut.data() + cut.size());
      }
    }
  }
  std::mt19937 random(7);
  for (int i = 0; i < 20000; ++i) {
    Frame garbage(static_cast<std::size_t>(random() % 128));
    for (auto& b : garbage) b = static_cast<uint8_t>(random());
    if (garbage.size() > 14 && i % 2) {  // an Ethernet frame claiming IPv4, to get past the first checks
      garbage[12] = 0x08;
      garbage[13] = 0x00;
      garbage[14] = 0x45;
    }
    if (decode_packet(i % 3 ? DLT_EN10MB : DLT_RAW, garbage.data(), static_cast<uint32_t>(garbage.size()), p) ==
        DecodeResult::kTransport) {
      EXPECT_LE(p.payload + p.payload_length, garbage.data() + garbage.size());
    }
  }
}

TEST(PacketDecode, Endpoints) {
  Endpoint e;
  ASSERT_TRUE(parse_endpoint("192.168.1.3:52888", e));
  EXPECT_EQ(e.family, 4);
  EXPECT_EQ(e.port, 52888);
  EXPECT_EQ(e.to_string(), "192.168.1.3:52888");
  ASSERT_TRUE(parse_endpoint("[32fb:f967:681e:e96b:face:b00c::74fd]:3478", e));
  EXPECT_EQ(e.family, 6);
  EXPECT_EQ(e.port, 3478);
  Endpoint same;
  ASSERT_TRUE(parse_endpoint("[32fb:f967:681e:e96b:face:b00c:0:74fd]:3478", same));
  EXPECT_TRUE(e == same) << "one address however it is written";
  for (const char* bad : {"", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3:80", "[::1::2]:80", "[::1]", "host:80", "1.2.3.4:8x"})
    EXPECT_FALSE(parse_endpoint(bad, e)) << bad;
}

TEST(GroundTruth, NdpiLabelsToProtocols) {
  EXPECT_EQ(p2p_protocol_of_ndpi("37/BitTorrent"), P2pProtocol::kBitTorrent);
  EXPECT_EQ(p2p_protocol_of_ndpi("7.37/HTTP.BitTorrent"), P2pProtocol::kBitTorrent);
  EXPECT_EQ(p2p_protocol_of_ndpi("91.37/TLS.BitTorrent"), P2pProtocol::kBitTorrent);
  EXPECT_EQ(p2p_protocol_of_ndpi("7.35/HTTP.Gnutella"), P2pProtocol::kGnutella);
  EXPECT_EQ(p2p_protocol_of_ndpi("36/eDonkey"), P2pProtocol::kEdonkey);
  EXPECT_EQ(p2p_protocol_of_ndpi("54/iQIYI"), P2pProtocol::kPpStream);
  EXPECT_EQ(p2p_protocol_of_ndpi("7.54/HTTP.PPStream"), P2pProtocol::kPpStream);
  EXPECT_EQ(p2p_protocol_of_ndpi("7.99/HTTP.Aimini"), P2pProtocol::kAimini);
  EXPECT_EQ(p2p_protocol_of_ndpi("7/HTTP"), P2pProtocol::kNone);
  EXPECT_EQ(p2p_protocol_of_ndpi("91.220/TLS.Cloudflare"), P2pProtocol::kNone);
  EXPECT_EQ(p2p_protocol_of_ndpi("354/ETHEREUM"), P2pProtocol::kNone);
  EXPECT_EQ(p2p_protocol_of_ndpi("0/Unknown"), P2pProtocol::kNone);
  EXPECT_EQ(p2p_protocol_of_ndpi(""), P2pProtocol::kNone);
}

TEST(GroundTruth, ReadsRowsByColumnName) {
  std::istringstream tsv(
      "dir\tpcap\tflow_no\tl4\tendpoint_a\tdirection\tendpoint_b\tvlan\tndpi_proto\tconfidence\tsection\n"
      "p2p\tbt.pcap\t1\tTCP\t192.168.1.3:52888\t<->\t82.58.216.115:38305\t\t37/BitTorrent\tDPI\tdetected\n"
      "nonp2p\tdns.pcap\t1\tUDP\t82.178.113.245:47255\t<->\t82.178.158.181:53\t785\t5.142/DNS.WhatsApp\tDPI\tdetected\n"
      "p2p\tk.pcap\t2\tICMP\t10.25.32.3:0\t->\t10.25.32.59:0\t\t81/ICMP\tDPI\tdetected\n"
      "p2p\tz.pcap\t3\tUDP\t[2600:1900:4160:5999::19::]:3478\t<->\t[2001:db8::1]:1\t\t78/STUN\tDPI\tdetected\n");
  auto rows = read_ground_truth(tsv, "truth.tsv");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].label, P2pProtocol::kBitTorrent);
  EXPECT_TRUE(rows[0].payload_evidence());
  EXPECT_EQ(rows[0].protocol, IPPROTO_TCP);
  EXPECT_TRUE(rows[0].endpoints_valid);
  EXPECT_EQ(rows[1].vlan, 785);
  EXPECT_EQ(rows[1].label, P2pProtocol::kNone);
  EXPECT_EQ(rows[2].protocol, 0);
  EXPECT_FALSE(rows[3].endpoints_valid) << "nDPI's misprinted IPv6 address";

  std::istringstream short_row("dir\tpcap\tflow_no\tl4\tendpoint_a\tendpoint_b\tvlan\tndpi_proto\tconfidence\np2p\tx\n");
  EXPECT_THROW(read_ground_truth(short_row, "t"), std::runtime_error);
  std::istringstream no_column("dir\tpcap\n");
  try {
    read_ground_truth(no_column, "t.tsv");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "t.tsv:1: no column \"flow_no\"");
  }
  std::istringstream bad_vlan("dir\tpcap\tflow_no\tl4\tendpoint_a\tendpoint_b\tvlan\tndpi_proto\tconfidence\n"
                              "p2p\tx\t1\tUDP\t1.2.3.4:1\t1.2.3.5:2\t5000\t7/HTTP\tDPI\n");
  EXPECT_THROW(read_ground_truth(bad_vlan, "t"), std::runtime_error);
}

}  // namespace
}  // namespace fairgate::tools
