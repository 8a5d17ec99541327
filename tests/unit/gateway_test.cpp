// The whole appliance in-process: Gateway::start on ring ethdevs, its management loop on this
// thread, and a client thread that plays the LAN host, the WAN gateway and the operator (over
// the control socket). Runs with 1 and 2 workers; every mbuf must be back when it stops.
#include "app/gateway.h"
#include "pipeline/pipeline_spec.h"
#include "ring_device.h"
#include "test_env.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace fairgate::test {
namespace {

using nlohmann::json;
constexpr uint16_t kLan = 0, kWan = 1;

// A blocking line-oriented client of the control socket.
class ControlClient {
 public:
  explicit ControlClient(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      throw std::runtime_error("cannot connect to " + path);
    timeval timeout{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~ControlClient() { close(fd_); }
  json call(const json& request) {
    std::string line = request.dump() + "\n";
    if (send(fd_, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
      throw std::runtime_error("send failed");
    std::size_t newline;
    while ((newline = buffer_.find('\n')) == std::string::npos) {
      char chunk[4096];
      ssize_t got = recv(fd_, chunk, sizeof chunk, 0);
      if (got <= 0) throw std::runtime_error("no reply to " + request.dump());
      buffer_.append(chunk, static_cast<std::size_t>(got));
    }
    json reply = json::parse(buffer_.substr(0, newline));
    buffer_.erase(0, newline + 1);
    return reply;
  }

 private:
  int fd_ = -1;
  std::string buffer_;
};

class GatewayTest : public ::testing::TestWithParam<unsigned> {
 protected:
  void SetUp() override {
    static unsigned instance = 0;
    tag = "gw" + std::to_string(++instance);
    workers = GetParam();
    char pattern[] = "/tmp/fgunit-gw.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir = pattern;
    config = parse_config(R"({
      "eal": {"file_prefix": ")" + tag + R"("},
      "dataplane": {"mbufs": 2047, "idle_backoff": true, "max_sleep_us": 100},
      "control": {"socket": ")" + dir + R"(/fairgate.sock"},
      "ports": [
        {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
        {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1"}
      ]})",
                          workers);
    for (uint16_t p = 0; p < 2; ++p) {
      devices.push_back(std::make_unique<RingDevice>(tag + "p" + std::to_string(p), workers, workers));
      config.ports[p].device = devices.back()->name();
    }
    pipeline = load_pipeline_spec(std::string(FAIRGATE_SOURCE_DIR) + "/pipelines/forward.json");
    stop_fd = eventfd(0, EFD_CLOEXEC);
  }
  void TearDown() override {
    devices.clear();
    if (stop_fd >= 0) close(stop_fd);
    std::filesystem::remove_all(dir);
  }

  // Polls every TX queue of `port` until `wanted` accepts what arrived (or 5 seconds pass).
  std::vector<Frame> wait_for(uint16_t port, const std::function<bool(const std::vector<Frame>&)>& wanted) {
    std::vector<Frame> frames;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!wanted(frames) && std::chrono::steady_clock::now() < deadline) {
      for (auto& frame : devices[port]->take_all()) frames.push_back(std::move(frame));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return frames;
  }
  static std::function<bool(const std::vector<Frame>&)> has(const std::function<bool(const Frame&)>& match,
                                                              std::size_t count = 1) {
    return [match, count](const std::vector<Frame>& frames) {
      std::size_t found = 0;
      for (const auto& frame : frames) found += match(frame);
      return found >= count;
    };
  }
  void push(uint16_t port, unsigned queue, const Bytes& frame, rte_mempool* pool) {
    devices[port]->push(queue, to_mbuf(frame, port, pool));
  }

  std::string tag, dir;
  unsigned workers = 1;
  Config config;
  PipelineSpec pipeline;
  std::vector<std::unique_ptr<RingDevice>> devices;
  int stop_fd = -1;
};

bool is_arp_request_for(const Frame& frame, uint32_t target) {
  return frame.ethertype == kEtherArp && frame.arp_op() == 1 && frame.arp_tip() == target;
}

TEST_P(GatewayTest, ForwardsAnswersAndStopsWithEveryMbufBack) {
  Gateway gateway(config, pipeline);
  ASSERT_NO_THROW(gateway.start());
  rte_mempool* pool = gateway.pool();
  const rte_ether_addr own_mac = gateway.ports().ports[kLan].mac;  // ring ports: all zero

  // The client: everything outside the gateway. It always ends by stopping the loop.
  std::thread client([&] {
    auto body = [&] {
      ControlClient control(config.control.socket);
      json version = control.call({{"command", "version"}});
      ASSERT_EQ(version["ok"], true) << version.dump();
      EXPECT_EQ(version["result"]["pipeline"], "forward");
      EXPECT_EQ(version["result"]["workers"], workers);

      json list = control.call({{"command", "command-list"}});
      std::vector<std::string> names;
      for (const auto& entry : list["result"]) {
        names.push_back(entry["name"]);
        EXPECT_FALSE(entry["help"].get<std::string>().empty());
      }
      for (const char* name : {"command-list", "neighbors", "ports", "shutdown", "stats", "version"})
        EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;

      // At start: a gratuitous ARP on each port and a request for the WAN gateway.
      auto lan = wait_for(kLan, has([](const Frame& f) { return is_arp_request_for(f, ip("10.10.0.1")); }));
      EXPECT_TRUE(has([](const Frame& f) { return is_arp_request_for(f, ip("10.10.0.1")); })(lan));
      auto wan = wait_for(kWan, has([](const Frame& f) { return is_arp_request_for(f, wan_gw()); }));
      EXPECT_TRUE(has([](const Frame& f) { return is_arp_request_for(f, wan_gw()); })(wan));

      // The WAN gateway answers; the LAN host asks for us.
      push(kWan, 0, padded(ethernet(own_mac, wan_gw_mac(), kEtherArp, arp(2, wan_gw_mac(), wan_gw(), own_mac, wan_own()))),
           pool);
      push(kLan, workers - 1,
           padded(ethernet(broadcast_mac(), lan_host_mac(), kEtherArp, arp(1, lan_host_mac(), lan_host(), zero_mac(), lan_gw()))),
           pool);
      lan = wait_for(kLan, has([](const Frame& f) { return f.ethertype == kEtherArp && f.arp_op() == 2; }));
      ASSERT_TRUE(has([](const Frame& f) { return f.ethertype == kEtherArp && f.arp_op() == 2; })(lan));

      // Wait until the gateway's MAC reaches the workers (a snapshot published by the loop).
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      bool known = false;
      while (!known && std::chrono::steady_clock::now() < deadline) {
        json neighbors = control.call({{"command", "neighbors"}, {"args", {{"port", "wan0"}}}});
        for (const auto& row : neighbors["result"])
          known |= row["address"] == "198.51.100.1" && row["state"] == "reachable";
        if (!known) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      ASSERT_TRUE(known) << "the gateway's ARP reply was learned";
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // past the next tick: published

      // Traffic from the LAN host on every queue goes out to the WAN gateway.
      constexpr int kPackets = 20;
      for (unsigned q = 0; q < workers; ++q)
        for (int i = 0; i < kPackets; ++i)
          push(kLan, q,
               ethernet(own_mac, lan_host_mac(), kEtherIpv4,
                        ipv4(lan_host(), internet_host(), kProtoUdp, udp(lan_host(), internet_host(), 1, 2, payload_bytes(30)))),
               pool);
      auto is_forwarded = [](const Frame& f) {
        return f.ethertype == kEtherIpv4 && f.ip_dst() == ip("192.0.2.10") && same_mac(f.dst, wan_gw_mac());
      };
      wan = wait_for(kWan, has(is_forwarded, kPackets * workers));
      std::size_t forwarded = 0;
      for (const auto& frame : wan) {
        if (!is_forwarded(frame)) continue;
        ++forwarded;
        EXPECT_EQ(frame.ttl(), 63);
        EXPECT_TRUE(frame.ip_checksum_valid());
      }
      EXPECT_EQ(forwarded, kPackets * workers);

      // A ping to the gateway is answered.
      push(kLan, 0, ethernet(own_mac, lan_host_mac(), kEtherIpv4, ipv4(lan_host(), lan_gw(), kProtoIcmp, icmp_echo(9, 1))),
           pool);
      auto is_echo_reply = [](const Frame& f) {
        return f.ethertype == kEtherIpv4 && f.protocol() == kProtoIcmp && f.icmp_type() == 0;
      };
      lan = wait_for(kLan, has(is_echo_reply));
      ASSERT_TRUE(has(is_echo_reply)(lan));

      json stats = control.call({{"command", "stats"}});
      ASSERT_EQ(stats["ok"], true) << stats.dump();
      EXPECT_EQ(stats["result"]["pipeline"], "forward");
      EXPECT_GE(stats["result"]["punts"]["arp"].get<uint64_t>(), 2u);
      EXPECT_GE(stats["result"]["punts"]["local"].get<uint64_t>(), 1u);
      EXPECT_EQ(stats["result"]["workers"].size(), workers);
      EXPECT_EQ(stats["result"]["mempool"]["size"], 2047);
      EXPECT_EQ(stats["result"]["management"]["echo_replies_sent"], 1);
      uint64_t lan_stage_packets = 0;
      for (const auto& stage : stats["result"]["stages"])
        if (stage["direction"] == "from_lan" && stage["stage"] == "parse") lan_stage_packets = stage["packets"];
      EXPECT_EQ(lan_stage_packets, kPackets * workers + 2u);

      json ports = control.call({{"command", "ports"}});
      ASSERT_EQ(ports["result"].size(), 2u);
      EXPECT_EQ(ports["result"][0]["name"], "lan0");
      EXPECT_EQ(ports["result"][1]["gateway"], "198.51.100.1");
      EXPECT_EQ(ports["result"][0]["rx_queues"], workers);
      json bad = control.call({{"command", "ports"}, {"args", {{"port", "wan9"}}}});
      EXPECT_EQ(bad["ok"], false);
      EXPECT_EQ(bad["error"], "args.port: no port named \"wan9\"");

      json stopping = control.call({{"command", "shutdown"}});
      EXPECT_EQ(stopping["result"]["stopping"], true);
    };
    body();
    // However the body ended, make the loop return (as a signal would).
    uint64_t one = 1;
    [[maybe_unused]] auto written = write(stop_fd, &one, sizeof one);
  });

  gateway.run(stop_fd);
  client.join();
  // Nothing new enters once the loop is over: let the workers send what they still buffer,
  // consume it, and only then stop them (stop() frees the pool).
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (auto& device : devices) device->clear();
  uint32_t missing = gateway.stop();
  for (auto& device : devices) {
    EXPECT_EQ(device->tx_count(), 0u) << "nothing was in flight when the workers stopped";
    device->forget_tx();  // anything there came from the pool stop() has freed
  }
  EXPECT_EQ(missing, 0u) << "mbufs missing from the gateway's pool";
}

TEST_P(GatewayTest, BadPortDeviceFailsToStartWithItsName) {
  config.ports[kWan].device = "net_ring_does_not_exist";
  Gateway gateway(config, pipeline);
  try {
    gateway.start();
    FAIL() << "started without its WAN device";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("wan0"), std::string::npos) << error.what();
  }
  EXPECT_EQ(gateway.stop(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Workers, GatewayTest, ::testing::Values(1u, 2u),
                         [](const ::testing::TestParamInfo<unsigned>& info) {
                           return std::to_string(info.param) + (info.param == 1 ? "_worker" : "_workers");
                         });

}  // namespace
}  // namespace fairgate::test
