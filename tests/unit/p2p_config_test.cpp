// The P2P parts of the configuration: the "p2p" section (FairNAT's IPP2P_* settings), the policy
// objects it and each subscriber carry, what p2p-policy prints, and the check that the
// pipeline has the p2p stage where the verdict and the class need it.
#include "classify/p2p_signatures.h"
#include "config/config.h"
#include "config/json_path.h"
#include "pipeline/pipeline_spec.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace fairgate {
namespace {

using nlohmann::json;

// A LAN and a WAN port and nothing else: each test adds the p2p section it is about.
json base_config() {
  return json::parse(R"({
    "ports": [
      {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
      {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1"}
    ]
  })");
}

json p2p_config(json section) {
  json c = base_config();
  c["p2p"] = std::move(section);
  return c;
}

P2pConfig parse_p2p_section(json section) { return parse_config(p2p_config(std::move(section)).dump()).p2p; }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Asserts that parse_config rejects `c` naming `field`, with `fragment` in the reason.
void expect_rejected(const json& c, const std::string& field, const std::string& fragment) {
  try {
    parse_config(c.dump());
    ADD_FAILURE() << "accepted: " << c.dump();
  } catch (const FieldError& error) {
    std::string message = error.what();
    EXPECT_EQ(error.field(), field) << message;
    EXPECT_EQ(message.rfind(field + ": ", 0), 0u) << "the message starts with the field: " << message;
    EXPECT_TRUE(contains(message, fragment)) << "expected \"" << fragment << "\" in: " << message;
  }
}

constexpr P2pProtocolMask kBitAndEdk = p2p_bit(P2pProtocol::kBitTorrent) | p2p_bit(P2pProtocol::kEdonkey);

// --- The section -----------------------------------------------------------------------------

TEST(P2pConfig, AbsentSectionLeavesRecognitionOff) {
  Config config = parse_config(base_config().dump());
  EXPECT_FALSE(config.p2p.enabled);
}

TEST(P2pConfig, EmptySectionTurnsRecognitionOnWithTheDefaults) {
  P2pConfig p2p = parse_p2p_section(json::object());
  EXPECT_TRUE(p2p.enabled);
  EXPECT_EQ(p2p.signatures, "") << "none given: the shipped set";
  EXPECT_EQ(p2p.protocols, kAllP2pProtocols) << "every protocol, as IPP2P_OPTIONS=--ipp2p";
  EXPECT_TRUE(p2p.udp);
  EXPECT_EQ(p2p.packets_per_direction, 8);
  EXPECT_EQ(p2p.peer_cache_peers, 16384u);
  EXPECT_EQ(p2p.peer_cache_lifetime_s, 1800u);
  EXPECT_EQ(p2p.policy, P2pPolicy{}) << "allow: the P2P class, no cap";
}

TEST(P2pConfig, EveryFieldIsRead) {
  // Values away from the defaults, so a field that is not read shows.
  P2pConfig p2p = parse_p2p_section(json::parse(R"({
    "signatures": "/etc/fairgate/sigs.json",
    "protocols": "--bit --edk",
    "udp": false,
    "packets_per_flow": 3,
    "peer_cache": {"peers": 100, "lifetime_s": 60},
    "policy": {"action": "cap", "down": "2mbit", "up": "512kbit"}
  })"));
  EXPECT_TRUE(p2p.enabled);
  EXPECT_EQ(p2p.signatures, "/etc/fairgate/sigs.json");
  EXPECT_EQ(p2p.protocols, kBitAndEdk) << format_p2p_protocols(static_cast<P2pProtocolMask>(p2p.protocols));
  EXPECT_FALSE(p2p.udp);
  EXPECT_EQ(p2p.packets_per_direction, 3);
  EXPECT_EQ(p2p.peer_cache_peers, 100u);
  EXPECT_EQ(p2p.peer_cache_lifetime_s, 60u);
  EXPECT_EQ(p2p.policy.action, P2pPolicy::Action::kCap);
  EXPECT_EQ(p2p.policy.cap_down_bps, 2'000'000u);
  EXPECT_EQ(p2p.policy.cap_up_bps, 512'000u);
  EXPECT_FALSE(p2p.policy.drop_marked);
}

TEST(P2pConfig, ProtocolsAsIpp2pOptionsOrAsAList) {
  struct Case {
    json protocols;
    P2pProtocolMask mask;
  };
  const Case cases[] = {
      {"--bit --edk", kBitAndEdk},            // FairNAT's IPP2P_OPTIONS as written there
      {"--edk --bit", kBitAndEdk},            // order does not matter
      {"bittorrent,edonkey", kBitAndEdk},     // full names, comma separated
      {json::array({"bittorrent", "edk"}), kBitAndEdk},
      {json::array({"--bit", "--edk", "--bit"}), kBitAndEdk},  // a repeat is harmless
      {json::array({"gnu"}), p2p_bit(P2pProtocol::kGnutella)},
      {"--ipp2p", kAllP2pProtocols},
      {"all", kAllP2pProtocols},
      {json::array({"all"}), kAllP2pProtocols},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.protocols.dump());
    EXPECT_EQ(parse_p2p_section({{"protocols", c.protocols}}).protocols, c.mask);
  }
}

TEST(P2pConfig, ASubscriberMayCarryItsOwnPolicy) {
  json c = base_config();
  c["ports"][1]["rate_down"] = "100mbit";
  c["ports"][1]["rate_up"] = "20mbit";
  c["qos"] = json::object();
  c["p2p"] = {{"policy", {{"action", "allow"}}}};
  c["subscribers"] = json::parse(R"([
    {"name": "anna", "addresses": ["10.10.0.7"], "p2p": {"action": "cap", "down": "1mbit"}},
    {"name": "ben", "addresses": ["10.10.0.8"], "p2p": {"action": "drop", "drop_marked": true}},
    {"name": "carl", "addresses": ["10.10.0.9"]}
  ])");
  Config config = parse_config(c.dump());
  ASSERT_EQ(config.subscribers.size(), 3u);
  ASSERT_TRUE(config.subscribers[0].p2p.has_value());
  EXPECT_EQ(*config.subscribers[0].p2p, (P2pPolicy{.action = P2pPolicy::Action::kCap, .cap_down_bps = 1'000'000}));
  ASSERT_TRUE(config.subscribers[1].p2p.has_value());
  EXPECT_EQ(*config.subscribers[1].p2p, (P2pPolicy{.action = P2pPolicy::Action::kDrop, .drop_marked = true}));
  EXPECT_FALSE(config.subscribers[2].p2p.has_value()) << "without its own, the global policy applies";
}

// --- Bad sections ----------------------------------------------------------------------------

struct BadP2p {
  std::string name;
  std::function<void(json&)> mutate;  // applied to base_config()
  std::string field;
  std::string fragment;  // of the reason
};
void PrintTo(const BadP2p& c, std::ostream* out) { *out << c.name; }

class P2pBadConfig : public ::testing::TestWithParam<BadP2p> {};

TEST_P(P2pBadConfig, NamesTheFieldAndWhy) {
  json c = base_config();
  GetParam().mutate(c);
  expect_rejected(c, GetParam().field, GetParam().fragment);
}

std::vector<BadP2p> bad_p2p_cases() {
  auto section = [](const char* text) { return [text](json& c) { c["p2p"] = json::parse(text); }; };
  auto policy = [](const char* text) { return [text](json& c) { c["p2p"] = {{"policy", json::parse(text)}}; }; };
  const std::string no_rates = "only a \"cap\" policy has rates";
  const std::string drop_only = "applies to a \"drop\" policy only";
  return {
      {"unknown_key", section(R"({"ipp2p_drop_all": true})"), "p2p.ipp2p_drop_all", "unknown field"},
      {"section_not_an_object", section(R"("--bit")"), "p2p", "must be an object"},
      {"signatures_empty", section(R"({"signatures": ""})"), "p2p.signatures", "must name the signature file"},
      {"protocols_unknown_word", section(R"({"protocols": "--bit --emule"})"), "p2p.protocols",
       "unknown P2P protocol \"--emule\""},
      {"protocols_unknown_word_lists_the_known", section(R"({"protocols": "--bitt"})"), "p2p.protocols", "bit edk gnu"},
      {"protocols_list_unknown_word", section(R"({"protocols": ["bittorrent", "napster"]})"), "p2p.protocols",
       "unknown P2P protocol \"napster\""},
      {"protocols_list_not_strings", section(R"({"protocols": ["bit", 3]})"), "p2p.protocols[1]", "must be a string"},
      {"protocols_empty_text", section(R"({"protocols": ""})"), "p2p.protocols", "names no protocol"},
      {"protocols_only_separators", section(R"({"protocols": " , "})"), "p2p.protocols", "names no protocol"},
      {"protocols_empty_list", section(R"({"protocols": []})"), "p2p.protocols", "names no protocol"},
      {"udp_not_boolean", section(R"({"udp": "yes"})"), "p2p.udp", "must be true or false"},
      {"packets_per_flow_0", section(R"({"packets_per_flow": 0})"), "p2p.packets_per_flow", "0 is out of range 1..255"},
      {"packets_per_flow_256", section(R"({"packets_per_flow": 256})"), "p2p.packets_per_flow",
       "256 is out of range 1..255"},
      {"packets_per_flow_negative", section(R"({"packets_per_flow": -1})"), "p2p.packets_per_flow",
       "must be an integer between 1 and 255"},
      {"peer_cache_unknown_key", section(R"({"peer_cache": {"size": 10}})"), "p2p.peer_cache.size", "unknown field"},
      {"peer_cache_no_peers", section(R"({"peer_cache": {"peers": 0}})"), "p2p.peer_cache.peers", "0 is out of range"},
      {"peer_cache_no_lifetime", section(R"({"peer_cache": {"lifetime_s": 0}})"), "p2p.peer_cache.lifetime_s",
       "0 is out of range"},
      {"policy_without_action", policy(R"({})"), "p2p.policy.action", "required"},
      {"policy_action_unknown", policy(R"({"action": "throttle"})"), "p2p.policy.action",
       "must be \"allow\" (the P2P class), \"cap\""},
      {"policy_action_not_a_string", policy(R"({"action": 1})"), "p2p.policy.action", "must be \"allow\""},
      {"policy_unknown_key", policy(R"({"action": "cap", "rate": "1mbit"})"), "p2p.policy.rate", "unknown field"},
      {"cap_without_down_or_up", policy(R"({"action": "cap"})"), "p2p.policy",
       "a cap needs \"down\", \"up\" or both"},
      // A cap below 8kbit is refused by the rate parser already (its range is 8kbit..400gbit).
      {"cap_down_below_8kbit", policy(R"({"action": "cap", "down": "7999bit"})"), "p2p.policy.down",
       "out of range 8kbit"},
      {"cap_up_below_8kbit", policy(R"({"action": "cap", "down": "1mbit", "up": 7})"), "p2p.policy.up",
       "out of range 8kbit"},
      {"cap_rate_not_a_rate", policy(R"({"action": "cap", "up": "fast"})"), "p2p.policy.up", "is not a rate"},
      {"down_given_for_allow", policy(R"({"action": "allow", "down": "1mbit"})"), "p2p.policy.down", no_rates},
      {"up_given_for_drop", policy(R"({"action": "drop", "up": "1mbit"})"), "p2p.policy.up", no_rates},
      {"drop_marked_with_allow", policy(R"({"action": "allow", "drop_marked": true})"), "p2p.policy.drop_marked",
       drop_only},
      {"drop_marked_with_cap", policy(R"({"action": "cap", "down": "1mbit", "drop_marked": true})"),
       "p2p.policy.drop_marked", drop_only},
      {"drop_marked_not_boolean", policy(R"({"action": "drop", "drop_marked": 1})"), "p2p.policy.drop_marked",
       "must be true or false"},
      {"subscriber_policy_names_its_subscriber",
       [](json& c) {
         c["ports"][1]["rate_down"] = "100mbit";
         c["ports"][1]["rate_up"] = "20mbit";
         c["qos"] = json::object();
         c["subscribers"] = json::parse(R"([
           {"name": "anna", "addresses": ["10.10.0.7"]},
           {"name": "ben", "addresses": ["10.10.0.8"], "p2p": {"action": "allow", "up": "1mbit"}}
         ])");
       },
       "subscribers[1].p2p.up", no_rates},
  };
}

INSTANTIATE_TEST_SUITE_P(P2pConfig, P2pBadConfig, ::testing::ValuesIn(bad_p2p_cases()),
                         [](const ::testing::TestParamInfo<BadP2p>& info) { return info.param.name; });

// --- What p2p-policy prints ------------------------------------------------------------------

TEST(P2pConfig, PolicyJsonParsesBackToTheSamePolicy) {
  // What the gateway shows can be pasted back into a configuration or a p2p-policy command.
  struct Case {
    P2pPolicy policy;
    const char* printed;
  };
  const Case cases[] = {
      {P2pPolicy{}, R"({"action":"allow"})"},
      {P2pPolicy{.action = P2pPolicy::Action::kDrop}, R"({"action":"drop","drop_marked":false})"},
      {P2pPolicy{.action = P2pPolicy::Action::kDrop, .drop_marked = true}, R"({"action":"drop","drop_marked":true})"},
      {P2pPolicy{.action = P2pPolicy::Action::kCap, .cap_down_bps = 2'000'000, .cap_up_bps = 512'000},
       R"({"action":"cap","down":"2mbit","up":"512kbit"})"},
      {P2pPolicy{.action = P2pPolicy::Action::kCap, .cap_down_bps = 8'000, .cap_up_bps = 1'234'567},
       R"({"action":"cap","down":"8kbit","up":"1234567bit"})"},
      // A cap in one direction shows that direction only.
      {P2pPolicy{.action = P2pPolicy::Action::kCap, .cap_down_bps = 0, .cap_up_bps = 1'000'000},
       R"({"action":"cap","up":"1mbit"})"},
  };
  for (const auto& c : cases) {
    nlohmann::ordered_json printed = p2p_policy_json(c.policy);
    EXPECT_EQ(printed.dump(), c.printed);
    json reread = json::parse(printed.dump());
    EXPECT_EQ(parse_p2p_policy(JsonField(reread, "args")), c.policy) << printed.dump();
  }
}

TEST(P2pConfig, ActionNames) {
  EXPECT_EQ(p2p_action_name(P2pPolicy::Action::kAllow), "allow");
  EXPECT_EQ(p2p_action_name(P2pPolicy::Action::kCap), "cap");
  EXPECT_EQ(p2p_action_name(P2pPolicy::Action::kDrop), "drop");
}

// --- The pipeline must have the p2p stage where it works -------------------------------------

Config config_with_p2p() { return parse_config(p2p_config(json::object()).dump()); }

PipelineSpec gateway_pipeline() { return load_pipeline_spec(std::string(FAIRGATE_SOURCE_DIR) + "/pipelines/gateway.json"); }

TEST(P2pPipelineFits, TheShippedGatewayPipelinePasses) {
  EXPECT_NO_THROW(check_pipeline_fits(gateway_pipeline(), config_with_p2p()));
}

TEST(P2pPipelineFits, WithoutTheSectionAnyPipelinePasses) {
  Config config = parse_config(base_config().dump());
  EXPECT_NO_THROW(check_pipeline_fits(load_pipeline_spec(std::string(FAIRGATE_SOURCE_DIR) + "/pipelines/forward.json"),
                                      config));
}

struct MisplacedStage {
  std::string name;
  std::vector<std::string> from_lan, from_wan;
};
void PrintTo(const MisplacedStage& c, std::ostream* out) { *out << c.name; }

class P2pPipelineMisfits : public ::testing::TestWithParam<MisplacedStage> {};

TEST_P(P2pPipelineMisfits, AreAFieldErrorOnP2p) {
  PipelineSpec pipeline{.name = "custom", .description = "", .from_lan = GetParam().from_lan, .from_wan = GetParam().from_wan};
  try {
    check_pipeline_fits(pipeline, config_with_p2p());
    ADD_FAILURE() << "accepted";
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), "p2p") << error.what();
    EXPECT_TRUE(contains(error.what(), "pipeline \"custom\"")) << error.what();
  }
}

std::vector<MisplacedStage> misplaced_cases() {
  using Stages = std::vector<std::string>;
  const Stages lan_ok = {"parse", "guard", "classify", "nat", "p2p", "l3", "tx"};
  const Stages wan_ok = {"parse", "guard", "nat", "classify", "p2p", "l3", "tx"};
  return {
      {"no_p2p_stage_from_lan", {"parse", "guard", "classify", "nat", "l3", "tx"}, wan_ok},
      {"no_p2p_stage_from_wan", lan_ok, {"parse", "guard", "nat", "classify", "l3", "tx"}},
      {"no_p2p_stage_anywhere", {"parse", "guard", "classify", "nat", "l3", "tx"},
       {"parse", "guard", "nat", "classify", "l3", "tx"}},
      {"p2p_before_nat_from_lan", {"parse", "guard", "classify", "p2p", "nat", "l3", "tx"}, wan_ok},
      {"p2p_before_nat_from_wan", lan_ok, {"parse", "guard", "p2p", "nat", "classify", "l3", "tx"}},
      {"p2p_before_classify_from_wan", lan_ok, {"parse", "guard", "nat", "p2p", "classify", "l3", "tx"}},
      {"p2p_before_classify_from_lan", {"parse", "guard", "nat", "p2p", "classify", "l3", "tx"}, wan_ok},
      {"no_nat_stage", {"parse", "guard", "classify", "p2p", "l3", "tx"}, wan_ok},
      {"forward_pipeline", {"parse", "l3", "tx"}, {"parse", "l3", "tx"}},
  };
}

INSTANTIATE_TEST_SUITE_P(P2pConfig, P2pPipelineMisfits, ::testing::ValuesIn(misplaced_cases()),
                         [](const ::testing::TestParamInfo<MisplacedStage>& info) { return info.param.name; });

TEST(P2pPipelineFits, ClassifyIsNotRequired) {
  // Without shaping a pipeline may leave classify out; the p2p stage then only needs nat.
  PipelineSpec pipeline{.name = "nat-only", .description = "", .from_lan = {"parse", "nat", "p2p", "l3", "tx"},
                        .from_wan = {"parse", "nat", "p2p", "l3", "tx"}};
  EXPECT_NO_THROW(check_pipeline_fits(pipeline, config_with_p2p()));
}

}  // namespace
}  // namespace fairgate
