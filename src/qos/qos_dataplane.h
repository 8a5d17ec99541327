// What the workers share for fair sharing: one scheduler per shaped egress port, each owned by
// one worker (librte_sched is single-writer), the published subscriber map, the class rules,
// and the ring on which workers report LAN hosts that no subscriber covers yet.
//
// Any worker tags a packet for a shaped port and puts it on that scheduler's inbox ring; the
// owner moves inbox packets into the scheduler and sends what the scheduler releases.
#pragma once

#include "config/config.h"
#include "core/counters.h"
#include "core/rcu_published.h"
#include "ports/ports.h"
#include "qos/hierarchy.h"
#include "qos/sched_port.h"
#include "qos/subscriber_map.h"
#include "qos/traffic_class.h"

#include <rte_ring.h>

#include <array>
#include <memory>
#include <vector>

namespace fairgate {

inline constexpr unsigned kSchedInboxSize = 4096;   // packets waiting for the owner, per port
inline constexpr unsigned kNewHostRingSize = 1024;  // unknown-host reports waiting for management

// What the owner of a scheduler sent per class of one pipe (written by the owner only).
struct alignas(64) PipeCounters {
  std::array<RelaxedCounter, 4> bytes;
  std::array<RelaxedCounter, 4> packets;
};

struct EgressScheduler {
  uint16_t port = 0;   // index into Config::ports
  bool download = false;
  uint16_t owner = 0;  // the worker that enqueues, dequeues and reconfigures
  std::unique_ptr<SchedPort> sched;
  rte_ring* inbox = nullptr;            // tagged packets from every worker
  std::vector<PipeCounters> pipes;      // by pipe id of the internet subport
  PipeCounters gateway;                 // the local subport's one pipe
};

class QosDataplane {
 public:
  // One scheduler per node of `hierarchy`; owners spread over `workers` workers.
  QosDataplane(const Config& config, const std::vector<PortNode>& hierarchy, uint16_t workers, int socket);
  ~QosDataplane();
  QosDataplane(const QosDataplane&) = delete;
  QosDataplane& operator=(const QosDataplane&) = delete;

  EgressScheduler* scheduler(uint16_t port) const { return port < by_port_.size() ? by_port_[port] : nullptr; }
  const std::vector<std::unique_ptr<EgressScheduler>>& schedulers() const { return schedulers_; }
  RcuPublished<SubscriberMap>& map() { return map_; }
  const RcuPublished<SubscriberMap>& map() const { return map_; }
  const ClassRules& rules() const { return rules_; }
  rte_ring* new_hosts() const { return new_hosts_; }
  bool own_unknown_hosts() const { return own_unknown_hosts_; }
  // A host address inside a LAN port's prefix (not the network, broadcast or gateway address).
  bool is_lan_host(uint32_t address) const;

 private:
  std::vector<std::unique_ptr<EgressScheduler>> schedulers_;
  std::array<EgressScheduler*, kMaxPorts> by_port_{};
  RcuPublished<SubscriberMap> map_;
  ClassRules rules_;
  rte_ring* new_hosts_ = nullptr;
  bool own_unknown_hosts_;
  std::vector<Ipv4Prefix> lan_prefixes_;
};

}  // namespace fairgate
