#include "core/ipv4.h"

#include <charconv>
#include <cstdio>

namespace fairgate {

std::optional<uint32_t> parse_ipv4(std::string_view text) {
  uint32_t address = 0;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (text.empty() || text.front() != '.') return std::nullopt;
      text.remove_prefix(1);
    }
    // Leading zeros are refused: "010" means octal to some tools and decimal to others.
    if (text.size() > 1 && text[0] == '0' && text[1] >= '0' && text[1] <= '9') return std::nullopt;
    unsigned value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end == text.data() || value > 255) return std::nullopt;
    text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    address = (address << 8) | value;
  }
  if (!text.empty()) return std::nullopt;
  return address;
}

std::optional<Ipv4Prefix> parse_ipv4_prefix(std::string_view text) {
  Ipv4Prefix prefix;
  auto slash = text.find('/');
  auto address = parse_ipv4(text.substr(0, slash));
  if (!address) return std::nullopt;
  prefix.address = *address;
  prefix.length = 32;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    unsigned length = 0;
    auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (error != std::errc{} || end != digits.data() + digits.size() || digits.empty() || length > 32)
      return std::nullopt;
    prefix.length = static_cast<uint8_t>(length);
  }
  return prefix;
}

std::string format_ipv4(uint32_t address) {
  char text[16];
  std::snprintf(text, sizeof text, "%u.%u.%u.%u", address >> 24, (address >> 16) & 0xff,
                (address >> 8) & 0xff, address & 0xff);
  return text;
}

std::optional<Ipv4Prefix> parse_host_or_prefix(std::string_view text) {
  std::optional<Ipv4Prefix> prefix;
  if (text.find('/') == std::string_view::npos) {
    if (auto address = parse_ipv4(text)) prefix = Ipv4Prefix{*address, 32};
  } else {
    prefix = parse_ipv4_prefix(text);
  }
  if (prefix) prefix->address = prefix->network();
  return prefix;
}

std::string format_prefix(const Ipv4Prefix& prefix) {
  return format_ipv4(prefix.address) + "/" + std::to_string(prefix.length);
}

std::string format_mac(const uint8_t mac[6]) {
  char text[18];
  std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return text;
}

}  // namespace fairgate
