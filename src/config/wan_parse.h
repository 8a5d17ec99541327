// The WAN parts of the configuration, parsed for config.cpp.
#pragma once

#include "config/config.h"
#include "config/json_path.h"

namespace fairgate {

// The "wan" section: links [{port, targets, weight, modem {id, interface, source}}], policy
// [{subscribers, wan: NAME | "balance"}], default, probes {...}, lpa {...}. Needs the ports.
WanConfig parse_wan(const JsonField& field, const Config& config);

}  // namespace fairgate
