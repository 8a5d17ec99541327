// The management thread's side of the packet path: everything the workers punt (ARP, packets
// for the gateway, ICMP errors to generate, packets waiting for a next hop) and the frames the
// gateway originates. It owns the neighbour table and publishes its snapshots to the workers.
#pragma once

#include "core/counters.h"
#include "core/rcu_published.h"
#include "core/reasons.h"
#include "neigh/neighbor_table.h"
#include "ports/ports.h"
#include "stages/l3/route_table.h"

#include <array>
#include <cstdint>

namespace fairgate {

// Where the management thread's frames go: a worker's TX ring in the gateway, a capture in tests.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // Takes ownership of a complete Ethernet frame to send out of `port` (port index).
  virtual void send(uint16_t port, rte_mbuf* frame) = 0;
};

struct ManagementCounters {
  std::array<RelaxedCounter, kDropReasonCount> drops;
  RelaxedCounter arp_requests_sent, arp_replies_sent, arp_announcements_sent;
  RelaxedCounter echo_replies_sent, icmp_errors_sent, fragments_sent;
  void drop(DropReason reason, uint64_t n = 1) { drops[static_cast<std::size_t>(reason)].add(n); }
};

class LocalHandler {
 public:
  LocalHandler(const PortTable& ports, const NeighborConfig& config, rte_mempool* pool, FrameSink& sink,
               RcuPublished<NeighborSnapshot>& published);
  ~LocalHandler();

  // Gratuitous ARP on every port and resolution of the WAN gateways.
  void start(uint64_t now_ms);
  // A punted packet: mbuf->port is its ingress port index, PacketMeta says why.
  void handle(rte_mbuf* mbuf, uint64_t now_ms);
  // Neighbour retries and expiry, then publishes the snapshot if the resolved set changed.
  void tick(uint64_t now_ms);
  // Frees every held packet (shutdown).
  void release_all();

  const NeighborTable& neighbors() const { return neighbors_; }
  const ManagementCounters& counters() const { return counters_; }

 private:
  void handle_arp(rte_mbuf* mbuf, uint64_t now_ms);
  void handle_local(rte_mbuf* mbuf, uint64_t now_ms);
  void handle_oversize(rte_mbuf* mbuf, uint64_t now_ms);
  // Sends an ICMP error about `mbuf` (an IPv4 packet at its l2_len) and frees `mbuf`,
  // counting it under `reason`.
  void reject(rte_mbuf* mbuf, DropReason reason, uint8_t type, uint8_t code, uint16_t mtu, uint64_t now_ms);
  // Routes an IPv4 packet (at PacketMeta::l2_len) and sends it, or holds it for ARP.
  void transmit_ipv4(rte_mbuf* mbuf, uint64_t now_ms);
  // Sends to (port, next_hop) known or pending in the neighbour table.
  void send_to_neighbor(rte_mbuf* mbuf, uint16_t port, uint32_t next_hop, uint64_t now_ms);
  void send_resolved(rte_mbuf* mbuf, const rte_ether_addr& mac);
  void send_arp_request(uint16_t port, uint32_t ip);
  bool take_icmp_token(uint64_t now_ms);

  const PortTable& ports_;
  RouteTable routes_;
  rte_mempool* pool_;
  FrameSink& sink_;
  RcuPublished<NeighborSnapshot>& published_;
  NeighborTable neighbors_;
  ManagementCounters counters_;
  double icmp_tokens_;
  uint64_t icmp_refill_ms_ = 0;
};

}  // namespace fairgate
