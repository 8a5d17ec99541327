#include "wan/wan_health.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

// Transition reasons, stable texts (numbers vary):
//   "probes lost: 2 of 2 rounds"                         down, down_after rounds in a row lost
//   "probes answered: 3 rounds"                          back up, up_after good rounds in a row
//   "probes answered: 3 rounds; <quality>"               back, but degraded at once
//   "carrier lost"
//   "gateway does not answer ARP"
//   "LPA: link down"
//   "forced down by operator", "forced up by operator"
//   "released by operator: <reason of the monitoring's last transition>"
//   "loss: 3 of the last 10 rounds lost (more than 20 %)"        up to degraded
//   "latency: 320 ms average (more than 300 ms)"                  up to degraded
//   "quality recovered: 1 of the last 10 rounds lost, 40 ms average"   degraded to up
// The monitoring's state before its first transition has the reason "start".

namespace fairgate {

namespace {

[[noreturn]] void refuse(const char* field, const std::string& why) {
  throw std::invalid_argument(std::string("wan probe settings: ") + field + " " + why);
}

}  // namespace

void WanProbeSettings::validate() const {
  if (interval_ms == 0) refuse("interval_ms", "must be at least 1");
  if (timeout_ms == 0 || timeout_ms > 60000) refuse("timeout_ms", "must be 1..60000");
  if (down_after == 0 || down_after > 1000) refuse("down_after", "must be 1..1000");
  if (up_after == 0 || up_after > 1000) refuse("up_after", "must be 1..1000");
  if (targets == 0 || targets > kMaxTargets) refuse("targets", "must be 1..8");
  if (reliability == 0 || reliability > targets) refuse("reliability", "must be 1..targets");
  if (window == 0 || window > 1000) refuse("window", "must be 1..1000");
  if (window < up_after) refuse("window", "must hold at least up_after rounds");
  if (loss_degraded_percent > 100) refuse("loss_degraded_percent", "must be 0..100 (100: never)");
  if (loss_recovered_percent > loss_degraded_percent)
    refuse("loss_recovered_percent", "must not be above loss_degraded_percent");
  if (latency_degraded_ms != 0) {
    if (latency_degraded_ms >= timeout_ms)
      refuse("latency_degraded_ms", "must be below timeout_ms (a slower probe is lost, not slow), or 0");
    if (latency_recovered_ms > latency_degraded_ms)
      refuse("latency_recovered_ms", "must not be above latency_degraded_ms");
  }
}

const char* wan_state_name(WanState state) {
  switch (state) {
    case WanState::kDown: return "down";
    case WanState::kDegraded: return "degraded";
    case WanState::kUp: return "up";
  }
  return "?";
}

const char* wan_cause_name(WanCause cause) {
  switch (cause) {
    case WanCause::kProbesLost: return "probes-lost";
    case WanCause::kProbesAnswered: return "probes-answered";
    case WanCause::kLoss: return "loss";
    case WanCause::kLatency: return "latency";
    case WanCause::kCarrier: return "carrier";
    case WanCause::kArp: return "arp";
    case WanCause::kLpa: return "lpa";
    case WanCause::kForced: return "forced";
    case WanCause::kReleased: return "released";
  }
  return "?";
}

WanHealth::WanHealth(const WanProbeSettings& settings, uint64_t now_ms)
    : settings_(settings),
      now_ms_(now_ms),
      fresh_since_ms_(now_ms),
      probes_up_(settings.initial_up),
      natural_(settings.initial_up ? WanState::kUp : WanState::kDown),
      natural_reason_("start"),
      state_(natural_),
      reason_("start"),
      since_ms_(now_ms) {
  settings_.validate();
}

// ---- probes ----------------------------------------------------------------------------------

void WanHealth::advance(uint64_t now_ms) {
  now_ms_ = std::max(now_ms_, now_ms);
  for (Round& round : pending_) {
    uint32_t open = round.sent_mask & ~round.answered_mask & ~round.lost_mask;
    for (uint32_t t = 0; open != 0; ++t, open >>= 1) {
      if (!(open & 1) || now_ms_ < round.sent_ms[t] + settings_.timeout_ms) continue;
      round.lost_mask |= 1u << t;
      ++stats_.probes_lost;
      ++stats_.targets[t].lost;
    }
  }
  // In sending order: a round answered early waits for the one before it.
  while (!pending_.empty() && pending_.front().resolved()) {
    judge(pending_.front());
    recent_.push_back(pending_.front());
    pending_.pop_front();
    if (recent_.size() > kRecentRounds) recent_.pop_front();
  }
}

void WanHealth::probe_sent(uint32_t target, uint16_t sequence, uint64_t now_ms) {
  advance(now_ms);
  if (target >= settings_.targets) {
    ++stats_.bad_sends;
    return;
  }
  auto it = std::find_if(pending_.begin(), pending_.end(), [&](const Round& r) { return r.sequence == sequence; });
  if (it == pending_.end()) {
    // A caller that sends faster than probes time out is broken; bound what it can make us hold.
    constexpr std::size_t kMaxPending = 256;
    if (pending_.size() >= kMaxPending) {
      ++stats_.bad_sends;
      return;
    }
    Round round;
    round.sequence = sequence;
    round.first_sent_ms = now_ms_;
    pending_.push_back(round);
    it = std::prev(pending_.end());
  } else if (it->sent_mask & (1u << target)) {
    ++stats_.bad_sends;
    return;
  }
  it->sent_mask |= 1u << target;
  it->sent_ms[target] = now_ms_;
  ++stats_.probes_sent;
  ++stats_.targets[target].sent;
}

void WanHealth::probe_reply(uint32_t target, uint16_t sequence, uint64_t now_ms) {
  advance(now_ms);
  const uint32_t bit = target < settings_.targets ? 1u << target : 0;
  auto match = [&](const Round& r) { return r.sequence == sequence && (r.sent_mask & bit); };
  auto it = bit ? std::find_if(pending_.begin(), pending_.end(), match) : pending_.end();
  if (it == pending_.end()) {
    auto old = bit ? std::find_if(recent_.rbegin(), recent_.rend(), match) : recent_.rend();
    if (old == recent_.rend())
      ++stats_.unknown_replies;
    else if (old->answered_mask & bit)
      ++stats_.duplicate_replies;
    else
      ++stats_.late_replies;
    return;
  }
  Round& round = *it;
  if (round.answered_mask & bit) {
    ++stats_.duplicate_replies;
    return;
  }
  if (round.lost_mask & bit) {
    ++stats_.late_replies;  // its round is still open for another target; this one stays lost
    return;
  }
  // advance() lost every probe at least timeout_ms old, so this one is in time.
  const auto rtt = static_cast<uint32_t>(now_ms_ - round.sent_ms[target]);
  round.answered_mask |= bit;
  if (++round.answers == settings_.reliability) round.rtt_ms = rtt;
  ++stats_.probes_answered;
  stats_.last_rtt_ms = rtt;
  ++stats_.targets[target].answered;
  stats_.targets[target].last_rtt_ms = rtt;
  advance(now_ms_);  // the round may be complete now
}

void WanHealth::tick(uint64_t now_ms) { advance(now_ms); }

void WanHealth::push_window(const WindowEntry& entry) {
  window_.push_back(entry);
  if (window_.size() > settings_.window) window_.pop_front();
  recount_window();
}

void WanHealth::recount_window() {
  window_lost_ = window_answered_ = 0;
  window_rtt_sum_ = 0;
  for (const WindowEntry& e : window_) {
    if (e.lost) {
      ++window_lost_;
    } else {
      ++window_answered_;
      window_rtt_sum_ += e.rtt_ms;
    }
  }
}

double WanHealth::loss_percent() const {
  return window_.empty() ? 0.0 : 100.0 * static_cast<double>(window_lost_) / static_cast<double>(window_.size());
}

std::optional<double> WanHealth::average_rtt_ms() const {
  if (window_answered_ == 0) return std::nullopt;
  return static_cast<double>(window_rtt_sum_) / static_cast<double>(window_answered_);
}

// ---- decisions -------------------------------------------------------------------------------

bool WanHealth::loss_exceeds() const {
  return settings_.loss_degraded_percent < 100 &&
         window_lost_ * 100 > uint64_t{settings_.loss_degraded_percent} * settings_.window;
}

bool WanHealth::latency_judged() const {
  return settings_.latency_degraded_ms != 0 && window_answered_ >= settings_.up_after;
}

bool WanHealth::latency_exceeds() const {
  return latency_judged() && *average_rtt_ms() > settings_.latency_degraded_ms;
}

bool WanHealth::quality_within() const {
  bool loss_ok = settings_.loss_degraded_percent >= 100 ||
                 window_lost_ * 100 <= uint64_t{settings_.loss_recovered_percent} * settings_.window;
  bool latency_ok = !latency_judged() || *average_rtt_ms() <= settings_.latency_recovered_ms;
  return loss_ok && latency_ok;
}

std::string WanHealth::loss_text(uint32_t threshold) const {
  return "loss: " + std::to_string(window_lost_) + " of the last " + std::to_string(settings_.window) +
         " rounds lost (more than " + std::to_string(threshold) + " %)";
}

std::string WanHealth::latency_text(uint32_t threshold) const {
  return "latency: " + std::to_string(std::lround(average_rtt_ms().value_or(0))) + " ms average (more than " +
         std::to_string(threshold) + " ms)";
}

void WanHealth::judge(const Round& round) {
  const bool good = round.answers >= settings_.reliability;
  if (good) {
    ++stats_.rounds_good;
  } else {
    ++stats_.rounds_lost;
  }
  push_window({!good, round.rtt_ms});

  if (!good) {
    ++lost_streak_;
    good_streak_ = 0;
    if (probes_up_ && lost_streak_ >= settings_.down_after) {
      probes_up_ = false;
      const std::string n = std::to_string(settings_.down_after);
      set_natural(WanState::kDown, WanCause::kProbesLost, "probes lost: " + n + " of " + n + " rounds");
      return;
    }
  } else {
    lost_streak_ = 0;
    if (round.first_sent_ms >= fresh_since_ms_) ++good_streak_;
    if (!probes_up_ && !hard_down() && good_streak_ >= settings_.up_after) {
      probes_up_ = true;
      // The window restarts with the rounds that proved the link: the outage's lost rounds
      // describe the outage, not the link's quality.
      while (window_.size() > settings_.up_after) window_.pop_front();
      recount_window();
      std::string reason = "probes answered: " + std::to_string(settings_.up_after) + " rounds";
      if (quality_within()) {
        set_natural(WanState::kUp, WanCause::kProbesAnswered, reason);
      } else {
        // Only latency can be off here: the window holds up_after good rounds.
        degraded_by_ = WanCause::kLatency;
        set_natural(WanState::kDegraded, WanCause::kProbesAnswered,
                    reason + "; " + latency_text(settings_.latency_recovered_ms));
      }
      return;
    }
  }

  if (!probes_up_) return;
  if (natural_ == WanState::kUp) {
    if (loss_exceeds()) {
      degraded_by_ = WanCause::kLoss;
      set_natural(WanState::kDegraded, WanCause::kLoss, loss_text(settings_.loss_degraded_percent));
    } else if (latency_exceeds()) {
      degraded_by_ = WanCause::kLatency;
      set_natural(WanState::kDegraded, WanCause::kLatency, latency_text(settings_.latency_degraded_ms));
    }
  } else if (natural_ == WanState::kDegraded && quality_within()) {
    std::string reason = "quality recovered: " + std::to_string(window_lost_) + " of the last " +
                         std::to_string(settings_.window) + " rounds lost";
    if (auto rtt = average_rtt_ms()) reason += ", " + std::to_string(std::lround(*rtt)) + " ms average";
    set_natural(WanState::kUp, degraded_by_, reason);
  }
}

void WanHealth::set_hard_cause(bool& flag, bool ok, WanCause cause, const char* reason) {
  if (flag == ok) return;
  flag = ok;
  if (!ok) {
    // The probes must prove the link again, with rounds sent after every cause cleared.
    probes_up_ = false;
    good_streak_ = 0;
    fresh_since_ms_ = UINT64_MAX;
    set_natural(WanState::kDown, cause, reason);
  } else if (!hard_down()) {
    fresh_since_ms_ = now_ms_;
  }
}

void WanHealth::link_state(bool carrier_up, uint64_t now_ms) {
  advance(now_ms);
  set_hard_cause(carrier_up_, carrier_up, WanCause::kCarrier, "carrier lost");
}

void WanHealth::gateway_reachable(bool reachable, uint64_t now_ms) {
  advance(now_ms);
  set_hard_cause(gateway_reachable_, reachable, WanCause::kArp, "gateway does not answer ARP");
}

void WanHealth::lpa_link(bool up, uint64_t now_ms) {
  advance(now_ms);
  set_hard_cause(lpa_up_, up, WanCause::kLpa, "LPA: link down");
}

void WanHealth::force(std::optional<bool> forced, uint64_t now_ms) {
  advance(now_ms);
  if (forced == forced_) return;
  forced_ = forced;
  if (forced) {
    if (*forced) hold_until_ms_ = 0;  // the operator's word: usable at once
    set_state(*forced ? WanState::kUp : WanState::kDown, WanCause::kForced,
              *forced ? "forced up by operator" : "forced down by operator", false);
  } else {
    set_state(natural_, WanCause::kReleased, "released by operator: " + natural_reason_, true);
  }
}

void WanHealth::set_natural(WanState to, WanCause cause, std::string reason) {
  if (natural_ == to) return;
  natural_ = to;
  natural_cause_ = cause;
  natural_reason_ = reason;
  if (!forced_) set_state(to, cause, std::move(reason), true);
}

void WanHealth::set_state(WanState to, WanCause cause, std::string reason, bool hold) {
  if (state_ == to) return;
  const WanState from = state_;
  state_ = to;
  cause_ = cause;
  reason_ = reason;
  since_ms_ = now_ms_;
  switch (to) {
    case WanState::kDown: ++counters_.to_down; break;
    case WanState::kDegraded: ++counters_.to_degraded; break;
    case WanState::kUp: ++counters_.to_up; break;
  }
  hold_until_ms_ = to == WanState::kUp && hold ? now_ms_ + settings_.hold_down_ms : 0;
  if (log_.size() >= kMaxTransitionLog) {
    log_.erase(log_.begin());
    ++counters_.transitions_dropped;
  }
  log_.push_back({now_ms_, from, to, cause, std::move(reason)});
}

std::vector<WanTransition> WanHealth::take_transitions() {
  std::vector<WanTransition> out;
  out.swap(log_);
  return out;
}

// ---- selector --------------------------------------------------------------------------------

WanSelector::WanSelector(std::vector<uint32_t> weights)
    : weights_(std::move(weights)),
      tiers_(weights_.size(), Tier::kDown),
      downs_seen_(weights_.size(), 0),
      went_down_(weights_.size(), false) {
  if (weights_.empty() || weights_.size() > kMaxWans) throw std::invalid_argument("wan selector: 1..8 WANs");
}

void WanSelector::observe(std::size_t wan, const WanHealth& health, uint64_t now_ms) {
  Tier& tier = tiers_.at(wan);
  switch (health.state()) {
    case WanState::kUp: tier = health.usable_for_new_flows(now_ms) ? Tier::kUsable : Tier::kHeldDown; break;
    case WanState::kDegraded: tier = Tier::kDegraded; break;
    case WanState::kDown: tier = Tier::kDown; break;
  }
  const uint64_t downs = health.counters().to_down;
  if (downs < downs_seen_[wan]) downs_seen_[wan] = 0;  // a new WanHealth for this WAN (reload)
  if (downs > downs_seen_[wan]) went_down_[wan] = true;
  downs_seen_[wan] = downs;
}

void WanSelector::update(std::span<const WanHealth> wans, uint64_t now_ms) {
  if (wans.size() != weights_.size()) throw std::invalid_argument("wan selector: one health per WAN");
  for (std::size_t i = 0; i < wans.size(); ++i) observe(i, wans[i], now_ms);
}

double WanSelector::rendezvous_draw(uint32_t subscriber, std::size_t wan) {
  // splitmix64's finaliser over the subscriber and the WAN index: neighbouring addresses draw
  // independently, and the same pair always draws the same number.
  uint64_t x = (uint64_t{subscriber} << 8 | (wan & 0xff)) + 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  return (static_cast<double>(x >> 11) + 0.5) * 0x1.0p-53;  // (0, 1), never 0 or 1
}

std::optional<std::size_t> WanSelector::select(uint32_t subscriber, WanPolicy policy) const {
  const bool preferred = policy.kind == WanPolicy::Kind::kPreferred && policy.wan < weights_.size();
  for (Tier tier : {Tier::kUsable, Tier::kHeldDown, Tier::kDegraded}) {
    if (preferred && tiers_[policy.wan] == tier) return policy.wan;
    bool any = false, weighted = false;
    for (std::size_t i = 0; i < tiers_.size(); ++i) {
      if (tiers_[i] != tier) continue;
      any = true;
      weighted |= weights_[i] > 0;
    }
    if (!any) continue;
    // Weighted rendezvous: each WAN scores weight / -ln(draw) and the highest wins, which
    // picks WAN i with probability weight_i / sum of weights, and a WAN leaving the set moves
    // only the subscribers it had.
    std::optional<std::size_t> best;
    double best_score = 0;
    for (std::size_t i = 0; i < tiers_.size(); ++i) {
      if (tiers_[i] != tier || (weighted && weights_[i] == 0)) continue;
      const double weight = weighted ? static_cast<double>(weights_[i]) : 1.0;
      const double score = weight / -std::log(rendezvous_draw(subscriber, i));
      if (!best || score > best_score) {
        best = i;
        best_score = score;
      }
    }
    return best;
  }
  return std::nullopt;
}

std::vector<std::size_t> WanSelector::take_went_down() {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < went_down_.size(); ++i) {
    if (went_down_[i]) out.push_back(i);
    went_down_[i] = false;
  }
  return out;
}

}  // namespace fairgate
