// The fair-sharing parts of the configuration: rates in FairNAT's units, link framing, the qos
// section, subscribers, and the checks across them.
#include "config/config.h"
#include "config/json_path.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace fairgate {
namespace {

using nlohmann::json;

// Where base_config() puts its ports, so error paths read as "ports[1].rate_down".
constexpr std::size_t kLan = 0;
constexpr std::size_t kWan = 1;

// A LAN and a WAN port and nothing about shaping: each test adds what it is about.
json base_config() {
  return json::parse(R"({
    "ports": [
      {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
      {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1"}
    ]
  })");
}

// With the qos section present both directions are shaped, so the WAN needs both link rates:
// 10 Mbit/s down and 2 Mbit/s up leave subscribers 9 and 1.8 Mbit/s at the default 5 % + 5 %.
json qos_config() {
  json c = base_config();
  c["ports"][kWan]["rate_down"] = "10mbit";
  c["ports"][kWan]["rate_up"] = "2mbit";
  c["qos"] = json::object();
  return c;
}

// A second WAN port, for the checks that add links up or take the smallest.
json add_wan(json& c, json rate_down, json rate_up) {
  json port = json::parse(
      R"({"name": "wan1", "role": "wan", "device": "net_ring2", "address": "203.0.113.2/24", "gateway": "203.0.113.1"})");
  if (!rate_down.is_null()) port["rate_down"] = std::move(rate_down);
  if (!rate_up.is_null()) port["rate_up"] = std::move(rate_up);
  c["ports"].push_back(port);
  return c;
}

json subscriber(const std::string& name, json addresses) {
  return json{{"name", name}, {"addresses", std::move(addresses)}};
}

// The rate a WAN port's "rate_down" of `value` comes to.
uint64_t rate_down_of(const json& value) {
  json c = base_config();
  c["ports"][kWan]["rate_down"] = value;
  return parse_config(c.dump()).ports[kWan].rate_down_bps;
}

uint64_t parse_rate_text(const std::string& text) {
  json value = text;
  return parse_rate(JsonField(value, "rate"));
}

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

// --- Rates -----------------------------------------------------------------------------------

TEST(QosConfig, RatesInEveryUnit) {
  struct Case {
    json value;
    uint64_t bps;
  };
  const Case cases[] = {
      {2000, 2'000'000},                 // a bare number is kbit/s, as in FairNAT's RATE_DOWN=2000
      {8, 8'000},                        // the smallest rate, as a number
      {8.5, 8'500},                      // a number may have decimals too
      {"2000", 2'000'000},               // a string without a unit is kbit/s as well
      {"1.5mbit", 1'500'000},
      {"0.5mbit", 500'000},
      {".5mbit", 500'000},
      {"8000bit", 8'000},
      {"512kbit", 512'000},
      {"100mbit", 100'000'000},
      {"2.5gbit", 2'500'000'000},
      {"400gbit", 400'000'000'000},      // the largest rate
      {"1000bps", 8'000},                // tc: bps is bytes per second
      {"125kbps", 1'000'000},            // kbps = 1000 bytes/s, not kbit/s
      {"1.25kbps", 10'000},
      {"1mbps", 8'000'000},
      {"1gbps", 8'000'000'000},
      {"50gbps", 400'000'000'000},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.value.dump());
    EXPECT_EQ(rate_down_of(c.value), c.bps);
  }
}

struct BadRate {
  std::string name;
  json value;            // put in ports[1].rate_down
  std::string fragment;  // of the reason
};
void PrintTo(const BadRate& c, std::ostream* out) { *out << c.name << " " << c.value.dump(); }

std::vector<BadRate> bad_rate_cases() {
  const std::string range = "out of range 8kbit..400gbit";
  return {
      {"unknown_unit", "2tbit", "unknown unit \"tbit\""},
      {"unit_after_a_space", "2 mbit", "unknown unit \" mbit\""},
      {"exponent", "1e3kbit", "unknown unit"},
      {"empty", "", "is not a rate"},
      {"unit_without_number", "mbit", "\"mbit\" is not a rate"},
      {"two_points", "1.2.3mbit", "is not a rate"},
      {"negative_text", "-5mbit", "is not a rate"},
      {"negative_number", -5, range},
      {"zero_number", 0, range},
      {"zero_text", "0mbit", range},
      {"below_8kbit_number", 7, range},
      {"below_8kbit_bits", "7999bit", range},
      {"below_8kbit_bytes", "999bps", range},
      {"above_400gbit", "401gbit", range},
      {"above_400gbit_bytes", "51gbps", range},
      {"above_400gbit_number", 400'000'001, range},
      {"boolean", true, "must be a string, not boolean"},
      {"null", nullptr, "must be a string, not null"},
  };
}

class QosBadRate : public ::testing::TestWithParam<BadRate> {};

TEST_P(QosBadRate, NamesTheFieldAndWhy) {
  json c = base_config();
  c["ports"][kWan]["rate_down"] = GetParam().value;
  expect_rejected(c, "ports[1].rate_down", GetParam().fragment);
}

INSTANTIATE_TEST_SUITE_P(QosConfig, QosBadRate, ::testing::ValuesIn(bad_rate_cases()),
                         [](const ::testing::TestParamInfo<BadRate>& info) { return info.param.name; });

TEST(QosConfig, FormatRateUsesTheLargestWholeUnit) {
  struct Case {
    uint64_t bps;
    const char* text;
  };
  const Case cases[] = {
      {2'000'000, "2mbit"},     {1'500'000, "1500kbit"},      {800, "800bit"},
      {3'000'000'000, "3gbit"}, {2'500'000'000, "2500mbit"},  {8'000, "8kbit"},
      {1'001, "1001bit"},       {400'000'000'000, "400gbit"}, {0, "0bit"},
  };
  for (const auto& c : cases) EXPECT_EQ(format_rate(c.bps), c.text) << c.bps;
}

TEST(QosConfig, FormatRateParsesBackToTheSameRate) {
  // What the gateway prints (status, errors) can be pasted back into a configuration.
  const uint64_t rates[] = {8'000,         8'001,         12'345,          999'999,         1'000'000,
                            1'500'000,     2'000'000,     123'456'789,     1'000'000'000,   2'500'000'000,
                            3'000'000'000, 399'999'999'999, 400'000'000'000};
  for (uint64_t bps : rates) EXPECT_EQ(parse_rate_text(format_rate(bps)), bps) << format_rate(bps);
}

TEST(QosConfig, ParseRateNamesTheFieldItIsGiven) {
  json value = "fast";
  try {
    parse_rate(JsonField(value, "args.rate"));
    FAIL() << "accepted \"fast\"";
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), "args.rate") << error.what();
  }
}

// --- Port shaping ----------------------------------------------------------------------------

TEST(QosConfig, PortRates) {
  json c = base_config();
  c["ports"][kLan]["rate"] = "100mbit";
  c["ports"][kWan]["rate_down"] = 16000;
  c["ports"][kWan]["rate_up"] = "1mbit";
  Config config = parse_config(c.dump());
  const PortConfig& lan = config.ports[kLan];
  const PortConfig& wan = config.ports[kWan];
  EXPECT_EQ(lan.rate_bps, 100'000'000u);
  EXPECT_EQ(lan.rate_down_bps, 0u);
  EXPECT_EQ(lan.rate_up_bps, 0u);
  EXPECT_EQ(wan.rate_bps, 0u);
  EXPECT_EQ(wan.rate_down_bps, 16'000'000u);
  EXPECT_EQ(wan.rate_up_bps, 1'000'000u);
}

TEST(QosConfig, DefaultFramingIsEthernet) {
  Config config = parse_config(base_config().dump());
  for (const PortConfig& port : config.ports) {
    SCOPED_TRACE(port.name);
    EXPECT_EQ(port.framing.preset, "ethernet");
    EXPECT_EQ(port.framing.overhead, 24) << "preamble and SFD 8, FCS 4, inter-frame gap 12";
    EXPECT_EQ(port.framing.mpu, 0);
    EXPECT_EQ(port.framing.cells, LinkFraming::Cells::kNone);
    EXPECT_EQ(port.rate_bps, 0u);
    EXPECT_EQ(port.rate_down_bps, 0u);
    EXPECT_EQ(port.rate_up_bps, 0u);
  }
}

TEST(QosConfig, FramingPresetsAndNumbers) {
  struct Case {
    json overhead;
    json mpu;  // null: not given
    std::string preset;
    int32_t bytes;
    uint16_t mpu_bytes;
    LinkFraming::Cells cells;
  };
  using Cells = LinkFraming::Cells;
  const Case cases[] = {
      {"ethernet", nullptr, "ethernet", 24, 0, Cells::kNone},
      {"pppoe", nullptr, "pppoe", 32, 0, Cells::kNone},
      {"atm", nullptr, "atm", 22, 0, Cells::kAtm},
      {"vdsl", nullptr, "vdsl", 12, 0, Cells::kPtm},
      {"docsis", nullptr, "docsis", 4, 64, Cells::kNone},
      // A byte count is a custom framing without cells (HTB_OVERHEAD).
      {30, nullptr, "custom", 30, 0, Cells::kNone},
      {0, nullptr, "custom", 0, 0, Cells::kNone},
      {-4, nullptr, "custom", -4, 0, Cells::kNone},
      {-64, nullptr, "custom", -64, 0, Cells::kNone},
      {256, nullptr, "custom", 256, 0, Cells::kNone},
      {30, 64, "custom", 30, 64, Cells::kNone},  // HTB_OVERHEAD with HTB_MPU
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.overhead.dump() + " mpu " + c.mpu.dump());
    json config = base_config();
    config["ports"][kWan]["overhead"] = c.overhead;
    if (!c.mpu.is_null()) config["ports"][kWan]["mpu"] = c.mpu;
    const LinkFraming framing = parse_config(config.dump()).ports[kWan].framing;
    EXPECT_EQ(framing.preset, c.preset);
    EXPECT_EQ(framing.overhead, c.bytes);
    EXPECT_EQ(framing.mpu, c.mpu_bytes);
    EXPECT_EQ(framing.cells, c.cells);
  }
}

TEST(QosConfig, MpuAloneAndOverridingAPreset) {
  struct Case {
    json overhead;  // null: not given
    json mpu;
    int32_t bytes;
    uint16_t mpu_bytes;
    LinkFraming::Cells cells;
  };
  using Cells = LinkFraming::Cells;
  const Case cases[] = {
      {nullptr, 64, 24, 64, Cells::kNone},  // Ethernet's 64-byte minimum frame on the default framing
      {nullptr, 0, 24, 0, Cells::kNone},
      {nullptr, 256, 24, 256, Cells::kNone},
      {"docsis", 72, 4, 72, Cells::kNone},  // the preset's overhead stays, its mpu gives way
      {"docsis", 0, 4, 0, Cells::kNone},    // an explicit 0 overrides too
      {"atm", 96, 22, 96, Cells::kAtm},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.overhead.dump() + " mpu " + c.mpu.dump());
    json config = base_config();
    if (!c.overhead.is_null()) config["ports"][kWan]["overhead"] = c.overhead;
    config["ports"][kWan]["mpu"] = c.mpu;
    const LinkFraming framing = parse_config(config.dump()).ports[kWan].framing;
    EXPECT_EQ(framing.overhead, c.bytes);
    EXPECT_EQ(framing.mpu, c.mpu_bytes);
    EXPECT_EQ(framing.cells, c.cells);
  }
}

TEST(QosConfig, FramingIsPerPort) {
  json c = base_config();
  c["ports"][kWan]["overhead"] = "pppoe";
  Config config = parse_config(c.dump());
  EXPECT_EQ(config.ports[kLan].framing.preset, "ethernet");
  EXPECT_EQ(config.ports[kLan].framing.overhead, 24);
  EXPECT_EQ(config.ports[kWan].framing.preset, "pppoe");
  EXPECT_EQ(config.ports[kWan].framing.overhead, 32);
}

TEST(QosConfig, OverheadBeyondInt64IsRejected) {
  // 2^64 - 1 is an unsigned JSON integer; read as int64_t it wraps to -1, which is in range.
  json c = base_config();
  c["ports"][kWan]["overhead"] = UINT64_MAX;
  expect_rejected(c, "ports[1].overhead", "out of range -64..256");
}

// --- Bad configurations, by section -----------------------------------------------------------

struct BadConfig {
  std::string name;
  std::function<void(json&)> mutate;  // applied to qos_config()
  std::string field;
  std::string fragment;  // of the reason
};
void PrintTo(const BadConfig& c, std::ostream* out) { *out << c.name; }

class QosBadConfig : public ::testing::TestWithParam<BadConfig> {};

TEST_P(QosBadConfig, NamesTheFieldAndWhy) {
  json c = qos_config();
  GetParam().mutate(c);
  expect_rejected(c, GetParam().field, GetParam().fragment);
}

std::string case_name(const ::testing::TestParamInfo<BadConfig>& info) { return info.param.name; }

std::vector<BadConfig> bad_port_cases() {
  auto lan = [](const char* key, json value) {
    return [key, value](json& c) { c["ports"][kLan][key] = value; };
  };
  auto wan = [](const char* key, json value) {
    return [key, value](json& c) { c["ports"][kWan][key] = value; };
  };
  return {
      {"rate_on_wan", wan("rate", "10mbit"), "ports[1].rate", "rate_down and rate_up instead"},
      {"rate_down_on_lan", lan("rate_down", "10mbit"), "ports[0].rate_down", "only wan ports"},
      {"rate_up_on_lan", lan("rate_up", "10mbit"), "ports[0].rate_up", "only wan ports"},
      {"lan_rate_bad", lan("rate", "fast"), "ports[0].rate", "is not a rate"},
      {"rate_up_bad_unit", wan("rate_up", "2mbyte"), "ports[1].rate_up", "unknown unit \"mbyte\""},
      {"overhead_above_256", wan("overhead", 257), "ports[1].overhead", "257 is out of range -64..256"},
      {"overhead_below_minus_64", wan("overhead", -65), "ports[1].overhead", "-65 is out of range -64..256"},
      {"overhead_unknown_preset", wan("overhead", "cable"), "ports[1].overhead",
       "\"cable\" is not a byte count or one of ethernet, pppoe, atm, vdsl, docsis"},
      {"overhead_preset_case", wan("overhead", "PPPoE"), "ports[1].overhead", "is not a byte count"},
      {"overhead_boolean", wan("overhead", true), "ports[1].overhead", "boolean"},
      {"mpu_above_256", wan("mpu", 257), "ports[1].mpu", "out of range 0..256"},
      {"mpu_negative", wan("mpu", -1), "ports[1].mpu", "must be an integer between 0 and 256"},
      {"mpu_text", wan("mpu", "64"), "ports[1].mpu", "must be an integer"},
      {"port_unknown_field", wan("rate_dn", "10mbit"), "ports[1].rate_dn", "unknown field"},
  };
}

INSTANTIATE_TEST_SUITE_P(QosConfigPorts, QosBadConfig, ::testing::ValuesIn(bad_port_cases()), case_name);

// --- The qos section -------------------------------------------------------------------------

TEST(QosConfig, NoSectionShapesNothing) {
  Config config = parse_config(base_config().dump());
  const QosConfig& qos = config.qos;
  EXPECT_FALSE(qos.download);
  EXPECT_FALSE(qos.upload);
  EXPECT_FALSE(qos.enabled());
  EXPECT_TRUE(config.subscribers.empty());
}

TEST(QosConfig, EmptySectionShapesBothWaysWithFairNatDefaults) {
  const QosConfig qos = parse_config(qos_config().dump()).qos;
  EXPECT_TRUE(qos.download);
  EXPECT_TRUE(qos.upload);
  EXPECT_TRUE(qos.enabled());
  EXPECT_EQ(qos.rate_sub_percent, 5u);
  EXPECT_EQ(qos.rate_local_percent, 5u);
  EXPECT_TRUE(qos.borrow);
  EXPECT_EQ(qos.user_ceil_down_bps, 0u) << "the link's rate";
  EXPECT_EQ(qos.user_ceil_up_bps, 0u);
}

TEST(QosConfig, EveryQosFieldIsRead) {
  json c = qos_config();
  c["qos"] = json::parse(R"({
    "download": true, "upload": true, "rate_sub_percent": 10, "rate_local_percent": 3, "borrow": false,
    "user_ceil_down": "8mbit", "user_ceil_up": 500})");
  const QosConfig qos = parse_config(c.dump()).qos;
  EXPECT_TRUE(qos.download);
  EXPECT_TRUE(qos.upload);
  EXPECT_EQ(qos.rate_sub_percent, 10u);
  EXPECT_EQ(qos.rate_local_percent, 3u);
  EXPECT_FALSE(qos.borrow);
  EXPECT_EQ(qos.user_ceil_down_bps, 8'000'000u);
  EXPECT_EQ(qos.user_ceil_up_bps, 500'000u) << "a bare number is kbit/s here too";
}

TEST(QosConfig, QosFieldLimitsAreAccepted) {
  struct Case {
    json qos;
    std::function<void(const QosConfig&)> check;
  };
  const Case cases[] = {
      {{{"rate_sub_percent", 0}, {"rate_local_percent", 0}},
       [](const QosConfig& q) { EXPECT_EQ(q.rate_sub_percent + q.rate_local_percent, 0u); }},
      {{{"rate_sub_percent", 50}, {"rate_local_percent", 49}},
       [](const QosConfig& q) { EXPECT_EQ(q.rate_sub_percent + q.rate_local_percent, 99u); }},
      {{{"borrow", true}}, [](const QosConfig& q) { EXPECT_TRUE(q.borrow); }},
      // Fair sharing's own settings at their limits.
      {{{"unknown_hosts", "own"}}, [](const QosConfig& q) { EXPECT_EQ(q.unknown_hosts, QosConfig::UnknownHosts::kOwn); }},
      {{{"unknown_hosts", "shared"}},
       [](const QosConfig& q) { EXPECT_EQ(q.unknown_hosts, QosConfig::UnknownHosts::kShared); }},
      {{{"idle_s", 10}}, [](const QosConfig& q) { EXPECT_EQ(q.idle_s, 10u); }},
      {{{"idle_s", 86400}}, [](const QosConfig& q) { EXPECT_EQ(q.idle_s, 86400u); }},
      // No subscribers: the one pipe is "unknown"'s.
      {{{"max_subscribers", 1}}, [](const QosConfig& q) { EXPECT_EQ(q.max_subscribers, 1u); }},
      {{{"max_subscribers", 65536}}, [](const QosConfig& q) { EXPECT_EQ(q.max_subscribers, 65536u); }},
      {{{"bulk_after_bytes", 1500}}, [](const QosConfig& q) { EXPECT_EQ(q.bulk_after_bytes, 1500u); }},
      {{{"bulk_after_bytes", uint64_t{1} << 40}},
       [](const QosConfig& q) { EXPECT_EQ(q.bulk_after_bytes, uint64_t{1} << 40); }},
      {{{"interactive_ports", json::array()}}, [](const QosConfig& q) { EXPECT_TRUE(q.interactive_ports.empty()); }},
      {{{"interactive_ports", {1, 65535}}},
       [](const QosConfig& q) { EXPECT_EQ(q.interactive_ports, (std::vector<uint16_t>{1, 65535})); }},
      {{{"interactive_ports", [] {
           json ports = json::array();
           for (int port = 1000; port < 1064; ++port) ports.push_back(port);
           return ports;
         }()}},
       [](const QosConfig& q) {
         ASSERT_EQ(q.interactive_ports.size(), 64u) << "64 ports is the most";
         EXPECT_EQ(q.interactive_ports.front(), 1000);
         EXPECT_EQ(q.interactive_ports.back(), 1063);
       }},
      {{{"interactive_packet_bytes", 40}}, [](const QosConfig& q) { EXPECT_EQ(q.interactive_packet_bytes, 40); }},
      {{{"interactive_packet_bytes", 1500}}, [](const QosConfig& q) { EXPECT_EQ(q.interactive_packet_bytes, 1500); }},
      {{{"aqm", "pie"}}, [](const QosConfig& q) { EXPECT_EQ(q.aqm, QosConfig::Aqm::kPie); }},
      {{{"aqm", "red"}}, [](const QosConfig& q) { EXPECT_EQ(q.aqm, QosConfig::Aqm::kRed); }},
      {{{"count_download_drops", false}}, [](const QosConfig& q) { EXPECT_FALSE(q.count_download_drops); }},
      {{{"count_download_drops", true}}, [](const QosConfig& q) { EXPECT_TRUE(q.count_download_drops); }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.qos.dump());
    json config = qos_config();
    config["qos"] = c.qos;
    c.check(parse_config(config.dump()).qos);
  }
}

TEST(QosConfig, FairSharingDefaults) {
  // What an empty qos section gives: FairNAT's behaviour (every host its own share, SSH and
  // telnet keystrokes interactive) with PIE on every queue.
  const QosConfig qos = parse_config(qos_config().dump()).qos;
  EXPECT_EQ(qos.unknown_hosts, QosConfig::UnknownHosts::kOwn);
  EXPECT_EQ(qos.idle_s, 300u);
  EXPECT_EQ(qos.max_subscribers, 1024u);
  EXPECT_EQ(qos.bulk_after_bytes, 131'072u);
  EXPECT_EQ(qos.interactive_ports, (std::vector<uint16_t>{22, 23}));
  EXPECT_EQ(qos.interactive_packet_bytes, 256);
  EXPECT_EQ(qos.aqm, QosConfig::Aqm::kPie);
  EXPECT_TRUE(qos.count_download_drops) << "downloads are shaped after the modem";
}

TEST(QosConfig, EveryFairSharingFieldIsRead) {
  json c = qos_config();
  c["qos"] = json::parse(R"({
    "unknown_hosts": "shared", "idle_s": 600, "max_subscribers": 4096, "bulk_after_bytes": 5000000,
    "interactive_ports": [22, 3389, 5222], "interactive_packet_bytes": 512, "aqm": "red"})");
  const QosConfig qos = parse_config(c.dump()).qos;
  EXPECT_EQ(qos.unknown_hosts, QosConfig::UnknownHosts::kShared);
  EXPECT_EQ(qos.idle_s, 600u);
  EXPECT_EQ(qos.max_subscribers, 4096u);
  EXPECT_EQ(qos.bulk_after_bytes, 5'000'000u);
  EXPECT_EQ(qos.interactive_ports, (std::vector<uint16_t>{22, 3389, 5222})) << "the list replaces the defaults";
  EXPECT_EQ(qos.interactive_packet_bytes, 512);
  EXPECT_EQ(qos.aqm, QosConfig::Aqm::kRed);
}

TEST(QosConfig, MaxSubscribersCountsTheUnknownOne) {
  // Two subscribers and "unknown" need three pipes: three is enough, two is not.
  json c = qos_config();
  c["subscribers"] = {subscriber("anna", {"10.10.0.7"}), subscriber("ben", {"10.10.0.8"})};
  c["qos"]["max_subscribers"] = 3;
  EXPECT_EQ(parse_config(c.dump()).qos.max_subscribers, 3u);
  c["qos"]["max_subscribers"] = 2;
  expect_rejected(c, "qos", "max_subscribers (2) leaves no room for the 2 subscribers and the \"unknown\" one");
}

TEST(QosConfig, OneDirectionNeedsOnlyItsLinkRate) {
  // Download only: the WAN's rate_up may be missing, and the other way round.
  json down_only = base_config();
  down_only["ports"][kWan]["rate_down"] = "10mbit";
  down_only["qos"] = {{"upload", false}};
  QosConfig qos = parse_config(down_only.dump()).qos;
  EXPECT_TRUE(qos.download);
  EXPECT_FALSE(qos.upload);
  EXPECT_TRUE(qos.enabled());

  json up_only = base_config();
  up_only["ports"][kWan]["rate_up"] = "2mbit";
  up_only["qos"] = {{"download", false}};
  qos = parse_config(up_only.dump()).qos;
  EXPECT_FALSE(qos.download);
  EXPECT_TRUE(qos.upload);
  EXPECT_TRUE(qos.enabled());

  json neither = base_config();
  neither["qos"] = {{"download", false}, {"upload", false}};
  qos = parse_config(neither.dump()).qos;
  EXPECT_FALSE(qos.enabled()) << "a section that turns both off shapes nothing";

  json lan_rate_optional = qos_config();
  EXPECT_EQ(parse_config(lan_rate_optional.dump()).ports[kLan].rate_bps, 0u) << "no LAN rate is needed";
}

std::vector<BadConfig> bad_qos_cases() {
  auto qos = [](const char* key, json value) {
    return [key, value](json& c) { c["qos"][key] = value; };
  };
  auto drop = [](std::size_t port, const char* key) {
    return [port, key](json& c) { c["ports"][port].erase(key); };
  };
  return {
      {"not_an_object", [](json& c) { c["qos"] = true; }, "qos", "must be an object"},
      {"unknown_field", qos("rate_percent", 5), "qos.rate_percent", "unknown field"},
      {"download_text", qos("download", "on"), "qos.download", "must be true or false"},
      {"upload_number", qos("upload", 1), "qos.upload", "must be true or false"},
      {"sub_percent_51", qos("rate_sub_percent", 51), "qos.rate_sub_percent", "51 is out of range 0..50"},
      {"local_percent_51", qos("rate_local_percent", 51), "qos.rate_local_percent", "51 is out of range 0..50"},
      {"sub_percent_negative", qos("rate_sub_percent", -1), "qos.rate_sub_percent", "must be an integer"},
      {"local_percent_fraction", qos("rate_local_percent", 2.5), "qos.rate_local_percent", "must be an integer"},
      {"percents_leave_nothing",
       [](json& c) {
         c["qos"]["rate_sub_percent"] = 50;
         c["qos"]["rate_local_percent"] = 50;
       },
       "qos", "leave nothing for the subscribers"},
      {"borrow_text", qos("borrow", "yes"), "qos.borrow", "must be true or false, not string"},
      {"borrow_number", qos("borrow", 0), "qos.borrow", "must be true or false, not number"},
      {"user_ceil_down_bad", qos("user_ceil_down", "fast"), "qos.user_ceil_down", "is not a rate"},
      {"user_ceil_up_zero", qos("user_ceil_up", 0), "qos.user_ceil_up", "out of range 8kbit..400gbit"},
      {"another_unknown_field", qos("turbo", true), "qos.turbo", "unknown field"},
      // Fair sharing's own settings.
      {"unknown_hosts_bad", qos("unknown_hosts", "private"), "qos.unknown_hosts",
       "must be \"own\" (a subscriber per host) or \"shared\" (one subscriber \"unknown\")"},
      {"unknown_hosts_case", qos("unknown_hosts", "Own"), "qos.unknown_hosts", "must be \"own\""},
      {"unknown_hosts_boolean", qos("unknown_hosts", true), "qos.unknown_hosts", "must be a string, not boolean"},
      {"idle_s_9", qos("idle_s", 9), "qos.idle_s", "9 is out of range 10..86400"},
      {"idle_s_86401", qos("idle_s", 86401), "qos.idle_s", "86401 is out of range 10..86400"},
      {"idle_s_negative", qos("idle_s", -1), "qos.idle_s", "must be an integer between 10 and 86400"},
      {"idle_s_text", qos("idle_s", "300"), "qos.idle_s", "must be an integer"},
      {"max_subscribers_0", qos("max_subscribers", 0), "qos.max_subscribers", "0 is out of range 1..65536"},
      {"max_subscribers_65537", qos("max_subscribers", 65537), "qos.max_subscribers",
       "65537 is out of range 1..65536"},
      {"max_subscribers_fraction", qos("max_subscribers", 10.5), "qos.max_subscribers", "must be an integer"},
      {"max_subscribers_below_the_subscribers",
       [](json& c) {
         c["qos"]["max_subscribers"] = 1;
         c["subscribers"] = {subscriber("anna", {"10.10.0.7"})};
       },
       "qos", "max_subscribers (1) leaves no room for the 1 subscribers and the \"unknown\" one"},
      {"bulk_after_bytes_1499", qos("bulk_after_bytes", 1499), "qos.bulk_after_bytes",
       "1499 is out of range 1500..1099511627776"},
      {"bulk_after_bytes_above_2_40", qos("bulk_after_bytes", (uint64_t{1} << 40) + 1), "qos.bulk_after_bytes",
       "is out of range 1500..1099511627776"},
      {"bulk_after_bytes_text", qos("bulk_after_bytes", "1mb"), "qos.bulk_after_bytes", "must be an integer"},
      {"interactive_ports_a_number", qos("interactive_ports", 22), "qos.interactive_ports",
       "must be an array, not number"},
      {"interactive_port_0", qos("interactive_ports", {0}), "qos.interactive_ports[0]", "0 is out of range 1..65535"},
      {"interactive_port_65536", qos("interactive_ports", {22, 65536}), "qos.interactive_ports[1]",
       "65536 is out of range 1..65535"},
      {"interactive_port_text", qos("interactive_ports", {"ssh"}), "qos.interactive_ports[0]", "must be an integer"},
      {"interactive_ports_65",
       [](json& c) {
         json ports = json::array();
         for (int port = 1000; port < 1065; ++port) ports.push_back(port);
         c["qos"]["interactive_ports"] = ports;
       },
       "qos.interactive_ports", "at most 64 ports"},
      {"interactive_packet_bytes_39", qos("interactive_packet_bytes", 39), "qos.interactive_packet_bytes",
       "39 is out of range 40..1500"},
      {"interactive_packet_bytes_1501", qos("interactive_packet_bytes", 1501), "qos.interactive_packet_bytes",
       "1501 is out of range 40..1500"},
      {"aqm_unknown", qos("aqm", "codel"), "qos.aqm", "must be \"pie\" or \"red\""},
      {"aqm_case", qos("aqm", "PIE"), "qos.aqm", "must be \"pie\" or \"red\""},
      {"aqm_boolean", qos("aqm", false), "qos.aqm", "must be a string, not boolean"},
      {"count_download_drops_string", qos("count_download_drops", "yes"), "qos.count_download_drops",
       "must be true or false, not string"},
      // With qos on, every WAN carries the rates its shaping needs.
      {"wan_without_rate_down", drop(kWan, "rate_down"), "ports[1].rate_down", "required when qos.download is on"},
      {"wan_without_rate_up", drop(kWan, "rate_up"), "ports[1].rate_up", "required when qos.upload is on"},
      {"second_wan_without_rate_down", [](json& c) { add_wan(c, nullptr, "2mbit"); }, "ports[2].rate_down",
       "required when qos.download is on"},
      {"second_wan_without_rate_up", [](json& c) { add_wan(c, "10mbit", nullptr); }, "ports[2].rate_up",
       "required when qos.upload is on"},
      {"download_only_without_rate_down",
       [](json& c) {
         c["qos"]["upload"] = false;
         c["ports"][kWan].erase("rate_down");
       },
       "ports[1].rate_down", "required when qos.download is on"},
  };
}

INSTANTIATE_TEST_SUITE_P(QosConfigQos, QosBadConfig, ::testing::ValuesIn(bad_qos_cases()), case_name);

// --- Subscribers -----------------------------------------------------------------------------

TEST(QosConfig, Subscribers) {
  json c = qos_config();
  c["ports"][kWan]["rate_down"] = "100mbit";
  c["ports"][kWan]["rate_up"] = "20mbit";
  json anna = subscriber("anna", {"10.10.0.7", "10.10.0.9", "10.10.0.12"});  // FairNAT's "7:9:12"
  anna["down"] = {{"rate", "2mbit"}, {"ceil", "50mbit"}};
  anna["up"] = {{"rate", 500}, {"ceil", "5mbit"}};
  json flats = subscriber("flats", {"10.10.0.32/28", "10.10.0.64/27"});
  flats["down"] = {{"ceil", "20mbit"}};  // no guarantee of its own, only a cap
  flats["up"] = {{"rate", "1mbit"}, {"ceil", "1mbit"}};  // rate equal to ceil: a hard cap
  json office = subscriber("office", {"10.10.0.128/25"});
  c["subscribers"] = {anna, flats, office};

  const auto subscribers = parse_config(c.dump()).subscribers;
  ASSERT_EQ(subscribers.size(), 3u);
  const SubscriberConfig& a = subscribers[0];
  EXPECT_EQ(a.name, "anna");
  ASSERT_EQ(a.addresses.size(), 3u);
  EXPECT_EQ(a.addresses[0].address, *parse_ipv4("10.10.0.7"));
  EXPECT_EQ(a.addresses[0].length, 32) << "a host address is a /32";
  EXPECT_EQ(a.addresses[1].address, *parse_ipv4("10.10.0.9"));
  EXPECT_EQ(a.addresses[2].address, *parse_ipv4("10.10.0.12"));
  EXPECT_EQ(a.down.rate_bps, 2'000'000u);
  EXPECT_EQ(a.down.ceil_bps, 50'000'000u);
  EXPECT_EQ(a.up.rate_bps, 500'000u);
  EXPECT_EQ(a.up.ceil_bps, 5'000'000u);

  const SubscriberConfig& f = subscribers[1];
  EXPECT_EQ(f.name, "flats");
  ASSERT_EQ(f.addresses.size(), 2u);
  EXPECT_EQ(f.addresses[0].network(), *parse_ipv4("10.10.0.32"));
  EXPECT_EQ(f.addresses[0].length, 28);
  EXPECT_EQ(f.addresses[1].network(), *parse_ipv4("10.10.0.64"));
  EXPECT_EQ(f.addresses[1].length, 27);
  EXPECT_EQ(f.down.rate_bps, 0u) << "0: an equal share";
  EXPECT_EQ(f.down.ceil_bps, 20'000'000u);
  EXPECT_EQ(f.up.rate_bps, 1'000'000u);
  EXPECT_EQ(f.up.ceil_bps, 1'000'000u);

  const SubscriberConfig& o = subscribers[2];
  EXPECT_EQ(o.name, "office");
  ASSERT_EQ(o.addresses.size(), 1u);
  EXPECT_EQ(o.addresses[0].length, 25);
  EXPECT_EQ(o.down.rate_bps, 0u);
  EXPECT_EQ(o.down.ceil_bps, 0u) << "0: qos.user_ceil_down";
  EXPECT_EQ(o.up.rate_bps, 0u);
  EXPECT_EQ(o.up.ceil_bps, 0u);
}

TEST(QosConfig, SubscriberEdgesThatAreAccepted) {
  json two_lans = qos_config();
  two_lans["ports"].push_back(json::parse(
      R"({"name": "lan1", "role": "lan", "device": "net_ring2", "address": "10.20.0.1/16"})"));
  struct Case {
    std::string name;
    json base;
    json subscribers;
  };
  const Case cases[] = {
      {"name_of_32_characters", qos_config(), {subscriber(std::string(32, 'n'), {"10.10.0.7"})}},
      {"name_with_punctuation", qos_config(), {subscriber("flat-3.b_2", {"10.10.0.7"})}},
      {"the_whole_lan", qos_config(), {subscriber("everyone", {"10.10.0.0/24"})}},
      {"adjacent_prefixes", qos_config(),
       {subscriber("a", {"10.10.0.32/28", "10.10.0.48/28"}), subscriber("b", {"10.10.0.31", "10.10.0.64"})}},
      {"on_the_second_lan", two_lans, {subscriber("a", {"10.10.0.7", "10.20.3.0/24"})}},
      {"empty_list", qos_config(), json::array()},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    json config = c.base;
    config["subscribers"] = c.subscribers;
    EXPECT_NO_THROW(parse_config(config.dump()));
  }
  json no_qos = base_config();
  no_qos["subscribers"] = json::array();
  EXPECT_NO_THROW(parse_config(no_qos.dump())) << "an empty list needs no qos section";
}

std::vector<BadConfig> bad_subscriber_cases() {
  auto subs = [](json list) {
    return [list](json& c) { c["subscribers"] = list; };
  };
  auto with = [](json s, const char* key, json value) {
    s[key] = std::move(value);
    return s;
  };
  json anna = subscriber("anna", {"10.10.0.7"});
  return {
      {"not_an_array", subs(anna), "subscribers", "must be an array"},
      {"entry_not_an_object", subs({"anna"}), "subscribers[0]", "must be an object"},
      {"unknown_field", subs({with(anna, "rate", "2mbit")}), "subscribers[0].rate", "unknown field"},
      {"plan_unknown_field", subs({with(anna, "down", {{"burst", "10k"}})}), "subscribers[0].down.burst",
       "unknown field"},
      {"plan_bad_rate", subs({with(anna, "down", {{"rate", "fast"}})}), "subscribers[0].down.rate", "is not a rate"},
      {"plan_rate_too_small", subs({with(anna, "up", {{"rate", "1kbit"}})}), "subscribers[0].up.rate",
       "out of range 8kbit..400gbit"},
      {"down_rate_above_ceil", subs({with(anna, "down", {{"rate", "2mbit"}, {"ceil", "1500kbit"}})}),
       "subscribers[0].down.ceil", "1500kbit is below the guaranteed rate 2mbit"},
      {"up_rate_above_ceil", subs({with(anna, "up", {{"rate", 512}, {"ceil", 256}})}), "subscribers[0].up.ceil",
       "256kbit is below the guaranteed rate 512kbit"},
      {"name_missing", subs({json{{"addresses", {"10.10.0.7"}}}}), "subscribers[0].name", "required"},
      {"name_empty", subs({subscriber("", {"10.10.0.7"})}), "subscribers[0].name", "1 to 32 characters"},
      {"name_33_characters", subs({subscriber(std::string(33, 'n'), {"10.10.0.7"})}), "subscribers[0].name",
       "1 to 32 characters"},
      {"name_with_space", subs({subscriber("anna b", {"10.10.0.7"})}), "subscribers[0].name",
       "without spaces or quotes"},
      {"name_with_tab", subs({subscriber("anna\tb", {"10.10.0.7"})}), "subscribers[0].name",
       "without spaces or quotes"},
      {"name_with_quote", subs({subscriber("anna\"b", {"10.10.0.7"})}), "subscribers[0].name",
       "without spaces or quotes"},
      {"name_not_a_string", subs({with(subscriber("x", {"10.10.0.7"}), "name", 7)}), "subscribers[0].name",
       "must be a string"},
      {"duplicate_name", subs({anna, subscriber("anna", {"10.10.0.8"})}), "subscribers[1].name",
       "\"anna\" names two subscribers"},
      // "unknown" is the subscriber of the hosts nobody covers, always there.
      {"name_unknown", subs({subscriber("unknown", {"10.10.0.7"})}), "subscribers[0].name",
       "\"unknown\" is kept for the hosts no subscriber covers"},
      {"name_unknown_second", subs({anna, subscriber("unknown", {"10.10.0.8"})}), "subscribers[1].name",
       "\"unknown\" is kept"},
      {"addresses_missing", subs({json{{"name", "anna"}}}), "subscribers[0].addresses", "required"},
      {"addresses_empty", subs({subscriber("anna", json::array())}), "subscribers[0].addresses",
       "at least one address or prefix"},
      {"addresses_a_string", subs({subscriber("anna", "10.10.0.7")}), "subscribers[0].addresses", "must be an array"},
      {"address_not_an_address", subs({subscriber("anna", {"10.10.0.7", "anna-pc"})}), "subscribers[0].addresses[1]",
       "\"anna-pc\" is not an IPv4 address or prefix"},
      {"address_bad_octet", subs({subscriber("anna", {"10.10.0.300"})}), "subscribers[0].addresses[0]",
       "is not an IPv4 address or prefix"},
      {"prefix_length_33", subs({subscriber("anna", {"10.10.0.7/33"})}), "subscribers[0].addresses[0]",
       "is not an IPv4 address or prefix"},
      {"address_off_every_lan", subs({subscriber("anna", {"192.0.2.7"})}), "subscribers[0].addresses[0]",
       "192.0.2.7 is not inside a LAN port's prefix"},
      {"address_on_the_wan", subs({subscriber("anna", {"198.51.100.20"})}), "subscribers[0].addresses[0]",
       "not inside a LAN port's prefix"},
      {"prefix_wider_than_the_lan", subs({subscriber("anna", {"10.10.0.0/23"})}), "subscribers[0].addresses[0]",
       "10.10.0.0/23 is not inside a LAN port's prefix"},
      {"prefix_starting_below_the_lan", subs({subscriber("anna", {"10.10.0.0/16"})}), "subscribers[0].addresses[0]",
       "not inside a LAN port's prefix"},
      {"default_route", subs({subscriber("anna", {"0.0.0.0/0"})}), "subscribers[0].addresses[0]",
       "not inside a LAN port's prefix"},
      {"overlap_in_one_subscriber", subs({subscriber("anna", {"10.10.0.32/28", "10.10.0.7", "10.10.0.40"})}),
       "subscribers[0].addresses[2]", "10.10.0.40 overlaps subscribers[0].addresses[0]"},
      {"wider_overlaps_earlier_in_one_subscriber", subs({subscriber("anna", {"10.10.0.40", "10.10.0.32/28"})}),
       "subscribers[0].addresses[1]", "overlaps subscribers[0].addresses[0]"},
      {"same_address_twice", subs({subscriber("anna", {"10.10.0.7", "10.10.0.7"})}), "subscribers[0].addresses[1]",
       "overlaps subscribers[0].addresses[0]"},
      {"overlap_across_subscribers",
       subs({subscriber("anna", {"10.10.0.7", "10.10.0.32/28"}), subscriber("ben", {"10.10.0.50", "10.10.0.33"})}),
       "subscribers[1].addresses[1]", "10.10.0.33/32 overlaps subscribers[0].addresses[1] (10.10.0.32/28)"},
      {"wider_overlaps_another_subscriber",
       subs({subscriber("anna", {"10.10.0.7"}), subscriber("ben", {"10.10.0.40"}),
             subscriber("cleo", {"10.10.0.32/28"})}),
       "subscribers[2].addresses[0]", "overlaps subscribers[1].addresses[0] (10.10.0.40/32)"},
      {"subscribers_without_qos",
       [](json& c) {
         c.erase("qos");
         c["subscribers"] = {subscriber("anna", {"10.10.0.7"})};
       },
       "subscribers", "needs a qos section"},
      {"subscribers_with_qos_off",
       [](json& c) {
         c["qos"] = {{"download", false}, {"upload", false}};
         c["subscribers"] = {subscriber("anna", {"10.10.0.7"})};
       },
       "subscribers", "needs a qos section"},
  };
}

INSTANTIATE_TEST_SUITE_P(QosConfigSubscribers, QosBadConfig, ::testing::ValuesIn(bad_subscriber_cases()), case_name);

// --- Guarantees against the links ------------------------------------------------------------

struct Guarantees {
  std::string name;
  json qos;
  json wan1;  // [rate_down, rate_up] of a second WAN, or null for one WAN (10mbit down, 2mbit up)
  std::vector<json> down, up;  // subscribers' guaranteed rates, one subscriber per index
  std::vector<std::string> fragments;  // empty: accepted; else in the reason, field "subscribers"
};
void PrintTo(const Guarantees& c, std::ostream* out) { *out << c.name; }

json guarantees_config(const Guarantees& g) {
  json c = qos_config();
  c["qos"] = g.qos;
  if (g.qos.contains("download") && !g.qos["download"].get<bool>()) c["ports"][kWan].erase("rate_down");
  if (g.qos.contains("upload") && !g.qos["upload"].get<bool>()) c["ports"][kWan].erase("rate_up");
  if (!g.wan1.is_null()) add_wan(c, g.wan1[0], g.wan1[1]);
  c["subscribers"] = json::array();
  for (std::size_t i = 0; i < std::max(g.down.size(), g.up.size()); ++i) {
    json s = subscriber("s" + std::to_string(i), {"10.10.0." + std::to_string(10 + i)});
    if (i < g.down.size()) s["down"] = {{"rate", g.down[i]}};
    if (i < g.up.size()) s["up"] = {{"rate", g.up[i]}};
    c["subscribers"].push_back(s);
  }
  return c;
}

std::vector<Guarantees> guarantee_cases() {
  const json none;
  const json off_up = {{"upload", false}}, off_down = {{"download", false}};
  return {
      // One WAN of 10 Mbit/s down, 2 Mbit/s up; 90 % of each is the subscribers'.
      {"down_exactly_at_the_limit", json::object(), none, {"5mbit", "4mbit"}, {}, {}},
      {"down_one_bit_over", json::object(), none, {"5mbit", "4000001bit"}, {}, {"9000001bit", "9mbit"}},
      {"up_exactly_at_the_limit", json::object(), none, {}, {"1mbit", "800kbit"}, {}},
      {"up_over", json::object(), none, {}, {"1mbit", "801kbit"}, {"1801kbit", "1800kbit"}},
      // The margins are the operator's: 70 % of 10 Mbit/s, or all of it.
      {"percents_narrow_the_share", {{"rate_sub_percent", 10}, {"rate_local_percent", 20}}, none, {"7mbit"}, {}, {}},
      {"percents_narrow_the_share_over", {{"rate_sub_percent", 10}, {"rate_local_percent", 20}}, none, {"7001kbit"}, {},
       {"7001kbit", "7mbit"}},
      {"no_margins_the_whole_link", {{"rate_sub_percent", 0}, {"rate_local_percent", 0}}, none, {"10mbit"}, {"2mbit"},
       {}},
      // Download guarantees fit the link downloads arrive on, the default route's WAN (the first,
      // 10 Mbit/s), not the second WAN's 20 Mbit/s ...
      {"down_fits_the_default_route_wan", json::object(), {"20mbit", "5mbit"}, {"5mbit", "4mbit"}, {}, {}},
      {"down_over_the_default_route_wan", json::object(), {"20mbit", "5mbit"}, {"5mbit", "4001kbit"}, {},
       {"9001kbit", "9mbit"}},
      // ... upload guarantees the smallest uplink, here the first WAN's 2 Mbit/s, not the 5 Mbit/s one.
      {"up_fits_the_smallest_wan", json::object(), {"20mbit", "5mbit"}, {}, {"1mbit", "800kbit"}, {}},
      {"up_over_the_smallest_wan", json::object(), {"20mbit", "5mbit"}, {}, {"1mbit", "900kbit"},
       {"1900kbit", "1800kbit"}},
      {"up_smallest_is_the_second_wan", json::object(), {"20mbit", "1mbit"}, {}, {"900kbit"}, {}},
      {"up_smallest_is_the_second_wan_over", json::object(), {"20mbit", "1mbit"}, {}, {"1mbit"},
       {"1mbit", "900kbit"}},
      // A direction that is not shaped guarantees nothing, so its sums are not checked.
      {"download_off_ignores_down_rates", off_down, none, {"50mbit"}, {"1mbit"}, {}},
      {"upload_off_ignores_up_rates", off_up, none, {"1mbit"}, {"50mbit"}, {}},
  };
}

class QosGuarantees : public ::testing::TestWithParam<Guarantees> {};

TEST_P(QosGuarantees, FitTheLinks) {
  const Guarantees& g = GetParam();
  json c = guarantees_config(g);
  if (g.fragments.empty()) {
    EXPECT_NO_THROW(parse_config(c.dump())) << c.dump();
    return;
  }
  try {
    parse_config(c.dump());
    FAIL() << "accepted: " << c.dump();
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), "subscribers") << error.what();
    for (const auto& fragment : g.fragments)
      EXPECT_TRUE(contains(error.what(), " " + fragment + " ") || contains(error.what(), " " + fragment + ","))
          << "expected " << fragment << " in: " << error.what();
  }
}

INSTANTIATE_TEST_SUITE_P(QosConfig, QosGuarantees, ::testing::ValuesIn(guarantee_cases()),
                         [](const ::testing::TestParamInfo<Guarantees>& info) { return info.param.name; });

TEST(QosConfig, GuaranteeLimitIsExactForRatesInBits) {
  // 90 % of 1000050 bit/s is 900045 bit/s; a guarantee of exactly that fits.
  json c = qos_config();
  c["ports"][kWan]["rate_down"] = "1000050bit";
  json s = subscriber("anna", {"10.10.0.7"});
  s["down"] = {{"rate", "900045bit"}};
  c["subscribers"] = {s};
  EXPECT_NO_THROW(parse_config(c.dump()));
}

TEST(QosConfig, GuaranteeAboveTheDefaultCeilIsRejected) {
  // qos.user_ceil_down caps every subscriber without a ceil of its own, so a guarantee above it
  // can never be met (FairNAT's USER_CEIL_DOWN lowers the maximum for all users).
  json c = qos_config();
  c["qos"]["user_ceil_down"] = "1mbit";
  json s = subscriber("anna", {"10.10.0.7"});
  s["down"] = {{"rate", "2mbit"}};
  c["subscribers"] = {s};
  try {
    parse_config(c.dump());
    FAIL() << "accepted a 2mbit guarantee under a 1mbit default ceil";
  } catch (const FieldError& error) {
    EXPECT_TRUE(contains(error.field(), "subscribers[0].down") || error.field() == "qos.user_ceil_down")
        << error.what();
  }
}

// --- parse_subscriber on its own, as the subscriber-add command calls it ----------------------

TEST(QosConfig, ParseSubscriberStandsAloneForTheCommand) {
  const std::vector<Ipv4Prefix> lan = {*parse_ipv4_prefix("10.10.0.1/24"), *parse_ipv4_prefix("10.20.0.1/16")};
  json args = json::parse(R"({"name": "anna", "addresses": ["10.10.0.7", "10.20.5.0/24"],
                              "down": {"rate": "2mbit", "ceil": "20mbit"}, "up": {"ceil": 1000}})");
  SubscriberConfig s = parse_subscriber(JsonField(args, "args"), lan);
  EXPECT_EQ(s.name, "anna");
  ASSERT_EQ(s.addresses.size(), 2u);
  EXPECT_EQ(s.addresses[0].address, *parse_ipv4("10.10.0.7"));
  EXPECT_EQ(s.addresses[0].length, 32);
  EXPECT_EQ(s.addresses[1].network(), *parse_ipv4("10.20.5.0"));
  EXPECT_EQ(s.addresses[1].length, 24);
  EXPECT_EQ(s.down.rate_bps, 2'000'000u);
  EXPECT_EQ(s.down.ceil_bps, 20'000'000u);
  EXPECT_EQ(s.up.rate_bps, 0u);
  EXPECT_EQ(s.up.ceil_bps, 1'000'000u);

  struct Case {
    std::function<void(json&)> mutate;
    std::string field;
    std::string fragment;
  };
  const Case cases[] = {
      {[](json& a) { a["name"] = "anna b"; }, "args.name", "without spaces"},
      {[](json& a) { a["name"] = "unknown"; }, "args.name", "\"unknown\" is kept"},
      {[](json& a) { a.erase("name"); }, "args.name", "required"},
      {[](json& a) { a["colour"] = "red"; }, "args.colour", "unknown field"},
      {[](json& a) { a["addresses"] = json::array(); }, "args.addresses", "at least one"},
      {[](json& a) { a["addresses"][1] = "192.0.2.0/24"; }, "args.addresses[1]", "not inside a LAN port's prefix"},
      {[](json& a) { a["addresses"][1] = "10.10.0.0/29"; }, "args.addresses[1]", "10.10.0.0/29 overlaps args.addresses[0]"},
      {[](json& a) { a["down"]["ceil"] = "1mbit"; }, "args.down.ceil", "1mbit is below the guaranteed rate 2mbit"},
      {[](json& a) { a["up"]["rate"] = "lots"; }, "args.up.rate", "is not a rate"},
  };
  for (const auto& c : cases) {
    json bad = args;
    c.mutate(bad);
    SCOPED_TRACE(bad.dump());
    try {
      parse_subscriber(JsonField(bad, "args"), lan);
      ADD_FAILURE() << "accepted";
    } catch (const FieldError& error) {
      EXPECT_EQ(error.field(), c.field) << error.what();
      EXPECT_TRUE(contains(error.what(), c.fragment)) << "expected \"" << c.fragment << "\" in: " << error.what();
    }
  }
}

}  // namespace
}  // namespace fairgate
