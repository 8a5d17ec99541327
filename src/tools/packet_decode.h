// Offline packet decoding for the capture tools: from a captured frame to a transport endpoint
// pair and payload. Link types: Ethernet (with 802.1Q/802.1ad tags), raw IP, IPv4, IPv6, Linux
// cooked capture and BSD loopback. IPv4 and IPv6 (with hop-by-hop, routing, destination-options
// and fragment extension headers). Every length is checked against what was captured: a
// truncated or garbage frame decodes to a reason, never past its end.
#pragma once

#include <cstdint>
#include <string>

namespace fairgate::tools {

struct Endpoint {
  uint8_t family = 0;  // 4 or 6
  uint8_t address[16] = {};  // network order; IPv4 in the first 4 bytes, the rest zero
  uint16_t port = 0;         // host order

  bool operator==(const Endpoint& other) const;
  bool operator<(const Endpoint& other) const;
  uint32_t ipv4() const;  // host order; family 4 only
  std::string to_string() const;  // "192.0.2.1:80", "[2001:db8::1]:80"
};

// Parses "192.0.2.1:80" or "[2001:db8::1]:80"; false when it is neither.
bool parse_endpoint(const std::string& text, Endpoint& endpoint);

enum class DecodeResult : uint8_t {
  kTransport,    // TCP or UDP: endpoints and payload filled in
  kOtherIp,      // an IP packet of another protocol (ICMP, IGMP...); `protocol` filled in
  kFragment,     // a fragment after the first: no transport header
  kNotIp,        // ARP, LLDP and the like
  kTruncated,    // a header cut short or lengths that contradict each other
  kUnsupportedLink,
};
const char* decode_result_name(DecodeResult result);

struct DecodedPacket {
  uint8_t protocol = 0;  // IPPROTO_TCP, IPPROTO_UDP or another IP protocol number
  uint16_t vlan = 0;     // the outer 802.1Q id, 0 when untagged
  Endpoint source, destination;
  uint8_t tcp_flags = 0;          // TCP only
  const uint8_t* payload = nullptr;
  uint32_t payload_length = 0;    // bytes of transport payload present in the capture
};

// Decodes one captured frame of libpcap link type `linktype` (DLT_*); `caplen` bytes at `data`.
DecodeResult decode_packet(int linktype, const uint8_t* data, uint32_t caplen, DecodedPacket& packet);

}  // namespace fairgate::tools
