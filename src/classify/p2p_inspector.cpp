#include "classify/p2p_inspector.h"

#include <new>
#include <stdexcept>
#include <string>

namespace fairgate {
namespace {

// What the match callback needs about the packet being scanned, and what it found.
struct ScanContext {
  const P2pDatabase* database;
  const uint8_t* payload;
  uint32_t length;
  P2pTransport transport;
  unsigned side;                  // 0: from the client, 1: from the server
  P2pProtocolMask enabled;
  P2pProtocolMask earlier;        // unconfirmed matches in earlier packets, either side
  P2pProtocolMask other_side;     // unconfirmed matches in earlier packets from the other side
  P2pProtocolMask unconfirmed = 0;  // this packet's matches still waiting for confirmation
  P2pProtocol verdict = P2pProtocol::kNone;
  unsigned signature = 0;
};

bool length_agrees(const P2pLengthCheck& check, const uint8_t* payload, uint32_t length) {
  if (static_cast<uint32_t>(check.offset) + check.size > length) return false;
  const uint8_t* field = payload + check.offset;
  uint32_t value = 0;
  for (unsigned i = 0; i < check.size; ++i)
    value = check.little_endian ? value | static_cast<uint32_t>(field[i]) << (8 * i) : value << 8 | field[i];
  int64_t message = static_cast<int64_t>(value) + check.add;
  return check.equal ? message == length : message > 0 && message <= length;
}

int on_match(unsigned int id, unsigned long long /*from*/, unsigned long long /*to*/, unsigned int /*flags*/,
             void* context) {
  auto& scan = *static_cast<ScanContext*>(context);
  const P2pDatabase::Entry& entry = scan.database->entry(id);
  // One database holds both transports and both sides: the few anchored patterns of the other
  // transport cost less to skip here than a second scan would.
  if (entry.transport != scan.transport) return 0;
  if (entry.direction == P2pDirection::kClient && scan.side != 0) return 0;
  if (entry.direction == P2pDirection::kServer && scan.side != 1) return 0;
  P2pProtocolMask bit = p2p_bit(entry.protocol);
  if (!(scan.enabled & bit)) return 0;
  if (entry.length.present && !length_agrees(entry.length, scan.payload, scan.length)) return 0;
  if ((entry.confirm == P2pConfirm::kOtherDirection && !(scan.other_side & bit)) ||
      (entry.confirm == P2pConfirm::kAnotherPacket && !(scan.earlier & bit))) {
    scan.unconfirmed |= bit;
    return 0;
  }
  scan.verdict = entry.protocol;
  scan.signature = id;
  return 1;  // the verdict is given: stop scanning
}

}  // namespace

P2pInspector::P2pInspector(const P2pDatabase& database, const P2pInspectorConfig& config)
    : database_(&database), config_(config) {
  use(database);
}

P2pInspector::~P2pInspector() { hs_free_scratch(scratch_); }

void P2pInspector::use(const P2pDatabase& database) {
  // Given the scratch it already has, Hyperscan keeps it when it suits the new database too.
  if (hs_alloc_scratch(database.database(), &scratch_) != HS_SUCCESS) throw std::bad_alloc();
  database_ = &database;
}

P2pProtocol P2pInspector::inspect_slow(P2pFlowState& state, const uint8_t* payload, uint32_t length,
                                       P2pTransport transport, bool from_client, unsigned* signature) {
  // TCP segments without data (handshake, ACKs) are not payload packets and do not count.
  if (length == 0 || payload == nullptr) return P2pProtocol::kNone;
  if (transport == P2pTransport::kUdp && !config_.udp) return P2pProtocol::kNone;
  unsigned side = from_client ? 0 : 1;
  uint8_t limit = config_.packets_per_direction;
  if (state.inspected[side] >= limit) return P2pProtocol::kNone;
  ++state.inspected[side];

  ScanContext scan{database_,
                   payload,
                   length,
                   transport,
                   side,
                   config_.protocols,
                   static_cast<P2pProtocolMask>(state.partial[0] | state.partial[1]),
                   state.partial[side ^ 1]};
  hs_error_t status = hs_scan(database_->database(), reinterpret_cast<const char*>(payload), length, 0, scratch_,
                              on_match, &scan);
  ++counters_.scanned_packets;
  counters_.scanned_bytes += length;
  if (status != HS_SUCCESS && status != HS_SCAN_TERMINATED) ++counters_.scan_errors;

  if (scan.verdict != P2pProtocol::kNone) {
    state.protocol = scan.verdict;
    state.flags |= P2pFlowState::kDone;
    ++counters_.verdicts;
    if (signature != nullptr) *signature = scan.signature;
    return scan.verdict;
  }
  state.partial[side] |= scan.unconfirmed;
  if (state.inspected[0] >= limit && state.inspected[1] >= limit) state.flags |= P2pFlowState::kDone;
  return P2pProtocol::kNone;
}

}  // namespace fairgate
