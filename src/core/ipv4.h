// IPv4 addresses as host-byte-order integers in the control plane; the packet keeps network
// order and the stages convert once per packet.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fairgate {

struct Ipv4Prefix {
  uint32_t address = 0;  // host byte order; for a port, the port's own address
  uint8_t length = 0;    // prefix length in bits, 0..32

  uint32_t mask() const { return length == 0 ? 0 : ~uint32_t{0} << (32 - length); }
  uint32_t network() const { return address & mask(); }
  uint32_t broadcast() const { return network() | ~mask(); }
  bool contains(uint32_t ip) const { return (ip & mask()) == network(); }
  bool operator==(const Ipv4Prefix&) const = default;
};

inline bool prefixes_overlap(const Ipv4Prefix& a, const Ipv4Prefix& b) {
  return a.contains(b.network()) || b.contains(a.network());
}

std::optional<uint32_t> parse_ipv4(std::string_view text);
// "a.b.c.d/len"; a bare address is a /32.
std::optional<Ipv4Prefix> parse_ipv4_prefix(std::string_view text);
// A host ("10.10.0.7", a /32) or a prefix ("10.10.0.32/28"), as the network it names:
// "10.10.0.33/28" means the /28 it lies in. Subscribers and WAN policies are written so.
std::optional<Ipv4Prefix> parse_host_or_prefix(std::string_view text);
std::string format_ipv4(uint32_t address);
std::string format_prefix(const Ipv4Prefix& prefix);
std::string format_mac(const uint8_t mac[6]);

}  // namespace fairgate
