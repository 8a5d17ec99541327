#include "config/config.h"

#include "config/json_path.h"
#include "config/flow_parse.h"
#include "config/p2p_parse.h"
#include "config/qos_parse.h"
#include "config/wan_parse.h"

#include <cstdlib>
#include <set>

namespace fairgate {
namespace {

constexpr unsigned kMaxWorkers = 16;
constexpr unsigned kMaxPorts = 8;
constexpr unsigned kMaxQueuesPerPort = 16;

// Virtual devices fairgate knows how to run on; anything else must be a PCI address.
constexpr std::string_view kVdevDrivers[] = {"net_af_packet", "net_tap", "net_pcap", "net_memif",
                                             "net_ring", "net_af_xdp"};

void parse_device(const JsonField& field, PortConfig& port) {
  port.device = field.string();
  if (port.device.empty()) field.fail("must not be empty");
  if (port.is_vdev()) {
    auto driver = std::string_view(port.device).substr(0, port.device.find(','));
    // A vdev name is the driver plus an instance number, e.g. net_af_packet0.
    while (!driver.empty() && driver.back() >= '0' && driver.back() <= '9') driver.remove_suffix(1);
    for (auto known : kVdevDrivers)
      if (driver == known) return;
    field.fail("unknown virtual device driver \"" + std::string(driver) +
               "\" (known: net_af_packet, net_tap, net_pcap, net_memif, net_ring, net_af_xdp)");
  }
  // PCI: domain:bus:device.function or bus:device.function, hex digits.
  auto& text = port.device;
  bool looks_pci = text.find(':') != std::string::npos && text.find('.') != std::string::npos &&
                   text.find_first_not_of("0123456789abcdefABCDEF:.") == std::string::npos;
  if (!looks_pci)
    field.fail("\"" + text + "\" is neither a PCI address (0000:03:00.0) nor a vdev (net_af_packet0,iface=eth0)");
}

PortConfig parse_port(const JsonField& field) {
  field.reject_unknown({"name", "role", "device", "address", "gateway", "mtu", "vlan", "rate", "rate_down", "rate_up",
                        "overhead", "mpu"});
  PortConfig port;
  port.name = field.at("name").string();
  if (port.name.empty() || port.name.size() > 15) field.at("name").fail("must be 1 to 15 characters");
  auto role = field.at("role");
  auto role_text = role.string();
  if (role_text == "lan")
    port.role = PortRole::kLan;
  else if (role_text == "wan")
    port.role = PortRole::kWan;
  else
    role.fail("must be \"lan\" or \"wan\", not \"" + role_text + "\"");
  parse_device(field.at("device"), port);

  auto address = field.at("address");
  auto prefix = parse_ipv4_prefix(address.string());
  if (!prefix || prefix->length == 0 || prefix->length > 30)
    address.fail("\"" + address.string() + "\" is not an IPv4 address with a prefix length of 1..30 (10.10.0.1/24)");
  if (prefix->address == prefix->network() || prefix->address == prefix->broadcast())
    address.fail("\"" + address.string() + "\" is the network or broadcast address of its prefix");
  port.address = *prefix;

  if (auto gateway = field.find("gateway")) {
    auto ip = parse_ipv4(gateway->string());
    if (!ip) gateway->fail("\"" + gateway->string() + "\" is not an IPv4 address");
    if (!port.address.contains(*ip) || *ip == port.address.address)
      gateway->fail("\"" + gateway->string() + "\" is not another address inside " + format_prefix(port.address));
    port.gateway = *ip;
  } else if (port.role == PortRole::kWan) {
    throw FieldError(field.path() + ".gateway", "required on a wan port");
  }
  if (auto mtu = field.find("mtu")) port.mtu = static_cast<uint16_t>(mtu->unsigned_in(576, 9000));
  if (auto vlan = field.find("vlan")) port.vlan = static_cast<uint16_t>(vlan->unsigned_in(0, 4094));
  parse_port_shaping(field, port);
  return port;
}

int port_index(const Config& config, const std::string& name) {
  for (std::size_t i = 0; i < config.ports.size(); ++i)
    if (config.ports[i].name == name) return static_cast<int>(i);
  return -1;
}

void parse_workers(const JsonField& field, Config& config) {
  if (field.is_number()) {
    // Shorthand: N workers, worker w polls queue w of every port (RSS spreads flows).
    auto count = field.unsigned_in(1, kMaxWorkers);
    config.workers.assign(count, {});
    for (uint16_t w = 0; w < count; ++w)
      for (uint16_t p = 0; p < config.ports.size(); ++p) config.workers[w].rx.push_back({p, w});
    return;
  }
  auto count = field.size();
  if (count == 0 || count > kMaxWorkers)
    field.fail("must list 1 to " + std::to_string(kMaxWorkers) + " workers, or be a number");
  std::set<std::pair<uint16_t, uint16_t>> taken;
  for (std::size_t w = 0; w < count; ++w) {
    auto worker = field.at(w);
    worker.reject_unknown({"rx"});
    auto rx = worker.at("rx");
    WorkerConfig parsed;
    for (std::size_t i = 0; i < rx.size(); ++i) {
      auto ref = rx.at(i);
      ref.reject_unknown({"port", "queue"});
      auto name = ref.at("port").string();
      int port = port_index(config, name);
      if (port < 0) ref.at("port").fail("no port named \"" + name + "\"");
      auto queue = static_cast<uint16_t>(ref.at("queue").unsigned_in(0, kMaxQueuesPerPort - 1));
      if (!taken.insert({static_cast<uint16_t>(port), queue}).second)
        ref.fail(name + " queue " + std::to_string(queue) + " is polled by two workers");
      parsed.rx.push_back({static_cast<uint16_t>(port), queue});
    }
    config.workers.push_back(std::move(parsed));
  }
}

// Derives queue counts per port and checks that every RX queue a port will have is polled:
// an af_packet queue nobody polls still receives its share of the fanout and loses it.
void derive_queues(const JsonField& field, Config& config) {
  for (auto& port : config.ports) port.rx_queues = 0;
  for (const auto& worker : config.workers)
    for (const auto& ref : worker.rx) {
      auto& port = config.ports[ref.port];
      port.rx_queues = std::max<uint16_t>(port.rx_queues, static_cast<uint16_t>(ref.queue + 1));
    }
  std::set<std::pair<uint16_t, uint16_t>> polled;
  for (const auto& worker : config.workers)
    for (const auto& ref : worker.rx) polled.insert({ref.port, ref.queue});
  for (uint16_t p = 0; p < config.ports.size(); ++p) {
    auto& port = config.ports[p];
    if (port.rx_queues == 0) field.fail("no worker polls port " + port.name);
    for (uint16_t q = 0; q < port.rx_queues; ++q)
      if (!polled.count({p, q}))
        field.fail("queue " + std::to_string(q) + " of port " + port.name + " is polled by no worker");
    port.tx_queues = static_cast<uint16_t>(config.workers.size());
    if (port.is_af_packet()) {
      // af_packet has queue pairs: as many RX sockets as TX queues, and each must be polled.
      if (port.rx_queues < port.tx_queues)
        field.fail("port " + port.name + " (af_packet) needs " + std::to_string(port.tx_queues) +
                   " polled RX queues, one per worker, because its queues come in pairs");
      auto qpairs = port.device.find("qpairs=");
      if (qpairs == std::string::npos) {
        port.device += ",qpairs=" + std::to_string(port.rx_queues);
      } else if (std::atoi(port.device.c_str() + qpairs + 7) != port.rx_queues) {
        field.fail("port " + port.name + " device says " + port.device.substr(qpairs) + " but " +
                   std::to_string(port.rx_queues) + " RX queues are polled");
      }
    }
  }
}

void check_port_set(const JsonField& field, const Config& config) {
  std::set<std::string> names, devices;
  for (std::size_t i = 0; i < config.ports.size(); ++i) {
    auto entry = field.at(i);
    const auto& port = config.ports[i];
    if (!names.insert(port.name).second) entry.at("name").fail("\"" + port.name + "\" is used by two ports");
    auto device_name = port.device.substr(0, port.device.find(','));
    if (!devices.insert(device_name).second)
      entry.at("device").fail("\"" + device_name + "\" is used by two ports");
    for (std::size_t j = 0; j < i; ++j) {
      const auto& other = config.ports[j];
      if (other.vlan == port.vlan && (port.address.contains(other.address.address) ||
                                      other.address.contains(port.address.address)))
        entry.at("address").fail(format_prefix(port.address) + " overlaps port " + other.name + "'s " +
                                 format_prefix(other.address));
    }
  }
  if (config.first_port(PortRole::kLan) < 0) field.fail("needs at least one port with role \"lan\"");
  if (config.first_port(PortRole::kWan) < 0) field.fail("needs at least one port with role \"wan\"");
}

std::pair<uint16_t, uint16_t> parse_port_range(const JsonField& field) {
  // A number, or "first-last" / "first:last" (FairNAT writes ranges with ':').
  if (field.is_number()) {
    auto port = static_cast<uint16_t>(field.unsigned_in(1, 65535));
    return {port, port};
  }
  auto text = field.string();
  auto separator = text.find_first_of("-:");
  auto parse_one = [&](const std::string& part) -> uint16_t {
    char* end = nullptr;
    unsigned long value = std::strtoul(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || value < 1 || value > 65535)
      field.fail("\"" + text + "\" is not a port (1-65535) or range (6000-6100)");
    return static_cast<uint16_t>(value);
  };
  uint16_t first = parse_one(text.substr(0, separator));
  uint16_t last = separator == std::string::npos ? first : parse_one(text.substr(separator + 1));
  if (last < first) field.fail("\"" + text + "\" ends before it starts");
  return {first, last};
}

NatConfig parse_nat(const JsonField& field, const std::vector<Ipv4Prefix>& lan_prefixes) {
  field.reject_unknown({"sessions", "sessions_per_subscriber", "ports", "filtering", "timeouts", "mss_clamp",
                        "ttl_set", "port_forwards"});
  NatConfig nat;
  if (auto f = field.find("sessions")) nat.max_sessions = static_cast<uint32_t>(f->unsigned_in(64, 1u << 24));
  if (auto f = field.find("sessions_per_subscriber"))
    nat.sessions_per_subscriber = static_cast<uint32_t>(f->unsigned_in(1, 1u << 24));
  if (auto f = field.find("ports")) {
    auto [first, last] = parse_port_range(*f);
    if (last - first < 63) f->fail("needs at least 64 ports");
    nat.port_min = first;
    nat.port_max = last;
  }
  if (auto f = field.find("filtering")) {
    auto mode = f->string();
    if (mode == "endpoint-independent")
      nat.endpoint_independent_filtering = true;
    else if (mode != "address-and-port-dependent")
      f->fail("must be \"address-and-port-dependent\" or \"endpoint-independent\"");
  }
  if (auto timeouts = field.find("timeouts")) {
    timeouts->reject_unknown({"tcp_established_s", "tcp_transitory_s", "udp_s", "icmp_s"});
    if (auto f = timeouts->find("tcp_established_s")) nat.tcp_established_s = static_cast<uint32_t>(f->unsigned_in(1, 1u << 20));
    if (auto f = timeouts->find("tcp_transitory_s")) nat.tcp_transitory_s = static_cast<uint32_t>(f->unsigned_in(1, 1u << 20));
    if (auto f = timeouts->find("udp_s")) nat.udp_s = static_cast<uint32_t>(f->unsigned_in(1, 1u << 20));
    if (auto f = timeouts->find("icmp_s")) nat.icmp_s = static_cast<uint32_t>(f->unsigned_in(1, 1u << 20));
  }
  if (auto f = field.find("mss_clamp")) {
    if (f->is_number()) {
      nat.mss_clamp = static_cast<uint16_t>(f->unsigned_in(536, 9000));
    } else {
      auto mode = f->string();
      if (mode == "mtu")
        nat.mss_clamp_to_mtu = true;
      else if (mode != "off")
        f->fail("must be \"off\", \"mtu\" or a segment size in bytes (536-9000)");
    }
  }
  if (auto f = field.find("ttl_set")) nat.ttl_set = static_cast<uint8_t>(f->unsigned_in(0, 255));
  if (auto forwards = field.find("port_forwards")) {
    for (std::size_t i = 0; i < forwards->size(); ++i) {
      auto rule = parse_port_forward(forwards->at(i), lan_prefixes);
      for (std::size_t j = 0; j < nat.port_forwards.size(); ++j)
        if (rule.overlaps(nat.port_forwards[j]))
          forwards->at(i).fail("overlaps " + forwards->path() + "[" + std::to_string(j) + "]");
      nat.port_forwards.push_back(rule);
    }
  }
  return nat;
}

}  // namespace

PortForwardRule parse_port_forward(const JsonField& field, const std::vector<Ipv4Prefix>& lan_prefixes) {
  field.reject_unknown({"protocol", "external", "internal", "internal_port"});
  PortForwardRule rule;
  auto protocol = field.at("protocol");
  auto name = protocol.string();
  rule.tcp = name == "tcp" || name == "both";
  rule.udp = name == "udp" || name == "both";
  if (!rule.tcp && !rule.udp) protocol.fail("must be \"tcp\", \"udp\" or \"both\", not \"" + name + "\"");
  auto [first, last] = parse_port_range(field.at("external"));
  rule.external_first = first;
  rule.external_last = last;
  auto internal = field.at("internal");
  auto address = parse_ipv4(internal.string());
  if (!address) internal.fail("\"" + internal.string() + "\" is not an IPv4 address");
  bool on_lan = false;
  for (const auto& prefix : lan_prefixes)
    on_lan |= prefix.contains(*address) && *address != prefix.address && *address != prefix.broadcast();
  if (!on_lan) internal.fail(internal.string() + " is not a host on a LAN port's prefix");
  rule.internal = *address;
  rule.internal_first = first;
  if (auto port = field.find("internal_port")) {
    auto [internal_first, internal_last] = parse_port_range(*port);
    if (internal_last != internal_first && internal_last - internal_first != last - first)
      port->fail("range must be as long as the external range, or a single port");
    if (internal_last == internal_first && last != first)
      port->fail("a single internal port cannot take an external range");
    rule.internal_first = internal_first;
  }
  return rule;
}

std::vector<Ipv4Prefix> Config::lan_prefixes() const {
  std::vector<Ipv4Prefix> prefixes;
  for (const auto& port : ports)
    if (port.role == PortRole::kLan) prefixes.push_back(port.address);
  return prefixes;
}

std::string_view port_role_name(PortRole role) { return role == PortRole::kLan ? "lan" : "wan"; }

int Config::default_route_port() const {
  for (std::size_t i = 0; i < ports.size(); ++i)
    if (ports[i].role == PortRole::kWan && ports[i].gateway != 0) return static_cast<int>(i);
  return -1;
}

int Config::first_port(PortRole role) const {
  for (std::size_t i = 0; i < ports.size(); ++i)
    if (ports[i].role == role) return static_cast<int>(i);
  return -1;
}

Config parse_config(std::string_view json_text, unsigned workers_override) {
  nlohmann::json document = parse_json_document(json_text, "config");
  // The root's path is empty (fields are "ports[0].name"), so name the document here.
  if (!document.is_object())
    throw FieldError("config", std::string("must be a JSON object, not ") + document.type_name());
  JsonField root(document, "");
  root.reject_unknown(
      {"name", "pipeline", "eal", "dataplane", "ports", "neighbors", "nat", "qos", "subscribers", "p2p", "wan", "flows", "control"});
  Config config;
  if (auto name = root.find("name")) config.name = name->string();
  if (auto pipeline = root.find("pipeline")) {
    config.pipeline = pipeline->string();
    if (config.pipeline.empty()) pipeline->fail("must not be empty");
  }

  if (auto eal = root.find("eal")) {
    eal->reject_unknown({"memory_mb", "hugepages", "file_prefix", "cpus", "extra_args"});
    if (auto f = eal->find("memory_mb")) config.eal.memory_mb = static_cast<uint32_t>(f->unsigned_in(64, 1 << 20));
    if (auto f = eal->find("hugepages")) {
      config.eal.hugepages = f->string();
      if (config.eal.hugepages != "auto" && config.eal.hugepages != "yes" && config.eal.hugepages != "no")
        f->fail("must be \"auto\", \"yes\" or \"no\"");
    }
    if (auto f = eal->find("file_prefix")) {
      config.eal.file_prefix = f->string();
      if (config.eal.file_prefix.empty() ||
          config.eal.file_prefix.find_first_of("/ \t") != std::string::npos)
        f->fail("must be a non-empty name without '/' or spaces");
    }
    if (auto f = eal->find("cpus"))
      for (std::size_t i = 0; i < f->size(); ++i)
        config.eal.cpus.push_back(static_cast<uint32_t>(f->at(i).unsigned_in(0, 1023)));
    if (auto f = eal->find("extra_args"))
      for (std::size_t i = 0; i < f->size(); ++i) config.eal.extra_args.push_back(f->at(i).string());
  }

  auto ports = root.at("ports");
  if (ports.size() == 0 || ports.size() > kMaxPorts)
    ports.fail("must list 1 to " + std::to_string(kMaxPorts) + " ports");
  for (std::size_t i = 0; i < ports.size(); ++i) config.ports.push_back(parse_port(ports.at(i)));
  check_port_set(ports, config);

  nlohmann::json default_workers = 1;
  nlohmann::json override_workers = workers_override;
  std::optional<JsonField> dataplane = root.find("dataplane");
  if (dataplane) {
    dataplane->reject_unknown({"workers", "mbufs", "mbuf_size", "rx_descriptors", "tx_descriptors", "idle_backoff",
                               "max_sleep_us"});
    auto& dp = config.dataplane;
    if (auto f = dataplane->find("mbufs")) dp.mbufs = static_cast<uint32_t>(f->unsigned_in(1023, 1u << 24));
    if (auto f = dataplane->find("mbuf_size")) dp.mbuf_size = static_cast<uint16_t>(f->unsigned_in(2176, 65535));
    if (auto f = dataplane->find("rx_descriptors")) dp.rx_descriptors = static_cast<uint16_t>(f->unsigned_in(64, 8192));
    if (auto f = dataplane->find("tx_descriptors")) dp.tx_descriptors = static_cast<uint16_t>(f->unsigned_in(64, 8192));
    if (auto f = dataplane->find("idle_backoff")) dp.idle_backoff = f->boolean();
    if (auto f = dataplane->find("max_sleep_us")) dp.max_sleep_us = static_cast<uint32_t>(f->unsigned_in(1, 100000));
  }
  if (workers_override > 0) {
    parse_workers(JsonField(override_workers, "--workers"), config);
  } else if (auto workers = dataplane ? dataplane->find("workers") : std::nullopt) {
    parse_workers(*workers, config);
  } else {
    parse_workers(JsonField(default_workers, "dataplane.workers"), config);
  }
  derive_queues(JsonField(document, workers_override > 0 ? "--workers" : "dataplane.workers"), config);

  if (auto neighbors = root.find("neighbors")) {
    neighbors->reject_unknown({"reachable_s", "max_entries", "hold_packets", "retry_ms", "retries"});
    auto& n = config.neighbors;
    if (auto f = neighbors->find("reachable_s")) n.reachable_s = static_cast<uint32_t>(f->unsigned_in(1, 86400));
    if (auto f = neighbors->find("max_entries")) n.max_entries = static_cast<uint32_t>(f->unsigned_in(16, 1u << 20));
    if (auto f = neighbors->find("hold_packets")) n.hold_packets = static_cast<uint32_t>(f->unsigned_in(0, 256));
    if (auto f = neighbors->find("retry_ms")) n.retry_ms = static_cast<uint32_t>(f->unsigned_in(10, 60000));
    if (auto f = neighbors->find("retries")) n.retries = static_cast<uint32_t>(f->unsigned_in(1, 100));
  }
  if (auto nat = root.find("nat")) config.nat = parse_nat(*nat, config.lan_prefixes());
  if (auto qos = root.find("qos")) config.qos = parse_qos(*qos);
  if (auto subscribers = root.find("subscribers")) config.subscribers = parse_subscribers(*subscribers, config.lan_prefixes());
  check_qos(root, config);
  if (auto p2p = root.find("p2p")) config.p2p = parse_p2p(*p2p);
  if (auto wan = root.find("wan")) config.wan = parse_wan(*wan, config);
  if (auto flows = root.find("flows")) config.flows = parse_flows(*flows);
  if (auto control = root.find("control")) {
    control->reject_unknown({"socket"});
    if (auto f = control->find("socket")) {
      config.control.socket = f->string();
      if (config.control.socket.empty() || config.control.socket.size() > 100)
        f->fail("must be a path of 1 to 100 characters");
    }
  }
  return config;
}

Config load_config(const std::filesystem::path& path, unsigned workers_override) {
  return parse_config(read_text_file(path, "--config"), workers_override);
}

}  // namespace fairgate
