#include "stages/p2p/p2p_stage.h"

#include "core/packet_meta.h"

#include <rte_cycles.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>

#include <netinet/in.h>

#include <algorithm>

namespace fairgate {
P2pStage::P2pStage(const PortTable& ports, P2pDataplane& dataplane, SessionTable& sessions, const QosDataplane* qos,
                   WorkerCounters& worker_counters, uint16_t worker)
    : ports_(ports),
      dataplane_(dataplane),
      sessions_(sessions),
      qos_(qos),
      worker_counters_(worker_counters),
      counters_(dataplane.counters(worker)),
      worker_(dataplane.worker(worker)),
      tsc_hz_(rte_get_tsc_hz()) {}

bool P2pStage::remote_peer(const SessionTable::Session& session, uint32_t* address, uint16_t* port) {
  switch (session.kind) {
    case SessionTable::kSnat:  // we connected to it: its destination port is where it listens
      *address = session.original.dst;
      *port = session.original.dport;
      return session.original.proto == IPPROTO_TCP || session.original.proto == IPPROTO_UDP;
    case SessionTable::kForward:  // it connected to us: over UDP peers send from their listening port
      *address = session.original.src;
      *port = session.original.sport;
      return session.original.proto == IPPROTO_UDP;
    default:  // hairpinned: both ends are ours
      return false;
  }
}

bool P2pStage::recognise(rte_mbuf* mbuf, uint32_t session, bool reply, uint32_t now_s) {
  P2pFlowState& state = sessions_.p2p(session);
  const SessionTable::Session& s = sessions_.session(session);
  uint32_t peer_address = 0;
  uint16_t peer_port = 0;
  bool has_peer = remote_peer(s, &peer_address, &peer_port);
  if (!(state.flags & P2pFlowState::kPeerLooked)) {
    state.flags |= P2pFlowState::kPeerLooked;
    if (has_peer) {
      P2pProtocol known = worker_.peers.find(peer_address, peer_port, now_s);
      // A peer's label holds for its protocols that are on, and for UDP only when UDP is inspected.
      bool udp_off = s.original.proto == IPPROTO_UDP && !worker_.inspector.config().udp;
      if (known != P2pProtocol::kNone && !udp_off && (worker_.inspector.config().protocols & p2p_bit(known))) {
        P2pInspector::label(state, known);
        counters_.from_peer_cache.add();
        return true;
      }
    }
  }
  const PacketMeta* meta = packet_meta(mbuf);
  const auto* ip = rte_pktmbuf_mtod_offset(mbuf, const rte_ipv4_hdr*, meta->l2_len);
  const uint8_t* l4 = reinterpret_cast<const uint8_t*>(ip) + meta->l3_len;
  uint32_t l4_length = std::min<uint32_t>(rte_be_to_cpu_16(ip->total_length),
                                          rte_pktmbuf_data_len(mbuf) - meta->l2_len) - meta->l3_len;
  uint32_t header = 0;
  P2pTransport transport;
  if (ip->next_proto_id == IPPROTO_TCP) {
    transport = P2pTransport::kTcp;
    header = l4_length >= sizeof(rte_tcp_hdr) ? (reinterpret_cast<const rte_tcp_hdr*>(l4)->data_off >> 4) * 4u : 0;
  } else if (ip->next_proto_id == IPPROTO_UDP) {
    transport = P2pTransport::kUdp;
    header = 8;
  } else {
    state.flags |= P2pFlowState::kDone;  // ICMP: nothing to recognise
    return false;
  }
  if (header == 0 || header > l4_length) return false;  // no payload, or a header cut short
  P2pInspectorCounters before = worker_.inspector.counters();
  P2pProtocol verdict = worker_.inspector.inspect(state, l4 + header, l4_length - header, transport, !reply);
  const P2pInspectorCounters& after = worker_.inspector.counters();
  counters_.scanned_packets.add(after.scanned_packets - before.scanned_packets);
  counters_.scanned_bytes.add(after.scanned_bytes - before.scanned_bytes);
  counters_.scan_errors.add(after.scan_errors - before.scan_errors);
  if (verdict == P2pProtocol::kNone) return false;
  if (has_peer) {
    uint64_t evicted = worker_.peers.evictions();
    worker_.peers.insert(peer_address, peer_port, verdict, now_s);
    counters_.peer_cache_evictions.add(worker_.peers.evictions() - evicted);
  }
  return true;
}

void P2pStage::process(Burst& burst) {
  // A reloaded signature set is taken up between bursts, never in the middle of a flow's packet.
  const P2pDatabaseVersion* version = dataplane_.database().current();
  if (version->generation != worker_.generation) {
    worker_.inspector.use(*version->database);
    worker_.generation = version->generation;
  }
  const P2pPolicyTable* policies = dataplane_.policies().current();
  const SubscriberMap* map = qos_ != nullptr ? qos_->map().current() : nullptr;
  const bool download = ports_.ports[burst.rx_port].role == PortRole::kWan;
  const uint64_t now_tsc = rte_rdtsc();
  const auto now_s = static_cast<uint32_t>(now_tsc / tsc_hz_);
  // The flow states lie apart from the session records nat just read: ask for all of the
  // burst's at once, so their cache misses overlap instead of coming one per packet.
  for (uint16_t i = 0; i < burst.count; ++i) {
    uint32_t session = packet_meta(burst.pkts[i])->nat_session;
    if (session != kNoNatSession) rte_prefetch0(&sessions_.p2p(session));
  }
  for (uint16_t i = 0; i < burst.count; ++i) {
    if (burst.action[i] != Action::kContinue && burst.action[i] != Action::kForward) continue;
    rte_mbuf* mbuf = burst.pkts[i];
    PacketMeta* meta = packet_meta(mbuf);
    if (meta->nat_session == kNoNatSession) continue;
    P2pFlowState& state = sessions_.p2p(meta->nat_session);
    bool new_verdict = !state.done() && recognise(mbuf, meta->nat_session, meta->nat_reply, now_s);
    if (state.protocol == P2pProtocol::kNone) continue;

    uint32_t pipe = SubscriberMap::kNoPipe;
    if (map != nullptr) pipe = map->find(sessions_.session(meta->nat_session).subscriber());
    const P2pPolicy& policy = policies->of(pipe);
    if (new_verdict && policy.action == P2pPolicy::Action::kDrop) state.flags |= P2pFlowState::kBlocked;
    const uint32_t slot = dataplane_.slot_of(pipe);
    const uint32_t bytes = rte_pktmbuf_pkt_len(mbuf);
    P2pWorkerCounters::Usage& protocol = counters_.protocols[static_cast<std::size_t>(state.protocol)];
    P2pWorkerCounters::Usage& subscriber = counters_.pipes[slot];
    if (new_verdict) {
      protocol.flows.add();
      subscriber.flows.add();
    }
    protocol.packets.add();
    protocol.bytes.add(bytes);
    subscriber.packets.add();
    subscriber.bytes.add(bytes);

    bool blocked = policy.action == P2pPolicy::Action::kDrop &&
                   ((state.flags & P2pFlowState::kBlocked) || policy.drop_marked);
    uint64_t cap = policy.action != P2pPolicy::Action::kCap ? 0 : download ? policy.cap_down_bps : policy.cap_up_bps;
    bool over_cap = cap != 0 && !dataplane_.caps().admit(slot, download, bytes, cap, now_tsc);
    if (blocked || over_cap) {
      protocol.dropped.add();
      subscriber.dropped.add();
      burst.drop(i, blocked ? DropReason::kP2pDropped : DropReason::kP2pCapped);
      continue;
    }
    meta->traffic_class = static_cast<uint8_t>(TrafficClass::kP2p);
  }
}

}  // namespace fairgate
