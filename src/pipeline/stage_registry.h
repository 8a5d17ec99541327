// Stage names as written in pipelines/*.json, and the factories that build one instance per
// worker (a stage's state belongs to its worker alone).
#pragma once

#include "config/config.h"
#include "core/rcu_published.h"
#include "nat/port_forwards.h"
#include "nat/session_table.h"
#include "neigh/neighbor_table.h"
#include "pipeline/stage.h"
#include "pipeline/worker_state.h"
#include "ports/ports.h"
#include "wan/wan_routing.h"

#include <memory>
#include <string>
#include <string_view>

namespace fairgate {

class QosDataplane;
class P2pDataplane;

struct StageEnv {
  const Config& config;
  const PortTable& ports;
  const RcuPublished<NeighborSnapshot>& neighbors;
  WorkerCounters& counters;
  WorkerTx& tx;
  uint16_t worker_index;
  uint16_t workers;           // how many workers run
  SessionTable* nat;          // the worker's NAT sessions, null when the pipeline has no nat stage
  const RcuPublished<PortForwardTable>* port_forwards;  // null: the configuration's
  QosDataplane* qos = nullptr;  // the shaped ports' schedulers; null when nothing is shaped
  P2pDataplane* p2p = nullptr;  // P2P recognition; null when it is off
  const RcuPublished<WanRoutingTable>* wan_routing = nullptr;  // null: one WAN, the default route's
  FlowAccounting* flows = nullptr;  // the worker's flow accounting, null without a nat stage
};

bool stage_registered(std::string_view name);
std::string registered_stage_names();  // "parse, l3, tx"
std::unique_ptr<Stage> create_stage(std::string_view name, const StageEnv& env);

}  // namespace fairgate
