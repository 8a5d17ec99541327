#include "qos/qos_dataplane.h"

#include <rte_errno.h>

#include <atomic>
#include <stdexcept>
#include <string>

namespace fairgate {
namespace {

std::atomic<uint32_t> ring_serial{0};

rte_ring* make_ring(const std::string& name, unsigned size, unsigned flags) {
  rte_ring* ring = rte_ring_create((name + std::to_string(ring_serial.fetch_add(1))).c_str(), size, SOCKET_ID_ANY, flags);
  if (ring == nullptr) throw std::runtime_error("cannot create ring " + name + ": " + rte_strerror(rte_errno));
  return ring;
}

}  // namespace

QosDataplane::QosDataplane(const Config& config, const std::vector<PortNode>& hierarchy, uint16_t workers, int socket)
    : rules_(config.qos),
      own_unknown_hosts_(config.qos.unknown_hosts == QosConfig::UnknownHosts::kOwn),
      lan_prefixes_(config.lan_prefixes()) {
  try {
    for (const auto& node : hierarchy) {
      auto scheduler = std::make_unique<EgressScheduler>();
      scheduler->port = node.port;
      scheduler->download = node.download;
      scheduler->owner = static_cast<uint16_t>(schedulers_.size() % workers);
      SchedPort::Options options;
      options.mtu = config.ports[node.port].mtu;
      options.socket = socket;
      options.pipe_capacity = config.qos.max_subscribers;
      options.aqm = config.qos.aqm;
      options.count_drops = node.download && config.qos.count_download_drops;
      // What arrives may take a fifth of the margin: it stays 4 % (at the default 5) below the
      // modem's rate, and the few drops of loss-based TCP cost little goodput. Half the margin
      // (2.5 %) let BBR's bursts queue in the modem again (a 61/39 split); none cost cubic 1 %
      // of goodput (89.8 % of the modem).
      options.arrival_room_percent = config.qos.rate_sub_percent / 5.0 * 100 / (100 - config.qos.rate_sub_percent);
      scheduler->sched = std::make_unique<SchedPort>(node, options);
      scheduler->pipes = std::vector<PipeCounters>(scheduler->sched->pipe_capacity());
      // Every worker may enqueue; only the owner dequeues.
      scheduler->inbox = make_ring("sched_in", kSchedInboxSize, RING_F_SC_DEQ);
      by_port_[node.port] = scheduler.get();
      schedulers_.push_back(std::move(scheduler));
    }
    new_hosts_ = make_ring("new_hosts", kNewHostRingSize, RING_F_SC_DEQ);
  } catch (...) {
    for (auto& scheduler : schedulers_) rte_ring_free(scheduler->inbox);
    throw;
  }
}

QosDataplane::~QosDataplane() {
  for (auto& scheduler : schedulers_) {
    rte_mbuf* packet;
    while (rte_ring_dequeue(scheduler->inbox, reinterpret_cast<void**>(&packet)) == 0) rte_pktmbuf_free(packet);
    rte_ring_free(scheduler->inbox);
  }
  rte_ring_free(new_hosts_);
}

bool QosDataplane::is_lan_host(uint32_t address) const {
  for (const auto& lan : lan_prefixes_)
    if (lan.contains(address) && address != lan.address && address != lan.network() && address != lan.broadcast())
      return true;
  return false;
}

}  // namespace fairgate
