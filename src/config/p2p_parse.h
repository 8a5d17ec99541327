// The P2P parts of the configuration, parsed for config.cpp.
#pragma once

#include "config/config.h"
#include "config/json_path.h"

namespace fairgate {

// The "p2p" section: signatures, protocols (IPP2P_OPTIONS), udp (IPP2P_UDP), packets_per_flow,
// peer_cache {peers, lifetime_s}, policy.
P2pConfig parse_p2p(const JsonField& field);

}  // namespace fairgate
