// The running appliance: the packet pool, the ports, the workers on their lcores, and the
// management thread's loop (control socket, punted packets, neighbour timers, signals).
#pragma once

#include "classify/p2p_control.h"
#include "classify/p2p_dataplane.h"
#include "config/config.h"
#include "control/command_registry.h"
#include "control/control_server.h"
#include "core/rcu_published.h"
#include "flow/flow_monitor.h"
#include "mgmt/local_handler.h"
#include "nat/port_forwards.h"
#include "neigh/neighbor_table.h"
#include "pipeline/pipeline_spec.h"
#include "pipeline/worker.h"
#include "ports/ports.h"
#include "qos/qos_control.h"
#include "qos/qos_dataplane.h"
#include "wan/wan_control.h"
#include "wan/wan_routing.h"

#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

namespace fairgate {

// Sends the management thread's frames through a worker's TX ring (each worker owns one TX
// queue per port; the management thread owns none).
class WorkerRingSink final : public FrameSink {
 public:
  void set_workers(const std::vector<std::unique_ptr<Worker>>* workers) { workers_ = workers; }
  void send(uint16_t port, rte_mbuf* frame) override;
  uint64_t dropped() const { return dropped_.get(); }

 private:
  const std::vector<std::unique_ptr<Worker>>* workers_ = nullptr;
  RelaxedCounter dropped_;
};

class Gateway {
 public:
  Gateway(Config config, PipelineSpec pipeline);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Creates the pool, opens the ports, launches the workers, opens the control socket.
  // Throws std::runtime_error with a readable message.
  void start();
  // The management loop, on the main lcore, until a signal or the shutdown command.
  void run(int signal_fd);
  // Stops the workers, returns every mbuf to the pool, closes the ports. Returns the number
  // of mbufs still missing from the pool (0 when everything came back).
  uint32_t stop();

  void request_stop() { stop_requested_ = true; }

  // What a worker lcore is started with.
  struct Launch {
    Worker* worker;
    const std::atomic<bool>* stop;
  };

  // For the commands.
  const Config& config() const { return config_; }
  const PipelineSpec& pipeline() const { return pipeline_; }
  const PortTable& ports() const { return ports_; }
  const std::vector<std::unique_ptr<Worker>>& workers() const { return workers_; }
  const LocalHandler& local() const { return *local_; }
  bool workers_running() const { return workers_running_; }
  // Port forwards at run time: the current rules, and replacing them (reserves or frees the
  // external ports on every worker first, then publishes). Management thread only.
  const PortForwardTable& port_forwards() const { return *port_forwards_.current(); }
  void set_port_forwards(std::vector<PortForwardRule> rules);
  uint64_t sink_dropped() const { return sink_.dropped(); }
  // Fair sharing; null when nothing is shaped. Management thread only.
  QosControl* qos() { return qos_.get(); }
  const QosDataplane* qos_dataplane() const { return qos_dataplane_.get(); }
  // P2P recognition; null when the configuration has no p2p section. Management thread only.
  P2pControl* p2p() { return p2p_.get(); }
  // Two WAN links; null when the configuration has no wan section. Management thread only.
  WanControl* wan() { return wan_.get(); }
  // Flow monitoring; null when the pipeline has no flow stage. Management thread only.
  FlowMonitor* flows() { return flows_.get(); }
  ControlServer& control() { return *control_; }
  // Every worker's live flows (read on each worker), as records; at most `limit` per worker,
  // `truncated` set when a worker had more.
  std::vector<FlowRecord> flow_snapshot(std::size_t limit, bool* truncated);
  // Sessions per WAN port, summed over the workers (read on each worker).
  uint64_t sessions_on_wan(uint8_t port);
  rte_mempool* pool() const { return pool_; }
  double uptime_s() const;
  uint64_t now_ms() const;

 private:
  void drain_punts(uint64_t now_ms);
  void export_remaining_flows();

  Config config_;
  PipelineSpec pipeline_;
  rte_mempool* pool_ = nullptr;
  PortTable ports_;
  bool ports_open_ = false;
  rte_rcu_qsbr* qsbr_ = nullptr;
  RcuPublished<NeighborSnapshot> neighbors_;
  RcuPublished<PortForwardTable> port_forwards_;
  WorkerRingSink sink_;
  std::unique_ptr<QosDataplane> qos_dataplane_;  // before the workers: they point into it
  std::unique_ptr<P2pDataplane> p2p_dataplane_;  // likewise
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<QosControl> qos_;
  std::unique_ptr<P2pControl> p2p_;
  RcuPublished<WanRoutingTable> wan_routing_;
  std::unique_ptr<WanControl> wan_;
  std::unique_ptr<LocalHandler> local_;
  std::unique_ptr<FlowMonitor> flows_;
  CommandRegistry commands_;
  std::unique_ptr<ControlServer> control_;
  std::vector<Launch> launches_;
  std::vector<rte_ring*> handoff_rings_;  // by worker index, for NAT state ownership
  std::atomic<bool> stop_workers_{false};
  bool stop_requested_ = false;
  bool workers_running_ = false;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

void register_commands(CommandRegistry& commands, Gateway& gateway);
void register_qos_commands(CommandRegistry& commands, Gateway& gateway);
void register_p2p_commands(CommandRegistry& commands, Gateway& gateway);
void register_wan_commands(CommandRegistry& commands, Gateway& gateway);
void register_flow_commands(CommandRegistry& commands, Gateway& gateway);

}  // namespace fairgate
