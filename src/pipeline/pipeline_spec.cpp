#include "pipeline/pipeline_spec.h"

#include "config/json_path.h"
#include "pipeline/stage_registry.h"

#include <algorithm>

namespace fairgate {
namespace {
std::vector<std::string> parse_stage_list(const JsonField& field) {
  std::vector<std::string> stages;
  auto count = field.size();
  if (count == 0) field.fail("must name at least one stage");
  for (std::size_t i = 0; i < count; ++i) {
    auto entry = field.at(i);
    auto name = entry.string();
    if (!stage_registered(name)) entry.fail("unknown stage \"" + name + "\" (known: " + registered_stage_names() + ")");
    stages.push_back(name);
  }
  if (stages.front() != "parse") field.fail("must start with the \"parse\" stage");
  if (stages.back() != "tx") field.fail("must end with the \"tx\" stage");
  return stages;
}
}  // namespace

PipelineSpec parse_pipeline_spec(std::string_view json_text) {
  nlohmann::json document = parse_json_document(json_text, "pipeline");
  JsonField root(document, "pipeline");
  root.reject_unknown({"name", "description", "from_lan", "from_wan"});
  PipelineSpec spec;
  spec.name = root.at("name").string();
  if (auto description = root.find("description")) spec.description = description->string();
  spec.from_lan = parse_stage_list(root.at("from_lan"));
  spec.from_wan = parse_stage_list(root.at("from_wan"));
  return spec;
}

std::filesystem::path resolve_pipeline_path(const std::string& reference, const std::filesystem::path& config_dir,
                                            const std::filesystem::path& pipelines_dir) {
  if (reference.find('/') != std::string::npos) {
    std::filesystem::path path(reference);
    return path.is_absolute() ? path : config_dir / path;
  }
  return pipelines_dir / (reference + ".json");
}

void check_pipeline_fits(const PipelineSpec& pipeline, const Config& config) {
  if (config.p2p.enabled)
    for (const auto* stages : {&pipeline.from_lan, &pipeline.from_wan}) {
      auto nat = std::find(stages->begin(), stages->end(), "nat");
      auto classify = std::find(stages->begin(), stages->end(), "classify");
      auto p2p = std::find(stages->begin(), stages->end(), "p2p");
      // The verdict lives on the NAT session, and the P2P class must not be overwritten.
      if (nat == stages->end() || p2p == stages->end() || p2p < nat || (classify != stages->end() && p2p < classify))
        throw FieldError("p2p", "P2P recognition needs the p2p stage after nat and classify in pipeline \"" +
                                    pipeline.name + "\" (the \"gateway\" pipeline has it)");
    }
  for (const auto* stages : {&pipeline.from_lan, &pipeline.from_wan}) {
    auto flow = std::find(stages->begin(), stages->end(), "flow");
    if (flow == stages->end()) {
      if (config.flows.configured)
        throw FieldError("flows", "flow monitoring needs the flow stage in pipeline \"" + pipeline.name +
                                      "\" (the \"gateway\" pipeline has it)");
      continue;
    }
    // It counts packets of NAT sessions, with the class classify and p2p gave them.
    for (const char* before : {"nat", "classify", "p2p"}) {
      auto stage = std::find(stages->begin(), stages->end(), before);
      if ((stage == stages->end() && std::string_view(before) == "nat") || (stage != stages->end() && stage > flow))
        throw FieldError("flows", "the flow stage must come after nat, classify and p2p in pipeline \"" +
                                      pipeline.name + "\" (the \"gateway\" pipeline has it so)");
    }
  }
  if (!config.qos.enabled()) return;
  for (const auto* stages : {&pipeline.from_lan, &pipeline.from_wan}) {
    auto classify = std::find(stages->begin(), stages->end(), "classify");
    auto sched = std::find(stages->begin(), stages->end(), "sched");
    if (classify == stages->end() || sched == stages->end() || sched < classify)
      throw FieldError("qos", "shaping needs the classify and then the sched stage in pipeline \"" + pipeline.name +
                                  "\" (the \"gateway\" pipeline has them)");
  }
}

PipelineSpec load_pipeline_spec(const std::filesystem::path& path) {
  return parse_pipeline_spec(read_text_file(path, "pipeline"));
}

}  // namespace fairgate
