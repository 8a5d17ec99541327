// p2p: recognises peer-to-peer file sharing by payload (the worker's P2pInspector over the first
// packets of each flow, and its peer cache for later flows to the same peers), keeps the verdict
// on the NAT session, and applies the subscriber's policy: the P2P class (lowest), a rate cap, or
// drop. Place it after nat (it needs the session) and after classify (it overrides the class).
#pragma once

#include "classify/p2p_dataplane.h"
#include "classify/p2p_inspector.h"
#include "classify/peer_cache.h"
#include "nat/session_table.h"
#include "pipeline/stage.h"
#include "pipeline/worker_state.h"
#include "ports/ports.h"
#include "qos/qos_dataplane.h"

namespace fairgate {

class P2pStage final : public Stage {
 public:
  // `qos` (may be null) tells each host's subscriber pipe, for per-subscriber policies.
  P2pStage(const PortTable& ports, P2pDataplane& dataplane, SessionTable& sessions, const QosDataplane* qos,
           WorkerCounters& worker_counters, uint16_t worker);
  std::string_view name() const override { return "p2p"; }
  void process(Burst& burst) override;

 private:
  // Gives the flow of packet `mbuf` its verdict if it can: the peer cache on its first packet,
  // then the payload of its first packets. Returns whether the verdict came with this packet.
  bool recognise(rte_mbuf* mbuf, uint32_t session, bool reply, uint32_t now_s);
  // The remote endpoint worth remembering for a flow: where a peer listens. False for flows
  // whose remote port says nothing (a TCP connection a peer opened to us).
  static bool remote_peer(const SessionTable::Session& session, uint32_t* address, uint16_t* port);

  const PortTable& ports_;
  P2pDataplane& dataplane_;
  SessionTable& sessions_;
  const QosDataplane* qos_;
  WorkerCounters& worker_counters_;
  P2pWorkerCounters& counters_;
  P2pWorkerState& worker_;  // shared with the worker's other pipeline's p2p stage
  uint64_t tsc_hz_;
};

}  // namespace fairgate
