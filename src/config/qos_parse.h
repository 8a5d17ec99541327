// The fair-sharing parts of the configuration, parsed for config.cpp: per-port link rates and
// framing, the qos section, the subscriber list, and the checks across them.
#pragma once

#include "config/config.h"
#include "config/json_path.h"

namespace fairgate {

// rate, rate_down, rate_up, overhead, mpu of one port entry.
void parse_port_shaping(const JsonField& field, PortConfig& port);
QosConfig parse_qos(const JsonField& field);
std::vector<SubscriberConfig> parse_subscribers(const JsonField& field, const std::vector<Ipv4Prefix>& lan_prefixes);
// What only the whole configuration can tell: link rates present where shaping needs them,
// guarantees that fit the link, ceilings above guarantees.
void check_qos(const JsonField& root, const Config& config);

}  // namespace fairgate
