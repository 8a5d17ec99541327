// A pipeline definition from pipelines/*.json: which stages run, in which order, for packets
// arriving on LAN ports and on WAN ports.
#pragma once

#include "config/config.h"

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace fairgate {

struct PipelineSpec {
  std::string name;
  std::string description;
  std::vector<std::string> from_lan;  // stage names for packets received on LAN ports
  std::vector<std::string> from_wan;  // stage names for packets received on WAN ports
};

// Parses a definition; stage names must be registered stages. Throws FieldError.
PipelineSpec parse_pipeline_spec(std::string_view json_text);

// `reference` is a pipeline name ("forward" -> <pipelines dir>/forward.json) or a path
// (containing '/') relative to `config_dir`.
std::filesystem::path resolve_pipeline_path(const std::string& reference, const std::filesystem::path& config_dir,
                                            const std::filesystem::path& pipelines_dir);
PipelineSpec load_pipeline_spec(const std::filesystem::path& path);

// Shaping (a qos section) needs the classify and sched stages, classify first, in both
// directions. Throws FieldError("qos", why).
void check_pipeline_fits(const PipelineSpec& pipeline, const Config& config);

}  // namespace fairgate
