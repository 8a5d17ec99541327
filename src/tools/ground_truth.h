// Per-flow labels from another classifier (nDPI's ground_truth_flows.tsv, one row per
// bidirectional flow of each capture), and what they mean for P2P recognition.
#pragma once

#include "classify/p2p_signatures.h"
#include "tools/packet_decode.h"

#include <istream>
#include <string>
#include <string_view>
#include <vector>

namespace fairgate::tools {

struct TruthFlow {
  std::string dir;   // the capture's folder: "p2p", "nonp2p", ...
  std::string pcap;  // file name without folder
  std::string flow_no;
  std::string l4;    // "TCP", "UDP", "ICMP"...
  uint8_t protocol = 0;  // IPPROTO_TCP or IPPROTO_UDP; 0 for the others
  Endpoint a, b;     // as listed; a is not always the initiator
  bool endpoints_valid = false;  // both parsed as address:port
  uint16_t vlan = 0;
  std::string ndpi_proto;  // "37/BitTorrent", "7.37/HTTP.BitTorrent"
  std::string confidence;  // "DPI", "DPI (cache)", "Match by port", "Unknown"...
  P2pProtocol label = P2pProtocol::kNone;  // what ndpi_proto means here; kNone: not P2P

  // Found by payload inspection, not by port, address or a cache of earlier flows.
  bool payload_evidence() const { return confidence == "DPI"; }
};

// The P2P protocol an nDPI label names ("37/BitTorrent", "7.37/HTTP.BitTorrent" and
// "5.37/DNS.BitTorrent" are BitTorrent; "7/HTTP" is not P2P), kNone when it names none.
P2pProtocol p2p_protocol_of_ndpi(std::string_view ndpi_proto);

// Reads the TSV (header line first; columns found by name: dir, pcap, flow_no, l4, endpoint_a,
// endpoint_b, vlan, ndpi_proto, confidence). Throws std::runtime_error naming `source` and the
// line of a row it cannot read (too few columns, a bad VLAN id).
std::vector<TruthFlow> read_ground_truth(std::istream& in, const std::string& source);

}  // namespace fairgate::tools
