// One egress port's hierarchical scheduler (librte_sched), built from its hierarchy node:
// subport 0 is "internet" with a pipe per subscriber, subport 1 "local" with one pipe for the
// gateway's own traffic. Pipes are capped at their ceil by their token bucket; fairgate's
// classes map onto librte_sched's strict-priority traffic classes, P2P onto the best-effort
// class whose four queues are served weighted round robin.
//
// Single-writer: one lcore enqueues and dequeues (librte_sched's rule). Rates are bytes per
// second here, librte_sched's unit; the hierarchy's bits per second are converted once.
#pragma once

#include "qos/hierarchy.h"

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_sched.h>

#include <cstdint>
#include <vector>

namespace fairgate {

class SchedPort {
 public:
  static constexpr uint32_t kInternetSubport = 0, kLocalSubport = 1;
  static constexpr uint16_t kQueuePackets = 64;  // per queue: short, so the standing queue is too
  static constexpr uint32_t kTcPeriodMs = 10;    // traffic-class credit refill period

  // Throws std::runtime_error with librte_sched's complaint when the hierarchy cannot be built.
  // `mtu`: the largest IPv4 packet on the port (bytes).
  SchedPort(const PortNode& node, uint16_t mtu, int socket);
  ~SchedPort();
  SchedPort(const SchedPort&) = delete;
  SchedPort& operator=(const SchedPort&) = delete;

  // librte_sched's traffic class and queue for a class and a flow's hash.
  static void queue_of(TrafficClass tc, uint32_t flow_hash, uint32_t* sched_tc, uint32_t* queue);

  // Tags a packet with its place in the hierarchy (written into the mbuf's sched field).
  void tag(rte_mbuf* packet, uint32_t subport, uint32_t pipe, TrafficClass tc, uint32_t flow_hash) const {
    uint32_t sched_tc, queue;
    queue_of(tc, flow_hash, &sched_tc, &queue);
    rte_sched_port_pkt_write(port_, packet, subport, pipe, sched_tc, queue, RTE_COLOR_GREEN);
  }
  // Packets tagged before; those that do not fit their queue are freed by librte_sched and show
  // in the drop counts. Returns how many were queued.
  uint32_t enqueue(rte_mbuf** packets, uint32_t count) {
    return static_cast<uint32_t>(rte_sched_port_enqueue(port_, packets, count));
  }
  // Up to `count` packets that the rates allow now.
  uint32_t dequeue(rte_mbuf** packets, uint32_t count) {
    return static_cast<uint32_t>(rte_sched_port_dequeue(port_, packets, count));
  }

  uint32_t pipes(uint32_t subport) const { return subport == kInternetSubport ? internet_pipes_ : 1; }
  rte_sched_port* raw() const { return port_; }

 private:
  rte_sched_port* port_ = nullptr;
  uint32_t internet_pipes_ = 0;
};

}  // namespace fairgate
