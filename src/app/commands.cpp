// The control commands of the foundation: version, command-list, ports, stats, neighbors,
// shutdown. Each reads the gateway's state; none touches what a worker owns except its
// counters, which are read without locks.
#include "app/gateway.h"
#include "core/ipv4.h"

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
    rte_eth_link link{};
    rte_eth_link_get_nowait(port.dpdk_port, &link);
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
    row["link_up"] = link.link_status == RTE_ETH_LINK_UP;
    row["speed_mbps"] = link.link_speed;
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
  commands.add("shutdown", "stop fairgate cleanly (every packet buffer back in its pool)", [&](const JsonField& args) {
    args.reject_unknown({});
    gateway.request_stop();
    return Json{{"stopping", true}};
  });
}

}  // namespace fairgate
