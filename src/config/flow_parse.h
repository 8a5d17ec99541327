// The flow monitoring part of the configuration, parsed for config.cpp.
#pragma once

#include "config/config.h"
#include "config/json_path.h"

namespace fairgate {

// The "flows" section: inactive_timeout_s, active_timeout_s, ring_records, export {collectors
// [{address, port, format}], observation_domain, template_refresh_s, template_refresh_messages,
// max_records_per_s, source_port, nat_events}, watch {max_watchers, buffer_kb}.
FlowConfig parse_flows(const JsonField& field);

}  // namespace fairgate
