// The ports fairgate forwards between, as opened in DPDK. Built once at start and read-only
// while the workers run, so workers read it without synchronisation.
#pragma once

#include "config/config.h"

#include <rte_ether.h>
#include <rte_mempool.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fairgate {

inline constexpr uint16_t kMaxPorts = 8;

struct PortInfo {
  std::string name;
  PortRole role = PortRole::kLan;
  uint16_t dpdk_port = 0;     // DPDK port id
  rte_ether_addr mac{};       // the port's MAC, source of every frame it sends
  Ipv4Prefix prefix;          // own address (host order) and connected prefix
  uint32_t gateway = 0;       // host order, 0 = none
  uint16_t mtu = 1500;        // largest IPv4 packet, bytes
  uint16_t vlan = 0;          // 802.1Q id, 0 = untagged
  uint16_t rx_queues = 0;
  uint16_t tx_queues = 0;
  // The kernel interface a net_af_packet device sits on ("iface=" in its arguments), empty
  // for other devices: its carrier is the port's (see port_link).
  std::string kernel_interface;
};

struct PortTable {
  std::vector<PortInfo> ports;  // indexed like Config::ports

  // Index of the port whose own address is `ip` (host order), or -1.
  int owner_of(uint32_t ip) const {
    for (std::size_t i = 0; i < ports.size(); ++i)
      if (ports[i].prefix.address == ip) return static_cast<int>(i);
    return -1;
  }
};

// A port table without DPDK (unit tests, the offline tools): MACs 02:00:00:00:00:<index+1>.
PortTable make_port_table(const Config& config);

// Configures and starts every port of the config on DPDK: one TX queue per worker, the RX
// queues the workers poll, RSS when there is more than one. Throws std::runtime_error naming
// the port on failure.
PortTable open_ports(const Config& config, rte_mempool* pool);
void close_ports(const PortTable& table);

struct PortLink {
  bool up = false;
  uint32_t speed_mbps = 0;
};
// The port's link now, without waiting. A net_af_packet device always says "up" (the PMD does
// not follow its interface), so its kernel interface's carrier (IFF_RUNNING) decides there:
// a cable pulled behind a veth or a bridge must be seen like one pulled from a NIC.
PortLink port_link(const PortInfo& port);

}  // namespace fairgate
