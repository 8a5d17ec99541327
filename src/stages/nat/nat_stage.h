// nat: NAT44 between the LAN and the WAN ports. Packets from the LAN to the internet leave with
// the WAN address (endpoint-independent mapping); replies and port-forwarded traffic to a WAN
// address are translated back. Sessions live in the worker's SessionTable; a packet whose
// session belongs to another worker is handed to it (the inside host's worker for outbound
// traffic, the external port's worker for inbound). Fast path: a bulk hash lookup per burst
// and a precomputed rewrite; misses take the slow path that creates the session.
#pragma once

#include "config/config.h"
#include "core/rcu_published.h"
#include "nat/flow_key.h"
#include "nat/port_forwards.h"
#include "nat/session_table.h"
#include "pipeline/stage.h"
#include "pipeline/worker_state.h"
#include "ports/ports.h"
#include "qos/subscriber_map.h"
#include "stages/l3/route_table.h"
#include "wan/wan_routing.h"

#include <rte_ip_frag.h>

#include <utility>
#include <vector>

namespace fairgate {

class NatStage final : public Stage {
 public:
  // `port_forwards`: the published rules; null to follow config.nat.port_forwards only.
  // `wan_routing`: which WAN new flows leave by (null: the default route's); `subscribers`:
  // the subscriber map, so that all addresses of one subscriber leave by one WAN (may be null).
  NatStage(const Config& config, const PortTable& ports, SessionTable& sessions, WorkerCounters& counters,
           uint16_t worker, uint16_t workers, const RcuPublished<PortForwardTable>* port_forwards = nullptr,
           const RcuPublished<WanRoutingTable>* wan_routing = nullptr,
           const RcuPublished<SubscriberMap>* subscribers = nullptr);
  ~NatStage() override;
  std::string_view name() const override { return "nat"; }
  void process(Burst& burst) override;

 private:
  // kIcmpError: an ICMP error about a translated flow; its key is the quoted packet's, reversed.
  enum class Path : uint8_t { kSkip, kOutbound, kInbound, kHairpin, kIcmpError };
  // Classifies one packet, fills its flow key; false with a drop reason when it must go.
  bool classify(Burst& burst, uint16_t i, FlowKey* key, Path* path, uint16_t* owner);
  void slow_path(Burst& burst, uint16_t i, const FlowKey& key, Path path, uint32_t now_s);
  void translate(Burst& burst, uint16_t i, uint32_t session, bool reply, uint32_t now_s);
  // RFC 5508: the outer header as a packet of the session's `reply` direction, the quoted
  // packet as one of the other direction, every checksum kept valid.
  void translate_icmp_error(Burst& burst, uint16_t i, uint32_t session, bool reply);
  bool classify_icmp_error(Burst& burst, uint16_t i, const uint8_t* icmp, uint32_t length, bool to_wan_address,
                           FlowKey* key, Path* path, uint16_t* owner);
  const PortForwardRule* forward_for(uint8_t proto, uint16_t port) const {
    return forwards_->current()->find(proto, port);
  }
  // Feeds a fragment to reassembly: the whole datagram once complete (the burst slot then holds
  // it), else false and the slot's packet is held by the reassembly table.
  bool reassemble(Burst& burst, uint16_t i);
  bool is_wan_address(uint32_t address, uint8_t* wan) const;

  const Config& config_;
  const PortTable& ports_;
  RouteTable routes_;
  SessionTable& sessions_;
  WorkerCounters& counters_;
  uint16_t worker_, workers_;
  uint8_t default_wan_;
  uint32_t default_wan_address_;
  std::vector<Ipv4Prefix> lan_prefixes_;
  // (address, port index) of every WAN port: checked for every packet, so kept compact.
  std::vector<std::pair<uint32_t, uint8_t>> wan_addresses_;
  uint64_t tsc_hz_;
  RcuPublished<PortForwardTable> own_forwards_;  // when no published table is given
  const RcuPublished<PortForwardTable>* forwards_;
  const RcuPublished<WanRoutingTable>* wan_routing_;
  const RcuPublished<SubscriberMap>* subscribers_;
  rte_ip_frag_tbl* fragments_ = nullptr;
  rte_ip_frag_death_row* death_row_ = nullptr;
};

}  // namespace fairgate
