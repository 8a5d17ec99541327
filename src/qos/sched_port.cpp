#include "qos/sched_port.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>

namespace fairgate {
namespace {

// fairgate's classes on librte_sched's traffic classes: the first three strict priority,
// P2P the best-effort class (the lowest, and the one with several queues).
constexpr uint32_t kSchedTc[] = {0, 1, 2, RTE_SCHED_TRAFFIC_CLASS_BE};

std::atomic<uint32_t> port_serial{0};

uint64_t bytes_per_s(uint64_t bps) { return std::max<uint64_t>(bps / 8, 1); }

// Token bucket depth: a few full packets, so a pipe that was idle sends a short burst at once.
uint64_t bucket_bytes(uint16_t mtu) { return uint64_t{mtu} * 4; }

rte_sched_pipe_params pipe_params(const PipeNode& pipe, uint64_t smallest_rate_bps, uint16_t mtu) {
  rte_sched_pipe_params params{};
  params.tb_rate = bytes_per_s(pipe.ceil_bps);
  params.tb_size = bucket_bytes(mtu);
  for (uint32_t tc : kSchedTc) params.tc_rate[tc] = params.tb_rate;
  params.tc_period = SchedPort::kTcPeriodMs;
  // When the best-effort class is oversubscribed, pipes get it in proportion to this weight:
  // their guarantees, relative to the smallest.
  params.tc_ov_weight = static_cast<uint8_t>(std::clamp<uint64_t>(pipe.rate_bps / smallest_rate_bps, 1, 255));
  for (auto& weight : params.wrr_weights) weight = 1;
  return params;
}

rte_sched_subport_profile_params subport_profile(uint64_t rate_bps) {
  rte_sched_subport_profile_params profile{};
  profile.tb_rate = bytes_per_s(rate_bps);
  profile.tb_size = 1'000'000;
  // librte_sched wants every class's rate at the subport, used or not.
  for (auto& tc_rate : profile.tc_rate) tc_rate = profile.tb_rate;
  profile.tc_period = SchedPort::kTcPeriodMs;
  return profile;
}

void check(int result, const std::string& what) {
  if (result != 0) throw std::runtime_error("scheduler: " + what + " failed (" + std::to_string(result) + ")");
}

}  // namespace

void SchedPort::queue_of(TrafficClass tc, uint32_t flow_hash, uint32_t* sched_tc, uint32_t* queue) {
  *sched_tc = kSchedTc[static_cast<uint8_t>(tc)];
  *queue = *sched_tc == RTE_SCHED_TRAFFIC_CLASS_BE ? flow_hash % RTE_SCHED_BE_QUEUES_PER_PIPE : 0;
}

SchedPort::SchedPort(const PortNode& node, uint16_t mtu, int socket) {
  const SubportNode& internet = node.subports.at(kInternetSubport);
  const SubportNode& local = node.subports.at(kLocalSubport);
  internet_pipes_ = static_cast<uint32_t>(internet.pipes.size());

  std::vector<rte_sched_subport_profile_params> subport_profiles{subport_profile(internet.rate_bps),
                                                                 subport_profile(std::max<uint64_t>(local.rate_bps, 8000))};
  std::string name = "sched_" + node.name + "_" + std::to_string(port_serial.fetch_add(1));
  rte_sched_port_params port_params{};
  port_params.name = name.c_str();
  port_params.socket = socket;
  port_params.rate = bytes_per_s(node.rate_bps);
  port_params.mtu = uint32_t{mtu} + RTE_ETHER_HDR_LEN;
  port_params.frame_overhead = static_cast<uint32_t>(std::max(0, node.framing.overhead));
  port_params.n_subports_per_port = 2;
  port_params.subport_profiles = subport_profiles.data();
  port_params.n_subport_profiles = static_cast<uint32_t>(subport_profiles.size());
  port_params.n_max_subport_profiles = 16;  // room for run-time rate changes
  port_params.n_pipes_per_subport = std::bit_ceil(std::max<uint32_t>(internet_pipes_, 1));
  port_ = rte_sched_port_config(&port_params);
  if (port_ == nullptr) throw std::runtime_error("scheduler: cannot configure port " + node.name);

  // Pipe profiles: one per distinct (guarantee, ceil).
  uint64_t smallest = UINT64_MAX;
  for (const auto& pipe : internet.pipes) smallest = std::min(smallest, std::max<uint64_t>(pipe.rate_bps, 1));
  std::vector<rte_sched_pipe_params> profiles;
  std::map<std::pair<uint64_t, uint64_t>, uint32_t> profile_of;
  std::vector<uint32_t> pipe_profile;
  for (const auto& pipe : internet.pipes) {
    auto key = std::make_pair(pipe.rate_bps, pipe.ceil_bps);
    auto [it, added] = profile_of.emplace(key, static_cast<uint32_t>(profiles.size()));
    if (added) profiles.push_back(pipe_params(pipe, smallest, mtu));
    pipe_profile.push_back(it->second);
  }
  PipeNode gateway_pipe{0, "gateway", {}, local.rate_bps, local.rate_bps};
  std::vector<rte_sched_pipe_params> local_profiles{pipe_params(gateway_pipe, std::max<uint64_t>(local.rate_bps, 1), mtu)};
  if (profiles.empty()) profiles.push_back(local_profiles[0]);

  rte_sched_subport_params subport{};
  for (uint32_t tc : kSchedTc) subport.qsize[tc] = kQueuePackets;
  // A power of two, as librte_sched requires; pipes beyond the subscribers stay unconfigured.
  subport.n_pipes_per_subport_enabled = port_params.n_pipes_per_subport;
  subport.pipe_profiles = profiles.data();
  subport.n_pipe_profiles = static_cast<uint32_t>(profiles.size());
  subport.n_max_pipe_profiles = static_cast<uint32_t>(profiles.size()) + 64;  // run-time plan changes
  try {
    check(rte_sched_subport_config(port_, kInternetSubport, &subport, kInternetSubport), "internet subport");
    for (uint32_t p = 0; p < internet_pipes_; ++p)
      check(rte_sched_pipe_config(port_, kInternetSubport, p, static_cast<int32_t>(pipe_profile[p])),
            "pipe " + internet.pipes[p].name);
    rte_sched_subport_params local_subport = subport;
    local_subport.n_pipes_per_subport_enabled = 1;
    local_subport.pipe_profiles = local_profiles.data();
    local_subport.n_pipe_profiles = 1;
    local_subport.n_max_pipe_profiles = 1;
    check(rte_sched_subport_config(port_, kLocalSubport, &local_subport, kLocalSubport), "local subport");
    check(rte_sched_pipe_config(port_, kLocalSubport, 0, 0), "gateway pipe");
  } catch (...) {
    rte_sched_port_free(port_);
    throw;
  }
}

SchedPort::~SchedPort() { rte_sched_port_free(port_); }

}  // namespace fairgate
