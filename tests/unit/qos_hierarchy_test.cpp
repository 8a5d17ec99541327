// The scheduling hierarchy built from the configuration: which egress ports are shaped, an
// internet subport per WAN on the LAN egress, the subports' rates after RATE_SUB_PERCENT and
// RATE_LOCAL_PERCENT, default guarantees and
// ceilings, BORROW=0, and the JSON that qos-tree prints and tools/sched-graph reads.
#include "qos/hierarchy.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace fairgate {
namespace {

using nlohmann::json;

json two_wans() {
  return json::parse(R"({
    "ports": [
      {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
      {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1",
       "rate_down": "30mbit", "rate_up": "4mbit", "overhead": "pppoe"},
      {"name": "wan1", "role": "wan", "device": "net_ring2", "address": "203.0.113.2/25", "gateway": "203.0.113.1",
       "rate_down": "10mbit", "rate_up": "2mbit"}
    ],
    "qos": {},
    "subscribers": [
      {"name": "alice", "addresses": ["10.10.0.11"], "down": {"rate": "9mbit"}},
      {"name": "bob", "addresses": ["10.10.0.12", "10.10.0.32/28"], "down": {"ceil": "12mbit"}, "up": {"ceil": "1mbit"}},
      {"name": "carol", "addresses": ["10.10.0.13"]}
    ]
  })");
}

std::vector<PortNode> build(const json& config) { return build_hierarchy(parse_config(config.dump())); }

TEST(QosHierarchy, DownloadOnTheLanEgressUploadOnEachWan) {
  auto ports = build(two_wans());
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_EQ(ports[0].name, "lan0");
  EXPECT_TRUE(ports[0].download);
  EXPECT_EQ(ports[0].link_bps, 40'000'000u) << "downloads arrive over both WANs";
  EXPECT_EQ(ports[0].rate_bps, 40'000'000u);
  EXPECT_EQ(ports[1].name, "wan0");
  EXPECT_FALSE(ports[1].download);
  EXPECT_EQ(ports[1].rate_bps, 4'000'000u);
  EXPECT_EQ(ports[2].rate_bps, 2'000'000u);
  // On the LAN egress a download is shaped to the WAN it came by, in that WAN's subport.
  struct Want {
    std::string name;
    uint64_t rate, ceil;
    int wan_port, overhead;
  };
  const std::vector<Want> lan = {{"internet via wan0", 27'000'000, 28'500'000, 1, 32},
                                 {"internet via wan1", 9'000'000, 9'500'000, 2, 24},
                                 {"local", 2'000'000, 2'000'000, -1, 32}};
  const std::vector<Want> wan0 = {{"internet", 3'600'000, 3'800'000, -1, 32}, {"local", 200'000, 200'000, -1, 32}};
  // wan1 has the default framing, Ethernet's 24 bytes.
  const std::vector<Want> wan1 = {{"internet", 1'800'000, 1'900'000, -1, 24}, {"local", 100'000, 100'000, -1, 24}};
  const std::vector<Want>* wants[] = {&lan, &wan0, &wan1};
  for (std::size_t p = 0; p < ports.size(); ++p) {
    ASSERT_EQ(ports[p].subports.size(), wants[p]->size()) << ports[p].name;
    for (std::size_t s = 0; s < wants[p]->size(); ++s) {
      const Want& want = (*wants[p])[s];
      const SubportNode& subport = ports[p].subports[s];
      SCOPED_TRACE(ports[p].name + " " + want.name);
      EXPECT_EQ(subport.name, want.name);
      EXPECT_EQ(subport.rate_bps, want.rate) << "5 % below the link, 5 % for the gateway";
      EXPECT_EQ(subport.ceil_bps, want.ceil) << "the gateway's share is lent while unused";
      EXPECT_EQ(subport.wan_port, want.wan_port);
      EXPECT_EQ(subport.framing.overhead, want.overhead) << "the framing of the link it is shaped to";
      EXPECT_EQ(subport.pipes.size(), want.name == "local" ? 0u : 4u) << "every subscriber has a pipe on every link";
    }
    EXPECT_EQ(ports[p].local().name, "local");
  }
  EXPECT_EQ(ports[0].internet_rate_bps(), 36'000'000u);
  EXPECT_EQ(ports[0].internet_ceil_bps(), 38'000'000u);
}

TEST(QosHierarchy, EachLinksSubportSharesItsOwnRate) {
  auto ports = build(two_wans());
  const auto& via_wan1 = ports[0].subports[1].pipes;
  ASSERT_EQ(via_wan1.size(), 4u);
  EXPECT_EQ(via_wan1[0].name, "alice");
  EXPECT_EQ(via_wan1[0].pipe, ports[0].subports[0].pipes[0].pipe) << "a subscriber's pipe id is the same on each link";
  EXPECT_EQ(via_wan1[0].rate_bps, 9'000'000u) << "alice's configured guarantee";
  EXPECT_EQ(via_wan1[1].rate_bps, 1'000u) << "her 9 mbit leave nothing of wan1's 9: the floor";
  EXPECT_EQ(via_wan1[1].ceil_bps, 9'500'000u) << "bob's 12 mbit ceil clamped to wan1's subport";
}

TEST(QosHierarchy, GuaranteesAndCeilings) {
  auto ports = build(two_wans());
  const auto& down = ports[0].subports[0].pipes;
  ASSERT_EQ(down.size(), 4u);
  // 27 mbit for subscribers: alice's 9 configured, the other 18 split between bob and carol.
  EXPECT_EQ(down[0].name, "alice");
  EXPECT_EQ(down[0].pipe, 1u);
  EXPECT_EQ(down[2].pipe, 3u);
  // Hosts nobody covers pass through "unknown" until they are subscribers of their own: it gets
  // the same equal share without taking one from the others.
  EXPECT_EQ(down[3].name, "unknown");
  EXPECT_EQ(down[3].pipe, kUnknownPipe);
  EXPECT_EQ(down[3].rate_bps, 9'000'000u);
  EXPECT_TRUE(down[3].addresses.empty());
  EXPECT_EQ(down[0].rate_bps, 9'000'000u);
  EXPECT_EQ(down[1].rate_bps, 9'000'000u);
  EXPECT_EQ(down[2].rate_bps, 9'000'000u);
  EXPECT_EQ(down[0].ceil_bps, 28'500'000u) << "no ceil configured: the subport's ceil";
  EXPECT_EQ(down[1].ceil_bps, 12'000'000u);
  ASSERT_EQ(down[1].addresses.size(), 2u);
  const auto& up = ports[1].subports[0].pipes;
  EXPECT_EQ(up[0].rate_bps, 1'200'000u) << "3.6 mbit in three equal shares";
  EXPECT_EQ(up[1].ceil_bps, 1'000'000u) << "the configured ceil holds";
  EXPECT_EQ(up[1].rate_bps, 1'000'000u) << "an equal share above the ceil is lowered to it (FairNAT's 42@300|50)";
  EXPECT_EQ(up[2].ceil_bps, 3'800'000u);
}

TEST(QosHierarchy, UserCeilAppliesWhereNoCeilIsConfiguredAndNothingExceedsTheLink) {
  json config = two_wans();
  config["qos"]["user_ceil_down"] = "15mbit";
  config["subscribers"][1]["down"]["ceil"] = "40mbit";
  auto ports = build(config);
  const auto& down = ports[0].subports[0].pipes;
  EXPECT_EQ(down[0].ceil_bps, 15'000'000u);
  EXPECT_EQ(down[1].ceil_bps, 28'500'000u) << "clamped to the subport's ceil";
  EXPECT_EQ(down[2].ceil_bps, 15'000'000u);
}

TEST(QosHierarchy, ALanRateFasterThanTheInternetIsThePortsOwn) {
  json config = two_wans();
  config["ports"][0]["rate"] = "100mbit";  // FairNAT's RATE_LAN
  auto ports = build(config);
  EXPECT_EQ(ports[0].rate_bps, 100'000'000u) << "the LAN egress runs at the LAN's rate";
  EXPECT_EQ(ports[0].subports[0].rate_bps, 27'000'000u) << "subscribers still share the internet links";
  EXPECT_EQ(ports[0].local().rate_bps, 2'000'000u);
  config["ports"][0]["rate"] = "10mbit";
  EXPECT_EQ(build(config)[0].rate_bps, 40'000'000u) << "a slower LAN rate cannot shrink the internet links";
}

TEST(QosHierarchy, SharedUnknownHostsTakeAnEqualShare) {
  json config = two_wans();
  config["qos"]["unknown_hosts"] = "shared";
  const auto& down = build(config)[0].subports[0].pipes;
  ASSERT_EQ(down.size(), 4u);
  EXPECT_EQ(down[1].rate_bps, 6'000'000u) << "the 18 mbit alice leaves, split three ways";
  EXPECT_EQ(down[3].rate_bps, 6'000'000u);
}

TEST(QosHierarchy, RunTimeSubscribersAndLinkRates) {
  Config config = parse_config(two_wans().dump());
  auto subscribers = initial_subscribers(config);
  SubscriberConfig dave;
  dave.name = "10.10.0.20";
  dave.addresses = {Ipv4Prefix{0x0a0a0014, 32}};
  subscribers.push_back({dave, 7, LiveSubscriber::Kind::kAutomatic});
  LinkRates links = configured_link_rates(config);
  ASSERT_EQ(links.down_bps.size(), 3u);
  EXPECT_EQ(links.down_bps[0], 0u) << "a LAN has no link rate";
  links.down_bps[1] = 10'000'000;  // the modem trained down
  links.up_bps[2] = 1'000'000;
  auto ports = build_hierarchy(config, subscribers, links);
  EXPECT_EQ(ports[0].link_bps, 20'000'000u);
  EXPECT_EQ(ports[0].subports[0].rate_bps, 9'000'000u);
  EXPECT_EQ(ports[0].subports[1].rate_bps, 9'000'000u) << "wan1 as configured";
  const auto& down = ports[0].subports[0].pipes;
  ASSERT_EQ(down.size(), 5u);
  EXPECT_EQ(down[4].pipe, 7u);
  EXPECT_EQ(down[4].rate_bps, 1'000u) << "alice's 9 mbit guarantee leaves nothing: the floor";
  EXPECT_EQ(down[0].ceil_bps, 9'500'000u) << "ceilings follow the link";
  EXPECT_EQ(ports[2].link_bps, 1'000'000u);
}

TEST(QosHierarchy, WithoutBorrowingTheGuaranteeIsTheCap) {
  json config = two_wans();
  config["qos"]["borrow"] = false;
  for (const auto& port : build(config))
    for (const auto& pipe : port.subports[0].pipes) EXPECT_EQ(pipe.ceil_bps, pipe.rate_bps) << pipe.name;
}

TEST(QosHierarchy, OnlyTheShapedDirections) {
  json config = two_wans();
  config["qos"]["upload"] = false;
  auto ports = build(config);
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_TRUE(ports[0].download);
  config["qos"]["upload"] = true;
  config["qos"]["download"] = false;
  ports = build(config);
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_FALSE(ports[0].download);
  config.erase("qos");
  config.erase("subscribers");
  EXPECT_TRUE(build(config).empty()) << "no qos section: nothing is shaped";
}

TEST(QosHierarchy, JsonAsSchedGraphReadsIt) {
  json tree = json::parse(hierarchy_json(build(two_wans())).dump());
  ASSERT_EQ(tree["ports"].size(), 3u);
  const json& lan = tree["ports"][0];
  EXPECT_EQ(lan["name"], "lan0");
  EXPECT_EQ(lan["direction"], "download");
  EXPECT_EQ(lan["rate_bps"], 40'000'000);
  EXPECT_EQ(lan["link_bps"], 40'000'000);
  ASSERT_EQ(lan["subports"].size(), 3u);
  EXPECT_EQ(lan["subports"][1]["name"], "internet via wan1");
  EXPECT_EQ(lan["subports"][1]["rate_bps"], 9'000'000);
  EXPECT_EQ(lan["subports"][0]["framing"], "pppoe");
  EXPECT_EQ(lan["subports"][0]["overhead_bytes"], 32);
  EXPECT_EQ(tree["ports"][1]["subports"][0]["framing"], "pppoe");
  const json& bob = lan["subports"][0]["pipes"][1];
  EXPECT_EQ(bob["subscriber"], "bob");
  EXPECT_EQ(bob["pipe"], 2);
  EXPECT_EQ(bob["addresses"], json({"10.10.0.12", "10.10.0.32/28"}));
  EXPECT_EQ(bob["rate_bps"], 9'000'000);
  EXPECT_EQ(bob["ceil_bps"], 12'000'000);
  ASSERT_EQ(bob["classes"].size(), kTrafficClasses.size());
  EXPECT_EQ(bob["classes"][0]["name"], "interactive");
  EXPECT_EQ(bob["classes"][3]["name"], "p2p");
  EXPECT_EQ(bob["classes"][3]["priority"], 3);
}

}  // namespace
}  // namespace fairgate
