#include "ports/ports.h"

#include <rte_ethdev.h>

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace fairgate {
namespace {
[[noreturn]] void port_error(const PortConfig& port, const std::string& what, int code) {
  throw std::runtime_error("port " + port.name + " (" + port.device + "): " + what + ": " +
                           std::strerror(code < 0 ? -code : code));
}

PortInfo info_from_config(const PortConfig& port) {
  PortInfo info;
  info.name = port.name;
  info.role = port.role;
  info.prefix = port.address;
  info.gateway = port.gateway;
  info.mtu = port.mtu;
  info.vlan = port.vlan;
  info.rx_queues = port.rx_queues;
  info.tx_queues = port.tx_queues;
  if (port.device.starts_with("net_af_packet")) {
    auto at = port.device.find(",iface=");
    if (at != std::string::npos) {
      at += 7;
      info.kernel_interface = port.device.substr(at, port.device.find(',', at) - at);
    }
  }
  return info;
}
void open_each_port(const Config& config, rte_mempool* pool, PortTable& table) {
  for (const auto& port : config.ports) {
    auto info = info_from_config(port);
    auto device_name = port.device.substr(0, port.device.find(','));
    if (rte_eth_dev_get_port_by_name(device_name.c_str(), &info.dpdk_port) != 0)
      throw std::runtime_error("port " + port.name + ": DPDK has no device \"" + device_name +
                               "\" (is the PCI device bound to a DPDK driver, or the vdev's interface present?)");
    rte_eth_dev_info dev_info;
    if (int rc = rte_eth_dev_info_get(info.dpdk_port, &dev_info); rc != 0) port_error(port, "device info", rc);
    if (port.rx_queues > dev_info.max_rx_queues || port.tx_queues > dev_info.max_tx_queues)
      throw std::runtime_error("port " + port.name + ": needs " + std::to_string(port.rx_queues) + " RX and " +
                               std::to_string(port.tx_queues) + " TX queues, device has " +
                               std::to_string(dev_info.max_rx_queues) + "/" + std::to_string(dev_info.max_tx_queues));
    rte_eth_conf eth_conf{};
    if (port.rx_queues > 1 && dev_info.flow_type_rss_offloads != 0) {
      eth_conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      eth_conf.rx_adv_conf.rss_conf.rss_hf =
          (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & dev_info.flow_type_rss_offloads;
    }
    if (int rc = rte_eth_dev_configure(info.dpdk_port, port.rx_queues, port.tx_queues, &eth_conf); rc != 0)
      port_error(port, "configure", rc);
    uint16_t rx_descriptors = config.dataplane.rx_descriptors;
    uint16_t tx_descriptors = config.dataplane.tx_descriptors;
    if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(info.dpdk_port, &rx_descriptors, &tx_descriptors); rc != 0)
      port_error(port, "descriptor counts", rc);
    // The MTU is the IPv4 packet size; a device that cannot change it must already be at least that.
    if (int rc = rte_eth_dev_set_mtu(info.dpdk_port, port.mtu); rc != 0) {
      uint16_t current = 0;
      if (rte_eth_dev_get_mtu(info.dpdk_port, &current) != 0 || current < port.mtu)
        port_error(port, "set MTU " + std::to_string(port.mtu), rc);
    }
    int socket = rte_eth_dev_socket_id(info.dpdk_port);
    unsigned queue_socket = socket < 0 ? 0u : static_cast<unsigned>(socket);
    for (uint16_t q = 0; q < port.rx_queues; ++q)
      if (int rc = rte_eth_rx_queue_setup(info.dpdk_port, q, rx_descriptors, queue_socket, nullptr, pool); rc != 0)
        port_error(port, "RX queue " + std::to_string(q), rc);
    for (uint16_t q = 0; q < port.tx_queues; ++q)
      if (int rc = rte_eth_tx_queue_setup(info.dpdk_port, q, tx_descriptors, queue_socket, nullptr); rc != 0)
        port_error(port, "TX queue " + std::to_string(q), rc);
    if (int rc = rte_eth_macaddr_get(info.dpdk_port, &info.mac); rc != 0) port_error(port, "MAC address", rc);
    if (int rc = rte_eth_dev_start(info.dpdk_port); rc != 0) port_error(port, "start", rc);
    table.ports.push_back(info);
  }
}

}  // namespace

PortTable make_port_table(const Config& config) {
  PortTable table;
  for (std::size_t i = 0; i < config.ports.size(); ++i) {
    auto info = info_from_config(config.ports[i]);
    info.dpdk_port = static_cast<uint16_t>(i);
    info.mac = {{0x02, 0, 0, 0, 0, static_cast<uint8_t>(i + 1)}};
    table.ports.push_back(info);
  }
  return table;
}

PortTable open_ports(const Config& config, rte_mempool* pool) {
  PortTable table;
  try {
    open_each_port(config, pool, table);
  } catch (...) {
    close_ports(table);  // the ports started before the one that failed
    throw;
  }
  return table;
}


void close_ports(const PortTable& table) {
  for (const auto& port : table.ports) {
    rte_eth_dev_stop(port.dpdk_port);
    rte_eth_dev_close(port.dpdk_port);
  }
}

PortLink port_link(const PortInfo& port) {
  rte_eth_link link{};
  PortLink result;
  if (rte_eth_link_get_nowait(port.dpdk_port, &link) == 0) {
    result.up = link.link_status == RTE_ETH_LINK_UP;
    result.speed_mbps = link.link_speed;
  }
  if (!port.kernel_interface.empty() && port.kernel_interface.size() < IFNAMSIZ) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq request{};
    std::memcpy(request.ifr_name, port.kernel_interface.c_str(), port.kernel_interface.size());
    if (fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &request) == 0) result.up = (request.ifr_flags & IFF_RUNNING) != 0;
    if (fd >= 0) close(fd);
  }
  return result;
}

}  // namespace fairgate
