#include "config/config.h"
#include "config/json_path.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace fairgate {
namespace {

using nlohmann::json;

// Every section filled in, values away from the defaults so a field that is not read shows.
json full_config() {
  return json::parse(R"({
    "name": "unit",
    "pipeline": "forward",
    "eal": {"memory_mb": 256, "hugepages": "no", "file_prefix": "fgtest", "cpus": [0, 1],
            "extra_args": ["--log-level=*:debug"]},
    "dataplane": {"workers": 1, "mbufs": 4095, "rx_descriptors": 512, "tx_descriptors": 256,
                  "idle_backoff": true, "max_sleep_us": 100},
    "control": {"socket": "/tmp/fairgate-unit.sock"},
    "neighbors": {"reachable_s": 60, "max_entries": 128, "hold_packets": 4, "retry_ms": 500, "retries": 5},
    "ports": [
      {"name": "lan0", "role": "lan", "device": "net_af_packet0,iface=lan0", "address": "10.10.0.1/24", "mtu": 1500},
      {"name": "wan0", "role": "wan", "device": "0000:03:00.0", "address": "198.51.100.2/25",
       "gateway": "198.51.100.1", "mtu": 9000, "vlan": 100}
    ]
  })");
}

uint32_t addr(const char* text) { return *parse_ipv4(text); }

TEST(Config, FullConfigParsesToTheExpectedStructs) {
  Config config = parse_config(full_config().dump());
  EXPECT_EQ(config.name, "unit");
  EXPECT_EQ(config.pipeline, "forward");
  EXPECT_EQ(config.eal.memory_mb, 256u);
  EXPECT_EQ(config.eal.hugepages, "no");
  EXPECT_EQ(config.eal.file_prefix, "fgtest");
  EXPECT_EQ(config.eal.cpus, (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(config.eal.extra_args, (std::vector<std::string>{"--log-level=*:debug"}));
  EXPECT_EQ(config.dataplane.mbufs, 4095u);
  EXPECT_EQ(config.dataplane.rx_descriptors, 512);
  EXPECT_EQ(config.dataplane.tx_descriptors, 256);
  EXPECT_TRUE(config.dataplane.idle_backoff);
  EXPECT_EQ(config.dataplane.max_sleep_us, 100u);
  EXPECT_EQ(config.control.socket, "/tmp/fairgate-unit.sock");
  EXPECT_EQ(config.neighbors.reachable_s, 60u);
  EXPECT_EQ(config.neighbors.max_entries, 128u);
  EXPECT_EQ(config.neighbors.hold_packets, 4u);
  EXPECT_EQ(config.neighbors.retry_ms, 500u);
  EXPECT_EQ(config.neighbors.retries, 5u);

  ASSERT_EQ(config.ports.size(), 2u);
  const PortConfig& lan = config.ports[0];
  EXPECT_EQ(lan.name, "lan0");
  EXPECT_EQ(lan.role, PortRole::kLan);
  EXPECT_EQ(lan.device, "net_af_packet0,iface=lan0,qpairs=1") << "af_packet gets one queue pair per polled queue";
  EXPECT_TRUE(lan.is_vdev());
  EXPECT_TRUE(lan.is_af_packet());
  EXPECT_EQ(lan.address.address, addr("10.10.0.1"));
  EXPECT_EQ(lan.address.length, 24);
  EXPECT_EQ(lan.gateway, 0u);
  EXPECT_EQ(lan.mtu, 1500);
  EXPECT_EQ(lan.vlan, 0);
  EXPECT_EQ(lan.rx_queues, 1);
  EXPECT_EQ(lan.tx_queues, 1);

  const PortConfig& wan = config.ports[1];
  EXPECT_EQ(wan.name, "wan0");
  EXPECT_EQ(wan.role, PortRole::kWan);
  EXPECT_EQ(wan.device, "0000:03:00.0");
  EXPECT_FALSE(wan.is_vdev());
  EXPECT_EQ(wan.address.address, addr("198.51.100.2"));
  EXPECT_EQ(wan.address.length, 25);
  EXPECT_EQ(wan.gateway, addr("198.51.100.1"));
  EXPECT_EQ(wan.mtu, 9000);
  EXPECT_EQ(wan.vlan, 100);
  EXPECT_EQ(wan.rx_queues, 1);
  EXPECT_EQ(wan.tx_queues, 1);

  ASSERT_EQ(config.workers.size(), 1u);
  ASSERT_EQ(config.workers[0].rx.size(), 2u);
  EXPECT_EQ(config.workers[0].rx[0].port, 0);
  EXPECT_EQ(config.workers[0].rx[0].queue, 0);
  EXPECT_EQ(config.workers[0].rx[1].port, 1);
  EXPECT_EQ(config.workers[0].rx[1].queue, 0);
  EXPECT_EQ(config.first_port(PortRole::kLan), 0);
  EXPECT_EQ(config.first_port(PortRole::kWan), 1);
}

TEST(Config, MinimalConfigTakesTheDefaults) {
  Config config = parse_config(R"({"ports": [
      {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
      {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1"}]})");
  const Config defaults;
  EXPECT_EQ(config.name, "fairgate");
  EXPECT_EQ(config.pipeline, "forward");
  EXPECT_EQ(config.eal.hugepages, "auto");
  EXPECT_EQ(config.eal.memory_mb, defaults.eal.memory_mb);
  EXPECT_EQ(config.dataplane.mbufs, defaults.dataplane.mbufs);
  EXPECT_FALSE(config.dataplane.idle_backoff);
  EXPECT_EQ(config.neighbors.retries, defaults.neighbors.retries);
  EXPECT_EQ(config.control.socket, defaults.control.socket);
  EXPECT_EQ(config.ports[0].mtu, 1500);
  EXPECT_EQ(config.ports[0].device, "net_ring0") << "only af_packet devices get qpairs";
  ASSERT_EQ(config.workers.size(), 1u);
  EXPECT_EQ(config.workers[0].rx.size(), 2u);
}

TEST(Config, WorkerListWithQueues) {
  json c = full_config();
  c["ports"][0]["device"] = "net_ring0";
  c["dataplane"]["workers"] = json::parse(R"([
      {"rx": [{"port": "lan0", "queue": 0}, {"port": "wan0", "queue": 1}]},
      {"rx": [{"port": "lan0", "queue": 1}, {"port": "wan0", "queue": 0}]}])");
  Config config = parse_config(c.dump());
  ASSERT_EQ(config.workers.size(), 2u);
  EXPECT_EQ(config.workers[0].rx[1].port, 1);
  EXPECT_EQ(config.workers[0].rx[1].queue, 1);
  EXPECT_EQ(config.workers[1].rx[0].queue, 1);
  for (const auto& port : config.ports) {
    EXPECT_EQ(port.rx_queues, 2);
    EXPECT_EQ(port.tx_queues, 2);
  }
}

TEST(Config, OverlappingPrefixesOnDifferentVlansAreAllowed) {
  json c = full_config();
  c["ports"][1]["address"] = "10.10.0.2/24";
  c["ports"][1]["gateway"] = "10.10.0.254";
  EXPECT_NO_THROW(parse_config(c.dump()));
}

TEST(Config, WorkersOverride) {
  json c = full_config();
  c["ports"].push_back(json::parse(
      R"({"name": "wan1", "role": "wan", "device": "net_af_packet2,iface=wan1", "address": "203.0.113.2/25",
          "gateway": "203.0.113.1"})"));
  Config config = parse_config(c.dump(), 2);
  ASSERT_EQ(config.workers.size(), 2u);
  for (uint16_t w = 0; w < 2; ++w) {
    ASSERT_EQ(config.workers[w].rx.size(), 3u);
    for (uint16_t p = 0; p < 3; ++p) {
      EXPECT_EQ(config.workers[w].rx[p].port, p);
      EXPECT_EQ(config.workers[w].rx[p].queue, w) << "worker " << w << " polls queue " << w << " of every port";
    }
  }
  EXPECT_EQ(config.ports[0].device, "net_af_packet0,iface=lan0,qpairs=2");
  EXPECT_EQ(config.ports[1].device, "0000:03:00.0");
  EXPECT_EQ(config.ports[2].device, "net_af_packet2,iface=wan1,qpairs=2");
  for (const auto& port : config.ports) {
    EXPECT_EQ(port.rx_queues, 2);
    EXPECT_EQ(port.tx_queues, 2);
  }
}

TEST(Config, WorkersOverrideReplacesAWorkerList) {
  json c = full_config();
  c["dataplane"]["workers"] = json::parse(R"([{"rx": [{"port": "lan0", "queue": 0}, {"port": "wan0", "queue": 0}]}])");
  Config config = parse_config(c.dump(), 3);
  EXPECT_EQ(config.workers.size(), 3u);
  EXPECT_EQ(config.ports[0].device, "net_af_packet0,iface=lan0,qpairs=3");
}

TEST(Config, WorkersOverrideErrorsNameTheFlag) {
  json c = full_config();
  c["ports"][0]["device"] = "net_af_packet0,iface=lan0,qpairs=1";
  try {
    parse_config(c.dump(), 2);
    FAIL() << "qpairs=1 with 2 workers was accepted";
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), "--workers");
  }
}

TEST(Config, LabConfigOfTheRepositoryParses) {
  Config config = load_config(std::string(FAIRGATE_SOURCE_DIR) + "/conf/lab.json");
  EXPECT_EQ(config.ports.size(), 3u);
  EXPECT_EQ(config.workers.size(), 2u);
  EXPECT_GE(config.first_port(PortRole::kWan), 0);
}

TEST(Config, LoadConfigFromFileAndMissingFile) {
  auto path = std::filesystem::temp_directory_path() / ("fgunit-config-" + std::to_string(getpid()) + ".json");
  {
    std::ofstream file(path);
    file << full_config().dump(2);
  }
  EXPECT_EQ(load_config(path).name, "unit");
  std::filesystem::remove(path);
  try {
    load_config(path);
    FAIL() << "a missing file was accepted";
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), "--config");
  }
}

// ---- broken configurations: each names the bad field exactly -------------------------------

struct BrokenCase {
  std::string name;
  std::function<void(json&)> mutate;
  std::string field;
};

void PrintTo(const BrokenCase& c, std::ostream* out) { *out << c.name; }

void set_workers(json& c, const char* workers) { c["dataplane"]["workers"] = json::parse(workers); }

std::vector<BrokenCase> broken_cases() {
  return {
      {"address_not_ipv4", [](json& c) { c["ports"][1]["address"] = "300.1.1.1/25"; }, "ports[1].address"},
      {"address_without_prefix", [](json& c) { c["ports"][0]["address"] = "10.10.0.1"; }, "ports[0].address"},
      {"address_prefix_31", [](json& c) { c["ports"][0]["address"] = "10.10.0.1/31"; }, "ports[0].address"},
      {"address_prefix_0", [](json& c) { c["ports"][0]["address"] = "10.10.0.1/0"; }, "ports[0].address"},
      {"address_is_network", [](json& c) { c["ports"][0]["address"] = "10.10.0.0/24"; }, "ports[0].address"},
      {"address_is_broadcast", [](json& c) { c["ports"][0]["address"] = "10.10.0.255/24"; }, "ports[0].address"},
      {"address_missing", [](json& c) { c["ports"][1].erase("address"); }, "ports[1].address"},
      {"address_not_string", [](json& c) { c["ports"][1]["address"] = 42; }, "ports[1].address"},
      {"role_unknown", [](json& c) { c["ports"][0]["role"] = "router"; }, "ports[0].role"},
      {"role_missing", [](json& c) { c["ports"][0].erase("role"); }, "ports[0].role"},
      {"device_not_pci_nor_vdev", [](json& c) { c["ports"][0]["device"] = "eth0"; }, "ports[0].device"},
      {"device_unknown_vdev_driver", [](json& c) { c["ports"][0]["device"] = "net_foo0"; }, "ports[0].device"},
      {"device_empty", [](json& c) { c["ports"][0]["device"] = ""; }, "ports[0].device"},
      {"gateway_missing_on_wan", [](json& c) { c["ports"][1].erase("gateway"); }, "ports[1].gateway"},
      {"gateway_outside_prefix", [](json& c) { c["ports"][1]["gateway"] = "198.51.100.200"; }, "ports[1].gateway"},
      {"gateway_is_own_address", [](json& c) { c["ports"][1]["gateway"] = "198.51.100.2"; }, "ports[1].gateway"},
      {"gateway_not_ipv4", [](json& c) { c["ports"][1]["gateway"] = "gateway"; }, "ports[1].gateway"},
      {"mtu_too_small", [](json& c) { c["ports"][0]["mtu"] = 575; }, "ports[0].mtu"},
      {"mtu_too_large", [](json& c) { c["ports"][0]["mtu"] = 9001; }, "ports[0].mtu"},
      {"mtu_negative", [](json& c) { c["ports"][0]["mtu"] = -1500; }, "ports[0].mtu"},
      {"mtu_string", [](json& c) { c["ports"][0]["mtu"] = "1500"; }, "ports[0].mtu"},
      {"mtu_fraction", [](json& c) { c["ports"][0]["mtu"] = 1500.5; }, "ports[0].mtu"},
      {"vlan_4095", [](json& c) { c["ports"][1]["vlan"] = 4095; }, "ports[1].vlan"},
      {"name_too_long", [](json& c) { c["ports"][0]["name"] = "a-very-long-name"; }, "ports[0].name"},
      {"name_empty", [](json& c) { c["ports"][0]["name"] = ""; }, "ports[0].name"},
      {"unknown_key_in_port", [](json& c) { c["ports"][0]["speed"] = 1000; }, "ports[0].speed"},
      {"port_not_object", [](json& c) { c["ports"][1] = "wan0"; }, "ports[1]"},
      {"overlapping_prefixes",
       [](json& c) {
         c["ports"][1].erase("vlan");
         c["ports"][1]["address"] = "10.10.1.2/16";
         c["ports"][1]["gateway"] = "10.10.1.1";
       },
       "ports[1].address"},
      {"duplicate_port_names", [](json& c) { c["ports"][1]["name"] = "lan0"; }, "ports[1].name"},
      {"duplicate_devices",
       [](json& c) { c["ports"][1]["device"] = "net_af_packet0,iface=other"; },
       "ports[1].device"},
      {"no_wan_port", [](json& c) { c["ports"][1]["role"] = "lan"; }, "ports"},
      {"no_lan_port", [](json& c) { c["ports"][0]["role"] = "wan"; c["ports"][0]["gateway"] = "10.10.0.254"; }, "ports"},
      {"no_ports", [](json& c) { c["ports"] = json::array(); }, "ports"},
      {"ports_missing", [](json& c) { c.erase("ports"); }, "ports"},
      {"ports_not_array", [](json& c) { c["ports"] = json::object(); }, "ports"},
      {"workers_0", [](json& c) { c["dataplane"]["workers"] = 0; }, "dataplane.workers"},
      {"workers_17", [](json& c) { c["dataplane"]["workers"] = 17; }, "dataplane.workers"},
      {"workers_empty_list", [](json& c) { set_workers(c, "[]"); }, "dataplane.workers"},
      {"workers_string", [](json& c) { c["dataplane"]["workers"] = "two"; }, "dataplane.workers"},
      {"queue_polled_twice",
       [](json& c) {
         set_workers(c, R"([{"rx": [{"port": "lan0", "queue": 0}, {"port": "wan0", "queue": 0}]},
                            {"rx": [{"port": "lan0", "queue": 0}]}])");
       },
       "dataplane.workers[1].rx[0]"},
      {"queue_polled_by_nobody",
       [](json& c) { set_workers(c, R"([{"rx": [{"port": "lan0", "queue": 1}, {"port": "wan0", "queue": 0}]}])"); },
       "dataplane.workers"},
      {"port_polled_by_nobody",
       [](json& c) { set_workers(c, R"([{"rx": [{"port": "lan0", "queue": 0}]}])"); },
       "dataplane.workers"},
      {"af_packet_fewer_rx_queues_than_workers",
       [](json& c) {
         set_workers(c, R"([{"rx": [{"port": "lan0", "queue": 0}, {"port": "wan0", "queue": 0}]},
                            {"rx": [{"port": "wan0", "queue": 1}]}])");
       },
       "dataplane.workers"},
      {"af_packet_qpairs_disagree",
       [](json& c) { c["ports"][0]["device"] = "net_af_packet0,iface=lan0,qpairs=2"; },
       "dataplane.workers"},
      {"rx_unknown_port",
       [](json& c) { set_workers(c, R"([{"rx": [{"port": "lan9", "queue": 0}]}])"); },
       "dataplane.workers[0].rx[0].port"},
      {"rx_queue_16",
       [](json& c) { set_workers(c, R"([{"rx": [{"port": "lan0", "queue": 0}, {"port": "wan0", "queue": 16}]}])"); },
       "dataplane.workers[0].rx[1].queue"},
      {"rx_queue_missing",
       [](json& c) { set_workers(c, R"([{"rx": [{"port": "lan0"}]}])"); },
       "dataplane.workers[0].rx[0].queue"},
      {"worker_unknown_key",
       [](json& c) { set_workers(c, R"([{"rx": [], "cpu": 3}])"); },
       "dataplane.workers[0].cpu"},
      {"dataplane_unknown_key", [](json& c) { c["dataplane"]["threads"] = 2; }, "dataplane.threads"},
      {"mbufs_too_few", [](json& c) { c["dataplane"]["mbufs"] = 10; }, "dataplane.mbufs"},
      {"idle_backoff_not_bool", [](json& c) { c["dataplane"]["idle_backoff"] = "yes"; }, "dataplane.idle_backoff"},
      {"rx_descriptors_too_many", [](json& c) { c["dataplane"]["rx_descriptors"] = 65536; }, "dataplane.rx_descriptors"},
      {"eal_hugepages", [](json& c) { c["eal"]["hugepages"] = "maybe"; }, "eal.hugepages"},
      {"eal_memory_too_small", [](json& c) { c["eal"]["memory_mb"] = 10; }, "eal.memory_mb"},
      {"eal_file_prefix_slash", [](json& c) { c["eal"]["file_prefix"] = "a/b"; }, "eal.file_prefix"},
      {"eal_cpu_out_of_range", [](json& c) { c["eal"]["cpus"] = json::array({0, 5000}); }, "eal.cpus[1]"},
      {"eal_unknown_key", [](json& c) { c["eal"]["huge"] = true; }, "eal.huge"},
      {"neighbors_max_entries", [](json& c) { c["neighbors"]["max_entries"] = 1; }, "neighbors.max_entries"},
      {"neighbors_unknown_key", [](json& c) { c["neighbors"]["timeout"] = 1; }, "neighbors.timeout"},
      {"control_socket_empty", [](json& c) { c["control"]["socket"] = ""; }, "control.socket"},
      {"control_socket_too_long", [](json& c) { c["control"]["socket"] = "/" + std::string(120, 's'); }, "control.socket"},
      {"pipeline_empty", [](json& c) { c["pipeline"] = ""; }, "pipeline"},
      {"unknown_top_level_key", [](json& c) { c["portz"] = json::array(); }, "portz"},
  };
}

class BrokenConfig : public ::testing::TestWithParam<BrokenCase> {};

TEST_P(BrokenConfig, NamesTheBadField) {
  json c = full_config();
  GetParam().mutate(c);
  try {
    parse_config(c.dump());
    FAIL() << "accepted: " << c.dump();
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), GetParam().field) << error.what();
    EXPECT_EQ(std::string(error.what()).rfind(GetParam().field + ": ", 0), 0u)
        << "the message starts with the field: " << error.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Table, BrokenConfig, ::testing::ValuesIn(broken_cases()),
                         [](const ::testing::TestParamInfo<BrokenCase>& info) { return info.param.name; });

struct NotConfigCase {
  std::string name;
  std::string text;
};

void PrintTo(const NotConfigCase& c, std::ostream* out) { *out << c.name; }

class NotAConfig : public ::testing::TestWithParam<NotConfigCase> {};

TEST_P(NotAConfig, IsAnErrorAboutTheConfig) {
  try {
    parse_config(GetParam().text);
    FAIL() << "accepted: " << GetParam().text;
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), "config") << error.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Table, NotAConfig,
                         ::testing::Values(NotConfigCase{"empty", ""}, NotConfigCase{"text", "ports: lan0"},
                                           NotConfigCase{"truncated", R"({"ports": [)"},
                                           NotConfigCase{"array", "[1, 2]"}, NotConfigCase{"number", "42"},
                                           NotConfigCase{"string", "\"ports\""}),
                         [](const ::testing::TestParamInfo<NotConfigCase>& info) { return info.param.name; });

}  // namespace
}  // namespace fairgate
