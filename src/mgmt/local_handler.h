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
#include <functional>

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

  // The gateway's own conversations (WAN probes, LPA). Echo replies to one of our addresses
  // go to `echo` (ingress port, sender, identifier, sequence); UDP datagrams to one of our
  // addresses or to the all-routers group 224.0.0.2 on `udp_port` go to `datagram` (ingress
  // port, sender, payload). Without a listener they are answered as before.
  using EchoListener = std::function<void(uint16_t port, uint32_t from, uint16_t identifier, uint16_t sequence,
                                          uint64_t now_ms)>;
  using DatagramListener = std::function<void(uint16_t port, uint32_t from, const uint8_t* payload, uint32_t length,
                                              uint64_t now_ms)>;
  void listen_echo_replies(EchoListener listener) { echo_listener_ = std::move(listener); }
  void listen_udp(uint16_t udp_port, DatagramListener listener) {
    udp_port_ = udp_port;
    datagram_listener_ = std::move(listener);
  }
  // Sends an IPv4 packet the gateway built (build_ipv4_packet) out of `port`, whatever the
  // routes say: to the destination itself when it is on the port's prefix, to its multicast
  // MAC when it is multicast, else through the port's gateway. False when it could not go.
  bool send_from_port(uint16_t port, rte_mbuf* packet, uint64_t now_ms);
  // Sends an IPv4 packet the gateway built where the routes say (flow export to a collector).
  // Its source should be route_source(destination). False when there is no route.
  bool send_routed(rte_mbuf* packet, uint64_t now_ms);
  // The address of the port the route to `destination` leaves by, 0 when there is no route.
  uint32_t route_source(uint32_t destination) const;
  rte_mempool* pool() const { return pool_; }

  const NeighborTable& neighbors() const { return neighbors_; }
  const ManagementCounters& counters() const { return counters_; }

 private:
  void handle_arp(rte_mbuf* mbuf, uint64_t now_ms);
  void handle_local(rte_mbuf* mbuf, uint64_t now_ms);
  void handle_oversize(rte_mbuf* mbuf, uint64_t now_ms);
  // Sends an ICMP error about `mbuf` (an IPv4 packet at its l2_len) and frees `mbuf`,
  // counting it under `reason`.
  void reject(rte_mbuf* mbuf, DropReason reason, uint8_t type, uint8_t code, uint16_t mtu, uint64_t now_ms);
  // Routes an IPv4 packet (at PacketMeta::l2_len) and sends it, or holds it for ARP; false
  // (packet freed, counted) when there is no route.
  bool transmit_ipv4(rte_mbuf* mbuf, uint64_t now_ms);
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
  EchoListener echo_listener_;
  DatagramListener datagram_listener_;
  uint16_t udp_port_ = 0;
  double icmp_tokens_;
  uint64_t icmp_refill_ms_ = 0;
};

}  // namespace fairgate
