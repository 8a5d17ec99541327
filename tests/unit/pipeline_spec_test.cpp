#include "config/json_path.h"
#include "pipeline/pipeline_spec.h"
#include "pipeline/stage_registry.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace fairgate {
namespace {

using Stages = std::vector<std::string>;

TEST(PipelineSpec, ValidDefinition) {
  auto spec = parse_pipeline_spec(R"({"name": "plain", "description": "route only",
      "from_lan": ["parse", "l3", "tx"], "from_wan": ["parse", "tx"]})");
  EXPECT_EQ(spec.name, "plain");
  EXPECT_EQ(spec.description, "route only");
  EXPECT_EQ(spec.from_lan, (Stages{"parse", "l3", "tx"}));
  EXPECT_EQ(spec.from_wan, (Stages{"parse", "tx"}));
}

TEST(PipelineSpec, RepositoryForwardPipelineParses) {
  auto spec = load_pipeline_spec(std::string(FAIRGATE_SOURCE_DIR) + "/pipelines/forward.json");
  EXPECT_EQ(spec.name, "forward");
  EXPECT_FALSE(spec.description.empty());
  EXPECT_EQ(spec.from_lan, (Stages{"parse", "l3", "tx"}));
  EXPECT_EQ(spec.from_wan, (Stages{"parse", "l3", "tx"}));
}

TEST(PipelineSpec, ResolvePath) {
  EXPECT_EQ(resolve_pipeline_path("forward", "/etc/fairgate", "/usr/share/fairgate/pipelines"),
            std::filesystem::path("/usr/share/fairgate/pipelines/forward.json"));
  EXPECT_EQ(resolve_pipeline_path("./mine.json", "/etc/fairgate", "/p"),
            std::filesystem::path("/etc/fairgate/./mine.json"));
  EXPECT_EQ(resolve_pipeline_path("/opt/x.json", "/etc/fairgate", "/p"), std::filesystem::path("/opt/x.json"));
}

TEST(PipelineSpec, MissingFileNamesThePipeline) {
  try {
    load_pipeline_spec("/nonexistent/pipeline.json");
    FAIL();
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), "pipeline");
  }
}

TEST(StageRegistry, KnowsTheStages) {
  for (const char* name : {"parse", "guard", "nat", "l3", "classify", "p2p", "sched", "tx"}) {
    EXPECT_TRUE(stage_registered(name)) << name;
  }
  EXPECT_FALSE(stage_registered("shape"));
  EXPECT_FALSE(stage_registered(""));
  EXPECT_EQ(registered_stage_names(), "parse, guard, nat, l3, classify, p2p, flow, sched, tx");
}

struct BadSpec {
  std::string name;
  std::string text;
  std::string field;
  std::string mentions;  // the message must contain this
};

void PrintTo(const BadSpec& c, std::ostream* out) { *out << c.name; }

class BadPipelineSpec : public ::testing::TestWithParam<BadSpec> {};

TEST_P(BadPipelineSpec, NamesTheField) {
  try {
    parse_pipeline_spec(GetParam().text);
    FAIL() << "accepted: " << GetParam().text;
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), GetParam().field) << error.what();
    EXPECT_NE(std::string(error.what()).find(GetParam().mentions), std::string::npos) << error.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadPipelineSpec,
    ::testing::Values(
        BadSpec{"unknown_stage", R"({"name": "x", "from_lan": ["parse", "natt", "tx"], "from_wan": ["parse", "tx"]})",
                "pipeline.from_lan[1]", "\"natt\""},
        BadSpec{"unknown_stage_lists_known", R"({"name": "x", "from_lan": ["parse", "tx"], "from_wan": ["parse", "qos", "tx"]})",
                "pipeline.from_wan[1]", "parse, guard, nat, l3, classify, p2p, flow, sched, tx"},
        BadSpec{"not_starting_with_parse", R"({"name": "x", "from_lan": ["l3", "tx"], "from_wan": ["parse", "tx"]})",
                "pipeline.from_lan", "parse"},
        BadSpec{"not_ending_with_tx", R"({"name": "x", "from_lan": ["parse", "tx"], "from_wan": ["parse", "l3"]})",
                "pipeline.from_wan", "tx"},
        BadSpec{"empty_list", R"({"name": "x", "from_lan": [], "from_wan": ["parse", "tx"]})", "pipeline.from_lan",
                "at least one"},
        BadSpec{"stage_not_string", R"({"name": "x", "from_lan": ["parse", 3, "tx"], "from_wan": ["parse", "tx"]})",
                "pipeline.from_lan[1]", "string"},
        BadSpec{"list_not_array", R"({"name": "x", "from_lan": "parse,tx", "from_wan": ["parse", "tx"]})",
                "pipeline.from_lan", "array"},
        BadSpec{"from_wan_missing", R"({"name": "x", "from_lan": ["parse", "tx"]})", "pipeline.from_wan", "required"},
        BadSpec{"name_missing", R"({"from_lan": ["parse", "tx"], "from_wan": ["parse", "tx"]})", "pipeline.name",
                "required"},
        BadSpec{"unknown_key", R"({"name": "x", "from_lan": ["parse", "tx"], "from_wan": ["parse", "tx"], "lcores": 2})",
                "pipeline.lcores", "unknown"},
        BadSpec{"not_json", "from_lan: parse, tx", "pipeline", "JSON"},
        BadSpec{"not_object", R"(["parse", "tx"])", "pipeline", "object"}),
    [](const ::testing::TestParamInfo<BadSpec>& info) { return info.param.name; });

}  // namespace
}  // namespace fairgate
