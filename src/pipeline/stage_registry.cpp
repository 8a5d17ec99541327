#include "pipeline/stage_registry.h"

#include "stages/flow/flow_stage.h"
#include "stages/guard/guard_stage.h"
#include "stages/l3/l3_stage.h"
#include "stages/nat/nat_stage.h"
#include "stages/p2p/p2p_stage.h"
#include "stages/parse/parse_stage.h"
#include "stages/qos/classify_stage.h"
#include "stages/qos/sched_stage.h"
#include "stages/tx/tx_stage.h"


namespace fairgate {
namespace {
struct StageFactory {
  std::string_view name;
  std::unique_ptr<Stage> (*create)(const StageEnv& env);
};

const StageFactory kStages[] = {
    {"parse", [](const StageEnv& env) -> std::unique_ptr<Stage> { return std::make_unique<ParseStage>(env.ports); }},
    {"guard", [](const StageEnv& env) -> std::unique_ptr<Stage> {
       return std::make_unique<GuardStage>(env.ports, env.config.lan_prefixes());
     }},
    {"nat", [](const StageEnv& env) -> std::unique_ptr<Stage> {
       return std::make_unique<NatStage>(env.config, env.ports, *env.nat, env.counters, env.worker_index, env.workers,
                                         env.port_forwards, env.wan_routing, env.qos ? &env.qos->map() : nullptr);
     }},
    {"l3", [](const StageEnv& env) -> std::unique_ptr<Stage> {
       return std::make_unique<L3Stage>(env.ports, env.neighbors);
     }},
    {"classify", [](const StageEnv& env) -> std::unique_ptr<Stage> {
       return std::make_unique<ClassifyStage>(env.ports, env.config.qos);
     }},
    {"p2p", [](const StageEnv& env) -> std::unique_ptr<Stage> {
       if (env.p2p == nullptr || env.nat == nullptr) return std::make_unique<SwitchedOffStage>("p2p");
       return std::make_unique<P2pStage>(env.ports, *env.p2p, *env.nat, env.qos, env.counters, env.worker_index);
     }},
    {"flow", [](const StageEnv& env) -> std::unique_ptr<Stage> {
       if (env.flows == nullptr) return std::make_unique<SwitchedOffStage>("flow");
       return std::make_unique<FlowStage>(*env.flows);
     }},
    {"sched", [](const StageEnv& env) -> std::unique_ptr<Stage> {
       return std::make_unique<SchedStage>(env.ports, env.qos, env.counters);
     }},
    {"tx", [](const StageEnv& env) -> std::unique_ptr<Stage> {
       return std::make_unique<TxStage>(env.tx, env.counters);
     }},
};
}  // namespace

bool stage_registered(std::string_view name) {
  for (const auto& stage : kStages)
    if (stage.name == name) return true;
  return false;
}

std::string registered_stage_names() {
  std::string names;
  for (const auto& stage : kStages) names += (names.empty() ? "" : ", ") + std::string(stage.name);
  return names;
}

std::unique_ptr<Stage> create_stage(std::string_view name, const StageEnv& env) {
  for (const auto& stage : kStages)
    if (stage.name == name) return stage.create(env);
  return nullptr;
}

}  // namespace fairgate
