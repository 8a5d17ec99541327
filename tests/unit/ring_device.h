// In-process ethdevs on rte_rings (the ring PMD, rte_eth_from_rings): the test produces into
// a port's RX rings and consumes from its TX rings, so workers and the gateway run on real
// DPDK ports with no NIC. Ring ethdevs have an all-zero MAC that cannot be changed.
#pragma once

#include "test_packets.h"

#include <rte_bus_vdev.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_lcore.h>
#include <rte_ring.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace fairgate::test {

inline constexpr unsigned kRingDeviceRingSize = 1024;

class RingDevice {
 public:
  // `tag` must be unique in the process and short (ring names are limited to 29 characters).
  RingDevice(const std::string& tag, unsigned rx_queues, unsigned tx_queues) {
    for (unsigned q = 0; q < rx_queues; ++q) rx_.push_back(make_ring(tag + "rx" + std::to_string(q)));
    for (unsigned q = 0; q < tx_queues; ++q) tx_.push_back(make_ring(tag + "tx" + std::to_string(q)));
    int id = rte_eth_from_rings(tag.c_str(), rx_.data(), rx_queues, tx_.data(), tx_queues, rte_socket_id());
    if (id < 0) throw std::runtime_error("rte_eth_from_rings " + tag + ": " + rte_strerror(rte_errno));
    name_ = "net_ring_" + tag;
    port_id_ = static_cast<uint16_t>(id);
  }
  // The port must be closed (close_ports) first. Frees whatever the rings still hold.
  ~RingDevice() {
    rte_vdev_uninit(name_.c_str());
    for (auto* ring : rx_) free_ring(ring);
    for (auto* ring : tx_) free_ring(ring);
  }
  RingDevice(const RingDevice&) = delete;
  RingDevice& operator=(const RingDevice&) = delete;

  // The ethdev name, as a config's "device" names it for open_ports.
  const std::string& name() const { return name_; }
  uint16_t port_id() const { return port_id_; }
  rte_ring* rx(unsigned queue) const { return rx_.at(queue); }
  rte_ring* tx(unsigned queue) const { return tx_.at(queue); }
  unsigned tx_queues() const { return static_cast<unsigned>(tx_.size()); }

  void push(unsigned queue, rte_mbuf* mbuf) const {
    if (rte_ring_enqueue(rx(queue), mbuf) != 0) {
      rte_pktmbuf_free(mbuf);
      throw std::runtime_error("RX ring full");
    }
  }
  unsigned tx_count() const {
    unsigned total = 0;
    for (auto* ring : tx_) total += rte_ring_count(ring);
    return total;
  }
  // Decodes and frees what TX queue `queue` holds.
  std::vector<Frame> take(unsigned queue) const {
    std::vector<Frame> frames;
    void* object;
    while (rte_ring_dequeue(tx(queue), &object) == 0) {
      auto* mbuf = static_cast<rte_mbuf*>(object);
      frames.push_back(Frame::of(mbuf));
      rte_pktmbuf_free(mbuf);
    }
    return frames;
  }
  std::vector<Frame> take_all() const {
    std::vector<Frame> frames;
    for (unsigned q = 0; q < tx_.size(); ++q)
      for (auto& frame : take(q)) frames.push_back(std::move(frame));
    return frames;
  }
  // Empties the TX rings without freeing: for mbufs whose pool is gone already.
  void forget_tx() const {
    void* object;
    for (auto* ring : tx_)
      while (rte_ring_dequeue(ring, &object) == 0) {
      }
  }
  void clear() const {
    for (auto* ring : rx_) drain(ring);
    for (auto* ring : tx_) drain(ring);
  }

 private:
  static rte_ring* make_ring(const std::string& name) {
    rte_ring* ring = rte_ring_create(name.c_str(), kRingDeviceRingSize, static_cast<int>(rte_socket_id()), 0);
    if (ring == nullptr) throw std::runtime_error("cannot create ring " + name + ": " + rte_strerror(rte_errno));
    return ring;
  }
  static void drain(rte_ring* ring) {
    void* object;
    while (rte_ring_dequeue(ring, &object) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(object));
  }
  static void free_ring(rte_ring* ring) {
    drain(ring);
    rte_ring_free(ring);
  }

  std::string name_;
  uint16_t port_id_ = 0;
  std::vector<rte_ring*> rx_, tx_;
};

}  // namespace fairgate::test
