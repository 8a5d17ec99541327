// What one worker owns: its counters, TX buffers and rings. Cache-aligned and written only by
// that worker, so workers never share a cache line; the management thread only reads counters.
#pragma once

#include "core/counters.h"
#include "core/reasons.h"
#include "ports/ports.h"

#include <rte_ethdev.h>
#include <rte_ring.h>

#include <array>
#include <cstdint>

namespace fairgate {

inline constexpr std::size_t kMaxStages = 16;  // per direction

struct alignas(RTE_CACHE_LINE_SIZE) WorkerCounters {
  struct Port {
    RelaxedCounter rx_packets, rx_bytes, tx_packets, tx_bytes;
    RelaxedCounter rx_dropped;  // received here and dropped by the pipeline
    RelaxedCounter tx_dropped;  // the driver refused them (TX queue full)
  };
  std::array<RelaxedCounter, kDropReasonCount> drops;
  std::array<RelaxedCounter, kPuntReasonCount> punts;
  std::array<Port, kMaxPorts> ports;
  // Packets each stage was given, [0] for the from_lan list, [1] for from_wan.
  std::array<std::array<RelaxedCounter, kMaxStages>, 2> stage_packets;
  RelaxedCounter busy_polls;   // loop iterations that received packets
  RelaxedCounter idle_polls;   // iterations that received nothing
  RelaxedCounter idle_sleeps;  // back-off sleeps taken

  void drop(DropReason reason, uint64_t n = 1) { drops[static_cast<std::size_t>(reason)].add(n); }
};

// TX side of a worker: one TX queue (the worker's index) on every port, buffered so the
// driver is called with full bursts.
struct WorkerTx {
  uint16_t queue = 0;                                  // TX queue index on every port
  std::array<rte_eth_dev_tx_buffer*, kMaxPorts> buffer{};  // by port index
  std::array<uint16_t, kMaxPorts> dpdk_port{};
  // What the TX-failure callback of each port's buffer counts into.
  struct FailureSink {
    WorkerCounters* counters = nullptr;
    uint16_t port = 0;
  };
  std::array<FailureSink, kMaxPorts> failure{};

  void send(uint16_t port_index, rte_mbuf* mbuf) {
    rte_eth_tx_buffer(dpdk_port[port_index], queue, buffer[port_index], mbuf);
  }
};

}  // namespace fairgate
