// The control commands of the foundation: version, command-list, ports, stats, neighbors,
// shutdown. Each reads the gateway's state; none touches what a worker owns except its
// counters, which are read without locks.
#include "app/gateway.h"
#include "core/ipv4.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_version.h>

namespace fairgate {
namespace {

using Json = nlohmann::ordered_json;

int port_argument(const JsonField& args, const PortTable& ports) {
  auto field = args.find("port");
  if (!field) return -1;
  auto name = field->string();
  for (std::size_t i = 0; i < ports.ports.size(); ++i)
    if (ports.ports[i].name == name) return static_cast<int>(i);
  field->fail("no port named \"" + name + "\"");
}

Json ports_result(const Gateway& gateway, const JsonField& args) {
  args.reject_unknown({"port"});
  int only = port_argument(args, gateway.ports());
  auto result = Json::array();
  for (std::size_t p = 0; p < gateway.ports().ports.size(); ++p) {
    if (only >= 0 && static_cast<int>(p) != only) continue;
    const auto& port = gateway.ports().ports[p];
    const auto& config = gateway.config().ports[p];
    PortLink link = port_link(port);
    rte_eth_stats stats{};
    rte_eth_stats_get(port.dpdk_port, &stats);
    uint64_t pipeline_drops = 0, tx_refused = 0;
    for (const auto& worker : gateway.workers()) {
      pipeline_drops += worker->counters().ports[p].rx_dropped.get();
      tx_refused += worker->counters().ports[p].tx_dropped.get();
    }
    Json row;
    row["name"] = port.name;
    row["role"] = port_role_name(port.role);
    row["device"] = config.device;
    row["link_up"] = link.up;
    row["speed_mbps"] = link.speed_mbps;
    row["mac"] = format_mac(port.mac.addr_bytes);
    row["address"] = format_prefix(port.prefix);
    row["gateway"] = port.gateway ? format_ipv4(port.gateway) : "";
    row["mtu"] = port.mtu;
    row["vlan"] = port.vlan;
    row["rx_queues"] = port.rx_queues;
    row["rx_packets"] = stats.ipackets;
    row["rx_bytes"] = stats.ibytes;
    row["tx_packets"] = stats.opackets;
    row["tx_bytes"] = stats.obytes;
    // Drops: by the device (no descriptor or buffer, errors) and by the pipeline (any reason).
    row["rx_missed"] = stats.imissed + stats.rx_nombuf;
    row["rx_errors"] = stats.ierrors;
    row["rx_dropped"] = pipeline_drops;
    row["tx_dropped"] = tx_refused + stats.oerrors;
    result.push_back(std::move(row));
  }
  return result;
}

Json stats_result(const Gateway& gateway) {
  Json result;
  result["uptime_s"] = gateway.uptime_s();
  std::array<uint64_t, kDropReasonCount> drops{};
  std::array<uint64_t, kPuntReasonCount> punts{};
  auto workers = Json::array();
  for (const auto& worker : gateway.workers()) {
    const auto& counters = worker->counters();
    for (std::size_t r = 0; r < kDropReasonCount; ++r) drops[r] += counters.drops[r].get();
    for (std::size_t r = 0; r < kPuntReasonCount; ++r) punts[r] += counters.punts[r].get();
    Json rx = Json::array();
    for (const auto& ref : worker->rx_queues())
      rx.push_back(gateway.ports().ports[ref.port].name + ":" + std::to_string(ref.queue));
    workers.push_back({{"worker", worker->index()},
                       {"rx", rx},
                       {"busy_polls", counters.busy_polls.get()},
                       {"idle_polls", counters.idle_polls.get()},
                       {"idle_sleeps", counters.idle_sleeps.get()}});
  }
  const auto& management = gateway.local().counters();
  for (std::size_t r = 0; r < kDropReasonCount; ++r) drops[r] += management.drops[r].get();
  drops[static_cast<std::size_t>(DropReason::kTxFull)] += gateway.sink_dropped();

  auto stages = Json::array();
  const std::pair<PortRole, const char*> directions[] = {{PortRole::kLan, "from_lan"}, {PortRole::kWan, "from_wan"}};
  for (const auto& [role, direction] : directions) {
    const auto& names = role == PortRole::kLan ? gateway.pipeline().from_lan : gateway.pipeline().from_wan;
    for (std::size_t s = 0; s < names.size(); ++s) {
      uint64_t packets = 0;
      for (const auto& worker : gateway.workers())
        packets += worker->counters().stage_packets[role == PortRole::kLan ? 0 : 1][s].get();
      stages.push_back({{"direction", direction}, {"stage", names[s]}, {"packets", packets}});
    }
  }
  Json drop_table, punt_table;
  uint64_t total_drops = 0;
  for (std::size_t r = 0; r < kDropReasonCount; ++r) {
    drop_table[std::string(drop_reason_name(static_cast<DropReason>(r)))] = drops[r];
    total_drops += drops[r];
  }
  for (std::size_t r = 0; r < kPuntReasonCount; ++r)
    punt_table[std::string(punt_reason_name(static_cast<PuntReason>(r)))] = punts[r];
  unsigned available = rte_mempool_avail_count(gateway.pool());
  result["pipeline"] = gateway.pipeline().name;
  result["drops_total"] = total_drops;
  result["drops"] = drop_table;
  result["punts"] = punt_table;
  result["stages"] = stages;
  result["workers"] = workers;
  result["management"] = {{"arp_requests_sent", management.arp_requests_sent.get()},
                          {"arp_replies_sent", management.arp_replies_sent.get()},
                          {"arp_announcements_sent", management.arp_announcements_sent.get()},
                          {"echo_replies_sent", management.echo_replies_sent.get()},
                          {"icmp_errors_sent", management.icmp_errors_sent.get()},
                          {"fragments_sent", management.fragments_sent.get()}};
  result["mempool"] = {{"size", gateway.config().dataplane.mbufs},
                       {"available", available},
                       {"in_use", gateway.config().dataplane.mbufs - available}};
  result["neighbors"] = gateway.local().neighbors().size();
  return result;
}

constexpr unsigned kJobTimeoutMs = 1000;

uint32_t worker_now_s() { return static_cast<uint32_t>(rte_rdtsc() / rte_get_tsc_hz()); }

uint8_t proto_argument(const JsonField& args) {
  auto field = args.find("proto");
  if (!field) return 0;
  auto name = field->string();
  if (name == "tcp") return IPPROTO_TCP;
  if (name == "udp") return IPPROTO_UDP;
  if (name == "icmp") return IPPROTO_ICMP;
  field->fail("must be \"tcp\", \"udp\" or \"icmp\", not \"" + name + "\"");
}

void require_nat(const Gateway& gateway) {
  for (const auto& worker : gateway.workers())
    if (worker->nat()) return;
  throw FieldError("command", "the pipeline " + gateway.pipeline().name + " has no nat stage");
}

Json nat_sessions_result(Gateway& gateway, const JsonField& args) {
  args.reject_unknown({"subscriber", "proto", "port", "page", "page_size"});
  require_nat(gateway);
  uint32_t subscriber = 0;
  if (auto field = args.find("subscriber")) {
    auto address = parse_ipv4(field->string());
    if (!address) field->fail("\"" + field->string() + "\" is not an IPv4 address");
    subscriber = *address;
  }
  uint8_t proto = proto_argument(args);
  uint16_t port = 0;
  if (auto field = args.find("port")) port = static_cast<uint16_t>(field->unsigned_in(1, 65535));
  std::size_t page = 1, page_size = 50;
  if (auto field = args.find("page")) page = field->unsigned_in(1, 1u << 24);
  if (auto field = args.find("page_size")) page_size = field->unsigned_in(1, 1000);
  // Each worker lists its own sessions on its own thread; pages run across the workers in order.
  std::size_t skip = (page - 1) * page_size, total = 0;
  Json rows = Json::array();
  for (const auto& worker : gateway.workers()) {
    SessionTable* nat = worker->nat();
    std::size_t matched = 0;
    bool answered = worker->run_job(
        [&] {
          nat->list(subscriber, proto, port, worker_now_s(), skip, page_size, &matched, rows);
        },
        kJobTimeoutMs, gateway.workers_running());
    if (!answered) throw std::runtime_error("worker " + std::to_string(worker->index()) + " did not answer");
    skip = matched >= skip ? 0 : skip - matched;
    total += matched;
  }
  return Json{{"total", total}, {"page", page}, {"page_size", page_size}, {"sessions", rows}};
}

Json nat_stats_result(Gateway& gateway) {
  require_nat(gateway);
  struct Sample {
    double time_s = 0;
    uint64_t created = 0;
  };
  static Sample previous;  // the management thread's own: creations per second between calls
  NatCounters sum;
  uint64_t sessions = 0, capacity = 0;
  std::size_t bytes_per_session = 0;
  Json workers = Json::array();
  for (const auto& worker : gateway.workers()) {
    SessionTable* nat = worker->nat();
    NatCounters counters;
    uint32_t size = 0;
    bool answered = worker->run_job(
        [&] {
          counters = nat->counters();
          size = nat->size();
        },
        kJobTimeoutMs, gateway.workers_running());
    if (!answered) throw std::runtime_error("worker " + std::to_string(worker->index()) + " did not answer");
    sessions += size;
    capacity += nat->capacity();
    bytes_per_session = nat->bytes_per_session();
    sum.created += counters.created;
    sum.expired += counters.expired;
    sum.reclaimed += counters.reclaimed;
    sum.refused_table_full += counters.refused_table_full;
    sum.refused_quota += counters.refused_quota;
    sum.refused_ports += counters.refused_ports;
    workers.push_back({{"worker", worker->index()}, {"sessions", size}, {"capacity", nat->capacity()},
                       {"created", counters.created}, {"expired", counters.expired}});
  }
  double now = gateway.uptime_s();
  double rate = now > previous.time_s ? static_cast<double>(sum.created - previous.created) / (now - previous.time_s) : 0;
  previous = {now, sum.created};
  Json drops;
  for (DropReason reason : {DropReason::kSpoofedSource, DropReason::kNatUnsolicited, DropReason::kNatFiltered,
                            DropReason::kNatTableFull, DropReason::kNatQuota, DropReason::kNatPortsExhausted,
                            DropReason::kNatTruncated, DropReason::kNatUnsupported, DropReason::kHandoffFull}) {
    uint64_t count = 0;
    for (const auto& worker : gateway.workers()) count += worker->counters().drops[static_cast<std::size_t>(reason)].get();
    drops[std::string(drop_reason_name(reason))] = count;
  }
  return Json{{"sessions", sessions},
              {"capacity", capacity},
              {"created", sum.created},
              {"created_per_s", rate},
              {"expired", sum.expired},
              {"reclaimed", sum.reclaimed},
              {"quota_hits", sum.refused_quota},
              {"refused_table_full", sum.refused_table_full},
              {"refused_ports_exhausted", sum.refused_ports},
              {"bytes_per_session", bytes_per_session},
              {"drops", drops},
              {"workers", workers}};
}

Json port_forward_row(std::size_t index, const PortForwardRule& rule) {
  auto range = [](uint16_t first, uint16_t last) {
    return first == last ? std::to_string(first) : std::to_string(first) + "-" + std::to_string(last);
  };
  return Json{{"rule", index},
              {"protocol", rule.tcp && rule.udp ? "both" : rule.tcp ? "tcp" : "udp"},
              {"external", range(rule.external_first, rule.external_last)},
              {"internal", format_ipv4(rule.internal)},
              {"internal_port",
               range(rule.internal_first,
                     static_cast<uint16_t>(rule.internal_first + (rule.external_last - rule.external_first)))}};
}

Json port_forward_list(const Gateway& gateway) {
  Json rows = Json::array();
  const auto& rules = gateway.port_forwards().rules;
  for (std::size_t i = 0; i < rules.size(); ++i) rows.push_back(port_forward_row(i + 1, rules[i]));
  return rows;
}

}  // namespace

void register_commands(CommandRegistry& commands, Gateway& gateway) {
  commands.add("version", "fairgate's version, the DPDK it runs on and its pipeline", [&](const JsonField& args) {
    args.reject_unknown({});
    return Json{{"name", "fairgate"},
                {"version", FAIRGATE_VERSION},
                {"dpdk", rte_version()},
                {"pipeline", gateway.pipeline().name},
                {"workers", gateway.workers().size()}};
  });
  commands.add("command-list", "every command with its help", [&commands](const JsonField& args) {
    args.reject_unknown({});
    return commands.list();
  });
  commands.add("ports", "ports: link, addresses, packets, bytes and drops; args: port (name, optional)",
               [&](const JsonField& args) { return ports_result(gateway, args); });
  commands.add("stats", "packets per stage, drops and punts by reason (all workers), pool usage",
               [&](const JsonField& args) {
                 args.reject_unknown({});
                 return stats_result(gateway);
               });
  commands.add("neighbors", "the ARP neighbour table; args: port (name, optional)", [&](const JsonField& args) {
    args.reject_unknown({"port"});
    int only = port_argument(args, gateway.ports());
    std::vector<std::string> names;
    for (const auto& port : gateway.ports().ports) names.push_back(port.name);
    return gateway.local().neighbors().to_json(names, gateway.now_ms(), only);
  });
  commands.add("nat-sessions",
               "NAT sessions: inside, outside, remote, state, idle time, bytes; args: subscriber, proto "
               "(tcp|udp|icmp), port, page (from 1), page_size (default 50)",
               [&](const JsonField& args) { return nat_sessions_result(gateway, args); });
  commands.add("nat-stats", "NAT sessions, creations per second, reclaims, quota hits and drops by reason",
               [&](const JsonField& args) {
                 args.reject_unknown({});
                 return nat_stats_result(gateway);
               });
  commands.add("portfwd-list", "port forwards, numbered", [&](const JsonField& args) {
    args.reject_unknown({});
    return port_forward_list(gateway);
  });
  commands.add("portfwd-add",
               "add a port forward; args: protocol (tcp|udp|both), external (port or first-last), internal "
               "(LAN host), internal_port (optional); touches no session",
               [&](const JsonField& args) {
                 require_nat(gateway);
                 PortForwardRule rule = parse_port_forward(args, gateway.config().lan_prefixes());
                 auto rules = gateway.port_forwards().rules;
                 for (std::size_t i = 0; i < rules.size(); ++i)
                   if (rule.overlaps(rules[i]))
                     args.fail("overlaps port forward " + std::to_string(i + 1) + " (" +
                               port_forward_row(i + 1, rules[i])["protocol"].get<std::string>() + " " +
                               port_forward_row(i + 1, rules[i])["external"].get<std::string>() + ")");
                 rules.push_back(rule);
                 gateway.set_port_forwards(std::move(rules));
                 return port_forward_list(gateway);
               });
  commands.add("portfwd-del", "remove a port forward; args: rule (its number in portfwd-list); sessions stay",
               [&](const JsonField& args) {
                 args.reject_unknown({"rule"});
                 auto rules = gateway.port_forwards().rules;
                 if (rules.empty()) throw FieldError("args.rule", "there are no port forwards");
                 auto index = args.at("rule").unsigned_in(1, rules.size());
                 rules.erase(rules.begin() + static_cast<std::ptrdiff_t>(index - 1));
                 gateway.set_port_forwards(std::move(rules));
                 return port_forward_list(gateway);
               });
  register_qos_commands(commands, gateway);
  register_p2p_commands(commands, gateway);
  register_wan_commands(commands, gateway);
  register_flow_commands(commands, gateway);
  commands.add("shutdown", "stop fairgate cleanly (every packet buffer back in its pool)", [&](const JsonField& args) {
    args.reject_unknown({});
    gateway.request_stop();
    return Json{{"stopping", true}};
  });
}

}  // namespace fairgate
