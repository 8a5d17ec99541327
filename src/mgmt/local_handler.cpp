#include "mgmt/local_handler.h"

#include "core/checksum.h"
#include "core/ipv4_rewrite.h"
#include "core/packet_meta.h"
#include "mgmt/frame_builder.h"
#include "stages/l3/l2_rewrite.h"

#include <rte_arp.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_udp.h>
#include <rte_ip_frag.h>

#include <algorithm>

namespace fairgate {
namespace {

// ICMP errors are rate-limited like a router's (RFC 1812 4.3.2.8): a burst, then a steady rate.
constexpr double kIcmpErrorsPerSecond = 100;
constexpr double kIcmpErrorBurst = 50;
constexpr uint8_t kReplyTtl = 64;
constexpr uint16_t kMaxFragments = 8;
constexpr uint8_t kIcmpDestUnreachable = 3;  // RFC 792 types
constexpr uint8_t kIcmpTimeExceeded = 11;

rte_ipv4_hdr* ipv4_of(rte_mbuf* mbuf) {
  return rte_pktmbuf_mtod_offset(mbuf, rte_ipv4_hdr*, packet_meta(mbuf)->l2_len);
}

}  // namespace

LocalHandler::LocalHandler(const PortTable& ports, const NeighborConfig& config, rte_mempool* pool, FrameSink& sink,
                           RcuPublished<NeighborSnapshot>& published)
    : ports_(ports),
      routes_(ports),
      pool_(pool),
      sink_(sink),
      published_(published),
      neighbors_(config),
      icmp_tokens_(kIcmpErrorBurst) {
  published_.publish(neighbors_.snapshot());
}

LocalHandler::~LocalHandler() { release_all(); }

void LocalHandler::release_all() {
  std::vector<rte_mbuf*> released;
  neighbors_.clear(released);
  counters_.drop(DropReason::kShutdown, released.size());
  for (auto* mbuf : released) rte_pktmbuf_free(mbuf);
}

void LocalHandler::start(uint64_t now_ms) {
  for (uint16_t p = 0; p < ports_.ports.size(); ++p) {
    const auto& port = ports_.ports[p];
    if (rte_mbuf* frame = build_arp_request(pool_, port, port.prefix.address)) {
      counters_.arp_announcements_sent.add();
      sink_.send(p, frame);
    }
    if (port.gateway != 0) {
      std::optional<NeighborTable::Request> request;
      neighbors_.resolve(p, port.gateway, now_ms, &request);
      if (request) send_arp_request(request->port, request->ip);
    }
  }
}

void LocalHandler::send_arp_request(uint16_t port, uint32_t ip) {
  if (rte_mbuf* frame = build_arp_request(pool_, ports_.ports[port], ip)) {
    counters_.arp_requests_sent.add();
    sink_.send(port, frame);
  }
}

void LocalHandler::handle(rte_mbuf* mbuf, uint64_t now_ms) {
  auto* meta = packet_meta(mbuf);
  switch (static_cast<PuntReason>(meta->punt_reason)) {
    case PuntReason::kArp:
      handle_arp(mbuf, now_ms);
      break;
    case PuntReason::kLocal:
      handle_local(mbuf, now_ms);
      break;
    case PuntReason::kTtlExceeded:
      reject(mbuf, DropReason::kTtlExceeded, kIcmpTimeExceeded, 0, 0, now_ms);
      break;
    case PuntReason::kFragNeeded:
      handle_oversize(mbuf, now_ms);
      break;
    case PuntReason::kResolve:
      send_to_neighbor(mbuf, meta->egress_port, meta->next_hop, now_ms);
      break;
    case PuntReason::kCount:
      counters_.drop(DropReason::kNoVerdict);
      rte_pktmbuf_free(mbuf);
  }
}

void LocalHandler::handle_arp(rte_mbuf* mbuf, uint64_t now_ms) {
  uint16_t port_index = mbuf->port;
  const PortInfo& port = ports_.ports[port_index];
  uint16_t l2_len = packet_meta(mbuf)->l2_len;
  if (rte_pktmbuf_data_len(mbuf) < l2_len + sizeof(rte_arp_hdr)) {
    counters_.drop(DropReason::kArpMalformed);
    rte_pktmbuf_free(mbuf);
    return;
  }
  auto* arp = rte_pktmbuf_mtod_offset(mbuf, rte_arp_hdr*, l2_len);
  uint16_t opcode = rte_be_to_cpu_16(arp->arp_opcode);
  if (rte_be_to_cpu_16(arp->arp_hardware) != RTE_ARP_HRD_ETHER ||
      rte_be_to_cpu_16(arp->arp_protocol) != RTE_ETHER_TYPE_IPV4 || arp->arp_hlen != RTE_ETHER_ADDR_LEN ||
      arp->arp_plen != 4 || (opcode != RTE_ARP_OP_REQUEST && opcode != RTE_ARP_OP_REPLY) ||
      !rte_is_unicast_ether_addr(&arp->arp_data.arp_sha)) {
    counters_.drop(DropReason::kArpMalformed);
    rte_pktmbuf_free(mbuf);
    return;
  }
  uint32_t sender = rte_be_to_cpu_32(arp->arp_data.arp_sip);
  uint32_t target = rte_be_to_cpu_32(arp->arp_data.arp_tip);
  bool for_us = target == port.prefix.address;
  // Learn only on-link senders; sender 0.0.0.0 is an address probe (RFC 5227), nothing to learn.
  if (sender != 0 && sender != port.prefix.address && port.prefix.contains(sender)) {
    std::vector<rte_mbuf*> released;
    neighbors_.learn(port_index, sender, arp->arp_data.arp_sha, for_us, now_ms, released);
    for (auto* waiting : released) send_resolved(waiting, arp->arp_data.arp_sha);
  }
  if (for_us && opcode == RTE_ARP_OP_REQUEST) {
    make_arp_reply(mbuf, l2_len, port);
    counters_.arp_replies_sent.add();
    sink_.send(port_index, mbuf);
    return;
  }
  if (!for_us) counters_.drop(DropReason::kArpNotForUs);
  rte_pktmbuf_free(mbuf);
}

void LocalHandler::handle_local(rte_mbuf* mbuf, uint64_t now_ms) {
  auto* meta = packet_meta(mbuf);
  auto* ip = ipv4_of(mbuf);
  uint32_t total = rte_be_to_cpu_16(ip->total_length);
  if (ip->next_proto_id == IPPROTO_ICMP) {
    uint16_t raw = 0;
    uint32_t icmp_offset = uint32_t{meta->l2_len} + meta->l3_len;
    if (total < meta->l3_len + sizeof(rte_icmp_hdr) ||
        rte_raw_cksum_mbuf(mbuf, icmp_offset, total - meta->l3_len, &raw) != 0 || raw != 0xffff) {
      counters_.drop(DropReason::kIcmpMalformed);
      rte_pktmbuf_free(mbuf);
      return;
    }
    auto* icmp = rte_pktmbuf_mtod_offset(mbuf, rte_icmp_hdr*, icmp_offset);
    if (icmp->icmp_type == RTE_IP_ICMP_ECHO_REPLY && echo_listener_) {
      echo_listener_(mbuf->port, rte_be_to_cpu_32(ip->src_addr), rte_be_to_cpu_16(icmp->icmp_ident),
                     rte_be_to_cpu_16(icmp->icmp_seq_nb), now_ms);
      rte_pktmbuf_free(mbuf);
      return;
    }
    if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST || icmp->icmp_code != 0 ||
        (rte_be_to_cpu_16(ip->fragment_offset) & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK))) {
      counters_.drop(DropReason::kLocalUnsupported);
      rte_pktmbuf_free(mbuf);
      return;
    }
    uint16_t old_word = *reinterpret_cast<const uint16_t*>(&icmp->icmp_type);
    icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
    icmp->icmp_cksum = checksum::update16(icmp->icmp_cksum, old_word, *reinterpret_cast<const uint16_t*>(&icmp->icmp_type));
    // Swapping the addresses leaves the header sum unchanged; only the TTL word changes.
    rte_be32_t requester = ip->src_addr;
    ip->src_addr = ip->dst_addr;
    ip->dst_addr = requester;
    ipv4_set_ttl(ip, kReplyTtl);
    counters_.echo_replies_sent.add();
    transmit_ipv4(mbuf, now_ms);
    return;
  }
  if (ip->next_proto_id == IPPROTO_UDP && datagram_listener_ &&
      total >= uint32_t{meta->l3_len} + sizeof(rte_udp_hdr) &&
      rte_pktmbuf_data_len(mbuf) >= uint32_t{meta->l2_len} + total) {
    auto* udp = rte_pktmbuf_mtod_offset(mbuf, rte_udp_hdr*, meta->l2_len + meta->l3_len);
    uint32_t length = rte_be_to_cpu_16(udp->dgram_len);
    if (rte_be_to_cpu_16(udp->dst_port) == udp_port_ && length >= sizeof(rte_udp_hdr) &&
        length <= total - meta->l3_len) {
      datagram_listener_(mbuf->port, rte_be_to_cpu_32(ip->src_addr), reinterpret_cast<const uint8_t*>(udp + 1),
                         length - static_cast<uint32_t>(sizeof(rte_udp_hdr)), now_ms);
      rte_pktmbuf_free(mbuf);
      return;
    }
  }
  if (RTE_IS_IPV4_MCAST(rte_be_to_cpu_32(ip->dst_addr))) {
    // To a group the gateway joined for a service that is not listening: no ICMP error to a group.
    counters_.drop(DropReason::kLocalUnsupported);
    rte_pktmbuf_free(mbuf);
    return;
  }
  // No service listens on the gateway yet: say so the way a host would.
  uint8_t code = (ip->next_proto_id == IPPROTO_UDP || ip->next_proto_id == IPPROTO_TCP) ? 3 : 2;
  reject(mbuf, DropReason::kLocalUnsupported, kIcmpDestUnreachable, code, 0, now_ms);
}

void LocalHandler::handle_oversize(rte_mbuf* mbuf, uint64_t now_ms) {
  auto* meta = packet_meta(mbuf);
  auto* ip = ipv4_of(mbuf);
  const PortInfo& egress = ports_.ports[meta->egress_port];
  if (rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_DF_FLAG) {
    reject(mbuf, DropReason::kMtuExceeded, kIcmpDestUnreachable, 4, egress.mtu, now_ms);
    return;
  }
  // Fragment on behalf of the sender: the fragments share the original's TTL minus one.
  ipv4_set_ttl(ip, static_cast<uint8_t>(ip->time_to_live - 1));
  uint16_t egress_port = meta->egress_port;
  uint32_t next_hop = meta->next_hop;
  rte_pktmbuf_adj(mbuf, meta->l2_len);
  rte_mbuf* fragments[kMaxFragments];
  int32_t count = rte_ipv4_fragment_packet(mbuf, fragments, kMaxFragments, egress.mtu, pool_, pool_);
  rte_pktmbuf_free(mbuf);
  if (count <= 0) {
    counters_.drop(DropReason::kMtuExceeded);
    return;
  }
  for (int32_t i = 0; i < count; ++i) {
    // rte_ipv4_fragment_packet leaves each fragment's header checksum zero.
    auto* fragment_ip = rte_pktmbuf_mtod(fragments[i], rte_ipv4_hdr*);
    fragment_ip->hdr_checksum = 0;
    fragment_ip->hdr_checksum = checksum::compute(fragment_ip, rte_ipv4_hdr_len(fragment_ip));
    auto* fragment_meta = packet_meta(fragments[i]);
    fragment_meta->l2_len = 0;
    fragment_meta->ethertype = RTE_ETHER_TYPE_IPV4;
    counters_.fragments_sent.add();
    send_to_neighbor(fragments[i], egress_port, next_hop, now_ms);
  }
}

bool LocalHandler::take_icmp_token(uint64_t now_ms) {
  if (now_ms > icmp_refill_ms_) {
    icmp_tokens_ = std::min(kIcmpErrorBurst, icmp_tokens_ + static_cast<double>(now_ms - icmp_refill_ms_) *
                                                                kIcmpErrorsPerSecond / 1000.0);
    icmp_refill_ms_ = now_ms;
  }
  if (icmp_tokens_ < 1) return false;
  icmp_tokens_ -= 1;
  return true;
}

void LocalHandler::reject(rte_mbuf* mbuf, DropReason reason, uint8_t type, uint8_t code, uint16_t mtu,
                          uint64_t now_ms) {
  counters_.drop(reason);
  auto* meta = packet_meta(mbuf);
  auto* original = rte_pktmbuf_mtod_offset(mbuf, const uint8_t*, meta->l2_len);
  uint32_t available = rte_pktmbuf_data_len(mbuf) - meta->l2_len;
  // Packets the gateway made itself (no ingress port, or our own source) get no error.
  bool received = mbuf->port < ports_.ports.size() &&
                  ports_.owner_of(rte_be_to_cpu_32(ipv4_of(mbuf)->src_addr)) < 0;
  if (received && icmp_error_allowed(original, available)) {
    // The error comes from our address on the port the offending packet arrived on.
    uint32_t source = ports_.ports[mbuf->port].prefix.address;
    if (!take_icmp_token(now_ms)) {
      counters_.drop(DropReason::kIcmpRateLimited);
    } else if (rte_mbuf* error = build_icmp_error(pool_, original, available, source, type, code, mtu)) {
      counters_.icmp_errors_sent.add();
      transmit_ipv4(error, now_ms);
    }
  }
  rte_pktmbuf_free(mbuf);
}

bool LocalHandler::transmit_ipv4(rte_mbuf* mbuf, uint64_t now_ms) {
  uint32_t destination = rte_be_to_cpu_32(ipv4_of(mbuf)->dst_addr);
  // From one of our WAN addresses (an echo reply, an ICMP error about what came in by that
  // WAN): back through that WAN, as another WAN's ISP would drop the source.
  int source_port = ports_.owner_of(rte_be_to_cpu_32(ipv4_of(mbuf)->src_addr));
  uint8_t wan = source_port >= 0 && ports_.ports[static_cast<std::size_t>(source_port)].role == PortRole::kWan
                    ? static_cast<uint8_t>(source_port)
                    : kNoWanPort;
  Route route;
  if (ports_.owner_of(destination) >= 0 || !routes_.lookup(destination, &route, wan)) {
    counters_.drop(DropReason::kNoRoute);
    rte_pktmbuf_free(mbuf);
    return false;
  }
  send_to_neighbor(mbuf, route.port, route.next_hop, now_ms);
  return true;
}

bool LocalHandler::send_routed(rte_mbuf* packet, uint64_t now_ms) {
  if (packet == nullptr) return false;
  return transmit_ipv4(packet, now_ms);
}

uint32_t LocalHandler::route_source(uint32_t destination) const {
  Route route;
  if (!routes_.lookup(destination, &route)) return 0;
  return ports_.ports[route.port].prefix.address;
}

bool LocalHandler::send_from_port(uint16_t port, rte_mbuf* packet, uint64_t now_ms) {
  if (packet == nullptr) return false;
  const PortInfo& egress = ports_.ports[port];
  uint32_t destination = rte_be_to_cpu_32(ipv4_of(packet)->dst_addr);
  auto* meta = packet_meta(packet);
  meta->egress_port = port;
  if (RTE_IS_IPV4_MCAST(destination)) {
    // RFC 1112: the group's low 23 bits under 01:00:5e.
    rte_ether_addr group{{0x01, 0x00, 0x5e, static_cast<uint8_t>((destination >> 16) & 0x7f),
                          static_cast<uint8_t>(destination >> 8), static_cast<uint8_t>(destination)}};
    meta->next_hop = destination;
    send_resolved(packet, group);
    return true;
  }
  uint32_t next_hop = egress.prefix.contains(destination) ? destination : egress.gateway;
  if (next_hop == 0) {
    counters_.drop(DropReason::kNoRoute);
    rte_pktmbuf_free(packet);
    return false;
  }
  send_to_neighbor(packet, port, next_hop, now_ms);
  return true;
}

void LocalHandler::send_to_neighbor(rte_mbuf* mbuf, uint16_t port, uint32_t next_hop, uint64_t now_ms) {
  auto* meta = packet_meta(mbuf);
  meta->egress_port = port;
  meta->next_hop = next_hop;
  rte_ether_addr mac;
  std::optional<NeighborTable::Request> request;
  switch (neighbors_.hold(port, next_hop, mbuf, now_ms, &mac, &request)) {
    case NeighborTable::HoldResult::kResolved:
      send_resolved(mbuf, mac);
      break;
    case NeighborTable::HoldResult::kHeld:
      if (request) send_arp_request(request->port, request->ip);
      break;
    case NeighborTable::HoldResult::kHoldFull:
      counters_.drop(DropReason::kNeighborHoldFull);
      rte_pktmbuf_free(mbuf);
      break;
    case NeighborTable::HoldResult::kTableFull:
      counters_.drop(DropReason::kNeighborTableFull);
      rte_pktmbuf_free(mbuf);
      break;
  }
}

void LocalHandler::send_resolved(rte_mbuf* mbuf, const rte_ether_addr& mac) {
  auto* meta = packet_meta(mbuf);
  uint16_t port = meta->egress_port;
  if (!rewrite_l2(mbuf, meta, ports_.ports[port], mac)) {
    counters_.drop(DropReason::kTxFull);
    rte_pktmbuf_free(mbuf);
    return;
  }
  sink_.send(port, mbuf);
}

void LocalHandler::tick(uint64_t now_ms) {
  std::vector<NeighborTable::Request> requests;
  std::vector<rte_mbuf*> unreachable;
  neighbors_.tick(now_ms, requests, unreachable);
  for (const auto& request : requests) send_arp_request(request.port, request.ip);
  for (auto* mbuf : unreachable) {
    // Held packets were routed already (TTL decremented); the ICMP error goes to their source.
    reject(mbuf, DropReason::kNeighborUnresolved, kIcmpDestUnreachable, 1, 0, now_ms);
  }
  if (neighbors_.changed()) published_.publish(neighbors_.snapshot());
  published_.reclaim();
}

}  // namespace fairgate
