// QosControl, the management thread's side of fair sharing, with the schedulers' owners run
// inline: subscribers added, changed and removed at run time, link rates changed, unknown hosts
// turned into subscribers of their own and expired when idle. Every refusal names the field and
// leaves subscribers, map, hierarchy and schedulers as they were.
#include "qos/qos_control.h"

#include "config/json_path.h"
#include "qos/qos_dataplane.h"
#include "test_packets.h"

#include <rte_lcore.h>
#include <rte_ring.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fairgate {
namespace {

using nlohmann::json;
using test::ip;

constexpr uint16_t kLan = 0, kWan = 1;
// Pipes of control_config(): "unknown" 0, alice 1, bob 2; the next free one is 3.
constexpr uint32_t kAlice = 1, kBob = 2;

// 10 Mbit/s down and 2 Mbit/s up: subscribers share 9 and 1.8 Mbit/s (5 % margin, 5 % for the
// gateway), and may borrow up to 9.5 and 1.9.
json control_config() {
  return json::parse(R"({
    "ports": [
      {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
      {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1",
       "rate_down": "10mbit", "rate_up": "2mbit"}
    ],
    "qos": {"max_subscribers": 8, "idle_s": 60},
    "subscribers": [
      {"name": "alice", "addresses": ["10.10.0.11"]},
      {"name": "bob", "addresses": ["10.10.0.32/28"]}
    ]
  })");
}

SubscriberConfig plan(const std::string& name, std::vector<const char*> addresses, uint64_t down_rate = 0,
                      uint64_t up_rate = 0) {
  SubscriberConfig s;
  s.name = name;
  for (const char* text : addresses) {
    auto prefix = std::string(text).find('/') == std::string::npos ? std::optional(Ipv4Prefix{ip(text), 32})
                                                                    : parse_ipv4_prefix(text);
    if (!prefix) throw std::invalid_argument(std::string("bad test prefix ") + text);
    prefix->address = prefix->network();
    s.addresses.push_back(*prefix);
  }
  s.down.rate_bps = down_rate;
  s.up.rate_bps = up_rate;
  return s;
}

// The schedulers, and QosControl over them with owners that run its work inline (or refuse:
// a worker that did not answer).
struct Control {
  explicit Control(const json& text, uint16_t workers = 1)
      : config(parse_config(text.dump())),
        dataplane(config, build_hierarchy(config), workers, static_cast<int>(rte_socket_id())),
        control(config, dataplane, [this](uint16_t owner, const std::function<void()>& work) {
          ++runs;
          if (refuse_owner == owner) return false;
          work();
          return true;
        }) {}

  // Hosts reported by the workers, as the sched stage puts them on the ring.
  void report(std::initializer_list<const char*> hosts) {
    for (const char* host : hosts)
      ASSERT_EQ(rte_ring_enqueue(dataplane.new_hosts(), reinterpret_cast<void*>(static_cast<uintptr_t>(ip(host)))), 0);
  }
  uint32_t lookup(const char* address) const { return dataplane.map().current()->find(ip(address)); }
  SchedPort& sched(std::size_t i) { return *dataplane.schedulers().at(i)->sched; }
  std::size_t count(const std::string& name) const {
    std::size_t n = 0;
    for (const auto& s : control.subscribers()) n += s.plan.name == name;
    return n;
  }

  Config config;
  QosDataplane dataplane;
  int runs = 0;
  int refuse_owner = -1;
  QosControl control;
};

const char* kind_name(LiveSubscriber::Kind kind) {
  switch (kind) {
    case LiveSubscriber::Kind::kConfigured: return "configured";
    case LiveSubscriber::Kind::kAutomatic: return "automatic";
    case LiveSubscriber::Kind::kUnknown: return "unknown";
  }
  return "?";
}

// Everything a refused change must leave alone, as lines that read well in a failure: the
// subscribers, what the published map says for addresses around them, and the hierarchy.
std::vector<std::string> state(const Control& c) {
  std::vector<std::string> lines;
  for (const auto& s : c.control.subscribers()) {
    std::string line = s.plan.name + " pipe " + std::to_string(s.pipe) + " " + kind_name(s.kind);
    for (const auto& prefix : s.plan.addresses) line += " " + format_prefix(prefix);
    lines.push_back(line);
  }
  for (const char* address : {"10.10.0.11", "10.10.0.12", "10.10.0.13", "10.10.0.20", "10.10.0.33", "10.10.0.40",
                              "10.10.0.50", "10.10.0.60", "10.10.0.99", "10.10.0.200"})
    lines.push_back(std::string(address) + " -> " + std::to_string(c.lookup(address)));
  lines.push_back(hierarchy_json(c.control.hierarchy()).dump());
  return lines;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Runs `change`, which must throw FieldError naming `field` with `fragment` in the reason and
// change nothing.
void expect_refused(Control& c, const std::function<void()>& change, const std::string& field,
                    const std::string& fragment) {
  auto before = state(c);
  try {
    change();
    ADD_FAILURE() << "accepted";
  } catch (const FieldError& error) {
    EXPECT_EQ(error.field(), field) << error.what();
    EXPECT_TRUE(contains(error.what(), fragment)) << "expected \"" << fragment << "\" in: " << error.what();
  }
  EXPECT_EQ(state(c), before) << "a refused change changed something";
}

const PipeNode* pipe_named(const PortNode& port, const std::string& name) {
  for (const auto& pipe : port.subports[SchedPort::kInternetSubport].pipes)
    if (pipe.name == name) return &pipe;
  return nullptr;
}

// ---- add -------------------------------------------------------------------------------------------

TEST(QosControl, AddTakesTheLowestFreePipeOnEveryScheduler) {
  Control c(control_config());
  c.runs = 0;
  c.control.add(plan("carol", {"10.10.0.13", "10.10.0.64/28"}));
  const LiveSubscriber* carol = c.control.find("carol");
  ASSERT_NE(carol, nullptr);
  EXPECT_EQ(carol->pipe, 3u);
  EXPECT_EQ(carol->kind, LiveSubscriber::Kind::kConfigured);
  EXPECT_EQ(c.lookup("10.10.0.13"), 3u) << "the published map has it";
  EXPECT_EQ(c.lookup("10.10.0.70"), 3u);
  EXPECT_EQ(c.lookup("10.10.0.11"), kAlice) << "the others are still there";
  EXPECT_EQ(c.lookup("10.10.0.33"), kBob);
  auto hierarchy = c.control.hierarchy();
  ASSERT_EQ(hierarchy.size(), 2u);
  for (const auto& port : hierarchy) {
    const PipeNode* pipe = pipe_named(port, "carol");
    ASSERT_NE(pipe, nullptr) << port.name;
    EXPECT_EQ(pipe->pipe, 3u);
    EXPECT_EQ(pipe->addresses.size(), 2u);
  }
  for (std::size_t i = 0; i < c.dataplane.schedulers().size(); ++i) EXPECT_TRUE(c.sched(i).pipe_configured(3)) << i;
  EXPECT_EQ(c.runs, 2) << "each scheduler brought to it once, on its owner";
}

TEST(QosControl, AGuaranteeUpToTheSubscribersShareIsAccepted) {
  Control c(control_config());
  c.control.add(plan("carol", {"10.10.0.13"}, 9'000'000, 1'800'000));
  auto hierarchy = c.control.hierarchy();
  EXPECT_EQ(pipe_named(hierarchy[0], "carol")->rate_bps, 9'000'000u);
  EXPECT_EQ(pipe_named(hierarchy[1], "carol")->rate_bps, 1'800'000u);
}

struct Refusal {
  std::string name;
  SubscriberConfig plan;
  std::string field;
  std::string fragment;
};
void PrintTo(const Refusal& r, std::ostream* out) { *out << r.name; }

std::vector<Refusal> add_refusals() {
  return {
      {"name_taken", plan("alice", {"10.10.0.13"}), "args.name", "a subscriber \"alice\" exists"},
      {"name_of_unknown", plan("unknown", {"10.10.0.13"}), "args.name", "\"unknown\" exists"},
      {"same_host_as_another", plan("carol", {"10.10.0.11"}), "args.addresses", "overlaps subscriber \"alice\""},
      {"inside_another_prefix", plan("carol", {"10.10.0.40/29"}), "args.addresses", "overlaps subscriber \"bob\""},
      {"host_inside_another_prefix", plan("carol", {"10.10.0.33"}), "args.addresses", "overlaps subscriber \"bob\""},
      {"around_others", plan("carol", {"10.10.0.0/25"}), "args.addresses", "overlaps subscriber"},
      {"second_address_overlaps", plan("carol", {"10.10.0.13", "10.10.0.47"}), "args.addresses",
       "overlaps subscriber \"bob\""},
      {"down_guarantee_over_the_share", plan("carol", {"10.10.0.13"}, 9'000'001), "args.down.rate",
       "more than the 9mbit lan0 leaves"},
      {"up_guarantee_over_the_share", plan("carol", {"10.10.0.13"}, 0, 1'800'001), "args.up.rate",
       "more than the 1800kbit wan0 leaves"},
  };
}

class QosControlAddRefused : public ::testing::TestWithParam<Refusal> {};

TEST_P(QosControlAddRefused, NamesTheFieldAndChangesNothing) {
  Control c(control_config());
  expect_refused(c, [&] { c.control.add(GetParam().plan); }, GetParam().field, GetParam().fragment);
}

INSTANTIATE_TEST_SUITE_P(QosControl, QosControlAddRefused, ::testing::ValuesIn(add_refusals()),
                         [](const ::testing::TestParamInfo<Refusal>& info) { return info.param.name; });

TEST(QosControl, GuaranteesAddUpWithTheOthers) {
  Control c(control_config());
  c.control.add(plan("carol", {"10.10.0.13"}, 5'000'000));
  expect_refused(c, [&] { c.control.add(plan("dave", {"10.10.0.14"}, 4'000'001)); }, "args.down.rate",
                 "would add up to 9000001bit");
  c.control.add(plan("dave", {"10.10.0.14"}, 4'000'000));
  EXPECT_NE(c.control.find("dave"), nullptr);
}

TEST(QosControl, AddWhenEveryPipeIsTakenNamesTheLimit) {
  json config = control_config();
  config["qos"]["max_subscribers"] = 4;  // unknown, alice, bob and one more
  Control c(config);
  c.control.add(plan("carol", {"10.10.0.13"}));
  EXPECT_EQ(c.control.find("carol")->pipe, 3u);
  expect_refused(c, [&] { c.control.add(plan("dave", {"10.10.0.14"})); }, "args.name",
                 "no pipe left: qos.max_subscribers is 4");
}

TEST(QosControl, AddOverAnAutomaticSubscriberTakesItsAddress) {
  Control c(control_config());
  c.report({"10.10.0.50", "10.10.0.60"});
  c.control.tick(5'000);
  ASSERT_NE(c.control.find("10.10.0.50"), nullptr);
  const uint32_t automatic_pipe = c.control.find("10.10.0.50")->pipe;

  c.control.add(plan("dave", {"10.10.0.48/29"}));  // .48 to .55: covers .50, not .60
  EXPECT_EQ(c.control.find("10.10.0.50"), nullptr) << "the automatic subscriber is gone";
  ASSERT_NE(c.control.find("dave"), nullptr);
  EXPECT_EQ(c.control.find("dave")->pipe, automatic_pipe) << "the lowest free pipe: the one it left";
  EXPECT_EQ(c.lookup("10.10.0.50"), automatic_pipe);
  EXPECT_NE(c.control.find("10.10.0.60"), nullptr) << "an automatic one it does not cover stays";
  for (const auto& port : c.control.hierarchy()) EXPECT_EQ(pipe_named(port, "10.10.0.50"), nullptr) << port.name;

  // The same for exactly the automatic subscriber's own address.
  c.control.add(plan("erin", {"10.10.0.60"}));
  EXPECT_EQ(c.control.find("10.10.0.60"), nullptr);
  EXPECT_EQ(c.lookup("10.10.0.60"), c.control.find("erin")->pipe);
}

// ---- replace ---------------------------------------------------------------------------------------

TEST(QosControl, ReplaceChangesPlanAndAddressesKeepingThePipe) {
  Control c(control_config());
  SubscriberConfig changed = plan("alice", {"10.10.0.20", "10.10.0.64/28"}, 2'000'000);
  changed.down.ceil_bps = 5'000'000;
  c.control.replace("alice", changed);
  const LiveSubscriber* alice = c.control.find("alice");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->pipe, kAlice);
  EXPECT_EQ(c.lookup("10.10.0.11"), SubscriberMap::kNoPipe) << "its old address is nobody's now";
  EXPECT_EQ(c.lookup("10.10.0.20"), kAlice);
  EXPECT_EQ(c.lookup("10.10.0.70"), kAlice);
  // The hierarchy is built anew by each call: keep it while pointing into it.
  std::vector<PortNode> hierarchy = c.control.hierarchy();
  const PipeNode* down = pipe_named(hierarchy[0], "alice");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->rate_bps, 2'000'000u);
  EXPECT_EQ(down->ceil_bps, 5'000'000u);
  EXPECT_EQ(c.control.subscribers().size(), 3u);
}

TEST(QosControl, ReplaceRefusedNamesTheFieldAndChangesNothing) {
  Control c(control_config());
  expect_refused(c, [&] { c.control.replace("carol", plan("carol", {"10.10.0.13"})); }, "args.name",
                 "no subscriber \"carol\"");
  expect_refused(c, [&] { c.control.replace("alice", plan("alice", {"10.10.0.11", "10.10.0.40"})); },
                 "args.addresses", "overlaps subscriber \"bob\"");
  expect_refused(c, [&] { c.control.replace("unknown", plan("unknown", {"10.10.0.13"})); }, "args.addresses",
                 "it has no addresses");
  expect_refused(c, [&] { c.control.replace("alice", plan("alice", {"10.10.0.11"}, 9'000'001)); }, "args.down.rate",
                 "more than the 9mbit");
}

TEST(QosControl, ReplacingAnAutomaticSubscriberMakesItTheOperators) {
  Control c(control_config());
  c.report({"10.10.0.50"});
  c.control.tick(5'000);
  c.control.replace("10.10.0.50", plan("10.10.0.50", {"10.10.0.50"}, 1'000'000));
  EXPECT_EQ(c.control.find("10.10.0.50")->kind, LiveSubscriber::Kind::kConfigured);
  c.control.tick(5'000 + 3'600'000);
  EXPECT_NE(c.control.find("10.10.0.50"), nullptr) << "it does not expire however idle";
  EXPECT_EQ(c.control.automatic_expired(), 0u);
}

// ---- remove ----------------------------------------------------------------------------------------

TEST(QosControl, RemoveFreesThePipeForTheNextSubscriber) {
  Control c(control_config());
  c.control.remove("alice");
  EXPECT_EQ(c.control.find("alice"), nullptr);
  EXPECT_EQ(c.lookup("10.10.0.11"), SubscriberMap::kNoPipe) << "its hosts are unknown ones now";
  for (const auto& port : c.control.hierarchy()) EXPECT_EQ(pipe_named(port, "alice"), nullptr) << port.name;
  c.control.add(plan("carol", {"10.10.0.13"}));
  EXPECT_EQ(c.control.find("carol")->pipe, kAlice) << "alice's pipe is reused";
}

TEST(QosControl, RemoveRefusedNamesTheFieldAndChangesNothing) {
  Control c(control_config());
  expect_refused(c, [&] { c.control.remove("unknown"); }, "args.name", "it cannot go");
  expect_refused(c, [&] { c.control.remove("nobody"); }, "args.name", "no subscriber \"nobody\"");
}

// ---- link rates ------------------------------------------------------------------------------------

TEST(QosControl, SetLinkRateChangesTheLinkTheTreeAndEveryScheduler) {
  Control c(control_config());
  double ms = c.control.set_link_rate(kWan, 20'000'000, 4'000'000);
  EXPECT_GE(ms, 0.0);
  EXPECT_EQ(c.control.links().down_bps[kWan], 20'000'000u);
  EXPECT_EQ(c.control.links().up_bps[kWan], 4'000'000u);
  struct Want {
    uint64_t link, rate, ceil, local;
  };
  // With the defaults the subscribers are guaranteed 90 % of the link and may use 95 %; the
  // gateway keeps 5 %.
  const Want want[] = {{20'000'000, 18'000'000, 19'000'000, 1'000'000}, {4'000'000, 3'600'000, 3'800'000, 200'000}};
  auto hierarchy = c.control.hierarchy();
  ASSERT_EQ(hierarchy.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE(hierarchy[i].name);
    EXPECT_EQ(hierarchy[i].link_bps, want[i].link);
    EXPECT_EQ(hierarchy[i].subports[SchedPort::kInternetSubport].rate_bps, want[i].rate);
    EXPECT_EQ(hierarchy[i].subports[SchedPort::kInternetSubport].ceil_bps, want[i].ceil);
    EXPECT_EQ(hierarchy[i].local().ceil_bps, want[i].local);
    EXPECT_EQ(c.sched(i).subport_rate_bps(SchedPort::kInternetSubport), want[i].ceil);
    EXPECT_EQ(c.sched(i).subport_rate_bps(c.sched(i).local_subport()), want[i].local);
    EXPECT_EQ(pipe_named(hierarchy[i], "alice")->ceil_bps, want[i].ceil) << "ceilings follow the link";
  }

  // 0 keeps a direction as it is.
  c.control.set_link_rate(kWan, 0, 3'000'000);
  EXPECT_EQ(c.control.links().down_bps[kWan], 20'000'000u);
  EXPECT_EQ(c.control.links().up_bps[kWan], 3'000'000u);
  EXPECT_EQ(c.sched(0).subport_rate_bps(SchedPort::kInternetSubport), 19'000'000u);
  EXPECT_EQ(c.sched(1).subport_rate_bps(SchedPort::kInternetSubport), 2'850'000u);
}

TEST(QosControl, ASecondWansRateChangesOnlyItsOwnSubportAndUplink) {
  json config = control_config();
  config["ports"].push_back(json::parse(R"({"name": "wan1", "role": "wan", "device": "net_ring2",
      "address": "203.0.113.2/25", "gateway": "203.0.113.1", "rate_down": "20mbit", "rate_up": "4mbit"})"));
  Control c(config);
  ASSERT_EQ(c.dataplane.schedulers().size(), 3u) << "lan0, wan0, wan1";
  SchedPort& lan = c.sched(0);
  ASSERT_EQ(lan.subport_count(), 3u);
  EXPECT_EQ(lan.subport_rate_bps(0), 9'500'000u) << "downloads by wan0";
  EXPECT_EQ(lan.subport_rate_bps(1), 19'000'000u) << "downloads by wan1";
  EXPECT_EQ(lan.subport_rate_bps(2), 1'500'000u) << "the gateway's 5 % of both";

  c.control.set_link_rate(2, 8'000'000, 2'000'000);  // wan1's modem trained down
  EXPECT_EQ(lan.subport_rate_bps(0), 9'500'000u) << "wan0's downloads are not touched";
  EXPECT_EQ(lan.subport_rate_bps(1), 7'600'000u);
  EXPECT_EQ(c.sched(1).subport_rate_bps(SchedPort::kInternetSubport), 1'900'000u) << "wan0's uplink as it was";
  EXPECT_EQ(c.sched(2).subport_rate_bps(SchedPort::kInternetSubport), 1'900'000u);
  auto hierarchy = c.control.hierarchy();
  EXPECT_EQ(hierarchy[0].link_bps, 18'000'000u);
  EXPECT_EQ(pipe_named(hierarchy[0], "alice")->ceil_bps, 9'500'000u) << "on the first link";

  // Guarantees are checked against the largest link: 8.5 mbit fits wan0's 9, not wan1's 7.2.
  c.control.add(plan("carol", {"10.10.0.13"}, 8'500'000));
  EXPECT_NE(c.control.find("carol"), nullptr);
}

TEST(QosControl, AChangeOneSchedulerMissesIsUndoneOnTheOthers) {
  // Two workers: the LAN's scheduler is worker 0's, the WAN's worker 1's, which does not answer.
  Control c(control_config(), 2);
  ASSERT_EQ(c.dataplane.schedulers()[0]->owner, 0);
  ASSERT_EQ(c.dataplane.schedulers()[1]->owner, 1);
  c.refuse_owner = 1;
  expect_refused(c, [&] { c.control.set_link_rate(kWan, 20'000'000, 4'000'000); }, "args",
                 "the worker owning wan0 did not answer");
  EXPECT_EQ(c.control.links().down_bps[kWan], 10'000'000u);
  EXPECT_EQ(c.sched(0).subport_rate_bps(SchedPort::kInternetSubport), 9'500'000u)
      << "the LAN's scheduler took the new rate, then went back";
  expect_refused(c, [&] { c.control.add(plan("carol", {"10.10.0.13"})); }, "args", "did not answer");
  EXPECT_EQ(c.control.find("carol"), nullptr);

  c.refuse_owner = -1;
  c.control.add(plan("carol", {"10.10.0.13"}));
  EXPECT_EQ(c.lookup("10.10.0.13"), 3u) << "once the worker answers, the change goes through";
}

// ---- unknown hosts -----------------------------------------------------------------------------------

TEST(QosControl, ReportedHostsBecomeSubscribersOfTheirOwn) {
  Control c(control_config());
  c.report({"10.10.0.60", "10.10.0.61", "10.10.0.60", "10.10.0.11"});  // a repeat, and alice's host
  c.control.tick(5'000);
  EXPECT_EQ(c.control.automatic_created(), 2u);
  const LiveSubscriber* first = c.control.find("10.10.0.60");
  const LiveSubscriber* second = c.control.find("10.10.0.61");
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(first->kind, LiveSubscriber::Kind::kAutomatic);
  EXPECT_EQ(first->pipe, 3u);
  EXPECT_EQ(second->pipe, 4u);
  ASSERT_EQ(first->plan.addresses.size(), 1u);
  EXPECT_EQ(first->plan.addresses[0].address, ip("10.10.0.60"));
  EXPECT_EQ(first->plan.addresses[0].length, 32);
  EXPECT_EQ(c.lookup("10.10.0.60"), 3u);
  EXPECT_EQ(c.lookup("10.10.0.61"), 4u);
  EXPECT_EQ(c.lookup("10.10.0.11"), kAlice);
  EXPECT_EQ(c.count("10.10.0.60"), 1u);
  EXPECT_EQ(c.control.find("10.10.0.11"), nullptr) << "a host a subscriber covers is not made one";
  EXPECT_EQ(c.control.subscribers().size(), 5u);
  for (std::size_t i = 0; i < c.dataplane.schedulers().size(); ++i) EXPECT_TRUE(c.sched(i).pipe_configured(4)) << i;
  EXPECT_EQ(rte_ring_count(c.dataplane.new_hosts()), 0u) << "every report was taken";
}

TEST(QosControl, WithEveryPipeTakenHostsStayWithUnknown) {
  json config = control_config();
  config["qos"]["max_subscribers"] = 4;  // one pipe left after unknown, alice and bob
  Control c(config);
  c.report({"10.10.0.60", "10.10.0.61", "10.10.0.62"});
  c.control.tick(5'000);
  EXPECT_EQ(c.control.automatic_created(), 1u);
  EXPECT_EQ(c.control.unknown_without_pipe(), 2u);
  EXPECT_EQ(c.lookup("10.10.0.60"), 3u);
  EXPECT_EQ(c.lookup("10.10.0.61"), SubscriberMap::kNoPipe) << "its packets go to \"unknown\"";
  EXPECT_EQ(c.lookup("10.10.0.62"), SubscriberMap::kNoPipe);
  EXPECT_EQ(c.control.subscribers().size(), 4u);
}

TEST(QosControl, SharedUnknownHostsGetNoSubscriber) {
  json config = control_config();
  config["qos"]["unknown_hosts"] = "shared";
  Control c(config);
  c.report({"10.10.0.60"});
  c.control.tick(5'000);
  EXPECT_EQ(c.control.find("10.10.0.60"), nullptr);
  EXPECT_EQ(c.control.automatic_created(), 0u);
  EXPECT_EQ(c.control.subscribers().size(), 3u);
}

TEST(QosControl, IdleAutomaticSubscribersExpireConfiguredOnesStay) {
  Control c(control_config());  // idle_s 60
  const uint64_t start = 5'000;
  const uint64_t idle_ms = 60 * 1000;
  c.report({"10.10.0.60", "10.10.0.61"});
  c.control.tick(start);
  const uint32_t quiet = c.control.find("10.10.0.60")->pipe;
  const uint32_t busy = c.control.find("10.10.0.61")->pipe;
  // .61 sends something half way (its owner counts what the scheduler released).
  c.dataplane.schedulers()[0]->pipes[busy].bytes[1].add(1500);
  c.control.tick(start + idle_ms / 2);

  c.control.tick(start + idle_ms - QosControl::kSampleMs);
  EXPECT_NE(c.control.find("10.10.0.60"), nullptr) << "not idle long enough yet";
  EXPECT_EQ(c.control.automatic_expired(), 0u);

  c.control.tick(start + idle_ms + 2 * QosControl::kSampleMs);
  EXPECT_EQ(c.control.find("10.10.0.60"), nullptr) << "idle for idle_s";
  EXPECT_EQ(c.lookup("10.10.0.60"), SubscriberMap::kNoPipe);
  EXPECT_NE(c.control.find("10.10.0.61"), nullptr) << "it sent within idle_s";
  EXPECT_EQ(c.control.automatic_expired(), 1u);
  EXPECT_NE(c.control.find("alice"), nullptr) << "configured subscribers never expire";
  EXPECT_NE(c.control.find("bob"), nullptr);
  EXPECT_NE(c.control.find("unknown"), nullptr);

  c.control.tick(start + idle_ms / 2 + idle_ms + 2 * QosControl::kSampleMs);
  EXPECT_EQ(c.control.find("10.10.0.61"), nullptr) << "idle for idle_s since it last sent";
  EXPECT_EQ(c.control.automatic_expired(), 2u);
  EXPECT_EQ(c.control.subscribers().size(), 3u);

  c.report({"10.10.0.62"});
  c.control.tick(start + 3 * idle_ms);
  EXPECT_EQ(c.control.find("10.10.0.62")->pipe, quiet) << "an expired subscriber's pipe is reused";
}

TEST(QosControl, AnAutomaticSubscriberNeverSharesAConfiguredOnesName) {
  Control c(control_config());
  // An operator may call a subscriber by an address (parse_subscriber allows it), here one that
  // is not among its own.
  c.control.add(plan("10.10.0.77", {"10.10.0.5"}));
  c.report({"10.10.0.77"});
  c.control.tick(5'000);
  EXPECT_EQ(c.count("10.10.0.77"), 1u) << "subscriber names are how the commands find them";
  ASSERT_NE(c.control.find("auto-10.10.0.77"), nullptr) << "the host is a subscriber under another name";
  EXPECT_EQ(c.lookup("10.10.0.77"), c.control.find("auto-10.10.0.77")->pipe);
}

// ---- rates now -----------------------------------------------------------------------------------

TEST(QosControl, RatesAreWhatThePipesSentOverTheLastSample) {
  Control c(control_config());
  c.control.tick(1'000);
  c.dataplane.schedulers()[0]->pipes[kAlice].bytes[static_cast<std::size_t>(TrafficClass::kNormal)].add(125'000);
  c.dataplane.schedulers()[0]->gateway.bytes[0].add(12'500);
  c.control.tick(2'000);
  EXPECT_DOUBLE_EQ(c.control.rate_bps(0, kAlice, TrafficClass::kNormal), 1'000'000.0) << "125 kB in one second";
  EXPECT_DOUBLE_EQ(c.control.rate_bps(0, kAlice, TrafficClass::kBulk), 0.0);
  EXPECT_DOUBLE_EQ(c.control.rate_bps(1, kAlice, TrafficClass::kNormal), 0.0) << "another scheduler";
  EXPECT_DOUBLE_EQ(c.control.gateway_rate_bps(0), 100'000.0);
  c.control.tick(2'500);
  EXPECT_DOUBLE_EQ(c.control.rate_bps(0, kAlice, TrafficClass::kNormal), 1'000'000.0)
      << "a tick within the sample period does not sample";
  c.control.tick(3'000);
  EXPECT_DOUBLE_EQ(c.control.rate_bps(0, kAlice, TrafficClass::kNormal), 0.0) << "nothing sent since";
}

TEST(QosControl, ASubscriberOnAReusedPipeStartsFromNothingSent) {
  Control c(control_config());
  c.control.tick(1'000);
  auto& normal = c.dataplane.schedulers()[0]->pipes[kAlice].bytes[static_cast<std::size_t>(TrafficClass::kNormal)];
  normal.add(1'250'000);
  c.control.tick(2'000);
  ASSERT_DOUBLE_EQ(c.control.rate_bps(0, kAlice, TrafficClass::kNormal), 10'000'000.0);
  c.control.remove("alice");
  c.control.tick(3'000);
  c.control.add(plan("carol", {"10.10.0.13"}));
  ASSERT_EQ(c.control.find("carol")->pipe, kAlice) << "carol has alice's pipe";
  c.control.tick(4'000);
  EXPECT_DOUBLE_EQ(c.control.rate_bps(0, kAlice, TrafficClass::kNormal), 0.0) << "carol has sent nothing";
}

}  // namespace
}  // namespace fairgate
