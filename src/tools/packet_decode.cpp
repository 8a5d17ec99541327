#include "tools/packet_decode.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pcap/dlt.h>

#include <cstring>

namespace fairgate::tools {
namespace {

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr uint16_t kEtherVlan = 0x8100;
constexpr uint16_t kEtherQinQ = 0x88a8;
constexpr uint16_t kEtherQinQOld = 0x9100;
constexpr int kLinkRawIpv4 = 228;  // DLT_IPV4, LINKTYPE_IPV4
constexpr int kLinkRawIpv6 = 229;  // DLT_IPV6
constexpr int kLinkSll2 = 276;     // DLT_LINUX_SLL2

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

DecodeResult decode_transport(uint8_t protocol, const uint8_t* l4, uint32_t length, DecodedPacket& packet) {
  packet.protocol = protocol;
  if (protocol == IPPROTO_TCP) {
    if (length < 20) return DecodeResult::kTruncated;
    uint32_t header = (l4[12] >> 4) * 4u;
    if (header < 20 || header > length) return DecodeResult::kTruncated;
    packet.source.port = be16(l4);
    packet.destination.port = be16(l4 + 2);
    packet.tcp_flags = l4[13];
    packet.payload = l4 + header;
    packet.payload_length = length - header;
    return DecodeResult::kTransport;
  }
  if (protocol == IPPROTO_UDP) {
    if (length < 8) return DecodeResult::kTruncated;
    uint32_t datagram = be16(l4 + 4);
    // Shorter than claimed: the capture was cut (snap length); the header's length is trusted
    // only when it is consistent, which also drops Ethernet padding.
    uint32_t end = datagram >= 8 && datagram <= length ? datagram : length;
    packet.source.port = be16(l4);
    packet.destination.port = be16(l4 + 2);
    packet.payload = l4 + 8;
    packet.payload_length = end - 8;
    return DecodeResult::kTransport;
  }
  return DecodeResult::kOtherIp;
}

DecodeResult decode_ipv4(const uint8_t* ip, uint32_t length, DecodedPacket& packet) {
  if (length < 20) return DecodeResult::kTruncated;
  if ((ip[0] >> 4) != 4) return DecodeResult::kTruncated;
  uint32_t header = (ip[0] & 0x0f) * 4u;
  uint32_t total = be16(ip + 2);
  if (header < 20 || header > length || total < header) return DecodeResult::kTruncated;
  uint32_t end = total < length ? total : length;  // padding after, or cut by the snap length
  packet.source.family = packet.destination.family = 4;
  std::memcpy(packet.source.address, ip + 12, 4);
  std::memcpy(packet.destination.address, ip + 16, 4);
  packet.protocol = ip[9];
  if ((be16(ip + 6) & 0x1fff) != 0) return DecodeResult::kFragment;
  return decode_transport(ip[9], ip + header, end - header, packet);
}

DecodeResult decode_ipv6(const uint8_t* ip, uint32_t length, DecodedPacket& packet) {
  if (length < 40) return DecodeResult::kTruncated;
  if ((ip[0] >> 4) != 6) return DecodeResult::kTruncated;
  uint32_t payload = be16(ip + 4);
  uint32_t end = payload != 0 && 40 + payload < length ? 40 + payload : length;
  packet.source.family = packet.destination.family = 6;
  std::memcpy(packet.source.address, ip + 8, 16);
  std::memcpy(packet.destination.address, ip + 24, 16);
  uint8_t next = ip[6];
  uint32_t at = 40;
  for (int headers = 0; headers < 8; ++headers) {
    switch (next) {
      case 0:    // hop-by-hop options
      case 43:   // routing
      case 60: { // destination options
        if (at + 8 > end) return DecodeResult::kTruncated;
        uint32_t size = (ip[at + 1] + 1u) * 8u;
        next = ip[at];
        at += size;
        if (at > end) return DecodeResult::kTruncated;
        continue;
      }
      case 44: {  // fragment
        if (at + 8 > end) return DecodeResult::kTruncated;
        packet.protocol = ip[at];
        if ((be16(ip + at + 2) & 0xfff8) != 0) return DecodeResult::kFragment;
        next = ip[at];
        at += 8;
        continue;
      }
      case 51: {  // authentication header
        if (at + 8 > end) return DecodeResult::kTruncated;
        uint32_t size = (ip[at + 1] + 2u) * 4u;
        next = ip[at];
        at += size;
        if (at > end) return DecodeResult::kTruncated;
        continue;
      }
      default:
        return decode_transport(next, ip + at, end - at, packet);
    }
  }
  packet.protocol = next;
  return DecodeResult::kOtherIp;
}

DecodeResult decode_ip(const uint8_t* ip, uint32_t length, DecodedPacket& packet) {
  if (length < 1) return DecodeResult::kTruncated;
  switch (ip[0] >> 4) {
    case 4: return decode_ipv4(ip, length, packet);
    case 6: return decode_ipv6(ip, length, packet);
    default: return DecodeResult::kNotIp;
  }
}

DecodeResult decode_ethertype(uint16_t type, const uint8_t* data, uint32_t length, DecodedPacket& packet) {
  if (type == kEtherIpv4) return decode_ipv4(data, length, packet);
  if (type == kEtherIpv6) return decode_ipv6(data, length, packet);
  return DecodeResult::kNotIp;
}

}  // namespace

bool Endpoint::operator==(const Endpoint& other) const {
  return family == other.family && port == other.port && std::memcmp(address, other.address, 16) == 0;
}

bool Endpoint::operator<(const Endpoint& other) const {
  if (family != other.family) return family < other.family;
  int order = std::memcmp(address, other.address, 16);
  if (order != 0) return order < 0;
  return port < other.port;
}

uint32_t Endpoint::ipv4() const {
  return static_cast<uint32_t>(address[0]) << 24 | static_cast<uint32_t>(address[1]) << 16 |
         static_cast<uint32_t>(address[2]) << 8 | address[3];
}

std::string Endpoint::to_string() const {
  char text[INET6_ADDRSTRLEN] = "?";
  inet_ntop(family == 6 ? AF_INET6 : AF_INET, address, text, sizeof text);
  return family == 6 ? "[" + std::string(text) + "]:" + std::to_string(port) : std::string(text) + ":" + std::to_string(port);
}

bool parse_endpoint(const std::string& text, Endpoint& endpoint) {
  endpoint = Endpoint{};
  std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 >= text.size()) return false;
  std::string host = text.substr(0, colon), port = text.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
  unsigned long value = std::stoul(port);
  if (value > 65535) return false;
  endpoint.port = static_cast<uint16_t>(value);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    endpoint.family = 6;
    return inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), endpoint.address) == 1;
  }
  endpoint.family = 4;
  return inet_pton(AF_INET, host.c_str(), endpoint.address) == 1;
}

const char* decode_result_name(DecodeResult result) {
  switch (result) {
    case DecodeResult::kTransport: return "tcp/udp";
    case DecodeResult::kOtherIp: return "other ip protocol";
    case DecodeResult::kFragment: return "non-first fragment";
    case DecodeResult::kNotIp: return "not ip";
    case DecodeResult::kTruncated: return "truncated or malformed";
    case DecodeResult::kUnsupportedLink: return "unsupported link type";
  }
  return "?";
}

DecodeResult decode_packet(int linktype, const uint8_t* data, uint32_t caplen, DecodedPacket& packet) {
  packet = DecodedPacket{};
  if (data == nullptr) return DecodeResult::kTruncated;
  switch (linktype) {
    case DLT_EN10MB: {
      if (caplen < 14) return DecodeResult::kTruncated;
      uint32_t at = 12;
      uint16_t type = be16(data + at);
      for (int tags = 0; type == kEtherVlan || type == kEtherQinQ || type == kEtherQinQOld; ++tags) {
        if (tags == 4 || at + 6 > caplen) return DecodeResult::kTruncated;
        if (tags == 0) packet.vlan = be16(data + at + 2) & 0x0fff;
        at += 4;
        type = be16(data + at);
      }
      at += 2;
      return decode_ethertype(type, data + at, caplen - at, packet);
    }
    case DLT_RAW:
    case kLinkRawIpv4:
    case kLinkRawIpv6:
      return decode_ip(data, caplen, packet);
    case DLT_LINUX_SLL:
      if (caplen < 16) return DecodeResult::kTruncated;
      return decode_ethertype(be16(data + 14), data + 16, caplen - 16, packet);
    case kLinkSll2:
      if (caplen < 20) return DecodeResult::kTruncated;
      return decode_ethertype(be16(data), data + 20, caplen - 20, packet);
    case DLT_NULL:
    case DLT_LOOP:
      // A 4-byte address family in either byte order; what follows says which IP it is.
      if (caplen < 4) return DecodeResult::kTruncated;
      return decode_ip(data + 4, caplen - 4, packet);
    default:
      return DecodeResult::kUnsupportedLink;
  }
}

}  // namespace fairgate::tools
