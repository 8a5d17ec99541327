#include "stages/nat/nat_stage.h"

#include "core/ipv4_rewrite.h"
#include "core/packet_meta.h"
#include "nat/nat_rewrite.h"

#include <rte_cycles.h>
#include <rte_ip_frag.h>
#include <rte_malloc.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace fairgate {
namespace {

constexpr uint16_t kIpv4FragmentBits = RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK;
constexpr uint32_t kFragmentBuckets = 1024, kFragmentBucketEntries = 8;  // datagrams being reassembled
constexpr uint64_t kFragmentTimeoutS = 2;  // an incomplete datagram is dropped after this
constexpr uint8_t kIcmpDestUnreachable = 3, kIcmpTimeExceeded = 11, kIcmpParameterProblem = 12;
constexpr uint32_t kIcmpErrorHeader = 8;  // type, code, checksum, 4 bytes unused or MTU

// The flow key of a packet quoted in an ICMP error (an IPv4 header and at least 8 bytes).
bool quoted_key(const uint8_t* quoted, uint32_t length, FlowKey* key, uint32_t* header_len) {
  if (length < sizeof(rte_ipv4_hdr)) return false;
  auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(quoted);
  *header_len = (ip->version_ihl & 0x0f) * 4u;
  if ((ip->version_ihl >> 4) != 4 || *header_len < sizeof(rte_ipv4_hdr) || length < *header_len + 8) return false;
  key->src = rte_be_to_cpu_32(ip->src_addr);
  key->dst = rte_be_to_cpu_32(ip->dst_addr);
  key->proto = ip->next_proto_id;
  key->sport = key->dport = 0;
  const uint8_t* l4 = quoted + *header_len;
  switch (key->proto) {
    case IPPROTO_TCP:
    case IPPROTO_UDP:
      key->sport = static_cast<uint16_t>(l4[0] << 8 | l4[1]);
      key->dport = static_cast<uint16_t>(l4[2] << 8 | l4[3]);
      return true;
    case IPPROTO_ICMP: {
      uint16_t ident = static_cast<uint16_t>(l4[4] << 8 | l4[5]);
      if (l4[0] == RTE_IP_ICMP_ECHO_REQUEST) key->sport = ident;
      else if (l4[0] == RTE_IP_ICMP_ECHO_REPLY) key->dport = ident;
      else return false;
      return true;
    }
    default:
      return false;
  }
}

// Updates `checksum` (over a region that contains `span`) for the 16-bit words of `span` that
// differ between `before` and `after`. `span` starts at an even offset of the checksummed data.
uint16_t update_span(uint16_t checksum, const uint8_t* before, const uint8_t* after, uint32_t length) {
  for (uint32_t offset = 0; offset + 1 < length; offset += 2) {
    uint16_t old_word, new_word;
    std::memcpy(&old_word, before + offset, 2);
    std::memcpy(&new_word, after + offset, 2);
    if (old_word != new_word) checksum = checksum::update16(checksum, old_word, new_word);
  }
  return checksum;
}

L4View l4_of(rte_mbuf* mbuf, rte_ipv4_hdr* ip) {
  const PacketMeta* meta = packet_meta(mbuf);
  uint32_t total = rte_be_to_cpu_16(ip->total_length);
  // Transport headers must lie in the first segment, as the IPv4 header does.
  uint32_t in_segment = rte_pktmbuf_data_len(mbuf) - meta->l2_len;
  return L4View{reinterpret_cast<uint8_t*>(ip) + meta->l3_len, std::min(total, in_segment) - meta->l3_len};
}

uint16_t mss_for(const NatConfig& nat, uint16_t mtu) {
  if (nat.mss_clamp_to_mtu) return static_cast<uint16_t>(mtu - 40);  // IPv4 + TCP headers
  return nat.mss_clamp;
}

}  // namespace

NatStage::NatStage(const Config& config, const PortTable& ports, SessionTable& sessions, WorkerCounters& counters,
                   uint16_t worker, uint16_t workers, const RcuPublished<PortForwardTable>* port_forwards,
                   const RcuPublished<WanRoutingTable>* wan_routing, const RcuPublished<SubscriberMap>* subscribers)
    : config_(config),
      ports_(ports),
      routes_(ports),
      sessions_(sessions),
      counters_(counters),
      worker_(worker),
      workers_(workers),
      lan_prefixes_(config.lan_prefixes()),
      tsc_hz_(rte_get_tsc_hz()),
      forwards_(port_forwards ? port_forwards : &own_forwards_),
      wan_routing_(wan_routing),
      subscribers_(subscribers) {
  if (port_forwards == nullptr) own_forwards_.publish(std::make_unique<PortForwardTable>(PortForwardTable{config.nat.port_forwards}));
  fragments_ = rte_ip_frag_table_create(kFragmentBuckets, kFragmentBucketEntries,
                                        kFragmentBuckets * kFragmentBucketEntries, tsc_hz_ * kFragmentTimeoutS,
                                        static_cast<int>(rte_socket_id()));
  death_row_ = static_cast<rte_ip_frag_death_row*>(
      rte_zmalloc("nat_death_row", sizeof(rte_ip_frag_death_row), RTE_CACHE_LINE_SIZE));
  if (fragments_ == nullptr || death_row_ == nullptr) throw std::runtime_error("cannot allocate the NAT reassembly table");
  for (uint8_t p = 0; p < ports.ports.size(); ++p)
    if (ports.ports[p].role == PortRole::kWan) wan_addresses_.push_back({ports.ports[p].prefix.address, p});
  int wan = config.first_port(PortRole::kWan);
  default_wan_ = static_cast<uint8_t>(wan);
  default_wan_address_ = ports.ports[static_cast<std::size_t>(wan)].prefix.address;
}

NatStage::~NatStage() {
  rte_ip_frag_free_death_row(death_row_, 0);
  rte_ip_frag_table_destroy(fragments_);
  rte_free(death_row_);
}

bool NatStage::reassemble(Burst& burst, uint16_t i) {
  rte_mbuf* mbuf = burst.pkts[i];
  PacketMeta* meta = packet_meta(mbuf);
  mbuf->l2_len = meta->l2_len;
  mbuf->l3_len = meta->l3_len;
  auto* ip = rte_pktmbuf_mtod_offset(mbuf, rte_ipv4_hdr*, meta->l2_len);
  rte_mbuf* whole = rte_ipv4_frag_reassemble_packet(fragments_, death_row_, mbuf, rte_rdtsc(), ip);
  if (whole == nullptr) {
    burst.action[i] = Action::kSent;  // held by the reassembly table, or freed there on error
    return false;
  }
  // The first fragment's mbuf heads the datagram: its header now describes the whole of it.
  auto* whole_ip = rte_pktmbuf_mtod_offset(whole, rte_ipv4_hdr*, packet_meta(whole)->l2_len);
  whole_ip->hdr_checksum = 0;
  whole_ip->hdr_checksum = checksum::compute(whole_ip, packet_meta(whole)->l3_len);
  burst.pkts[i] = whole;
  return true;
}

bool NatStage::is_wan_address(uint32_t address, uint8_t* wan) const {
  for (const auto& [own, port] : wan_addresses_)
    if (own == address) {
      *wan = port;
      return true;
    }
  return false;
}

bool NatStage::classify(Burst& burst, uint16_t i, FlowKey* key, Path* path, uint16_t* owner) {
  rte_mbuf* mbuf = burst.pkts[i];
  auto* ip = rte_pktmbuf_mtod_offset(mbuf, rte_ipv4_hdr*, packet_meta(mbuf)->l2_len);
  uint32_t src = rte_be_to_cpu_32(ip->src_addr), dst = rte_be_to_cpu_32(ip->dst_addr);
  PortRole role = ports_.ports[burst.rx_port].role;
  uint8_t wan = 0;
  bool to_wan_address = is_wan_address(dst, &wan);
  *path = Path::kSkip;
  if (role == PortRole::kLan) {
    // LAN to LAN, to the gateway's LAN address, or not routable: no NAT.
    if (!to_wan_address && (routes_.is_local(dst) || routes_.not_forwardable(dst))) return true;
    bool on_lan = false;
    for (const auto& prefix : lan_prefixes_) on_lan |= prefix.contains(dst);
    if (on_lan) return true;
  } else if (!to_wan_address) {
    if (routes_.is_local(dst) || routes_.not_forwardable(dst)) return true;  // l3 handles it
    burst.drop(i, DropReason::kNatUnsolicited);
    return false;
  }

  if (rte_be_to_cpu_16(ip->fragment_offset) & kIpv4FragmentBits) {
    // Only the first fragment carries the ports: translate the datagram once it is whole.
    if (!reassemble(burst, i)) return false;
    mbuf = burst.pkts[i];
    ip = rte_pktmbuf_mtod_offset(mbuf, rte_ipv4_hdr*, packet_meta(mbuf)->l2_len);
  }
  L4View l4 = l4_of(mbuf, ip);
  key->src = src;
  key->dst = dst;
  key->proto = ip->next_proto_id;
  key->sport = key->dport = 0;
  switch (key->proto) {
    case IPPROTO_TCP:
    case IPPROTO_UDP: {
      uint32_t needed = key->proto == IPPROTO_TCP ? sizeof(rte_tcp_hdr) : sizeof(rte_udp_hdr);
      if (l4.length < needed) {
        burst.drop(i, DropReason::kNatTruncated);
        return false;
      }
      auto* ports = reinterpret_cast<const rte_be16_t*>(l4.header);
      key->sport = rte_be_to_cpu_16(ports[0]);
      key->dport = rte_be_to_cpu_16(ports[1]);
      break;
    }
    case IPPROTO_ICMP: {
      if (l4.length < sizeof(rte_icmp_hdr)) {
        burst.drop(i, DropReason::kNatTruncated);
        return false;
      }
      auto* icmp = reinterpret_cast<const rte_icmp_hdr*>(l4.header);
      uint16_t ident = rte_be_to_cpu_16(icmp->icmp_ident);
      if (icmp->icmp_type == RTE_IP_ICMP_ECHO_REQUEST) {
        key->sport = ident;
      } else if (icmp->icmp_type == RTE_IP_ICMP_ECHO_REPLY) {
        key->dport = ident;
      } else if (icmp->icmp_type == kIcmpDestUnreachable || icmp->icmp_type == kIcmpTimeExceeded ||
                 icmp->icmp_type == kIcmpParameterProblem) {
        return classify_icmp_error(burst, i, l4.header, l4.length, to_wan_address, key, path, owner);
      } else {
        if (to_wan_address) return true;  // to the gateway itself: the management thread
        burst.drop(i, DropReason::kNatUnsupported);
        return false;
      }
      break;
    }
    default:
      if (to_wan_address) return true;
      burst.drop(i, DropReason::kNatUnsupported);
      return false;
  }

  if (to_wan_address) {
    // Inbound, or hairpinned from the LAN: the worker that owns the external port owns it. A
    // forwarded port belongs to the worker of the inside host it forwards to.
    const PortForwardRule* rule = forward_for(key->proto, key->dport);
    if (role == PortRole::kLan) {
      if (rule == nullptr) {
        // The LAN reaching the WAN address on an unforwarded port: a hairpin reply, or for the gateway.
        *path = Path::kInbound;
        *owner = nat_owner_of_port(key->dport, workers_);
        return true;
      }
      *path = Path::kHairpin;
      *owner = nat_owner_of_address(src, workers_);
      return true;
    }
    *path = Path::kInbound;
    *owner = rule ? nat_owner_of_address(rule->internal, workers_) : nat_owner_of_port(key->dport, workers_);
    return true;
  }
  // Packets that will come back as an ICMP error from the l3 stage (TTL running out, too big
  // with DF) stay untranslated, so the error quotes what the LAN host sent and reaches it.
  if (ip->time_to_live <= 1 ||
      ((rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_DF_FLAG) &&
       rte_be_to_cpu_16(ip->total_length) > ports_.ports[default_wan_].mtu)) {
    *path = Path::kSkip;
    return true;
  }
  // Outbound: the inside host's worker owns all its sessions (and its mappings and quota).
  *path = Path::kOutbound;
  *owner = nat_owner_of_address(src, workers_);
  return true;
}

bool NatStage::classify_icmp_error(Burst& burst, uint16_t i, const uint8_t* icmp, uint32_t length,
                                   bool to_wan_address, FlowKey* key, Path* path, uint16_t* owner) {
  FlowKey quoted;
  uint32_t quoted_header_len = 0;
  if (length < kIcmpErrorHeader || !quoted_key(icmp + kIcmpErrorHeader, length - kIcmpErrorHeader, &quoted,
                                               &quoted_header_len)) {
    burst.drop(i, DropReason::kNatTruncated);
    return false;
  }
  // The error travels against the quoted packet: look it up as the packet that would answer.
  *key = quoted.reversed();
  *path = Path::kIcmpError;
  if (to_wan_address) {
    // Quoted: a packet we sent from the WAN address; its source port is ours to own.
    const PortForwardRule* rule = forward_for(quoted.proto, quoted.sport);
    *owner = rule ? nat_owner_of_address(rule->internal, workers_) : nat_owner_of_port(quoted.sport, workers_);
  } else {
    // From a LAN host about a packet it received: that host's worker.
    *owner = nat_owner_of_address(key->src, workers_);
  }
  return true;
}

void NatStage::translate_icmp_error(Burst& burst, uint16_t i, uint32_t index, bool reply) {
  rte_mbuf* mbuf = burst.pkts[i];
  auto* ip = rte_pktmbuf_mtod_offset(mbuf, rte_ipv4_hdr*, packet_meta(mbuf)->l2_len);
  L4View l4 = l4_of(mbuf, ip);
  const SessionTable::Session& s = sessions_.session(index);
  auto* icmp = reinterpret_cast<rte_icmp_hdr*>(l4.header);
  uint8_t* quoted = l4.header + kIcmpErrorHeader;
  uint32_t quoted_len = l4.length - kIcmpErrorHeader;
  auto* inner = reinterpret_cast<rte_ipv4_hdr*>(quoted);
  uint32_t inner_header_len = (inner->version_ihl & 0x0f) * 4u;
  uint8_t* inner_l4 = quoted + inner_header_len;
  uint32_t inner_l4_len = quoted_len - inner_header_len;
  // What may change in the ICMP payload: the quoted header and its transport header up to the
  // TCP checksum (20 bytes), as far as they were quoted.
  uint8_t before[60 + 20];
  uint32_t span = std::min(quoted_len, inner_header_len + 20);
  std::memcpy(before, quoted, span);

  // Outer header: it travels like a packet of this direction, but only the endpoint that NAT
  // rewrites changes; the other end is the router that reported, not the flow's peer.
  FlowKey in = reply ? s.translated.reversed() : s.original;
  FlowKey out = reply ? s.original.reversed() : s.translated;
  if (in.dst != out.dst) {
    ip->hdr_checksum = checksum::update32(ip->hdr_checksum, ip->dst_addr, rte_cpu_to_be_32(out.dst));
    ip->dst_addr = rte_cpu_to_be_32(out.dst);
  }
  if (in.src != out.src) {
    ip->hdr_checksum = checksum::update32(ip->hdr_checksum, ip->src_addr, rte_cpu_to_be_32(out.src));
    ip->src_addr = rte_cpu_to_be_32(out.src);
  }
  // Quoted packet: it went the other way, so it becomes what that direction translates it to.
  FlowKey from = reply ? s.translated : s.original.reversed();
  FlowKey to = reply ? s.original : s.translated.reversed();
  if (inner->next_proto_id == IPPROTO_ICMP) {
    // The quoted echo's identifier and its own checksum; addresses are not in its checksum.
    auto* inner_icmp = reinterpret_cast<rte_icmp_hdr*>(inner_l4);
    uint16_t old_ident = inner_icmp->icmp_ident;
    inner_icmp->icmp_ident = rte_cpu_to_be_16(inner_icmp->icmp_type == RTE_IP_ICMP_ECHO_REQUEST ? to.sport : to.dport);
    inner_icmp->icmp_cksum = checksum::update16(inner_icmp->icmp_cksum, old_ident, inner_icmp->icmp_ident);
    inner->hdr_checksum = checksum::update32(inner->hdr_checksum, inner->src_addr, rte_cpu_to_be_32(to.src));
    inner->hdr_checksum = checksum::update32(inner->hdr_checksum, inner->dst_addr, rte_cpu_to_be_32(to.dst));
    inner->src_addr = rte_cpu_to_be_32(to.src);
    inner->dst_addr = rte_cpu_to_be_32(to.dst);
  } else {
    // TCP/UDP: the same rewrite as a packet of the quoted direction, deltas recomputed for it
    // since the quoted transport checksum may be cut off (only its first 8 bytes are sure).
    uint16_t l3 = flow_checksum_delta(from, to, true, false);
    uint16_t l4_delta = flow_checksum_delta(from, to, true, true);
    inner->src_addr = rte_cpu_to_be_32(to.src);
    inner->dst_addr = rte_cpu_to_be_32(to.dst);
    inner->hdr_checksum = apply_checksum_delta(inner->hdr_checksum, l3);
    auto* ports = reinterpret_cast<rte_be16_t*>(inner_l4);
    ports[0] = rte_cpu_to_be_16(to.sport);
    ports[1] = rte_cpu_to_be_16(to.dport);
    uint32_t checksum_offset = inner->next_proto_id == IPPROTO_TCP ? 16 : 6;
    if (inner_l4_len >= checksum_offset + 2) {
      uint16_t quoted_checksum;
      std::memcpy(&quoted_checksum, inner_l4 + checksum_offset, 2);
      if (!(inner->next_proto_id == IPPROTO_UDP && quoted_checksum == 0)) {
        quoted_checksum = apply_checksum_delta(quoted_checksum, l4_delta);
        std::memcpy(inner_l4 + checksum_offset, &quoted_checksum, 2);
      }
    }
  }
  // The ICMP checksum covers the quoted bytes: update it for every word that changed.
  icmp->icmp_cksum = update_span(icmp->icmp_cksum, before, quoted, span);
}

void NatStage::translate(Burst& burst, uint16_t i, uint32_t index, bool reply, uint32_t now_s) {
  rte_mbuf* mbuf = burst.pkts[i];
  auto* ip = rte_pktmbuf_mtod_offset(mbuf, rte_ipv4_hdr*, packet_meta(mbuf)->l2_len);
  L4View l4 = l4_of(mbuf, ip);
  const SessionTable::Session& s = sessions_.session(index);
  PacketMeta* meta = packet_meta(mbuf);
  meta->nat_session = index;
  meta->nat_reply = reply;
  FlowKey to = reply ? s.original.reversed() : s.translated;
  uint8_t tcp_flags = ip->next_proto_id == IPPROTO_TCP ? reinterpret_cast<rte_tcp_hdr*>(l4.header)->tcp_flags : 0;
  sessions_.touch(index, reply, rte_be_to_cpu_16(ip->total_length), tcp_flags, now_s);
  rewrite_flow(ip, l4, to, s.l3_delta[reply], s.l4_delta[reply]);
  // Whether it leaves by a WAN, the session's.
  bool leaves_by_wan = s.kind == SessionTable::kForward ? reply : !reply && s.kind == SessionTable::kSnat;
  if ((tcp_flags & RTE_TCP_SYN_FLAG) && (config_.nat.mss_clamp || config_.nat.mss_clamp_to_mtu)) {
    // The MTU of the port the l3 stage will route it to: the session's WAN when it leaves by one.
    Route route;
    uint16_t mtu = routes_.lookup(rte_be_to_cpu_32(ip->dst_addr), &route, leaves_by_wan ? s.wan : kNoWanPort)
                       ? ports_.ports[route.port].mtu
                       : 1500;
    clamp_tcp_mss(l4, mss_for(config_.nat, std::min(mtu, ports_.ports[burst.rx_port].mtu)));
  }
  // A flow stays on the WAN it started on: its packets leave by that WAN whatever the default.
  if (leaves_by_wan) meta->wan_port = s.wan;
  // TTL_SET: packets leaving by a WAN get this TTL once the l3 stage has decremented it.
  if (config_.nat.ttl_set && leaves_by_wan)
    ipv4_set_ttl(ip, static_cast<uint8_t>(std::min(255, config_.nat.ttl_set + 1)));
}

void NatStage::slow_path(Burst& burst, uint16_t i, const FlowKey& key, Path path, uint32_t now_s) {
  NatRefusal refusal = NatRefusal::kNone;
  uint32_t index = SessionTable::kNone;
  bool reply = false;
  uint8_t wan = default_wan_;
  uint32_t wan_address = default_wan_address_;
  switch (path) {
    case Path::kOutbound: {
      uint8_t leave_by = default_wan_;
      uint32_t address = default_wan_address_;
      if (const WanRoutingTable* routing = wan_routing_ ? wan_routing_->current() : nullptr) {
        // One subscriber, one WAN: its pipe is the key when it has one, so all its addresses agree.
        const SubscriberMap* map = subscribers_ ? subscribers_->current() : nullptr;
        uint32_t pipe = map ? map->find(key.src) : SubscriberMap::kNoPipe;
        WanRoutingTable::Link link;
        if (!routing->choose(pipe != SubscriberMap::kNoPipe ? 0x80000000u | pipe : key.src, key.src, &link)) {
          burst.drop(i, DropReason::kWanAllDown);
          return;
        }
        leave_by = link.port;
        address = link.address;
      }
      wan_address = address;
      index = sessions_.create_outbound(key, leave_by, address, now_s, &refusal);
      break;
    }
    case Path::kHairpin: {
      is_wan_address(key.dst, &wan);
      wan_address = key.dst;
      const PortForwardRule* rule = forward_for(key.proto, key.dport);
      FlowKey destination = key;
      destination.dst = rule->internal;
      destination.dport = static_cast<uint16_t>(rule->internal_first + (key.dport - rule->external_first));
      index = sessions_.create_outbound(key, wan, key.dst, now_s, &refusal, &destination);
      break;
    }
    case Path::kInbound: {
      is_wan_address(key.dst, &wan);
      wan_address = key.dst;
      if (const PortForwardRule* rule = forward_for(key.proto, key.dport)) {
        auto port = static_cast<uint16_t>(rule->internal_first + (key.dport - rule->external_first));
        index = sessions_.create_forward(key, wan, rule->internal, port, now_s, &refusal);
      } else if (sessions_.mapped(key.proto, wan, key.dport)) {
        if (!config_.nat.endpoint_independent_filtering) {
          burst.drop(i, DropReason::kNatFiltered);
          return;
        }
        // The session's initiator is the inside host: this packet is already its reply direction.
        index = sessions_.create_from_mapping(key, wan, now_s, &refusal);
        reply = index != SessionTable::kNone;
      } else {
        return;  // not NAT traffic: for the gateway itself (ping, probes), the l3 stage punts it
      }
      break;
    }
    case Path::kIcmpError:
      // About no session of ours: from a WAN it may concern the gateway itself (l3 punts it).
      if (ports_.ports[burst.rx_port].role == PortRole::kLan) burst.drop(i, DropReason::kNatUnsupported);
      return;
    case Path::kSkip:
      return;
  }
  if (index == SessionTable::kNone) {
    sessions_.report_refusal(refusal, key, wan_address);
    switch (refusal) {
      case NatRefusal::kQuota: burst.drop(i, DropReason::kNatQuota); break;
      case NatRefusal::kPortsExhausted: burst.drop(i, DropReason::kNatPortsExhausted); break;
      default: burst.drop(i, DropReason::kNatTableFull); break;
    }
    return;
  }
  translate(burst, i, index, reply, now_s);
}

void NatStage::process(Burst& burst) {
  FlowKey keys[kBurstSize];
  const FlowKey* key_ptrs[kBurstSize];
  uint16_t positions[kBurstSize];
  Path paths[kBurstSize];
  uint32_t count = 0;
  for (uint16_t i = 0; i < burst.count; ++i) {
    if (burst.action[i] != Action::kContinue) continue;
    if (packet_meta(burst.pkts[i])->ethertype != RTE_ETHER_TYPE_IPV4) continue;
    Path path;
    uint16_t owner = worker_;
    if (!classify(burst, i, &keys[count], &path, &owner) || path == Path::kSkip) continue;
    if (owner != worker_) {
      burst.action[i] = Action::kHandoff;
      packet_meta(burst.pkts[i])->handoff_worker = static_cast<uint8_t>(owner);
      continue;
    }
    key_ptrs[count] = &keys[count];
    positions[count] = i;
    paths[count] = path;
    ++count;
  }
  rte_ip_frag_free_death_row(death_row_, 3);
  if (count == 0) return;
  uint32_t found[kBurstSize];
  bool reply[kBurstSize];
  sessions_.lookup_bulk(key_ptrs, count, found, reply);
  auto now_s = static_cast<uint32_t>(rte_rdtsc() / tsc_hz_);
  for (uint32_t k = 0; k < count; ++k) {
    if (found[k] != SessionTable::kNone && paths[k] == Path::kIcmpError)
      translate_icmp_error(burst, positions[k], found[k], reply[k]);
    else if (found[k] != SessionTable::kNone)
      translate(burst, positions[k], found[k], reply[k], now_s);
    else if (uint32_t created = sessions_.lookup(keys[k], &reply[k]); created != SessionTable::kNone)
      // An earlier packet of this burst opened the session.
      paths[k] == Path::kIcmpError ? translate_icmp_error(burst, positions[k], created, reply[k])
                                   : translate(burst, positions[k], created, reply[k], now_s);
    else
      slow_path(burst, positions[k], keys[k], paths[k], now_s);
  }
}

}  // namespace fairgate
