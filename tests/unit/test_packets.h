// Test frames built byte by byte (Ethernet, 802.1Q, IPv4 with a correct checksum, ICMP, UDP,
// TCP, ARP), the mbufs that carry them, and a decoder for checking what the gateway sent.
// Everything is in network byte order on the wire and host order in the arguments.
#pragma once

#include "core/checksum.h"
#include "core/ipv4.h"
#include "core/packet_meta.h"
#include "nat/flow_key.h"

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace fairgate::test {

// A 5-tuple, host order, for the NAT and flow accounting tests.
inline FlowKey flow(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t proto) {
  FlowKey key;
  key.src = src;
  key.sport = sport;
  key.dst = dst;
  key.dport = dport;
  key.proto = proto;
  return key;
}

// "10.10.0.11:40000 > 192.0.2.10:80 proto 6", for failure messages.
inline std::string text(const FlowKey& key) {
  return format_ipv4(key.src) + ":" + std::to_string(key.sport) + " > " + format_ipv4(key.dst) + ":" +
         std::to_string(key.dport) + " proto " + std::to_string(key.proto);
}

using Bytes = std::vector<uint8_t>;

// The packet pool every test allocates from (created by main() once EAL runs, no per-lcore
// cache, so rte_mempool_avail_count is exact).
rte_mempool* test_pool();
inline constexpr unsigned kTestPoolSize = 8191;

inline constexpr uint16_t kEtherIpv4 = 0x0800;
inline constexpr uint16_t kEtherArp = 0x0806;
inline constexpr uint16_t kEtherVlan = 0x8100;
inline constexpr uint16_t kEtherIpv6 = 0x86dd;
inline constexpr uint16_t kEtherLldp = 0x88cc;
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;

// ---- addresses -----------------------------------------------------------------------------

inline uint32_t ip(const char* text) {
  auto value = parse_ipv4(text);
  if (!value) throw std::invalid_argument(std::string("bad test address ") + text);
  return *value;
}

inline rte_ether_addr make_mac(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t e, uint8_t f) {
  return rte_ether_addr{{a, b, c, d, e, f}};
}
// What make_port_table gives port `index`.
inline rte_ether_addr port_mac(unsigned index) { return make_mac(0x02, 0, 0, 0, 0, static_cast<uint8_t>(index + 1)); }
// Hosts and routers around the gateway.
inline rte_ether_addr host_mac(uint8_t n) { return make_mac(0x02, 0xaa, 0, 0, 0, n); }
inline rte_ether_addr broadcast_mac() { return make_mac(0xff, 0xff, 0xff, 0xff, 0xff, 0xff); }
inline rte_ether_addr zero_mac() { return make_mac(0, 0, 0, 0, 0, 0); }

inline bool same_mac(const rte_ether_addr& a, const rte_ether_addr& b) { return std::memcmp(a.addr_bytes, b.addr_bytes, 6) == 0; }
inline std::string mac_text(const rte_ether_addr& mac) { return format_mac(mac.addr_bytes); }

// ---- byte helpers --------------------------------------------------------------------------

inline void put8(Bytes& out, uint8_t value) { out.push_back(value); }
inline void put16(Bytes& out, uint16_t value) {
  out.push_back(static_cast<uint8_t>(value >> 8));
  out.push_back(static_cast<uint8_t>(value));
}
inline void put32(Bytes& out, uint32_t value) {
  put16(out, static_cast<uint16_t>(value >> 16));
  put16(out, static_cast<uint16_t>(value));
}
inline void put_mac(Bytes& out, const rte_ether_addr& mac) { out.insert(out.end(), mac.addr_bytes, mac.addr_bytes + 6); }
inline void append(Bytes& out, const Bytes& more) { out.insert(out.end(), more.begin(), more.end()); }

inline uint16_t get16(const Bytes& data, std::size_t offset) {
  if (offset + 2 > data.size()) throw std::out_of_range("get16 past the frame");
  return static_cast<uint16_t>(data[offset] << 8 | data[offset + 1]);
}
inline uint32_t get32(const Bytes& data, std::size_t offset) {
  return uint32_t{get16(data, offset)} << 16 | get16(data, offset + 2);
}
inline void set16(Bytes& data, std::size_t offset, uint16_t value) {
  data.at(offset) = static_cast<uint8_t>(value >> 8);
  data.at(offset + 1) = static_cast<uint8_t>(value);
}

// Internet checksum of bytes (network order), as the value to store in a header.
inline uint16_t inet_checksum(const uint8_t* data, std::size_t len, uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < len; i += 2) sum += uint32_t{data[i]} << 8 | data[i + 1];
  if (len & 1) sum += uint32_t{data[len - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}
inline uint16_t inet_checksum(const Bytes& data) { return inet_checksum(data.data(), data.size()); }

inline Bytes payload_bytes(std::size_t length, uint8_t seed = 0) {
  Bytes data(length);
  for (std::size_t i = 0; i < length; ++i) data[i] = static_cast<uint8_t>(seed + i * 7);
  return data;
}

// ---- layer builders ------------------------------------------------------------------------

struct Ipv4Fields {
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t id = 0x1234;
  uint16_t flags_fragment = 0x4000;  // DF
  Bytes options;                     // a multiple of 4 bytes
  int version = 4;
  int ihl = -1;                      // -1: from the options
  int total_length = -1;             // -1: header + payload
  bool bad_checksum = false;
};

inline Bytes ipv4(uint32_t src, uint32_t dst, uint8_t proto, const Bytes& payload, const Ipv4Fields& f = {}) {
  Bytes out;
  std::size_t header_len = 20 + f.options.size();
  int ihl = f.ihl >= 0 ? f.ihl : static_cast<int>(header_len / 4);
  put8(out, static_cast<uint8_t>(f.version << 4 | (ihl & 0x0f)));
  put8(out, f.tos);
  put16(out, static_cast<uint16_t>(f.total_length >= 0 ? f.total_length : static_cast<int>(header_len + payload.size())));
  put16(out, f.id);
  put16(out, f.flags_fragment);
  put8(out, f.ttl);
  put8(out, proto);
  put16(out, 0);
  put32(out, src);
  put32(out, dst);
  append(out, f.options);
  uint16_t sum = inet_checksum(out.data(), header_len);
  if (f.bad_checksum) sum = static_cast<uint16_t>(sum ^ 0x0101);
  set16(out, 10, sum);
  append(out, payload);
  return out;
}

// ICMP message: type, code, the 4 "rest of header" bytes, data; checksum filled in.
inline Bytes icmp(uint8_t type, uint8_t code, uint32_t rest, const Bytes& data) {
  Bytes out;
  put8(out, type);
  put8(out, code);
  put16(out, 0);
  put32(out, rest);
  append(out, data);
  set16(out, 2, inet_checksum(out));
  return out;
}
inline Bytes icmp_echo(uint16_t id, uint16_t seq, std::size_t data_len = 24, uint8_t type = 8) {
  return icmp(type, 0, uint32_t{id} << 16 | seq, payload_bytes(data_len, static_cast<uint8_t>(seq)));
}

// The TCP or UDP checksum of `segment` (its checksum field as it is) with the pseudo-header.
inline uint16_t transport_checksum(uint32_t src, uint32_t dst, uint8_t proto, const Bytes& segment) {
  Bytes pseudo;
  put32(pseudo, src);
  put32(pseudo, dst);
  put8(pseudo, 0);
  put8(pseudo, proto);
  put16(pseudo, static_cast<uint16_t>(segment.size()));
  append(pseudo, segment);
  return inet_checksum(pseudo);
}

inline Bytes udp(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, const Bytes& payload) {
  Bytes out;
  put16(out, sport);
  put16(out, dport);
  put16(out, static_cast<uint16_t>(8 + payload.size()));
  put16(out, 0);
  append(out, payload);
  uint16_t sum = transport_checksum(src, dst, kProtoUdp, out);
  set16(out, 6, sum == 0 ? 0xffff : sum);
  return out;
}

struct TcpFields {
  uint8_t flags = 0x10;       // ACK
  Bytes options;              // a multiple of 4 bytes unless data_offset is given
  Bytes payload;
  uint32_t seq = 1000, ack = 0;
  int data_offset = -1;       // 32-bit words; -1: from the options
};

// A TCP segment, its checksum filled in for the pseudo-header of src and dst.
inline Bytes tcp(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, const TcpFields& f = {}) {
  Bytes out;
  put16(out, sport);
  put16(out, dport);
  put32(out, f.seq);
  put32(out, f.ack);
  int words = f.data_offset >= 0 ? f.data_offset : static_cast<int>((20 + f.options.size()) / 4);
  put8(out, static_cast<uint8_t>(words << 4));
  put8(out, f.flags);
  put16(out, 64240);
  put16(out, 0);  // checksum
  put16(out, 0);  // urgent pointer
  append(out, f.options);
  append(out, f.payload);
  set16(out, 16, transport_checksum(src, dst, kProtoTcp, out));
  return out;
}

inline Bytes arp(uint16_t op, const rte_ether_addr& sha, uint32_t sip, const rte_ether_addr& tha, uint32_t tip) {
  Bytes out;
  put16(out, 1);          // Ethernet
  put16(out, kEtherIpv4);
  put8(out, 6);
  put8(out, 4);
  put16(out, op);
  put_mac(out, sha);
  put32(out, sip);
  put_mac(out, tha);
  put32(out, tip);
  return out;
}

// An Ethernet frame; `vlans` are 802.1Q ids, outermost first.
inline Bytes ethernet(const rte_ether_addr& dst, const rte_ether_addr& src, uint16_t ethertype, const Bytes& payload,
                      std::initializer_list<uint16_t> vlans = {}) {
  Bytes out;
  put_mac(out, dst);
  put_mac(out, src);
  for (uint16_t vlan : vlans) {
    put16(out, kEtherVlan);
    put16(out, vlan);
  }
  put16(out, ethertype);
  append(out, payload);
  return out;
}

// Ethernet's minimum frame (without FCS) is 60 bytes; shorter frames arrive zero-padded.
inline Bytes padded(Bytes frame, std::size_t minimum = 60) {
  if (frame.size() < minimum) frame.resize(minimum, 0);
  return frame;
}

// ---- mbufs ---------------------------------------------------------------------------------

// A one-segment mbuf holding `frame`, PacketMeta zeroed, mbuf->port = port.
inline rte_mbuf* to_mbuf(const Bytes& frame, uint16_t port = 0, rte_mempool* pool = nullptr) {
  rte_mbuf* mbuf = rte_pktmbuf_alloc(pool ? pool : test_pool());
  if (mbuf == nullptr) throw std::runtime_error("test pool empty");
  char* data = rte_pktmbuf_append(mbuf, static_cast<uint16_t>(frame.size()));
  if (data == nullptr) {
    rte_pktmbuf_free(mbuf);
    throw std::runtime_error("test frame larger than an mbuf");
  }
  if (!frame.empty()) std::memcpy(data, frame.data(), frame.size());
  std::memset(packet_meta(mbuf), 0, sizeof(PacketMeta));
  mbuf->port = port;
  return mbuf;
}

inline Bytes bytes_of(const rte_mbuf* mbuf) {
  Bytes out(rte_pktmbuf_pkt_len(mbuf));
  if (out.empty()) return out;
  const void* data = rte_pktmbuf_read(mbuf, 0, static_cast<uint32_t>(out.size()), out.data());
  if (data != out.data()) std::memcpy(out.data(), data, out.size());
  return out;
}

// ---- decoding what came out ----------------------------------------------------------------

struct Frame {
  Bytes bytes;
  rte_ether_addr dst{}, src{};
  int vlan = -1;  // -1: untagged
  uint16_t ethertype = 0;
  std::size_t l3 = 0;  // offset of the header after the Ethernet header

  explicit Frame(Bytes data) : bytes(std::move(data)) {
    if (bytes.size() < 14) throw std::out_of_range("frame shorter than Ethernet");
    std::memcpy(dst.addr_bytes, &bytes[0], 6);
    std::memcpy(src.addr_bytes, &bytes[6], 6);
    ethertype = get16(bytes, 12);
    l3 = 14;
    if (ethertype == kEtherVlan) {
      vlan = get16(bytes, 14) & 0x0fff;
      ethertype = get16(bytes, 16);
      l3 = 18;
    }
  }
  static Frame of(const rte_mbuf* mbuf) { return Frame(bytes_of(mbuf)); }

  // IPv4
  std::size_t ihl_bytes() const { return (bytes.at(l3) & 0x0f) * 4u; }
  uint16_t total_length() const { return get16(bytes, l3 + 2); }
  uint8_t ttl() const { return bytes.at(l3 + 8); }
  uint8_t protocol() const { return bytes.at(l3 + 9); }
  uint16_t ip_checksum() const { return get16(bytes, l3 + 10); }
  uint32_t ip_src() const { return get32(bytes, l3 + 12); }
  uint32_t ip_dst() const { return get32(bytes, l3 + 16); }
  Bytes ip_header() const { return Bytes(bytes.begin() + static_cast<long>(l3), bytes.begin() + static_cast<long>(l3 + ihl_bytes())); }
  Bytes ip_packet() const { return Bytes(bytes.begin() + static_cast<long>(l3), bytes.end()); }
  // The checksum a full recompute gives (field zeroed), compared with the stored one.
  bool ip_checksum_valid() const {
    Bytes header = ip_header();
    uint16_t stored = get16(header, 10);
    set16(header, 10, 0);
    return inet_checksum(header) == stored;
  }
  std::size_t l4() const { return l3 + ihl_bytes(); }
  Bytes l4_bytes() const {
    return Bytes(bytes.begin() + static_cast<long>(l4()), bytes.begin() + static_cast<long>(l3 + total_length()));
  }
  bool icmp_checksum_valid() const { return inet_checksum(l4_bytes()) == 0; }
  uint8_t icmp_type() const { return bytes.at(l4()); }
  uint8_t icmp_code() const { return bytes.at(l4() + 1); }

  // ARP
  uint16_t arp_op() const { return get16(bytes, l3 + 6); }
  rte_ether_addr arp_sha() const { return mac_at(l3 + 8); }
  uint32_t arp_sip() const { return get32(bytes, l3 + 14); }
  rte_ether_addr arp_tha() const { return mac_at(l3 + 18); }
  uint32_t arp_tip() const { return get32(bytes, l3 + 24); }

 private:
  rte_ether_addr mac_at(std::size_t offset) const {
    rte_ether_addr mac{};
    if (offset + 6 > bytes.size()) throw std::out_of_range("MAC past the frame");
    std::memcpy(mac.addr_bytes, &bytes[offset], 6);
    return mac;
  }
};

}  // namespace fairgate::test
