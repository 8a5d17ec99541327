// Per-worker P2P inspection: scans the first payload packets of each flow against the signature
// database and keeps the verdict in a small state the flow carries (the NAT session, as
// CONNMARK did for IPP2P). Once a flow has a verdict, or N payload packets have been scanned in
// each direction, inspect() returns at its first test. One Hyperscan scratch per inspector;
// nothing is allocated per packet.
#pragma once

#include "classify/p2p_signatures.h"

#include <hs/hs_runtime.h>

#include <cstdint>

namespace fairgate {

// What a flow carries: 8 bytes, zero-initialised for a new flow.
struct P2pFlowState {
  static constexpr uint8_t kDone = 1;       // verdict given, or both directions past N packets
  static constexpr uint8_t kFromCache = 2;  // verdict from the peer cache, not from the payload
  // Kept by the gateway's P2P stage, not the inspector:
  static constexpr uint8_t kPeerLooked = 4;  // the peer cache was asked about the flow
  static constexpr uint8_t kBlocked = 8;     // recognised under a drop policy: dropped while it holds

  uint8_t inspected[2] = {0, 0};               // payload packets scanned: [0] from the client, [1] from the server
  P2pProtocol protocol = P2pProtocol::kNone;   // the verdict
  uint8_t flags = 0;
  P2pProtocolMask partial[2] = {0, 0};         // protocols of unconfirmed matches, by direction

  bool done() const { return flags & kDone; }
};
static_assert(sizeof(P2pFlowState) == 8);

struct P2pInspectorConfig {
  uint8_t packets_per_direction = 8;          // N: payload packets scanned from each side, 1..255
  P2pProtocolMask protocols = kAllP2pProtocols;  // matches of other protocols are ignored (IPP2P_OPTIONS)
  bool udp = true;                             // false: UDP flows are not inspected (IPP2P_UDP)
};

struct P2pInspectorCounters {
  uint64_t scanned_packets = 0;
  uint64_t scanned_bytes = 0;
  uint64_t verdicts = 0;
  uint64_t scan_errors = 0;  // Hyperscan failures (none expected); the packet counts as scanned
};

class P2pInspector {
 public:
  // `database` must outlive the inspector, or be replaced through use() first.
  P2pInspector(const P2pDatabase& database, const P2pInspectorConfig& config);
  ~P2pInspector();
  P2pInspector(const P2pInspector&) = delete;
  P2pInspector& operator=(const P2pInspector&) = delete;

  // Control path, between bursts: scan with another database from now on. The scratch grows
  // if the new database needs more (the only allocation after construction).
  void use(const P2pDatabase& database);
  void configure(const P2pInspectorConfig& config) { config_ = config; }
  const P2pInspectorConfig& config() const { return config_; }

  // One packet of a flow: `payload` and `length` (bytes) are the transport payload as far as it
  // was captured; `from_client` says whether it comes from the flow's initiator. Returns the
  // flow's verdict after this packet (kNone while unknown). When the verdict is given by this
  // packet and `signature` is not null, it receives the id of the signature that decided.
  P2pProtocol inspect(P2pFlowState& state, const uint8_t* payload, uint32_t length, P2pTransport transport,
                      bool from_client, unsigned* signature = nullptr) {
    if (state.flags & P2pFlowState::kDone) return state.protocol;
    return inspect_slow(state, payload, length, transport, from_client, signature);
  }

  // A verdict from elsewhere (the peer cache): the flow is labelled and inspection ends.
  static void label(P2pFlowState& state, P2pProtocol protocol) {
    state.protocol = protocol;
    state.flags |= P2pFlowState::kDone | P2pFlowState::kFromCache;
  }

  const P2pInspectorCounters& counters() const { return counters_; }

 private:
  P2pProtocol inspect_slow(P2pFlowState& state, const uint8_t* payload, uint32_t length, P2pTransport transport,
                           bool from_client, unsigned* signature);

  const P2pDatabase* database_;
  hs_scratch_t* scratch_ = nullptr;
  P2pInspectorConfig config_;
  P2pInspectorCounters counters_;
};

}  // namespace fairgate
