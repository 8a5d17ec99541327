// The "flows" section: flow accounting timeouts, export to collectors, live streams.
#include "config/flow_parse.h"
#include "core/ipv4.h"

namespace fairgate {

FlowConfig parse_flows(const JsonField& field) {
  field.reject_unknown({"inactive_timeout_s", "active_timeout_s", "ring_records", "export", "watch"});
  FlowConfig flows;
  flows.configured = true;
  if (auto f = field.find("inactive_timeout_s")) flows.inactive_timeout_s = static_cast<uint32_t>(f->unsigned_in(1, 86400));
  if (auto f = field.find("active_timeout_s")) flows.active_timeout_s = static_cast<uint32_t>(f->unsigned_in(1, 86400));
  if (auto f = field.find("ring_records")) {
    flows.ring_records = static_cast<uint32_t>(f->unsigned_in(64, 1u << 20));
    if ((flows.ring_records & (flows.ring_records - 1)) != 0) f->fail("must be a power of 2");
  }
  if (auto ex = field.find("export")) {
    ex->reject_unknown({"collectors", "observation_domain", "template_refresh_s", "template_refresh_messages",
                        "max_records_per_s", "source_port", "nat_events"});
    if (auto list = ex->find("collectors")) {
      if (!list->is_array()) list->fail("must be a list of {\"address\", \"port\", \"format\"}");
      for (std::size_t i = 0; i < list->size(); ++i) {
        JsonField entry = list->at(i);
        entry.reject_unknown({"address", "port", "format"});
        FlowCollectorConfig collector;
        JsonField address = entry.at("address");
        auto parsed = parse_ipv4(address.string());
        if (!parsed || *parsed == 0) address.fail("must be an IPv4 address such as 192.0.2.20");
        collector.address = *parsed;
        if (auto f = entry.find("port")) collector.port = static_cast<uint16_t>(f->unsigned_in(1, 65535));
        if (auto f = entry.find("format"))
          collector.netflow_v9 = f->one_of<bool>({{"ipfix", false}, {"netflow9", true}},
                                                 "must be \"ipfix\" (RFC 7011) or \"netflow9\" (RFC 3954)");
        flows.collectors.push_back(collector);
      }
    }
    if (auto f = ex->find("observation_domain")) flows.observation_domain = static_cast<uint32_t>(f->unsigned_in(0, UINT32_MAX));
    if (auto f = ex->find("template_refresh_s")) flows.template_refresh_s = static_cast<uint32_t>(f->unsigned_in(1, 86400));
    if (auto f = ex->find("template_refresh_messages"))
      flows.template_refresh_messages = static_cast<uint32_t>(f->unsigned_in(1, 1000000));
    if (auto f = ex->find("max_records_per_s")) flows.max_records_per_s = static_cast<uint32_t>(f->unsigned_in(1, 100000000));
    if (auto f = ex->find("source_port")) flows.source_port = static_cast<uint16_t>(f->unsigned_in(1, 65535));
    if (auto f = ex->find("nat_events")) flows.nat_events = f->boolean();
  }
  if (auto watch = field.find("watch")) {
    watch->reject_unknown({"max_watchers", "buffer_kb"});
    if (auto f = watch->find("max_watchers")) flows.max_watchers = static_cast<uint32_t>(f->unsigned_in(1, 64));
    if (auto f = watch->find("buffer_kb")) flows.watch_buffer_bytes = static_cast<uint32_t>(f->unsigned_in(16, 65536) * 1024);
  }
  return flows;
}

}  // namespace fairgate
