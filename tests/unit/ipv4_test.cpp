#include "core/ipv4.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace fairgate {
namespace {

struct AddressCase {
  std::string text;
  std::optional<uint32_t> expected;
};

TEST(ParseIpv4, Table) {
  const std::vector<AddressCase> cases = {
      {"10.10.0.1", 0x0a0a0001},
      {"0.0.0.0", 0},
      {"255.255.255.255", 0xffffffff},
      {"192.0.2.10", 0xc000020a},
      {"1.2.3.4", 0x01020304},
      {"100.0.0.100", 0x64000064},
      {"256.1.1.1", std::nullopt},
      {"1.2.3.256", std::nullopt},
      {"1.2.3", std::nullopt},
      {"1.2.3.4.5", std::nullopt},
      {"01.2.3.4", std::nullopt},
      {"1.2.3.04", std::nullopt},
      {"1.2.00.4", std::nullopt},
      {"", std::nullopt},
      {".1.2.3", std::nullopt},
      {"1..2.3", std::nullopt},
      {"1.2.3.", std::nullopt},
      {"1.2.3.4 ", std::nullopt},
      {" 1.2.3.4", std::nullopt},
      {"a.b.c.d", std::nullopt},
      {"-1.2.3.4", std::nullopt},
      {"+1.2.3.4", std::nullopt},
      {"1.2.3.4/24", std::nullopt},
      {"99999999999.1.1.1", std::nullopt},
      {"0x1.2.3.4", std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("\"" + c.text + "\"");
    EXPECT_EQ(parse_ipv4(c.text), c.expected);
  }
}

struct PrefixCase {
  std::string text;
  bool valid;
  uint32_t address = 0;
  uint8_t length = 0;
};

TEST(ParseIpv4Prefix, Table) {
  const std::vector<PrefixCase> cases = {
      {"10.10.0.1/24", true, 0x0a0a0001, 24},
      {"198.51.100.2/25", true, 0xc6336402, 25},
      {"1.2.3.4", true, 0x01020304, 32},
      {"1.2.3.4/32", true, 0x01020304, 32},
      {"0.0.0.0/0", true, 0, 0},
      {"1.2.3.4/33", false},
      {"1.2.3.4/", false},
      {"1.2.3.4/-1", false},
      {"1.2.3.4/2a", false},
      {"1.2.3.4/24/8", false},
      {"1.2.3.4/ 24", false},
      {"/24", false},
      {"256.1.1.1/8", false},
      {"1.2.3/24", false},
      {"01.2.3.4/24", false},
      {"1.2.3.4/99999999999", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("\"" + c.text + "\"");
    auto prefix = parse_ipv4_prefix(c.text);
    ASSERT_EQ(prefix.has_value(), c.valid);
    if (!c.valid) continue;
    EXPECT_EQ(prefix->address, c.address);
    EXPECT_EQ(prefix->length, c.length);
  }
}

TEST(Ipv4Prefix, MaskNetworkBroadcastContains) {
  auto lan = *parse_ipv4_prefix("10.10.0.1/24");
  EXPECT_EQ(lan.mask(), 0xffffff00u);
  EXPECT_EQ(lan.network(), 0x0a0a0000u);
  EXPECT_EQ(lan.broadcast(), 0x0a0a00ffu);
  EXPECT_TRUE(lan.contains(0x0a0a0063));
  EXPECT_FALSE(lan.contains(0x0a0a0100));

  auto wan = *parse_ipv4_prefix("198.51.100.2/25");
  EXPECT_EQ(wan.broadcast(), *parse_ipv4("198.51.100.127"));
  EXPECT_TRUE(wan.contains(*parse_ipv4("198.51.100.1")));
  EXPECT_FALSE(wan.contains(*parse_ipv4("198.51.100.128")));

  Ipv4Prefix all{0x01020304, 0};
  EXPECT_EQ(all.mask(), 0u);
  EXPECT_TRUE(all.contains(0xffffffff));
  Ipv4Prefix host{0x01020304, 32};
  EXPECT_EQ(host.mask(), 0xffffffffu);
  EXPECT_TRUE(host.contains(0x01020304));
  EXPECT_FALSE(host.contains(0x01020305));
}

TEST(Ipv4Format, RoundTrips) {
  for (const char* text : {"0.0.0.0", "10.10.0.1", "255.255.255.255", "192.0.2.10"})
    EXPECT_EQ(format_ipv4(*parse_ipv4(text)), text);
  EXPECT_EQ(format_prefix(*parse_ipv4_prefix("10.10.0.1/24")), "10.10.0.1/24");
  EXPECT_EQ(format_prefix(*parse_ipv4_prefix("1.2.3.4")), "1.2.3.4/32");
  const uint8_t mac[6] = {0x02, 0x00, 0xab, 0xcd, 0xef, 0x01};
  EXPECT_EQ(format_mac(mac), "02:00:ab:cd:ef:01");
}

}  // namespace
}  // namespace fairgate
