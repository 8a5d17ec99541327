// The "nat" section of the configuration: defaults, every field read, every bad field named,
// port-forward rules (FairNAT's "6000:6100" ranges, overlaps naming both rules).
#include "config/config.h"
#include "config/json_path.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

namespace fairgate {
namespace {

using nlohmann::json;

uint32_t addr(const char* text) { return *parse_ipv4(text); }

// Two ports and an empty "nat" section for the tests to fill.
json base_config() {
  return json::parse(R"({
    "ports": [
      {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
      {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1"}
    ],
    "nat": {}
  })");
}

NatConfig parse_nat(const json& nat) {
  json c = base_config();
  c["nat"] = nat;
  return parse_config(c.dump()).nat;
}

json forward(const char* protocol, json external, const char* internal) {
  return json{{"protocol", protocol}, {"external", std::move(external)}, {"internal", internal}};
}

TEST(NatConfig, Defaults) {
  json c = base_config();
  c.erase("nat");
  for (const NatConfig& nat : {parse_config(c.dump()).nat, parse_nat(json::object())}) {
    EXPECT_EQ(nat.max_sessions, 1u << 20);
    EXPECT_EQ(nat.sessions_per_subscriber, 4096u);
    EXPECT_EQ(nat.port_min, 1024);
    EXPECT_EQ(nat.port_max, 65535);
    EXPECT_FALSE(nat.endpoint_independent_filtering) << "address-and-port-dependent by default";
    EXPECT_EQ(nat.tcp_established_s, 7440u);
    EXPECT_EQ(nat.tcp_transitory_s, 240u);
    EXPECT_EQ(nat.udp_s, 300u);
    EXPECT_EQ(nat.icmp_s, 60u);
    EXPECT_EQ(nat.mss_clamp, 0);
    EXPECT_FALSE(nat.mss_clamp_to_mtu);
    EXPECT_EQ(nat.ttl_set, 0);
    EXPECT_TRUE(nat.port_forwards.empty());
  }
}

TEST(NatConfig, EveryFieldIsRead) {
  NatConfig nat = parse_nat(json::parse(R"({
    "sessions": 200000, "sessions_per_subscriber": 100, "ports": "20000-29999",
    "filtering": "endpoint-independent",
    "timeouts": {"tcp_established_s": 3600, "tcp_transitory_s": 120, "udp_s": 30, "icmp_s": 10},
    "mss_clamp": 1400, "ttl_set": 64,
    "port_forwards": [
      {"protocol": "tcp", "external": 8080, "internal": "10.10.0.13", "internal_port": 80},
      {"protocol": "both", "external": "6000:6100", "internal": "10.10.0.14"},
      {"protocol": "udp", "external": "7000-7009", "internal": "10.10.0.15", "internal_port": "8000-8009"}
    ]})"));
  EXPECT_EQ(nat.max_sessions, 200000u);
  EXPECT_EQ(nat.sessions_per_subscriber, 100u);
  EXPECT_EQ(nat.port_min, 20000);
  EXPECT_EQ(nat.port_max, 29999);
  EXPECT_TRUE(nat.endpoint_independent_filtering);
  EXPECT_EQ(nat.tcp_established_s, 3600u);
  EXPECT_EQ(nat.tcp_transitory_s, 120u);
  EXPECT_EQ(nat.udp_s, 30u);
  EXPECT_EQ(nat.icmp_s, 10u);
  EXPECT_EQ(nat.mss_clamp, 1400);
  EXPECT_FALSE(nat.mss_clamp_to_mtu);
  EXPECT_EQ(nat.ttl_set, 64);
  ASSERT_EQ(nat.port_forwards.size(), 3u);
  const auto& web = nat.port_forwards[0];
  EXPECT_TRUE(web.tcp);
  EXPECT_FALSE(web.udp);
  EXPECT_EQ(web.external_first, 8080);
  EXPECT_EQ(web.external_last, 8080);
  EXPECT_EQ(web.internal, addr("10.10.0.13"));
  EXPECT_EQ(web.internal_first, 80);
  const auto& range = nat.port_forwards[1];
  EXPECT_TRUE(range.tcp);
  EXPECT_TRUE(range.udp);
  EXPECT_EQ(range.external_first, 6000);
  EXPECT_EQ(range.external_last, 6100);
  EXPECT_EQ(range.internal, addr("10.10.0.14"));
  EXPECT_EQ(range.internal_first, 6000) << "no internal_port: the same ports";
  const auto& shifted = nat.port_forwards[2];
  EXPECT_FALSE(shifted.tcp);
  EXPECT_TRUE(shifted.udp);
  EXPECT_EQ(shifted.external_first, 7000);
  EXPECT_EQ(shifted.external_last, 7009);
  EXPECT_EQ(shifted.internal_first, 8000);
}

TEST(NatConfig, FilteringAndMssClampModes) {
  EXPECT_FALSE(parse_nat({{"filtering", "address-and-port-dependent"}}).endpoint_independent_filtering);
  NatConfig mtu = parse_nat({{"mss_clamp", "mtu"}});
  EXPECT_TRUE(mtu.mss_clamp_to_mtu);
  EXPECT_EQ(mtu.mss_clamp, 0);
  NatConfig off = parse_nat({{"mss_clamp", "off"}});
  EXPECT_FALSE(off.mss_clamp_to_mtu);
  EXPECT_EQ(off.mss_clamp, 0);
  EXPECT_EQ(parse_nat({{"mss_clamp", 536}}).mss_clamp, 536);
  EXPECT_EQ(parse_nat({{"mss_clamp", 9000}}).mss_clamp, 9000);
  EXPECT_EQ(parse_nat({{"ttl_set", 0}}).ttl_set, 0);
  EXPECT_EQ(parse_nat({{"ttl_set", 255}}).ttl_set, 255);
}

TEST(NatConfig, PortRangesFairNatStyleAndSmallest) {
  NatConfig colon = parse_nat({{"ports", "6000:6100"}});
  EXPECT_EQ(colon.port_min, 6000);
  EXPECT_EQ(colon.port_max, 6100);
  NatConfig smallest = parse_nat({{"ports", "20000-20063"}});
  EXPECT_EQ(smallest.port_max - smallest.port_min + 1, 64) << "64 ports are enough";
  NatConfig top = parse_nat({{"ports", "65472:65535"}});
  EXPECT_EQ(top.port_max, 65535);
}

TEST(NatConfig, PortForwardsThatTouchButDoNotOverlapAreAccepted) {
  NatConfig nat = parse_nat({{"port_forwards", json::array({forward("tcp", "8000-8099", "10.10.0.13"),
                                                             forward("tcp", "8100:8199", "10.10.0.14"),
                                                             forward("udp", "8000-8099", "10.10.0.15"),
                                                             forward("udp", 8100, "10.10.0.13")})}});
  EXPECT_EQ(nat.port_forwards.size(), 4u) << "adjacent ranges, and TCP and UDP on the same ports";
}

TEST(NatConfig, PortForwardOverlapNamesBothRules) {
  json c = base_config();
  c["nat"]["port_forwards"] = json::array({forward("tcp", "8000-8100", "10.10.0.13"), forward("udp", 9000, "10.10.0.13"),
                                           forward("both", 8100, "10.10.0.14")});
  try {
    parse_config(c.dump());
    FAIL() << "accepted overlapping rules";
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), "nat.port_forwards[2]") << error.what();
    EXPECT_NE(std::string(error.what()).find("nat.port_forwards[0]"), std::string::npos)
        << "names the other rule: " << error.what();
  }
}

TEST(NatConfig, ParsePortForwardStandsAloneForTheCommand) {
  std::vector<Ipv4Prefix> lan = {*parse_ipv4_prefix("10.10.0.1/24")};
  json args = forward("udp", "5000:5009", "10.10.0.20");
  args["internal_port"] = 6000;
  EXPECT_THROW(parse_port_forward(JsonField(args, "args"), lan), FieldError) << "single port for a range";
  args["internal_port"] = "6000-6009";
  PortForwardRule rule = parse_port_forward(JsonField(args, "args"), lan);
  EXPECT_TRUE(rule.udp);
  EXPECT_FALSE(rule.tcp);
  EXPECT_EQ(rule.external_first, 5000);
  EXPECT_EQ(rule.external_last, 5009);
  EXPECT_EQ(rule.internal, addr("10.10.0.20"));
  EXPECT_EQ(rule.internal_first, 6000);
  try {
    args["internal"] = "10.20.0.1";
    parse_port_forward(JsonField(args, "args"), lan);
    FAIL() << "accepted a host off the LAN";
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), "args.internal") << error.what();
  }
}

TEST(NatConfig, OverlapsIsSymmetricAndPerProtocol) {
  PortForwardRule a{.tcp = true, .udp = false, .external_first = 100, .external_last = 200};
  PortForwardRule b{.tcp = true, .udp = true, .external_first = 200, .external_last = 300};
  PortForwardRule c{.tcp = false, .udp = true, .external_first = 150, .external_last = 150};
  EXPECT_TRUE(a.overlaps(b));
  EXPECT_TRUE(b.overlaps(a));
  EXPECT_FALSE(a.overlaps(c));
  EXPECT_FALSE(c.overlaps(a));
  EXPECT_FALSE(b.overlaps(c)) << "150 is below 200";
  c.external_last = 250;
  EXPECT_TRUE(b.overlaps(c));
}

struct BadNat {
  std::string name;
  std::function<void(json&)> mutate;  // applied to the "nat" object
  std::string field;
};
void PrintTo(const BadNat& c, std::ostream* out) { *out << c.name; }

std::vector<BadNat> bad_nat_cases() {
  auto forwards = [](std::initializer_list<json> rules) {
    return [list = std::vector<json>(rules)](json& nat) { nat["port_forwards"] = list; };
  };
  return {
      {"unknown_key", [](json& n) { n["mode"] = "masquerade"; }, "nat.mode"},
      {"sessions_too_few", [](json& n) { n["sessions"] = 10; }, "nat.sessions"},
      {"sessions_not_a_number", [](json& n) { n["sessions"] = "many"; }, "nat.sessions"},
      {"sessions_per_subscriber_zero", [](json& n) { n["sessions_per_subscriber"] = 0; }, "nat.sessions_per_subscriber"},
      {"ports_too_few", [](json& n) { n["ports"] = "20000-20062"; }, "nat.ports"},
      {"ports_single", [](json& n) { n["ports"] = 20000; }, "nat.ports"},
      {"ports_reversed", [](json& n) { n["ports"] = "30000-20000"; }, "nat.ports"},
      {"ports_zero", [](json& n) { n["ports"] = "0-1000"; }, "nat.ports"},
      {"ports_past_65535", [](json& n) { n["ports"] = "60000-70000"; }, "nat.ports"},
      {"ports_not_numbers", [](json& n) { n["ports"] = "low-high"; }, "nat.ports"},
      {"ports_trailing_text", [](json& n) { n["ports"] = "20000-30000x"; }, "nat.ports"},
      {"filtering_unknown", [](json& n) { n["filtering"] = "full-cone"; }, "nat.filtering"},
      {"filtering_not_a_string", [](json& n) { n["filtering"] = true; }, "nat.filtering"},
      {"mss_clamp_word", [](json& n) { n["mss_clamp"] = "auto"; }, "nat.mss_clamp"},
      {"mss_clamp_too_small", [](json& n) { n["mss_clamp"] = 100; }, "nat.mss_clamp"},
      {"mss_clamp_too_big", [](json& n) { n["mss_clamp"] = 9001; }, "nat.mss_clamp"},
      {"ttl_set_256", [](json& n) { n["ttl_set"] = 256; }, "nat.ttl_set"},
      {"udp_timeout_zero", [](json& n) { n["timeouts"]["udp_s"] = 0; }, "nat.timeouts.udp_s"},
      {"icmp_timeout_zero", [](json& n) { n["timeouts"]["icmp_s"] = 0; }, "nat.timeouts.icmp_s"},
      {"tcp_established_zero", [](json& n) { n["timeouts"]["tcp_established_s"] = 0; }, "nat.timeouts.tcp_established_s"},
      {"tcp_transitory_negative", [](json& n) { n["timeouts"]["tcp_transitory_s"] = -5; }, "nat.timeouts.tcp_transitory_s"},
      {"timeouts_unknown_key", [](json& n) { n["timeouts"]["tcp_s"] = 5; }, "nat.timeouts.tcp_s"},
      {"forwards_not_an_array", [](json& n) { n["port_forwards"] = "8080"; }, "nat.port_forwards"},
      {"forward_overlaps_earlier",
       forwards({forward("tcp", 8080, "10.10.0.13"), forward("tcp", "8000-8100", "10.10.0.14")}),
       "nat.port_forwards[1]"},
      {"forward_both_overlaps_udp",
       forwards({forward("udp", "5000-5010", "10.10.0.13"), forward("both", "5010:5020", "10.10.0.14")}),
       "nat.port_forwards[1]"},
      {"forward_internal_off_lan", forwards({forward("tcp", 8080, "192.0.2.10")}), "nat.port_forwards[0].internal"},
      {"forward_internal_is_the_gateway", forwards({forward("tcp", 8080, "10.10.0.1")}),
       "nat.port_forwards[0].internal"},
      {"forward_internal_is_broadcast", forwards({forward("tcp", 8080, "10.10.0.255")}),
       "nat.port_forwards[0].internal"},
      {"forward_internal_not_an_address", forwards({forward("tcp", 8080, "server")}), "nat.port_forwards[0].internal"},
      {"forward_internal_missing", forwards({json{{"protocol", "tcp"}, {"external", 8080}}}),
       "nat.port_forwards[0].internal"},
      {"forward_protocol_sctp", forwards({forward("sctp", 8080, "10.10.0.13")}), "nat.port_forwards[0].protocol"},
      {"forward_protocol_missing", forwards({json{{"external", 8080}, {"internal", "10.10.0.13"}}}),
       "nat.port_forwards[0].protocol"},
      {"forward_external_zero", forwards({forward("tcp", 0, "10.10.0.13")}), "nat.port_forwards[0].external"},
      {"forward_external_reversed", forwards({forward("tcp", "9000-8000", "10.10.0.13")}),
       "nat.port_forwards[0].external"},
      {"forward_external_too_big", forwards({forward("udp", 65536, "10.10.0.13")}), "nat.port_forwards[0].external"},
      {"forward_internal_port_range_longer",
       [](json& n) {
         json rule = forward("tcp", "6000-6100", "10.10.0.13");
         rule["internal_port"] = "7000-7200";
         n["port_forwards"] = json::array({rule});
       },
       "nat.port_forwards[0].internal_port"},
      {"forward_internal_port_range_shorter",
       [](json& n) {
         json rule = forward("tcp", "6000:6100", "10.10.0.13");
         rule["internal_port"] = "7000:7010";
         n["port_forwards"] = json::array({rule});
       },
       "nat.port_forwards[0].internal_port"},
      {"forward_internal_port_single_for_a_range",
       [](json& n) {
         json rule = forward("tcp", "6000-6100", "10.10.0.13");
         rule["internal_port"] = 80;
         n["port_forwards"] = json::array({rule});
       },
       "nat.port_forwards[0].internal_port"},
      {"forward_internal_port_range_for_one_port",
       [](json& n) {
         json rule = forward("tcp", 6000, "10.10.0.13");
         rule["internal_port"] = "80-90";
         n["port_forwards"] = json::array({rule});
       },
       "nat.port_forwards[0].internal_port"},
      {"forward_unknown_key",
       [](json& n) {
         json rule = forward("tcp", 6000, "10.10.0.13");
         rule["comment"] = "web";
         n["port_forwards"] = json::array({rule});
       },
       "nat.port_forwards[0].comment"},
  };
}

class BadNatConfig : public ::testing::TestWithParam<BadNat> {};

TEST_P(BadNatConfig, NamesTheBadField) {
  json c = base_config();
  GetParam().mutate(c["nat"]);
  try {
    parse_config(c.dump());
    FAIL() << "accepted: " << c["nat"].dump();
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), GetParam().field) << error.what();
    EXPECT_EQ(std::string(error.what()).rfind(GetParam().field + ": ", 0), 0u)
        << "the message starts with the field: " << error.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Table, BadNatConfig, ::testing::ValuesIn(bad_nat_cases()),
                         [](const ::testing::TestParamInfo<BadNat>& info) { return info.param.name; });

}  // namespace
}  // namespace fairgate
