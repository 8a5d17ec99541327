// WanHealth and WanSelector on a fake clock: a simulated WAN sends a round of probes every
// interval and answers them after a chosen RTT (or not), 1 ms at a time, the way the management
// thread will. Cuts, recoveries, the immediate causes (carrier, ARP, LPA), the operator's force,
// hysteresis, loss and latency over the window, odd replies, and the subscribers' choice of WAN.
#include "wan/wan_health.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace fairgate {
namespace {

// One WAN behind a fake clock. Every interval_ms it sends one probe per target, all with the
// round's sequence number; a probe is answered when the link is up when it is sent and when the
// reply comes back, and the target answers; the reply arrives `rtt(target, sent_ms)` later, late
// or not (WanHealth decides). run_to(t) processes each millisecond up to t: replies due, the
// round due, then tick().
class FakeWan {
 public:
  explicit FakeWan(WanProbeSettings settings = {}, uint64_t start_ms = 0)
      : health(settings, start_ms), settings_(settings), next_ms_(start_ms), next_round_ms_(start_ms) {}

  std::function<bool(uint64_t now_ms)> link_up = [](uint64_t) { return true; };
  std::function<bool(uint32_t target, uint64_t sent_ms)> target_answers = [](uint32_t, uint64_t) { return true; };
  std::function<uint32_t(uint32_t target, uint64_t sent_ms)> rtt = [](uint32_t, uint64_t) { return 20u; };
  bool sending = true;  // the prober runs

  void run_to(uint64_t until_ms) {
    for (; next_ms_ <= until_ms; ++next_ms_) step(next_ms_);
  }
  // Runs until `health.state()` is `state`, at most to `limit_ms`; the time it got there.
  std::optional<uint64_t> run_until(WanState state, uint64_t limit_ms) {
    for (; next_ms_ <= limit_ms; ++next_ms_) {
      step(next_ms_);
      if (health.state() == state) return next_ms_++;
    }
    return std::nullopt;
  }
  uint64_t now() const { return next_ms_ - 1; }  // the last millisecond processed
  uint16_t sequence() const { return sequence_; }  // of the next round

  WanHealth health;

 private:
  struct Reply {
    uint32_t target;
    uint16_t sequence;
  };
  void step(uint64_t t) {
    auto due = replies_.upper_bound(t);
    for (auto it = replies_.begin(); it != due; ++it) health.probe_reply(it->second.target, it->second.sequence, t);
    replies_.erase(replies_.begin(), due);
    if (t >= next_round_ms_) {
      next_round_ms_ += settings_.interval_ms;
      if (sending) {
        for (uint32_t target = 0; target < settings_.targets; ++target) {
          health.probe_sent(target, sequence_, t);
          const uint32_t r = rtt(target, t);
          if (link_up(t) && link_up(t + r) && target_answers(target, t)) replies_.insert({t + r, {target, sequence_}});
        }
        ++sequence_;
      }
    }
    health.tick(t);
  }

  WanProbeSettings settings_;
  uint64_t next_ms_, next_round_ms_;
  uint16_t sequence_ = 0;
  std::multimap<uint64_t, Reply> replies_;
};

WanProbeSettings fast_hold_down(uint32_t hold_down_ms = 2000) {
  WanProbeSettings s;
  s.hold_down_ms = hold_down_ms;
  return s;
}

// ---- settings --------------------------------------------------------------------------------

TEST(WanProbeSettings, DefaultsDetectADeadLinkWellWithinTwoSeconds) {
  WanProbeSettings s;
  EXPECT_NO_THROW(s.validate());
  EXPECT_EQ(s.interval_ms, 500u);
  EXPECT_EQ(s.timeout_ms, 500u);
  EXPECT_EQ(s.down_after, 2u);
  EXPECT_EQ(s.up_after, 3u);
  EXPECT_EQ(s.reliability, 1u);
  EXPECT_EQ(s.window, 10u);
  // The cut right after a round was answered: two more rounds are sent and time out.
  EXPECT_EQ(s.worst_case_detection_ms(), 2u * 500u + 500u);
  EXPECT_LE(s.worst_case_detection_ms(), 2000u);
  EXPECT_LT(s.latency_degraded_ms, s.timeout_ms) << "else latency could never degrade a WAN";
}

TEST(WanProbeSettings, RefusesSettingsThatCannotWorkNamingTheField) {
  auto refused = [](auto change) -> std::string {
    WanProbeSettings s;
    change(s);
    try {
      s.validate();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "accepted";
  };
  EXPECT_NE(refused([](WanProbeSettings& s) { s.interval_ms = 0; }).find("interval_ms"), std::string::npos);
  EXPECT_NE(refused([](WanProbeSettings& s) { s.timeout_ms = 0; }).find("timeout_ms"), std::string::npos);
  EXPECT_NE(refused([](WanProbeSettings& s) { s.down_after = 0; }).find("down_after"), std::string::npos);
  EXPECT_NE(refused([](WanProbeSettings& s) { s.up_after = 0; }).find("up_after"), std::string::npos);
  EXPECT_NE(refused([](WanProbeSettings& s) { s.targets = 9; }).find("targets"), std::string::npos);
  EXPECT_NE(refused([](WanProbeSettings& s) { s.reliability = 2; }).find("reliability"), std::string::npos);
  EXPECT_NE(refused([](WanProbeSettings& s) { s.window = 0; }).find("window"), std::string::npos);
  EXPECT_NE(refused([](WanProbeSettings& s) { s.window = 2; }).find("window must hold at least up_after"),
            std::string::npos);
  EXPECT_NE(refused([](WanProbeSettings& s) { s.loss_degraded_percent = 101; }).find("loss_degraded_percent"),
            std::string::npos);
  EXPECT_NE(refused([](WanProbeSettings& s) { s.loss_recovered_percent = 30; }).find("loss_recovered_percent"),
            std::string::npos);
  EXPECT_NE(refused([](WanProbeSettings& s) { s.latency_degraded_ms = 500; }).find("latency_degraded_ms"),
            std::string::npos);
  EXPECT_NE(refused([](WanProbeSettings& s) { s.latency_recovered_ms = 400; }).find("latency_recovered_ms"),
            std::string::npos);
  EXPECT_EQ(refused([](WanProbeSettings& s) { s.latency_degraded_ms = 0; s.latency_recovered_ms = 999; }),
            "accepted") << "latency judgement off";
  EXPECT_EQ(refused([](WanProbeSettings& s) { s.targets = 3; s.reliability = 2; }), "accepted");
  WanProbeSettings bad;
  bad.targets = 0;
  EXPECT_THROW(WanHealth health(bad), std::invalid_argument) << "the constructor validates";
}

// ---- a healthy link --------------------------------------------------------------------------

TEST(WanHealth, AHealthyLinkStaysUpAndShowsItsProbes) {
  FakeWan wan;
  wan.rtt = [](uint32_t, uint64_t sent) { return sent % 1000 == 0 ? 10u : 30u; };
  wan.run_to(10'000);
  EXPECT_EQ(wan.health.state(), WanState::kUp);
  EXPECT_TRUE(wan.health.usable_for_new_flows(wan.now())) << "up from the start, no hold-down";
  EXPECT_EQ(wan.health.reason(), "start");
  EXPECT_TRUE(wan.health.take_transitions().empty());
  const auto& stats = wan.health.probe_stats();
  EXPECT_EQ(stats.probes_sent, 21u);  // 0, 500, ..., 10000
  EXPECT_EQ(stats.probes_answered, 20u) << "the reply to the round sent at 10000 is due at 10020";
  EXPECT_EQ(stats.probes_lost, 0u);
  EXPECT_EQ(stats.rounds_good, 20u) << "the round sent at 10000 is still out";
  EXPECT_EQ(stats.last_rtt_ms, 30u);
  EXPECT_EQ(stats.targets[0].sent, 21u);
  EXPECT_EQ(wan.health.window_rounds(), 10u);
  EXPECT_DOUBLE_EQ(wan.health.loss_percent(), 0.0);
  ASSERT_TRUE(wan.health.average_rtt_ms());
  EXPECT_DOUBLE_EQ(*wan.health.average_rtt_ms(), 20.0);  // five of 10 ms, five of 30 ms
}

// ---- the transitions table -------------------------------------------------------------------

TEST(WanHealth, ACutLinkGoesDownAfterDownAfterLostRoundsWithinTheWorstCase) {
  // Cut at every millisecond of one interval: the detection time runs from interval + timeout
  // (cut just before a round is sent) to down_after * interval + timeout (cut just after a
  // round's reply came back), less the RTT.
  for (uint32_t rtt : {1u, 20u}) {
    uint64_t fastest = UINT64_MAX, slowest = 0;
    for (uint64_t cut = 5000; cut < 5500; ++cut) {
      FakeWan wan;
      wan.rtt = [rtt](uint32_t, uint64_t) { return rtt; };
      wan.link_up = [cut](uint64_t t) { return t < cut; };
      auto down = wan.run_until(WanState::kDown, cut + 5000);
      ASSERT_TRUE(down) << "cut at " << cut;
      fastest = std::min(fastest, *down - cut);
      slowest = std::max(slowest, *down - cut);
      EXPECT_EQ(wan.health.reason(), "probes lost: 2 of 2 rounds");
      EXPECT_EQ(wan.health.cause(), WanCause::kProbesLost);
      EXPECT_EQ(wan.health.counters().to_down, 1u);
    }
    EXPECT_LE(slowest, WanProbeSettings{}.worst_case_detection_ms());
    EXPECT_EQ(slowest, 1500u - rtt - 1) << "cut 1 ms after the last reply";
    EXPECT_EQ(fastest, 1000u - rtt) << "cut as a round's reply would have come back";
  }
}

TEST(WanHealth, TheTransitionLogSaysWhenFromToAndWhy) {
  FakeWan wan(fast_hold_down());
  wan.link_up = [](uint64_t t) { return t < 3000 || t >= 8000; };
  wan.run_to(20'000);
  auto log = wan.health.take_transitions();
  ASSERT_EQ(log.size(), 2u);
  // Rounds sent at 3000 and 3500 time out at 3500 and 4000.
  EXPECT_EQ(log[0].at_ms, 4000u);
  EXPECT_EQ(log[0].from, WanState::kUp);
  EXPECT_EQ(log[0].to, WanState::kDown);
  EXPECT_EQ(log[0].cause, WanCause::kProbesLost);
  EXPECT_EQ(log[0].reason, "probes lost: 2 of 2 rounds");
  // Rounds sent at 8000, 8500 and 9000 are answered 20 ms later.
  EXPECT_EQ(log[1].at_ms, 9020u);
  EXPECT_EQ(log[1].from, WanState::kDown);
  EXPECT_EQ(log[1].to, WanState::kUp);
  EXPECT_EQ(log[1].cause, WanCause::kProbesAnswered);
  EXPECT_EQ(log[1].reason, "probes answered: 3 rounds");
  EXPECT_TRUE(wan.health.take_transitions().empty()) << "taken once";
  EXPECT_EQ(wan.health.counters().to_down, 1u);
  EXPECT_EQ(wan.health.counters().to_up, 1u);
  EXPECT_EQ(wan.health.counters().to_degraded, 0u);
  EXPECT_EQ(std::string(wan_cause_name(log[0].cause)), "probes-lost");
  EXPECT_EQ(std::string(wan_state_name(log[1].to)), "up");
}

TEST(WanHealth, ARecoveredWanTakesNewFlowsOnlyAfterTheHoldDown) {
  FakeWan wan(fast_hold_down(2000));
  wan.link_up = [](uint64_t t) { return t < 1000 || t >= 5000; };
  ASSERT_TRUE(wan.run_until(WanState::kDown, 5000));
  EXPECT_FALSE(wan.health.usable_for_new_flows(wan.now()));
  auto up = wan.run_until(WanState::kUp, 20'000);
  ASSERT_TRUE(up);
  EXPECT_EQ(*up, 6020u) << "up_after = 3 rounds: sent at 5000, 5500, 6000";
  EXPECT_EQ(wan.health.since_ms(), 6020u);
  EXPECT_EQ(wan.health.hold_until_ms(), 8020u);
  EXPECT_FALSE(wan.health.usable_for_new_flows(8019));
  EXPECT_TRUE(wan.health.usable_for_new_flows(8020));
  // The window restarted with the three rounds that proved the link.
  EXPECT_EQ(wan.health.window_rounds(), 3u);
  EXPECT_DOUBLE_EQ(wan.health.loss_percent(), 0.0);
}

TEST(WanHealth, CarrierLossIsImmediateAndItsReturnLetsFreshProbesDecide) {
  FakeWan wan(fast_hold_down());
  wan.run_to(2000);
  wan.health.link_state(false, 2100);
  EXPECT_EQ(wan.health.state(), WanState::kDown);
  EXPECT_EQ(wan.health.since_ms(), 2100u);
  EXPECT_EQ(wan.health.reason(), "carrier lost");
  EXPECT_EQ(wan.health.cause(), WanCause::kCarrier);
  EXPECT_FALSE(wan.health.carrier_up());
  // The probes keep being answered (say, the carrier report was wrong): no way up while it lasts.
  wan.run_to(6000);
  EXPECT_EQ(wan.health.state(), WanState::kDown);
  // Carrier back at 6100: rounds sent before it do not count; 6500, 7000 and 7500 do.
  wan.health.link_state(true, 6100);
  EXPECT_EQ(wan.health.state(), WanState::kDown) << "carrier alone brings nothing up";
  auto up = wan.run_until(WanState::kUp, 20'000);
  ASSERT_TRUE(up);
  EXPECT_EQ(*up, 7520u);
  EXPECT_EQ(wan.health.reason(), "probes answered: 3 rounds");
  wan.health.link_state(true, 7600);  // repeated reports change nothing
  EXPECT_EQ(wan.health.counters().to_up, 1u);
}

TEST(WanHealth, AGatewayThatDoesNotAnswerArpIsDownAtOnce) {
  FakeWan wan(fast_hold_down());
  wan.run_to(1234);
  wan.health.gateway_reachable(false, 1234);
  EXPECT_EQ(wan.health.state(), WanState::kDown);
  EXPECT_EQ(wan.health.since_ms(), 1234u);
  EXPECT_EQ(wan.health.reason(), "gateway does not answer ARP");
  EXPECT_EQ(wan.health.cause(), WanCause::kArp);
  wan.run_to(3000);
  wan.health.gateway_reachable(true, 3000);
  auto up = wan.run_until(WanState::kUp, 10'000);
  ASSERT_TRUE(up);
  EXPECT_EQ(*up, 4020u) << "rounds 3000, 3500, 4000";
}

TEST(WanHealth, LpaLinkDownIsImmediateAndLinkUpLeavesItToTheProbes) {
  FakeWan wan(fast_hold_down());
  wan.run_to(3000);
  wan.health.lpa_link(false, 3050);
  EXPECT_EQ(wan.health.state(), WanState::kDown);
  EXPECT_EQ(wan.health.since_ms(), 3050u) << "not a probe round later: at once";
  EXPECT_EQ(wan.health.reason(), "LPA: link down");
  EXPECT_EQ(wan.health.cause(), WanCause::kLpa);
  EXPECT_FALSE(wan.health.lpa_up());
  wan.run_to(5000);
  wan.health.lpa_link(true, 5010);
  EXPECT_EQ(wan.health.state(), WanState::kDown) << "U=1 says the modem's link is up, not the ISP's network";
  auto up = wan.run_until(WanState::kUp, 10'000);
  ASSERT_TRUE(up);
  EXPECT_EQ(*up, 6520u) << "rounds 5500, 6000, 6500: sent after U=1";

  // U=1 while the probes say the path is dead changes nothing.
  FakeWan dead(fast_hold_down());
  dead.link_up = [](uint64_t t) { return t < 1000; };
  ASSERT_TRUE(dead.run_until(WanState::kDown, 5000));
  dead.health.lpa_link(true, dead.now());
  dead.run_to(20'000);
  EXPECT_EQ(dead.health.state(), WanState::kDown);
  EXPECT_EQ(dead.health.reason(), "probes lost: 2 of 2 rounds");
}

TEST(WanHealth, CausesStackAndTheWanComesBackOnlyWhenAllClear) {
  FakeWan wan(fast_hold_down());
  wan.run_to(1000);
  wan.health.link_state(false, 1000);
  wan.health.lpa_link(false, 1100);
  wan.health.gateway_reachable(false, 1200);
  EXPECT_EQ(wan.health.reason(), "carrier lost") << "the first cause took it down";
  EXPECT_EQ(wan.health.counters().to_down, 1u);
  wan.health.link_state(true, 2000);
  wan.health.lpa_link(true, 2100);
  wan.run_to(6000);
  EXPECT_EQ(wan.health.state(), WanState::kDown) << "ARP still fails";
  wan.health.gateway_reachable(true, 6000);
  auto up = wan.run_until(WanState::kUp, 10'000);
  ASSERT_TRUE(up);
  EXPECT_EQ(*up, 7020u) << "rounds 6000, 6500, 7000";
}

TEST(WanHealth, ForcedDownOverridesAHealthyLinkAndReleaseReturnsAfterHoldDown) {
  FakeWan wan(fast_hold_down(2000));
  wan.run_to(1000);
  wan.health.force(false, 1000);
  EXPECT_EQ(wan.health.state(), WanState::kDown);
  EXPECT_EQ(wan.health.reason(), "forced down by operator");
  EXPECT_EQ(wan.health.cause(), WanCause::kForced);
  EXPECT_EQ(wan.health.forced(), std::optional<bool>(false));
  wan.run_to(5000);
  EXPECT_EQ(wan.health.state(), WanState::kDown);
  EXPECT_EQ(wan.health.probe_stats().rounds_good, 10u) << "the probes go on underneath";
  EXPECT_TRUE(wan.health.probes_up());
  wan.health.force(std::nullopt, 5000);
  EXPECT_EQ(wan.health.state(), WanState::kUp) << "the probes have been fine all along";
  EXPECT_EQ(wan.health.reason(), "released by operator: start");
  EXPECT_EQ(wan.health.cause(), WanCause::kReleased);
  EXPECT_FALSE(wan.health.usable_for_new_flows(6999));
  EXPECT_TRUE(wan.health.usable_for_new_flows(7000));
  wan.health.force(std::nullopt, 5001);  // releasing twice changes nothing
  EXPECT_EQ(wan.health.take_transitions().size(), 2u);
}

TEST(WanHealth, ForcedUpOverridesADeadLinkUntilReleased) {
  FakeWan wan(fast_hold_down());
  wan.link_up = [](uint64_t t) { return t < 1000; };
  ASSERT_TRUE(wan.run_until(WanState::kDown, 5000));
  wan.health.force(true, 3000);
  EXPECT_EQ(wan.health.state(), WanState::kUp);
  EXPECT_TRUE(wan.health.usable_for_new_flows(3000)) << "the operator's word: no hold-down";
  EXPECT_EQ(wan.health.reason(), "forced up by operator");
  wan.health.link_state(false, 3500);
  wan.run_to(10'000);
  EXPECT_EQ(wan.health.state(), WanState::kUp) << "forced is the final word";
  wan.health.force(std::nullopt, 10'000);
  EXPECT_EQ(wan.health.state(), WanState::kDown);
  EXPECT_EQ(wan.health.reason(), "released by operator: probes lost: 2 of 2 rounds")
      << "the monitoring's last transition; it stays down with carrier lost too";
  // Forced down, then forced up: each a transition.
  wan.health.force(false, 10'001);
  wan.health.force(true, 10'002);
  EXPECT_EQ(wan.health.state(), WanState::kUp);
  EXPECT_EQ(wan.health.counters().to_up, 2u);
}

// ---- hysteresis ------------------------------------------------------------------------------

TEST(WanHealth, AlternatingAnswersNeverFlapTheState) {
  // Every other round lost: never down_after (2) lost in a row, never up_after (3) good in a row.
  auto every_other = [](uint32_t, uint64_t sent) { return (sent / 500) % 2 == 0; };
  WanProbeSettings no_loss_threshold = fast_hold_down();
  no_loss_threshold.loss_degraded_percent = 100;
  no_loss_threshold.loss_recovered_percent = 100;

  FakeWan up(no_loss_threshold);
  up.target_answers = every_other;
  up.run_to(60'000);
  EXPECT_EQ(up.health.state(), WanState::kUp);
  EXPECT_TRUE(up.health.take_transitions().empty());
  EXPECT_NEAR(up.health.loss_percent(), 50.0, 10.0);

  no_loss_threshold.initial_up = false;
  FakeWan down(no_loss_threshold);
  down.target_answers = every_other;
  down.run_to(60'000);
  EXPECT_EQ(down.health.state(), WanState::kDown);
  EXPECT_EQ(down.health.reason(), "start");
  EXPECT_TRUE(down.health.take_transitions().empty());

  // With the default loss thresholds the half-lost link is degraded once, and stays so: it
  // needs 10 % or less to be up again.
  FakeWan lossy(fast_hold_down());
  lossy.target_answers = every_other;
  lossy.run_to(60'000);
  EXPECT_EQ(lossy.health.state(), WanState::kDegraded);
  auto log = lossy.health.take_transitions();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].cause, WanCause::kLoss);
  EXPECT_EQ(log[0].reason, "loss: 3 of the last 10 rounds lost (more than 20 %)");
  EXPECT_EQ(log[0].at_ms, 3000u) << "rounds 500, 1500 and 2500 lost, the last at 3000";
}

TEST(WanHealth, AWanFlappingFasterThanTheHoldDownNeverTakesNewFlows) {
  // Three rounds answered, two lost, over and over: down_after and up_after are met each time.
  FakeWan wan(fast_hold_down(5000));
  wan.target_answers = [](uint32_t, uint64_t sent) { return (sent / 500) % 5 < 3; };
  wan.run_to(3000);
  uint64_t usable_ms = 0;
  for (uint64_t t = 3001; t <= 60'000; ++t) {
    wan.run_to(t);
    usable_ms += wan.health.usable_for_new_flows(t);
  }
  EXPECT_GT(wan.health.counters().to_down, 10u);
  EXPECT_EQ(usable_ms, 0u) << "each return restarts the hold-down";
}

// ---- quality over the window -----------------------------------------------------------------

TEST(WanHealth, LossOverTheWindowDegradesAndRecoversWithHysteresis) {
  FakeWan wan(fast_hold_down(1000));
  // Rounds 2, 5 and 8 (sent at 1000, 2500, 4000) lost; from round 20 on, none.
  wan.target_answers = [](uint32_t, uint64_t sent) {
    uint64_t round = sent / 500;
    return round >= 20 || round % 3 != 2;
  };
  auto degraded = wan.run_until(WanState::kDegraded, 20'000);
  ASSERT_TRUE(degraded);
  EXPECT_EQ(*degraded, 4500u) << "the third lost round, sent at 4000, times out";
  EXPECT_EQ(wan.health.reason(), "loss: 3 of the last 10 rounds lost (more than 20 %)");
  EXPECT_EQ(wan.health.counters().to_down, 0u) << "degraded is not down";
  EXPECT_FALSE(wan.health.usable_for_new_flows(*degraded));
  // 2 of 10 lost (20 %) is not enough to recover: it must be 1 of 10.
  auto up = wan.run_until(WanState::kUp, 30'000);
  ASSERT_TRUE(up);
  // Rounds 11, 14 and 17 (5500, 7000, 8500) were lost too; 1 of 10 when round 24 (12000) is
  // judged and the window holds rounds 15 to 24.
  EXPECT_EQ(*up, 12020u) << wan.health.reason();
  EXPECT_EQ(wan.health.reason(), "quality recovered: 1 of the last 10 rounds lost, 20 ms average");
  EXPECT_EQ(wan.health.cause(), WanCause::kLoss);
  EXPECT_FALSE(wan.health.usable_for_new_flows(*up));
  EXPECT_TRUE(wan.health.usable_for_new_flows(*up + 1000));
}

TEST(WanHealth, LatencyOverTheWindowDegradesAndRecoversWithHysteresis) {
  FakeWan wan(fast_hold_down());
  // 20 ms, then 400 ms from 10 s (a modem buffer filling), then 100 ms from 20 s.
  wan.rtt = [](uint32_t, uint64_t sent) { return sent < 10'000 ? 20u : sent < 20'000 ? 400u : 100u; };
  auto degraded = wan.run_until(WanState::kDegraded, 20'000);
  ASSERT_TRUE(degraded);
  // The average of the last ten rounds passes 300 ms with the eighth slow one, sent at 13500:
  // (8*400 + 2*20)/10.
  EXPECT_EQ(*degraded, 13'900u);
  EXPECT_EQ(wan.health.cause(), WanCause::kLatency);
  EXPECT_EQ(wan.health.reason(), "latency: 324 ms average (more than 300 ms)");
  EXPECT_EQ(wan.health.counters().to_down, 0u);
  // 100 ms again from 20 s: up once the average is at or below 150 ms, i.e. when only one
  // 400 ms round is left: (400 + 9*100)/10 = 130.
  auto up = wan.run_until(WanState::kUp, 40'000);
  ASSERT_TRUE(up);
  EXPECT_EQ(*up, 24'100u);
  EXPECT_EQ(wan.health.reason(), "quality recovered: 0 of the last 10 rounds lost, 130 ms average");
  EXPECT_EQ(wan.health.cause(), WanCause::kLatency);
}

TEST(WanHealth, LatencyIsNotJudgedOnTooFewRounds) {
  // up_after answered rounds are what it takes to trust a link, and to judge its latency.
  WanProbeSettings s;
  s.latency_degraded_ms = 200;
  s.latency_recovered_ms = 100;
  FakeWan wan(s);
  wan.rtt = [](uint32_t, uint64_t sent) { return sent < 1000 ? 450u : 20u; };
  wan.run_to(1019);  // rounds 0 and 500 answered after 450 ms
  EXPECT_EQ(wan.health.state(), WanState::kUp) << "two answered rounds are fewer than up_after";
  EXPECT_DOUBLE_EQ(*wan.health.average_rtt_ms(), 450.0);
  wan.run_to(1020);  // 450, 450, 20: 307 ms over three rounds
  EXPECT_EQ(wan.health.state(), WanState::kDegraded);
  EXPECT_EQ(wan.health.reason(), "latency: 307 ms average (more than 200 ms)");
}

TEST(WanHealth, ARecoveryOnASlowLinkComesBackDegraded) {
  FakeWan wan(fast_hold_down());
  wan.link_up = [](uint64_t t) { return t < 1000 || t >= 5000; };
  // 200 ms when it comes back, 50 ms from 8 s.
  wan.rtt = [](uint32_t, uint64_t sent) { return sent < 5000 ? 20u : sent < 8000 ? 200u : 50u; };
  auto back = wan.run_until(WanState::kDegraded, 10'000);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, 6200u);
  // The window restarted with the three proving rounds; 200 ms is not within the recovery 150.
  EXPECT_EQ(wan.health.reason(), "probes answered: 3 rounds; latency: 200 ms average (more than 150 ms)");
  EXPECT_EQ(wan.health.cause(), WanCause::kProbesAnswered);
  EXPECT_EQ(wan.health.window_rounds(), 3u);
  // Six rounds of 200 ms (5000 .. 7500), then three of 50: (6*200 + 3*50)/9 = 150.
  auto up = wan.run_until(WanState::kUp, 20'000);
  ASSERT_TRUE(up);
  EXPECT_EQ(*up, 9050u);
  EXPECT_EQ(wan.health.reason(), "quality recovered: 0 of the last 10 rounds lost, 150 ms average");
  EXPECT_EQ(wan.health.cause(), WanCause::kLatency);
}

// ---- odd replies -----------------------------------------------------------------------------

TEST(WanHealth, LateRepliesCountAsLostAndDoNotResurrectARound) {
  WanProbeSettings s = fast_hold_down();
  FakeWan wan(s);
  // From 2 s every reply takes 600 ms: after the 500 ms timeout.
  wan.rtt = [](uint32_t, uint64_t sent) { return sent < 2000 ? 20u : 600u; };
  auto down = wan.run_until(WanState::kDown, 10'000);
  ASSERT_TRUE(down);
  EXPECT_EQ(*down, 3000u) << "rounds 2000 and 2500 lost";
  wan.run_to(10'000);
  EXPECT_EQ(wan.health.state(), WanState::kDown) << "late replies never bring it back";
  const auto& stats = wan.health.probe_stats();
  EXPECT_EQ(stats.probes_answered, 4u);
  EXPECT_EQ(stats.rounds_good, 4u);
  EXPECT_GE(stats.late_replies, 15u);
  EXPECT_EQ(stats.late_replies + 1, stats.probes_lost) << "all but the last lost probe answered late";
  EXPECT_EQ(stats.unknown_replies, 0u);
  EXPECT_DOUBLE_EQ(wan.health.loss_percent(), 100.0);

  // A reply at exactly the timeout is late too: answered means in less than timeout_ms.
  WanHealth h(s, 0);
  h.probe_sent(0, 7, 0);
  h.probe_reply(0, 7, 500);
  EXPECT_EQ(h.probe_stats().late_replies, 1u);
  EXPECT_EQ(h.probe_stats().rounds_lost, 1u);
  h.probe_sent(0, 8, 1000);
  h.probe_reply(0, 8, 1499);
  EXPECT_EQ(h.probe_stats().rounds_good, 1u);
  EXPECT_EQ(h.probe_stats().last_rtt_ms, 499u);
}

TEST(WanHealth, RepliesThatMatchNoProbeAreCountedAndIgnored) {
  WanProbeSettings s;
  s.targets = 2;
  WanHealth h(s, 0);
  h.probe_sent(0, 100, 0);
  h.probe_sent(1, 100, 0);
  h.probe_reply(0, 99, 10);   // a sequence never sent
  h.probe_reply(1, 101, 10);  // one not sent yet
  h.probe_reply(2, 100, 10);  // a target that does not exist
  EXPECT_EQ(h.probe_stats().unknown_replies, 3u);
  EXPECT_EQ(h.probe_stats().probes_answered, 0u);
  h.probe_reply(0, 100, 20);
  h.probe_reply(0, 100, 21);  // twice
  EXPECT_EQ(h.probe_stats().duplicate_replies, 1u);
  h.probe_reply(1, 100, 30);
  EXPECT_EQ(h.probe_stats().rounds_good, 1u);
  h.probe_reply(1, 100, 40);  // again, after the round was judged
  EXPECT_EQ(h.probe_stats().duplicate_replies, 2u);
  // Bad sends: a target out of range, the same probe twice.
  h.probe_sent(2, 101, 500);
  h.probe_sent(0, 101, 500);
  h.probe_sent(0, 101, 501);
  EXPECT_EQ(h.probe_stats().bad_sends, 2u);
  EXPECT_EQ(h.probe_stats().probes_sent, 3u);
  EXPECT_EQ(h.state(), WanState::kUp);
  EXPECT_TRUE(h.take_transitions().empty());
  // A reply from one target does not answer another's probe of the same sequence.
  h.probe_reply(1, 101, 510);
  EXPECT_EQ(h.probe_stats().unknown_replies, 4u);
}

TEST(WanHealth, SequenceNumbersWrap) {
  WanHealth h(WanProbeSettings{}, 0);
  h.probe_sent(0, 65535, 0);
  h.probe_sent(0, 0, 500);
  h.probe_reply(0, 0, 510);
  h.probe_reply(0, 65535, 520);  // late: sent at 0
  h.tick(1000);
  EXPECT_EQ(h.probe_stats().rounds_lost, 1u);
  EXPECT_EQ(h.probe_stats().rounds_good, 1u);
  EXPECT_EQ(h.probe_stats().late_replies, 1u);
  EXPECT_EQ(h.probe_stats().last_rtt_ms, 10u);
}

TEST(WanHealth, RoundsAreJudgedInTheOrderTheyWereSent) {
  // Timeout longer than the interval: a round can be answered before the one before it is
  // judged. Lost, good, lost, in sending order, is never two lost in a row.
  WanProbeSettings s;
  s.timeout_ms = 1000;
  WanHealth h(s, 0);
  h.probe_sent(0, 1, 0);      // never answered: lost at 1000
  h.probe_sent(0, 2, 500);
  h.probe_reply(0, 2, 520);   // good, judged after round 1
  h.probe_sent(0, 3, 1000);   // never answered: lost at 2000
  h.tick(1000);
  EXPECT_EQ(h.probe_stats().rounds_lost, 1u);
  EXPECT_EQ(h.probe_stats().rounds_good, 1u);
  h.tick(2000);
  EXPECT_EQ(h.probe_stats().rounds_lost, 2u);
  EXPECT_EQ(h.state(), WanState::kUp);
  h.probe_sent(0, 4, 2500);
  h.tick(3500);
  EXPECT_EQ(h.state(), WanState::kDown) << "rounds 3 and 4 are two in a row";
}

TEST(WanHealth, ReliabilityCountsTargetsThatMustAnswer) {
  WanProbeSettings s = fast_hold_down();
  s.targets = 3;
  s.reliability = 2;
  FakeWan wan(s);
  std::vector<bool> alive{true, true, true};
  wan.target_answers = [&alive](uint32_t target, uint64_t) { return static_cast<bool>(alive[target]); };
  wan.rtt = [](uint32_t target, uint64_t) { return 10u + 10u * target; };
  wan.run_to(3000);
  EXPECT_EQ(*wan.health.average_rtt_ms(), 20.0) << "a round's RTT is that of its second answer";
  alive[2] = false;
  wan.run_to(10'000);
  EXPECT_EQ(wan.health.state(), WanState::kUp) << "two of three still answer";
  EXPECT_GT(wan.health.probe_stats().targets[2].lost, 10u);
  EXPECT_EQ(wan.health.probe_stats().targets[0].lost, 0u);
  alive[1] = false;
  auto down = wan.run_until(WanState::kDown, 20'000);
  ASSERT_TRUE(down);
  EXPECT_EQ(*down, 11'500u) << "rounds 10500 and 11000 had one answer each";

  // The default reliability of 1: any target.
  WanProbeSettings any = fast_hold_down();
  any.targets = 2;
  FakeWan two(any);
  two.target_answers = [](uint32_t target, uint64_t sent) { return target == 0 || sent < 2000; };
  two.run_to(20'000);
  EXPECT_EQ(two.health.state(), WanState::kUp);
  EXPECT_DOUBLE_EQ(two.health.loss_percent(), 0.0) << "loss counts rounds, not probes";
}

TEST(WanHealth, AProberThatStopsLeavesTheStateAsItWas) {
  // The machine judges the rounds it was told of; a silent prober is the caller's fault, and
  // not evidence against the link.
  FakeWan wan;
  wan.run_to(1000);
  wan.sending = false;
  wan.run_to(60'000);
  EXPECT_EQ(wan.health.state(), WanState::kUp);
}

TEST(WanHealth, TheClockNeverGoesBack) {
  WanHealth h(WanProbeSettings{}, 1000);
  h.probe_sent(0, 1, 1000);
  h.tick(1400);
  h.probe_reply(0, 1, 900);  // an earlier time counts as 1400
  EXPECT_EQ(h.probe_stats().last_rtt_ms, 400u);
  h.link_state(false, 0);
  EXPECT_EQ(h.since_ms(), 1400u);
}

TEST(WanHealth, TheTransitionLogIsBounded) {
  WanHealth h(WanProbeSettings{}, 0);
  for (uint64_t i = 0; i < WanHealth::kMaxTransitionLog + 10; ++i) h.force(i % 2 == 0 ? false : true, i);
  EXPECT_EQ(h.counters().transitions_dropped, 10u);
  auto log = h.take_transitions();
  ASSERT_EQ(log.size(), WanHealth::kMaxTransitionLog);
  EXPECT_EQ(log.back().at_ms, WanHealth::kMaxTransitionLog + 9);
}

// ---- the selector ----------------------------------------------------------------------------

constexpr std::size_t kA = 0, kB = 1;

// Two healths driven by hand, and the selector over them.
struct TwoWans {
  explicit TwoWans(uint32_t hold_down_ms = 2000, std::vector<uint32_t> weights = {1, 1})
      : wans{WanHealth(fast_hold_down(hold_down_ms)), WanHealth(fast_hold_down(hold_down_ms))},
        selector(std::move(weights)) {
    selector.update(wans, 0);
  }
  void at(uint64_t now_ms) { selector.update(wans, now_ms); }
  std::vector<WanHealth> wans;
  WanSelector selector;
};

std::vector<uint32_t> subscribers(uint32_t n) {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < n; ++i) out.push_back(0x0a0a0000u + i);  // 10.10.0.0 up
  return out;
}

TEST(WanSelector, PreferredAndTheOtherFallBackAndReturnAfterHoldDown) {
  TwoWans t(2000);
  const auto on_a = WanPolicy::preferred(kA), on_b = WanPolicy::preferred(kB);
  EXPECT_EQ(t.selector.select(0x0a0a000b, on_a), kA);
  EXPECT_EQ(t.selector.select(0x0a0a000b, on_b), kB) << "the other";

  t.wans[kA].link_state(false, 1000);
  t.at(1000);
  EXPECT_EQ(t.selector.select(0x0a0a000b, on_a), kB) << "preferred down: the other";
  EXPECT_EQ(t.selector.select(0x0a0a000b, on_b), kB);
  EXPECT_EQ(t.selector.take_went_down(), std::vector<std::size_t>{kA});
  EXPECT_TRUE(t.selector.take_went_down().empty()) << "said once";

  // Carrier back at 4000, and three good rounds sent after it bring A up at 5010; new flows
  // stay on B for the hold-down.
  t.wans[kA].link_state(true, 4000);
  for (uint16_t seq = 0; seq < 3; ++seq) {
    t.wans[kA].probe_sent(0, seq, 4000 + 500 * seq);
    t.wans[kA].probe_reply(0, seq, 4010 + 500 * seq);
  }
  ASSERT_EQ(t.wans[kA].state(), WanState::kUp);
  const uint64_t back = t.wans[kA].since_ms();
  EXPECT_EQ(back, 5010u);
  t.at(back);
  EXPECT_EQ(t.selector.tier(kA), WanSelector::Tier::kHeldDown);
  EXPECT_EQ(t.selector.select(0x0a0a000b, on_a), kB);
  t.at(back + 1999);
  EXPECT_EQ(t.selector.select(0x0a0a000b, on_a), kB);
  t.at(back + 2000);
  EXPECT_EQ(t.selector.select(0x0a0a000b, on_a), kA) << "after the hold-down, back to the preferred WAN";
  EXPECT_TRUE(t.selector.take_went_down().empty());
}

TEST(WanSelector, TheOnlyWanThatWorksIsUsedAtOnceDespiteItsHoldDown) {
  TwoWans t(10'000);
  t.wans[kA].link_state(false, 100);
  t.wans[kB].link_state(false, 100);
  t.at(100);
  EXPECT_EQ(t.selector.select(1, WanPolicy::preferred(kA)), std::nullopt) << "none when all are down";
  EXPECT_EQ(t.selector.select(1, WanPolicy::weighted()), std::nullopt);
  t.wans[kB].link_state(true, 200);
  for (uint16_t seq = 0; seq < 3; ++seq) {
    t.wans[kB].probe_sent(0, seq, 500 + 500 * seq);
    t.wans[kB].probe_reply(0, seq, 510 + 500 * seq);
  }
  t.at(1510);
  EXPECT_FALSE(t.wans[kB].usable_for_new_flows(1510));
  EXPECT_EQ(t.selector.select(1, WanPolicy::preferred(kA)), kB) << "held down, but the only one";
}

TEST(WanSelector, WeightedIsPerSubscriberStableAndFollowsTheWeights) {
  for (auto weights : {std::vector<uint32_t>{1, 1}, std::vector<uint32_t>{3, 1}, std::vector<uint32_t>{1, 4}}) {
    TwoWans t(2000, weights);
    const auto subs = subscribers(4000);
    std::vector<std::size_t> first;
    std::size_t on_a = 0;
    for (uint32_t s : subs) {
      auto wan = t.selector.select(s, WanPolicy::weighted());
      ASSERT_TRUE(wan);
      first.push_back(*wan);
      on_a += *wan == kA;
    }
    const double expected = 4000.0 * weights[0] / (weights[0] + weights[1]);
    EXPECT_NEAR(static_cast<double>(on_a), expected, 4000 * 0.03) << weights[0] << ":" << weights[1];
    // The same answer later, and from another selector (a restart).
    t.at(123'456);
    WanSelector again(weights);
    again.update(t.wans, 123'456);
    for (std::size_t i = 0; i < subs.size(); ++i) {
      ASSERT_EQ(t.selector.select(subs[i], WanPolicy::weighted()), first[i]);
      ASSERT_EQ(again.select(subs[i], WanPolicy::weighted()), first[i]);
    }
  }
}

TEST(WanSelector, WhenAWanFailsOnlyItsSubscribersMoveAndTheyComeBack) {
  WanSelector selector({1, 2, 1});
  std::vector<WanHealth> wans;
  for (int i = 0; i < 3; ++i) wans.emplace_back(fast_hold_down(1000));
  selector.update(wans, 0);
  const auto subs = subscribers(3000);
  std::vector<std::size_t> before;
  for (uint32_t s : subs) before.push_back(*selector.select(s, WanPolicy::weighted()));

  wans[1].gateway_reachable(false, 100);
  selector.update(wans, 100);
  std::size_t moved_to[3] = {0, 0, 0};
  for (std::size_t i = 0; i < subs.size(); ++i) {
    const std::size_t now = *selector.select(subs[i], WanPolicy::weighted());
    if (before[i] == 1) {
      ASSERT_NE(now, 1u);
      ++moved_to[now];
    } else {
      ASSERT_EQ(now, before[i]) << "a subscriber on a surviving WAN never moves";
    }
  }
  const auto moved = static_cast<double>(moved_to[0] + moved_to[2]);
  EXPECT_NEAR(static_cast<double>(moved_to[0]), static_cast<double>(moved_to[2]), 0.15 * moved)
      << "spread over the others by weight";
  EXPECT_EQ(selector.take_went_down(), std::vector<std::size_t>{1});

  wans[1].gateway_reachable(true, 200);
  wans[1].force(true, 300);  // up at once, no hold-down
  selector.update(wans, 300);
  for (std::size_t i = 0; i < subs.size(); ++i) ASSERT_EQ(*selector.select(subs[i], WanPolicy::weighted()), before[i]);
}

TEST(WanSelector, WeightZeroIsABackup) {
  TwoWans t(2000, {1, 0});
  for (uint32_t s : subscribers(500)) ASSERT_EQ(t.selector.select(s, WanPolicy::weighted()), kA);
  EXPECT_EQ(t.selector.select(7, WanPolicy::preferred(kB)), kB) << "a preference ignores the weight";
  t.wans[kA].force(false, 10);
  t.at(10);
  for (uint32_t s : subscribers(500)) ASSERT_EQ(t.selector.select(s, WanPolicy::weighted()), kB);

  TwoWans zeros(2000, {0, 0});
  std::size_t on_a = 0;
  for (uint32_t s : subscribers(2000)) on_a += *zeros.selector.select(s, WanPolicy::weighted()) == kA;
  EXPECT_NEAR(static_cast<double>(on_a), 1000.0, 100.0) << "all zero: shared evenly";

  t.selector.set_weight(kB, 5);
  EXPECT_EQ(t.selector.weight(kB), 5u);
  EXPECT_THROW(t.selector.set_weight(8, 1), std::out_of_range);
}

TEST(WanSelector, ADegradedWanIsUsedOnlyWhenNothingBetterIs) {
  TwoWans t(2000);
  // Degrade A by loss: one round in three lost.
  for (uint16_t seq = 0; seq < 9; ++seq) {
    t.wans[kA].probe_sent(0, seq, 500u * seq);
    if (seq % 3 != 2) t.wans[kA].probe_reply(0, seq, 500u * seq + 10);
  }
  t.wans[kA].tick(5000);
  ASSERT_EQ(t.wans[kA].state(), WanState::kDegraded);
  t.at(5000);
  EXPECT_EQ(t.selector.tier(kA), WanSelector::Tier::kDegraded);
  EXPECT_EQ(t.selector.select(1, WanPolicy::preferred(kA)), kB);
  for (uint32_t s : subscribers(200)) ASSERT_EQ(t.selector.select(s, WanPolicy::weighted()), kB);
  EXPECT_TRUE(t.selector.take_went_down().empty()) << "degraded sessions still work: keep them";
  // B down: a degraded link beats none.
  t.wans[kB].lpa_link(false, 5100);
  t.at(5100);
  EXPECT_EQ(t.selector.select(1, WanPolicy::preferred(kB)), kA);
  EXPECT_EQ(t.selector.take_went_down(), std::vector<std::size_t>{kB});
}

TEST(WanSelector, WentDownReportsEveryFallEvenIfBackUpAndForcedDownToo) {
  TwoWans t;
  t.wans[kA].force(false, 10);
  t.wans[kA].force(std::nullopt, 20);  // down and up again between two updates
  t.wans[kB].force(false, 20);
  t.at(30);
  EXPECT_EQ(t.selector.take_went_down(), (std::vector<std::size_t>{kA, kB}));
  t.at(40);
  EXPECT_TRUE(t.selector.take_went_down().empty());
  // A WanHealth replaced (a reload) starts its counters again; its next fall is still seen.
  t.wans[kB] = WanHealth(fast_hold_down(), 50);
  t.at(50);
  EXPECT_TRUE(t.selector.take_went_down().empty());
  t.wans[kB].link_state(false, 60);
  t.at(60);
  EXPECT_EQ(t.selector.take_went_down(), std::vector<std::size_t>{kB});
}

TEST(WanSelector, RefusesWhatItCannotServe) {
  EXPECT_THROW(WanSelector({}), std::invalid_argument);
  EXPECT_THROW(WanSelector(std::vector<uint32_t>(9, 1)), std::invalid_argument);
  WanSelector eight(std::vector<uint32_t>(8, 1));
  std::vector<WanHealth> two(2);
  EXPECT_THROW(eight.update(two, 0), std::invalid_argument);
  EXPECT_EQ(eight.select(1, WanPolicy::weighted()), std::nullopt) << "nothing observed yet: all down";
  std::vector<WanHealth> all(8);
  eight.update(all, 0);
  EXPECT_TRUE(eight.select(1, WanPolicy::preferred(200))) << "a preference out of range is weighted";
  for (uint32_t s = 0; s < 1000; ++s) {
    const double d = WanSelector::rendezvous_draw(s, s % 8);
    ASSERT_GT(d, 0.0);
    ASSERT_LT(d, 1.0);
  }
}

// End to end on the fake clock: two WANs probed, A cut, its subscribers on B within the default
// settings' worst case; A back, they return after the hold-down, B's own never move.
TEST(WanFailover, SubscribersOnACutWanMoveWithinTwoSecondsAndReturnAfterHoldDown) {
  WanProbeSettings s = fast_hold_down(3000);
  FakeWan a(s), b(s);
  a.link_up = [](uint64_t t) { return t < 10'037 || t >= 30'000; };
  WanSelector selector({1, 1});
  const auto subs = subscribers(400);
  auto choose = [&](uint64_t t) {
    selector.observe(kA, a.health, t);
    selector.observe(kB, b.health, t);
    std::vector<std::size_t> out;
    for (uint32_t sub : subs) out.push_back(selector.select(sub, WanPolicy::weighted()).value_or(99));
    return out;
  };
  a.run_to(10'000);
  b.run_to(10'000);
  const auto before = choose(10'000);
  ASSERT_GT(std::count(before.begin(), before.end(), kA), 100);
  uint64_t moved_at = 0;
  for (uint64_t t = 10'001; t < 20'000 && !moved_at; ++t) {
    a.run_to(t);
    b.run_to(t);
    const auto now = choose(t);
    if (std::count(now.begin(), now.end(), kB) == static_cast<long>(subs.size())) moved_at = t;
  }
  ASSERT_NE(moved_at, 0u);
  EXPECT_LE(moved_at - 10'037, s.worst_case_detection_ms());
  EXPECT_EQ(moved_at, 11'500u) << "rounds 10000 and 10500 lost: the cut came 17 ms after 10000's reply";
  EXPECT_EQ(selector.take_went_down(), std::vector<std::size_t>{kA});
  uint64_t back_at = 0;
  for (uint64_t t = moved_at + 1; t < 60'000 && !back_at; t += 1) {
    a.run_to(t);
    b.run_to(t);
    if (choose(t) == before) back_at = t;
  }
  EXPECT_EQ(back_at, 31'020u + 3000u) << "up at 31020 (rounds 30000..31000), then the hold-down";
}

}  // namespace
}  // namespace fairgate
