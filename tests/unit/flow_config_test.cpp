// The "flows" section (accounting timeouts, collectors, export and watch limits) and the check
// that the pipeline has the flow stage where it can count NAT sessions.
#include "config/config.h"
#include "config/json_path.h"
#include "pipeline/pipeline_spec.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <ostream>
#include <string>
#include <vector>

namespace fairgate {
namespace {

using nlohmann::json;

json config_with_flows(json section) {
  json c = json::parse(R"({
    "ports": [
      {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
      {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1"}
    ]
  })");
  c["flows"] = std::move(section);
  return c;
}

FlowConfig parse_flows_section(json section) { return parse_config(config_with_flows(std::move(section)).dump()).flows; }

TEST(FlowConfig, DefaultsFollowTheIssueAndTheRfcPractice) {
  FlowConfig flows = parse_flows_section(json::object());
  EXPECT_TRUE(flows.configured);
  EXPECT_EQ(flows.inactive_timeout_s, 15u);
  EXPECT_EQ(flows.active_timeout_s, 1800u);
  EXPECT_TRUE(flows.collectors.empty());
  EXPECT_TRUE(flows.nat_events);
  json without = config_with_flows(json::object());
  without.erase("flows");
  EXPECT_FALSE(parse_config(without.dump()).flows.configured);
}

TEST(FlowConfig, CollectorsAndExportSettings) {
  FlowConfig flows = parse_flows_section(json::parse(R"({
    "inactive_timeout_s": 5, "active_timeout_s": 60, "ring_records": 1024,
    "export": {"collectors": [{"address": "192.0.2.10", "port": 9995},
                              {"address": "192.0.2.11", "port": 2055, "format": "netflow9"}],
               "observation_domain": 7, "template_refresh_s": 10, "template_refresh_messages": 20,
               "max_records_per_s": 1000, "source_port": 4740, "nat_events": false},
    "watch": {"max_watchers": 2, "buffer_kb": 64}
  })"));
  EXPECT_EQ(flows.inactive_timeout_s, 5u);
  EXPECT_EQ(flows.active_timeout_s, 60u);
  EXPECT_EQ(flows.ring_records, 1024u);
  ASSERT_EQ(flows.collectors.size(), 2u);
  EXPECT_EQ(flows.collectors[0].address, 0xc000020au);
  EXPECT_EQ(flows.collectors[0].port, 9995);
  EXPECT_FALSE(flows.collectors[0].netflow_v9);
  EXPECT_TRUE(flows.collectors[1].netflow_v9);
  EXPECT_EQ(flows.observation_domain, 7u);
  EXPECT_EQ(flows.template_refresh_s, 10u);
  EXPECT_EQ(flows.template_refresh_messages, 20u);
  EXPECT_EQ(flows.max_records_per_s, 1000u);
  EXPECT_EQ(flows.source_port, 4740);
  EXPECT_FALSE(flows.nat_events);
  EXPECT_EQ(flows.max_watchers, 2u);
  EXPECT_EQ(flows.watch_buffer_bytes, 64u * 1024);
}

struct BadFlows {
  std::string name;
  std::string section;
  std::string field;
};
void PrintTo(const BadFlows& c, std::ostream* out) { *out << c.name; }

class FlowBadConfig : public ::testing::TestWithParam<BadFlows> {};

TEST_P(FlowBadConfig, NamesTheField) {
  try {
    parse_config(config_with_flows(json::parse(GetParam().section)).dump());
    ADD_FAILURE() << "accepted";
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), GetParam().field) << error.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    FlowConfig, FlowBadConfig,
    ::testing::Values(
        BadFlows{"unknown_member", R"({"timeout": 5})", "flows.timeout"},
        BadFlows{"inactive_zero", R"({"inactive_timeout_s": 0})", "flows.inactive_timeout_s"},
        BadFlows{"active_text", R"({"active_timeout_s": "long"})", "flows.active_timeout_s"},
        BadFlows{"ring_not_power_of_two", R"({"ring_records": 1000})", "flows.ring_records"},
        BadFlows{"ring_too_small", R"({"ring_records": 8})", "flows.ring_records"},
        BadFlows{"collectors_not_a_list", R"({"export": {"collectors": {"address": "192.0.2.1"}}})",
                 "flows.export.collectors"},
        BadFlows{"collector_without_address", R"({"export": {"collectors": [{"port": 9995}]}})",
                 "flows.export.collectors[0].address"},
        BadFlows{"collector_bad_address", R"({"export": {"collectors": [{"address": "192.0.2"}]}})",
                 "flows.export.collectors[0].address"},
        BadFlows{"collector_zero_address", R"({"export": {"collectors": [{"address": "0.0.0.0"}]}})",
                 "flows.export.collectors[0].address"},
        BadFlows{"collector_port_zero", R"({"export": {"collectors": [{"address": "192.0.2.1", "port": 0}]}})",
                 "flows.export.collectors[0].port"},
        BadFlows{"collector_format", R"({"export": {"collectors": [{"address": "192.0.2.1", "format": "sflow"}]}})",
                 "flows.export.collectors[0].format"},
        BadFlows{"collector_unknown_member", R"({"export": {"collectors": [{"address": "192.0.2.1", "vrf": 1}]}})",
                 "flows.export.collectors[0].vrf"},
        BadFlows{"export_unknown_member", R"({"export": {"version": 10}})", "flows.export.version"},
        BadFlows{"refresh_zero", R"({"export": {"template_refresh_s": 0}})", "flows.export.template_refresh_s"},
        BadFlows{"rate_zero", R"({"export": {"max_records_per_s": 0}})", "flows.export.max_records_per_s"},
        BadFlows{"nat_events_text", R"({"export": {"nat_events": "yes"}})", "flows.export.nat_events"},
        BadFlows{"watchers_zero", R"({"watch": {"max_watchers": 0}})", "flows.watch.max_watchers"},
        BadFlows{"buffer_tiny", R"({"watch": {"buffer_kb": 1}})", "flows.watch.buffer_kb"}),
    [](const ::testing::TestParamInfo<BadFlows>& info) { return info.param.name; });

// --- The pipeline must have the flow stage where it counts -----------------------------------

PipelineSpec pipeline_of(std::vector<std::string> from_lan, std::vector<std::string> from_wan) {
  return PipelineSpec{.name = "custom", .description = "", .from_lan = std::move(from_lan), .from_wan = std::move(from_wan)};
}

TEST(FlowPipelineFits, TheShippedGatewayPipelinePasses) {
  Config config = parse_config(config_with_flows(json::object()).dump());
  EXPECT_NO_THROW(check_pipeline_fits(load_pipeline_spec(std::string(FAIRGATE_SOURCE_DIR) + "/pipelines/gateway.json"),
                                      config));
}

TEST(FlowPipelineFits, MisplacedOrMissingStageIsAFieldErrorOnFlows) {
  Config with_section = parse_config(config_with_flows(json::object()).dump());
  const std::vector<std::string> ok = {"parse", "nat", "classify", "p2p", "flow", "l3", "tx"};
  const std::vector<std::vector<std::string>> bad = {
      {"parse", "nat", "classify", "p2p", "l3", "tx"},          // no flow stage with a flows section
      {"parse", "flow", "nat", "l3", "tx"},                      // before nat: it would see no session
      {"parse", "nat", "flow", "p2p", "l3", "tx"},               // before p2p: counts what p2p drops
      {"parse", "classify", "flow", "l3", "tx"},                 // no nat at all
  };
  for (const auto& stages : bad) {
    try {
      check_pipeline_fits(pipeline_of(stages, ok), with_section);
      ADD_FAILURE() << "accepted " << stages.size() << " stages";
    } catch (const FieldError& error) {
      EXPECT_EQ(error.field(), "flows") << error.what();
    }
  }
  // Without the section a pipeline without the stage is fine (forward, the lab's kernel mode).
  json plain = config_with_flows(json::object());
  plain.erase("flows");
  Config without = parse_config(plain.dump());
  EXPECT_NO_THROW(check_pipeline_fits(pipeline_of({"parse", "l3", "tx"}, {"parse", "l3", "tx"}), without));
}

}  // namespace
}  // namespace fairgate
