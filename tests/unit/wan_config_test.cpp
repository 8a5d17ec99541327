// The "wan" section of the configuration (parse_wan): links with their probe targets, weights
// and modems, per-subscriber policy, probe and LPA settings, and every refusal naming the field
// and the reason.
#include "config/config.h"
#include "config/json_path.h"
#include "config/wan_parse.h"
#include "wan/wan_health.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace fairgate {
namespace {

using nlohmann::json;

// Where two_wan_config() puts its ports.
constexpr uint16_t kLanPort = 0, kWan0Port = 1, kWan1Port = 2;

uint32_t addr(const char* text) { return *parse_ipv4(text); }

// A LAN and two WANs, and the lab's wan section: wan0 and wan1, each probing one target and
// with its modem.
json two_wan_config() {
  return json::parse(R"({
    "ports": [
      {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
      {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1"},
      {"name": "wan1", "role": "wan", "device": "net_ring2", "address": "203.0.113.2/25", "gateway": "203.0.113.1"}
    ],
    "wan": {
      "links": [
        {"port": "wan0", "targets": ["192.0.2.10"], "modem": {"id": 1, "interface": 1, "source": "198.51.100.1"}},
        {"port": "wan1", "targets": ["192.0.2.10"], "modem": {"id": 2, "interface": 1, "source": "203.0.113.1"}}
      ]
    }
  })");
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Asserts that parse_config rejects `c` naming `field`, with `fragment` in the reason.
void expect_rejected(const json& c, const std::string& field, const std::string& fragment) {
  try {
    parse_config(c.dump());
    ADD_FAILURE() << "accepted: " << c["wan"].dump();
  } catch (const FieldError& error) {
    std::string message = error.what();
    EXPECT_EQ(error.field(), field) << message;
    EXPECT_EQ(message.rfind(field + ": ", 0), 0u) << "the message starts with the field: " << message;
    EXPECT_TRUE(contains(message, fragment)) << "expected \"" << fragment << "\" in: " << message;
  }
}

// ---- what a valid section becomes -----------------------------------------------------------

TEST(WanConfig, WithoutTheSectionWanIsOff) {
  json c = two_wan_config();
  c.erase("wan");
  Config config = parse_config(c.dump());
  EXPECT_FALSE(config.wan.enabled);
  EXPECT_TRUE(config.wan.links.empty());
}

TEST(WanConfig, EverythingGivenParsesToTheExpectedStructs) {
  json c = two_wan_config();
  c["wan"] = json::parse(R"({
    "links": [
      {"port": "wan0", "targets": ["192.0.2.10", "192.0.2.11"], "weight": 3,
       "modem": {"id": 7, "interface": 2, "source": "198.51.100.1"}},
      {"port": "wan1", "targets": ["192.0.2.20"], "weight": 0, "modem": {"id": 4294967295, "interface": 0}}
    ],
    "policy": [
      {"subscribers": ["10.10.0.11", "10.10.0.77/28"], "wan": "wan1"},
      {"subscribers": ["10.10.0.128/25"], "wan": "balance"},
      {"subscribers": ["10.10.0.0/24"], "wan": "wan0"}
    ],
    "default": "wan1",
    "probes": {"interval_ms": 250, "timeout_ms": 400, "down_after": 3, "up_after": 5, "reliability": 2,
               "window": 20, "loss_degraded_percent": 30, "loss_recovered_percent": 15,
               "latency_degraded_ms": 200, "latency_recovered_ms": 100, "hold_down_ms": 3000},
    "lpa": {"port": 5000, "margin_percent": 5, "hold_down_ms": 100, "min_window_ms": 2000, "period_ms": 500,
            "max_per_second": 20}
  })");
  const WanConfig wan = parse_config(c.dump()).wan;
  EXPECT_TRUE(wan.enabled);
  ASSERT_EQ(wan.links.size(), 2u);

  const WanLinkConfig& first = wan.links[0];
  EXPECT_EQ(first.port, kWan0Port) << "the index of the port named wan0 in ports";
  EXPECT_EQ(first.targets, (std::vector<uint32_t>{addr("192.0.2.10"), addr("192.0.2.11")}));
  EXPECT_EQ(first.weight, 3u);
  EXPECT_TRUE(first.has_modem);
  EXPECT_EQ(first.modem_id, 7u);
  EXPECT_EQ(first.modem_interface, 2u);
  EXPECT_EQ(first.modem_source, addr("198.51.100.1"));

  const WanLinkConfig& second = wan.links[1];
  EXPECT_EQ(second.port, kWan1Port);
  EXPECT_EQ(second.targets, (std::vector<uint32_t>{addr("192.0.2.20")}));
  EXPECT_EQ(second.weight, 0u) << "a backup link";
  EXPECT_TRUE(second.has_modem);
  EXPECT_EQ(second.modem_id, UINT32_MAX);
  EXPECT_EQ(second.modem_interface, 0u);
  EXPECT_EQ(second.modem_source, 0u) << "no source: any address on the port's prefix";

  ASSERT_EQ(wan.policy.size(), 3u);
  EXPECT_EQ(wan.policy[0].subscribers,
            (std::vector<Ipv4Prefix>{{addr("10.10.0.11"), 32}, {addr("10.10.0.64"), 28}}))
      << "a bare address is a /32; a prefix is kept as its network";
  EXPECT_EQ(wan.policy[0].preferred, 1) << "wan1 is link 1";
  EXPECT_EQ(wan.policy[1].subscribers, (std::vector<Ipv4Prefix>{{addr("10.10.0.128"), 25}}));
  EXPECT_EQ(wan.policy[1].preferred, -1) << "balance";
  EXPECT_EQ(wan.policy[2].subscribers, (std::vector<Ipv4Prefix>{{addr("10.10.0.0"), 24}}));
  EXPECT_EQ(wan.policy[2].preferred, 0);
  EXPECT_EQ(wan.default_preferred, 1);

  EXPECT_EQ(wan.interval_ms, 250u);
  EXPECT_EQ(wan.timeout_ms, 400u);
  EXPECT_EQ(wan.down_after, 3u);
  EXPECT_EQ(wan.up_after, 5u);
  EXPECT_EQ(wan.reliability, 2u);
  EXPECT_EQ(wan.window, 20u);
  EXPECT_EQ(wan.loss_degraded_percent, 30u);
  EXPECT_EQ(wan.loss_recovered_percent, 15u);
  EXPECT_EQ(wan.latency_degraded_ms, 200u);
  EXPECT_EQ(wan.latency_recovered_ms, 100u);
  EXPECT_EQ(wan.hold_down_ms, 3000u);

  EXPECT_EQ(wan.lpa_port, 5000);
  EXPECT_EQ(wan.lpa_margin_percent, 5u);
  EXPECT_EQ(wan.lpa_hold_down_ms, 100u);
  EXPECT_EQ(wan.lpa_min_window_ms, 2000u);
  EXPECT_EQ(wan.lpa_period_ms, 500u);
  EXPECT_EQ(wan.lpa_max_per_second, 20u);
}

TEST(WanConfig, OnlyLinksGivenTakesTheDefaults) {
  json c = two_wan_config();
  c["wan"] = json::parse(R"({"links": [{"port": "wan1", "targets": ["192.0.2.10"]}]})");
  const WanConfig wan = parse_config(c.dump()).wan;
  const WanConfig defaults;
  EXPECT_TRUE(wan.enabled);
  ASSERT_EQ(wan.links.size(), 1u);
  EXPECT_EQ(wan.links[0].port, kWan1Port);
  EXPECT_EQ(wan.links[0].weight, 1u);
  EXPECT_FALSE(wan.links[0].has_modem);
  EXPECT_TRUE(wan.policy.empty());
  EXPECT_EQ(wan.default_preferred, -1) << "balanced by weight";
  EXPECT_EQ(wan.interval_ms, 500u);
  EXPECT_EQ(wan.timeout_ms, 500u);
  EXPECT_EQ(wan.down_after, 2u);
  EXPECT_EQ(wan.up_after, 3u);
  EXPECT_EQ(wan.reliability, 1u);
  EXPECT_EQ(wan.window, 10u);
  EXPECT_EQ(wan.hold_down_ms, 10000u);
  EXPECT_EQ(wan.lpa_port, 4950);
  EXPECT_EQ(wan.lpa_margin_percent, defaults.lpa_margin_percent);
  EXPECT_EQ(wan.lpa_hold_down_ms, defaults.lpa_hold_down_ms);
  EXPECT_EQ(wan.lpa_min_window_ms, defaults.lpa_min_window_ms);
  EXPECT_EQ(wan.lpa_period_ms, defaults.lpa_period_ms);
  EXPECT_EQ(wan.lpa_max_per_second, defaults.lpa_max_per_second);
}

TEST(WanConfig, DefaultBalanceIsWeighted) {
  json c = two_wan_config();
  c["wan"]["default"] = "balance";
  EXPECT_EQ(parse_config(c.dump()).wan.default_preferred, -1);
  c["wan"]["default"] = "wan0";
  EXPECT_EQ(parse_config(c.dump()).wan.default_preferred, 0);
}

TEST(WanConfig, LinksAreIndexedInTheirOrderNotThePorts) {
  // wan1 listed first: it is link 0, and a policy naming it says 0, while its port stays 2.
  json c = two_wan_config();
  std::swap(c["wan"]["links"][0], c["wan"]["links"][1]);
  c["wan"]["policy"] = json::parse(R"([{"subscribers": ["10.10.0.11"], "wan": "wan1"}])");
  c["wan"]["default"] = "wan0";
  const WanConfig wan = parse_config(c.dump()).wan;
  ASSERT_EQ(wan.links.size(), 2u);
  EXPECT_EQ(wan.links[0].port, kWan1Port);
  EXPECT_EQ(wan.links[1].port, kWan0Port);
  EXPECT_EQ(wan.policy.at(0).preferred, 0);
  EXPECT_EQ(wan.default_preferred, 1);
}

TEST(WanConfig, LabConfigOfTheRepositoryHasTwoWanLinks) {
  Config config = load_config(std::string(FAIRGATE_SOURCE_DIR) + "/conf/lab.json");
  const WanConfig& wan = config.wan;
  ASSERT_TRUE(wan.enabled);
  ASSERT_EQ(wan.links.size(), 2u);
  for (const WanLinkConfig& link : wan.links) {
    SCOPED_TRACE(config.ports.at(link.port).name);
    EXPECT_EQ(config.ports.at(link.port).role, PortRole::kWan);
    EXPECT_TRUE(link.has_modem);
    EXPECT_TRUE(config.ports.at(link.port).address.contains(link.modem_source));
    EXPECT_FALSE(link.targets.empty());
  }
  EXPECT_NE(wan.links[0].port, wan.links[1].port);
  EXPECT_EQ(wan.default_preferred, 0);
  EXPECT_EQ(wan.hold_down_ms, 3000u);
  EXPECT_EQ(wan.lpa_port, 4950);
}

// parse_config requires a gateway on every WAN port, so a WAN port without one only reaches
// parse_wan from a Config built otherwise; parse_wan refuses it all the same.
TEST(WanConfig, PortWithoutAGatewayIsRefused) {
  json c = two_wan_config();
  c.erase("wan");
  Config config = parse_config(c.dump());
  config.ports[kWan1Port].gateway = 0;
  json section = two_wan_config()["wan"];
  try {
    parse_wan(JsonField(section, "wan"), config);
    ADD_FAILURE() << "accepted a WAN link without a gateway";
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), "wan.links[1].port") << error.what();
    EXPECT_TRUE(contains(error.what(), "\"wan1\" has no gateway")) << error.what();
  }
  // The same section with the gateway: accepted.
  config.ports[kWan1Port].gateway = addr("203.0.113.1");
  EXPECT_EQ(parse_wan(JsonField(section, "wan"), config).links.size(), 2u);
}

// ---- refusals: each names the field and why --------------------------------------------------

struct BadWan {
  std::string name;
  std::function<void(json& wan)> mutate;  // of the valid "wan" section
  std::string field;
  std::string fragment;  // of the reason
};
void PrintTo(const BadWan& c, std::ostream* out) { *out << c.name; }

json& link0(json& wan) { return wan["links"][0]; }

std::vector<BadWan> bad_wan_cases() {
  const std::string unknown = "unknown field";
  return {
      // the section and its lists
      {"section_not_an_object", [](json& w) { w = json::array(); }, "wan", "must be an object"},
      {"unknown_key", [](json& w) { w["routes"] = json::array(); }, "wan.routes", unknown},
      {"links_missing", [](json& w) { w.erase("links"); }, "wan.links", "required"},
      {"links_empty", [](json& w) { w["links"] = json::array(); }, "wan.links", "must list 1 to 8 WAN links"},
      {"links_nine", [](json& w) { w["links"] = json(std::vector<json>(9, link0(w))); }, "wan.links",
       "must list 1 to 8 WAN links"},
      {"links_not_an_array", [](json& w) { w["links"] = link0(w); }, "wan.links", "must be an array"},
      {"link_not_an_object", [](json& w) { link0(w) = "wan0"; }, "wan.links[0]", "must be an object"},
      {"link_unknown_key", [](json& w) { link0(w)["gateway"] = "198.51.100.1"; }, "wan.links[0].gateway", unknown},
      // the port
      {"port_missing", [](json& w) { link0(w).erase("port"); }, "wan.links[0].port", "required"},
      {"port_not_a_string", [](json& w) { link0(w)["port"] = 1; }, "wan.links[0].port", "must be a string"},
      {"port_unknown", [](json& w) { link0(w)["port"] = "wan9"; }, "wan.links[0].port", "no port named \"wan9\""},
      {"port_is_lan", [](json& w) { link0(w)["port"] = "lan0"; }, "wan.links[0].port", "\"lan0\" is not a WAN port"},
      {"port_listed_twice", [](json& w) { w["links"][1]["port"] = "wan0"; }, "wan.links[1].port",
       "\"wan0\" is listed twice"},
      // targets and weight
      {"targets_missing", [](json& w) { link0(w).erase("targets"); }, "wan.links[0].targets", "required"},
      {"targets_empty", [](json& w) { link0(w)["targets"] = json::array(); }, "wan.links[0].targets",
       "must list 1 to 8 probe targets"},
      {"targets_nine", [](json& w) { link0(w)["targets"] = json(std::vector<std::string>(9, "192.0.2.10")); },
       "wan.links[0].targets", "must list 1 to 8 probe targets"},
      {"target_not_an_address", [](json& w) { link0(w)["targets"] = json::array({"192.0.2.10", "192.0.2.300"}); },
       "wan.links[0].targets[1]", "\"192.0.2.300\" is not an IPv4 address"},
      {"target_a_prefix", [](json& w) { link0(w)["targets"] = json::array({"192.0.2.0/24"}); }, "wan.links[0].targets[0]",
       "is not an IPv4 address"},
      {"target_a_number", [](json& w) { link0(w)["targets"] = json::array({3221225994u}); }, "wan.links[0].targets[0]",
       "must be a string"},
      {"weight_1001", [](json& w) { link0(w)["weight"] = 1001; }, "wan.links[0].weight", "1001 is out of range 0..1000"},
      {"weight_negative", [](json& w) { link0(w)["weight"] = -1; }, "wan.links[0].weight",
       "must be an integer between 0 and 1000"},
      {"weight_a_string", [](json& w) { link0(w)["weight"] = "1"; }, "wan.links[0].weight", "must be an integer"},
      {"weight_a_fraction", [](json& w) { link0(w)["weight"] = 1.5; }, "wan.links[0].weight", "must be an integer"},
      // the modem
      {"modem_unknown_key", [](json& w) { link0(w)["modem"]["mac"] = "02:00:00:00:00:01"; },
       "wan.links[0].modem.mac", unknown},
      {"modem_not_an_object", [](json& w) { link0(w)["modem"] = 1; }, "wan.links[0].modem", "must be an object"},
      {"modem_id_missing", [](json& w) { link0(w)["modem"].erase("id"); }, "wan.links[0].modem.id", "required"},
      {"modem_interface_missing", [](json& w) { link0(w)["modem"].erase("interface"); },
       "wan.links[0].modem.interface", "required"},
      {"modem_id_past_32_bits", [](json& w) { link0(w)["modem"]["id"] = 4294967296u; }, "wan.links[0].modem.id",
       "out of range 0..4294967295"},
      {"modem_interface_negative", [](json& w) { link0(w)["modem"]["interface"] = -1; },
       "wan.links[0].modem.interface", "must be an integer"},
      {"modem_source_not_an_address", [](json& w) { link0(w)["modem"]["source"] = "modem"; },
       "wan.links[0].modem.source", "\"modem\" is not an IPv4 address"},
      {"modem_source_off_the_prefix", [](json& w) { link0(w)["modem"]["source"] = "198.51.100.200"; },
       "wan.links[0].modem.source", "is not on wan0's prefix"},
      {"modem_source_on_the_other_wan", [](json& w) { link0(w)["modem"]["source"] = "203.0.113.1"; },
       "wan.links[0].modem.source", "is not on wan0's prefix"},
      {"modem_id_and_interface_twice", [](json& w) { w["links"][1]["modem"] = {{"id", 1}, {"interface", 1}}; },
       "wan.links[1].modem", "modem 1 interface 1 is already another link's"},
      // policy and default
      {"policy_not_an_array", [](json& w) { w["policy"] = json::object(); }, "wan.policy", "must be an array"},
      {"policy_unknown_key",
       [](json& w) { w["policy"] = json::parse(R"([{"subscribers": ["10.10.0.11"], "wan": "wan0", "name": "a"}])"); },
       "wan.policy[0].name", unknown},
      {"policy_wan_missing", [](json& w) { w["policy"] = json::parse(R"([{"subscribers": ["10.10.0.11"]}])"); },
       "wan.policy[0].wan", "required"},
      {"policy_wan_not_listed",
       [](json& w) {
         w["links"].erase(1);
         w["policy"] = json::parse(R"([{"subscribers": ["10.10.0.11"], "wan": "wan1"}])");
       },
       "wan.policy[0].wan", "\"wan1\" is not one of the WAN links listed in wan.links"},
      {"policy_wan_a_lan_port",
       [](json& w) { w["policy"] = json::parse(R"([{"subscribers": ["10.10.0.11"], "wan": "lan0"}])"); },
       "wan.policy[0].wan", "\"lan0\" is not one of the WAN links"},
      {"policy_wan_a_number",
       [](json& w) { w["policy"] = json::parse(R"([{"subscribers": ["10.10.0.11"], "wan": 1}])"); },
       "wan.policy[0].wan", "must be a string"},
      {"policy_subscribers_missing", [](json& w) { w["policy"] = json::parse(R"([{"wan": "wan0"}])"); },
       "wan.policy[0].subscribers", "required"},
      {"policy_subscribers_empty",
       [](json& w) { w["policy"] = json::parse(R"([{"subscribers": [], "wan": "wan0"}])"); },
       "wan.policy[0].subscribers", "must list at least one address or prefix"},
      {"policy_subscriber_prefix_33",
       [](json& w) {
         w["policy"] = json::parse(R"([{"subscribers": ["10.10.0.11"], "wan": "wan0"},
                                       {"subscribers": ["10.10.0.12", "10.10.0.0/33"], "wan": "wan1"}])");
       },
       "wan.policy[1].subscribers[1]", "\"10.10.0.0/33\" is not an IPv4 address or prefix"},
      {"policy_subscriber_bad_address",
       [](json& w) { w["policy"] = json::parse(R"([{"subscribers": ["10.10.0.256"], "wan": "wan0"}])"); },
       "wan.policy[0].subscribers[0]", "\"10.10.0.256\" is not an IPv4 address or prefix"},
      {"policy_subscriber_a_name",
       [](json& w) { w["policy"] = json::parse(R"([{"subscribers": ["alice"], "wan": "wan0"}])"); },
       "wan.policy[0].subscribers[0]", "is not an IPv4 address or prefix"},
      {"default_not_listed", [](json& w) { w["links"].erase(1); w["default"] = "wan1"; }, "wan.default",
       "\"wan1\" is not one of the WAN links listed in wan.links"},
      {"default_unknown", [](json& w) { w["default"] = "fastest"; }, "wan.default", "is not one of the WAN links"},
      {"default_a_number", [](json& w) { w["default"] = 0; }, "wan.default", "must be a string"},
      // probes
      {"probes_unknown_key", [](json& w) { w["probes"]["count"] = 3; }, "wan.probes.count", unknown},
      {"probes_not_an_object", [](json& w) { w["probes"] = 500; }, "wan.probes", "must be an object"},
      {"probes_interval_49", [](json& w) { w["probes"]["interval_ms"] = 49; }, "wan.probes.interval_ms",
       "49 is out of range 50..60000"},
      {"probes_interval_60001", [](json& w) { w["probes"]["interval_ms"] = 60001; }, "wan.probes.interval_ms",
       "out of range 50..60000"},
      {"probes_timeout_9", [](json& w) { w["probes"]["timeout_ms"] = 9; }, "wan.probes.timeout_ms",
       "out of range 10..60000"},
      {"probes_down_after_0", [](json& w) { w["probes"]["down_after"] = 0; }, "wan.probes.down_after",
       "out of range 1..100"},
      {"probes_down_after_101", [](json& w) { w["probes"]["down_after"] = 101; }, "wan.probes.down_after",
       "out of range 1..100"},
      {"probes_up_after_0", [](json& w) { w["probes"]["up_after"] = 0; }, "wan.probes.up_after", "out of range 1..100"},
      {"probes_reliability_9", [](json& w) { w["probes"]["reliability"] = 9; }, "wan.probes.reliability",
       "out of range 1..8"},
      {"probes_window_0", [](json& w) { w["probes"]["window"] = 0; }, "wan.probes.window", "out of range 1..1000"},
      {"probes_window_1001", [](json& w) { w["probes"]["window"] = 1001; }, "wan.probes.window",
       "out of range 1..1000"},
      {"probes_loss_degraded_101", [](json& w) { w["probes"]["loss_degraded_percent"] = 101; },
       "wan.probes.loss_degraded_percent", "out of range 0..100"},
      {"probes_loss_recovered_101", [](json& w) { w["probes"]["loss_recovered_percent"] = 101; },
       "wan.probes.loss_recovered_percent", "out of range 0..100"},
      {"probes_latency_degraded_60001", [](json& w) { w["probes"]["latency_degraded_ms"] = 60001; },
       "wan.probes.latency_degraded_ms", "out of range 0..60000"},
      {"probes_latency_recovered_negative", [](json& w) { w["probes"]["latency_recovered_ms"] = -1; },
       "wan.probes.latency_recovered_ms", "must be an integer"},
      {"probes_hold_down_past_an_hour", [](json& w) { w["probes"]["hold_down_ms"] = 3600001; },
       "wan.probes.hold_down_ms", "out of range 0..3600000"},
      // together, as WanHealth takes them (the gateway would not start with them)
      {"probes_loss_recovered_above_degraded", [](json& w) { w["probes"]["loss_recovered_percent"] = 25; },
       "wan.probes.loss_recovered_percent", "25 is above loss_degraded_percent 20"},
      {"probes_loss_degraded_below_the_default_recovery", [](json& w) { w["probes"]["loss_degraded_percent"] = 5; },
       "wan.probes.loss_recovered_percent", "10 is above loss_degraded_percent 5"},
      {"probes_timeout_below_the_default_latency_threshold", [](json& w) { w["probes"]["timeout_ms"] = 200; },
       "wan.probes.latency_degraded_ms", "300 is not below timeout_ms 200"},
      {"probes_latency_degraded_equal_to_the_timeout", [](json& w) { w["probes"]["latency_degraded_ms"] = 500; },
       "wan.probes.latency_degraded_ms", "500 is not below timeout_ms 500"},
      {"probes_latency_recovered_above_degraded", [](json& w) { w["probes"]["latency_recovered_ms"] = 301; },
       "wan.probes.latency_recovered_ms", "301 is above latency_degraded_ms 300"},
      {"probes_interval_a_string", [](json& w) { w["probes"]["interval_ms"] = "500"; }, "wan.probes.interval_ms",
       "must be an integer"},
      // lpa
      {"lpa_unknown_key", [](json& w) { w["lpa"]["address"] = "224.0.0.2"; }, "wan.lpa.address", unknown},
      {"lpa_port_0", [](json& w) { w["lpa"]["port"] = 0; }, "wan.lpa.port", "0 is out of range 1..65535"},
      {"lpa_port_65536", [](json& w) { w["lpa"]["port"] = 65536; }, "wan.lpa.port", "out of range 1..65535"},
      {"lpa_margin_51", [](json& w) { w["lpa"]["margin_percent"] = 51; }, "wan.lpa.margin_percent",
       "out of range 0..50"},
      {"lpa_hold_down_60001", [](json& w) { w["lpa"]["hold_down_ms"] = 60001; }, "wan.lpa.hold_down_ms",
       "out of range 0..60000"},
      {"lpa_min_window_600001", [](json& w) { w["lpa"]["min_window_ms"] = 600001; }, "wan.lpa.min_window_ms",
       "out of range 0..600000"},
      {"lpa_period_99", [](json& w) { w["lpa"]["period_ms"] = 99; }, "wan.lpa.period_ms", "out of range 100..60000"},
      {"lpa_max_per_second_0", [](json& w) { w["lpa"]["max_per_second"] = 0; }, "wan.lpa.max_per_second",
       "out of range 1..10000"},
      {"lpa_max_per_second_10001", [](json& w) { w["lpa"]["max_per_second"] = 10001; }, "wan.lpa.max_per_second",
       "out of range 1..10000"},
  };
}

class WanBadConfig : public ::testing::TestWithParam<BadWan> {};

TEST_P(WanBadConfig, NamesTheFieldAndWhy) {
  json c = two_wan_config();
  GetParam().mutate(c["wan"]);
  expect_rejected(c, GetParam().field, GetParam().fragment);
}

INSTANTIATE_TEST_SUITE_P(WanConfig, WanBadConfig, ::testing::ValuesIn(bad_wan_cases()),
                         [](const ::testing::TestParamInfo<BadWan>& info) { return info.param.name; });

// The edges of each range are accepted: the refusals above are about the values, not the keys.
TEST(WanConfig, RangeEdgesAreAccepted) {
  struct Edge {
    const char* section;
    const char* key;
    uint64_t value;
  };
  const Edge edges[] = {
      {"probes", "interval_ms", 50},          {"probes", "interval_ms", 60000},
      {"probes", "timeout_ms", 10},           {"probes", "down_after", 1},
      {"probes", "down_after", 100},          {"probes", "up_after", 100},
      {"probes", "reliability", 8},           {"probes", "window", 1000},
      {"probes", "loss_degraded_percent", 0}, {"probes", "latency_degraded_ms", 0},
      {"probes", "hold_down_ms", 0},          {"probes", "hold_down_ms", 3600000},
      {"lpa", "port", 1},                     {"lpa", "port", 65535},
      {"lpa", "margin_percent", 0},           {"lpa", "margin_percent", 50},
      {"lpa", "period_ms", 100},              {"lpa", "max_per_second", 10000},
  };
  for (const Edge& edge : edges) {
    SCOPED_TRACE(std::string(edge.section) + "." + edge.key + " = " + std::to_string(edge.value));
    json c = two_wan_config();
    // Latency judging and loss recovery off, so no edge trips a check across fields.
    c["wan"]["probes"] = json::parse(R"({"latency_degraded_ms": 0, "loss_recovered_percent": 0})");
    c["wan"][edge.section][edge.key] = edge.value;
    EXPECT_NO_THROW(parse_config(c.dump()));
  }
  json c = two_wan_config();
  c["wan"]["links"][0]["weight"] = 1000;
  c["wan"]["links"][1]["weight"] = 0;
  c["wan"]["links"][0]["targets"] = json(std::vector<std::string>(8, "192.0.2.10"));
  const WanConfig wan = parse_config(c.dump()).wan;
  EXPECT_EQ(wan.links[0].weight, 1000u);
  EXPECT_EQ(wan.links[1].weight, 0u);
  EXPECT_EQ(wan.links[0].targets.size(), 8u);
}

// Probe settings that fit together are what WanHealth accepts: what parses, starts.
TEST(WanConfig, ProbeSettingsThatParseAreAcceptedByWanHealth) {
  const char* sections[] = {
      R"({})",
      R"({"timeout_ms": 200, "latency_degraded_ms": 0, "latency_recovered_ms": 1000})",  // latency off
      R"({"timeout_ms": 200, "latency_degraded_ms": 199, "latency_recovered_ms": 199})",
      R"({"loss_degraded_percent": 0, "loss_recovered_percent": 0})",
      R"({"loss_degraded_percent": 100, "loss_recovered_percent": 100})",
  };
  for (const char* section : sections) {
    SCOPED_TRACE(section);
    json c = two_wan_config();
    c["wan"]["probes"] = json::parse(section);
    const WanConfig wan = parse_config(c.dump()).wan;
    WanProbeSettings settings;
    settings.interval_ms = wan.interval_ms;
    settings.timeout_ms = wan.timeout_ms;
    settings.down_after = wan.down_after;
    settings.up_after = wan.up_after;
    settings.window = wan.window;
    settings.loss_degraded_percent = wan.loss_degraded_percent;
    settings.loss_recovered_percent = wan.loss_recovered_percent;
    settings.latency_degraded_ms = wan.latency_degraded_ms;
    settings.latency_recovered_ms = wan.latency_recovered_ms;
    settings.hold_down_ms = wan.hold_down_ms;
    EXPECT_NO_THROW(settings.validate());
  }
}

TEST(WanConfig, TheSameModemMayServeTwoLinksOnDifferentInterfaces) {
  json c = two_wan_config();
  c["wan"]["links"][1]["modem"] = json::parse(R"({"id": 1, "interface": 2})");
  const WanConfig wan = parse_config(c.dump()).wan;
  EXPECT_EQ(wan.links[0].modem_id, wan.links[1].modem_id);
  EXPECT_NE(wan.links[0].modem_interface, wan.links[1].modem_interface);
}

}  // namespace
}  // namespace fairgate
