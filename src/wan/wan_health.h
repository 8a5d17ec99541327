// WAN health and failover decisions, as plain state machines on a clock the caller passes in
// (milliseconds, monotonic). No DPDK and no sockets: the management thread sends the ICMP echo
// probes through each WAN, watches carrier, the gateway's ARP entry and the modem's LPA link
// flag, and feeds what it saw to one WanHealth per WAN; WanSelector turns the healths, the
// weights and a subscriber's policy into the WAN its new flows leave by. Keeping a flow on the
// WAN it started on is the NAT's job, not these classes'. Not thread-safe: one owner.
//
// States. A WAN is up, degraded or down:
// - down: it does not work. Carrier lost, the gateway does not answer ARP, the modem advertised
//   its link down (LPA U=0), the operator forced it down, or `down_after` probe rounds in a row
//   went unanswered. Nothing leaves by a down WAN, and the NAT sessions that left by it may go
//   (WanSelector::take_went_down).
// - degraded: it works, badly: over the window of the last `window` rounds, more than
//   `loss_degraded_percent` of the rounds were lost or the average RTT is above
//   `latency_degraded_ms` (pfSense's "high" thresholds, mwan3's failure_loss/failure_latency).
//   New flows avoid it while a healthier WAN exists but use it when none does, and sessions on
//   it stay: removing working connections is what the seed's ping script did wrong.
// - up: it works. It goes back from degraded to up only at or below the recovery thresholds
//   (`loss_recovered_percent`, `latency_recovered_ms`; pfSense's "low", mwan3's recovery_*), so
//   a link near one threshold does not flap.
//
// Probes. Every `interval_ms` the caller sends one echo to each of the `targets` targets, all
// with the same sequence number: those probes form a round. A probe answered in less than
// `timeout_ms` counts; one that is not is lost at sent + timeout_ms, and a reply after that is
// late (counted, changes nothing). A round succeeds when `reliability` of its targets answered
// (mwan3's "reliability"; default 1: any target), so one dead target among several is seen in
// its own counters but does not take the WAN down. A round is judged when each of its probes is
// answered or lost (a good round with a dead target waits for its timeout), and rounds are
// judged in the order they were sent, so "in a row" means in sending order. Only rounds the
// caller reported are judged: a prober that stops sending leaves the state as it was.
//
// Hysteresis. A WAN goes down after `down_after` consecutive lost rounds and comes back after
// `up_after` consecutive good rounds sent after every other cause cleared: a carrier, ARP or
// LPA recovery alone never brings a WAN up (a modem's link being up says nothing about the
// ISP's network behind it), the probes decide. When probes bring a WAN back, its quality window
// restarts with the rounds that proved it: the outage's lost rounds describe the outage, not
// the link. A WAN that came back is not given new flows for `hold_down_ms` while another WAN is
// usable, and each return restarts the hold-down, so a WAN that flaps faster than that never
// takes new flows back.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace fairgate {

// Probe and decision settings of one WAN. Times in milliseconds, counts in probe rounds.
//
// The defaults declare a dead link down within down_after * interval_ms + timeout_ms = 1500 ms
// of the cut in the worst case (the cut right after a round was answered: the next two rounds
// are sent and time out; less the RTT), 1000 ms at best (the cut just before a round is sent),
// plus however late the caller's tick runs. The lab's 2 s includes moving the subscribers, so
// detection leaves 500 ms for that.
// They suit terrestrial links (DSL, cable, fibre, LTE; idle RTT well under 100 ms). fairgate's
// shaper keeps the modem's buffer short and probes ride the interactive class, so even a
// loaded link answers in far less than 500 ms; a link whose loaded RTT can exceed timeout_ms
// (a geostationary satellite: 600 ms idle) needs a longer timeout and higher latency
// thresholds, and detects more slowly.
struct WanProbeSettings {
  static constexpr uint32_t kMaxTargets = 8;

  uint32_t interval_ms = 500;   // a round of probes (one per target) every interval
  uint32_t timeout_ms = 500;    // a probe not answered in less than this is lost
  uint32_t down_after = 2;      // consecutive lost rounds that take a WAN down (mwan3 "down")
  uint32_t up_after = 3;        // consecutive good rounds that bring it back (mwan3 "up")
  uint32_t targets = 1;         // probe targets per round, 1..kMaxTargets; addresses are the caller's
  uint32_t reliability = 1;     // targets that must answer for a round to succeed, 1..targets
  uint32_t window = 10;         // rounds the loss and latency figures cover (5 s at 500 ms), >= up_after
  // Degraded when more than loss_degraded_percent of the window's rounds were lost (100: never),
  // up again at or below loss_recovered_percent. Counted against the whole window, so a young
  // WAN is not judged on its first two rounds. Defaults: pfSense's high and low loss.
  uint32_t loss_degraded_percent = 20;
  uint32_t loss_recovered_percent = 10;
  // Degraded when the average RTT of the window's answered rounds is above latency_degraded_ms
  // (0: never), up again at or below latency_recovered_ms. Judged once up_after rounds of the
  // window were answered. Below timeout_ms, or it could never trigger: a probe slower than the
  // timeout is lost, not slow.
  uint32_t latency_degraded_ms = 300;
  uint32_t latency_recovered_ms = 150;
  // After a WAN comes back (down or degraded to up), new flows go back to it only after this,
  // and only when another WAN was taking them: a WAN that is the only one working is used at
  // once. 10 s rides out a link that is still settling; lab tests set it short.
  uint32_t hold_down_ms = 10000;
  bool initial_up = true;  // at start, before any probe: up (usable at once) or down

  // Throws std::invalid_argument naming the field and the reason.
  void validate() const;
  // From the cut to "down" on probes alone, worst case, not counting the caller's tick period.
  uint32_t worst_case_detection_ms() const { return down_after * interval_ms + timeout_ms; }
};

enum class WanState : uint8_t { kDown, kDegraded, kUp };
const char* wan_state_name(WanState state);  // "down", "degraded", "up"

// What caused a transition, for callers that act on some causes only.
enum class WanCause : uint8_t {
  kProbesLost,      // down_after rounds in a row lost
  kProbesAnswered,  // up_after good rounds in a row
  kLoss,            // the window's loss crossed a threshold (either way)
  kLatency,         // the window's average RTT crossed a threshold (either way)
  kCarrier,         // link_state(false)
  kArp,             // gateway_reachable(false)
  kLpa,             // lpa_link(false)
  kForced,          // force(true or false)
  kReleased,        // force(nullopt): back to what the monitoring says
};
const char* wan_cause_name(WanCause cause);  // "probes-lost", "carrier", ...

struct WanTransition {
  uint64_t at_ms = 0;
  WanState from = WanState::kDown, to = WanState::kDown;
  WanCause cause = WanCause::kProbesLost;
  std::string reason;  // e.g. "probes lost: 2 of 2 rounds"; the stable texts are listed in the .cpp
};

class WanHealth {
 public:
  static constexpr std::size_t kMaxTransitionLog = 256;  // older untaken ones are dropped, counted

  explicit WanHealth(const WanProbeSettings& settings = {}, uint64_t now_ms = 0);  // validates

  // Inputs. Each first moves the clock to now_ms (which never goes back: an earlier time counts
  // as the latest seen) and declares lost the probes that timed out by then.
  // Probe `sequence` was sent to target `target` (0..targets-1). The first probe of a sequence
  // starts a round; the others of the round carry the same sequence. A probe sent twice, or to
  // a target out of range, is counted and ignored.
  void probe_sent(uint32_t target, uint16_t sequence, uint64_t now_ms);
  // An echo reply from target `target` with `sequence`. Late (its probe already lost),
  // duplicate and unknown replies are counted and change nothing.
  void probe_reply(uint32_t target, uint16_t sequence, uint64_t now_ms);
  // Declares lost probes and judges the rounds; call at least every few tens of milliseconds
  // (the tick period adds to the detection time).
  void tick(uint64_t now_ms);
  // Carrier of the WAN port. Loss takes the WAN down at once; its return lets probes decide.
  void link_state(bool carrier_up, uint64_t now_ms);
  // Whether the gateway answers ARP. Failure takes the WAN down at once.
  void gateway_reachable(bool reachable, uint64_t now_ms);
  // The modem's LPA U flag for this WAN's link. U=0 takes it down at once, without waiting for
  // probes; U=1 only lifts that: the probes decide (up_after good rounds sent after it). When
  // the advertisement expires, pass true: an advertisement no longer heard holds nothing down.
  void lpa_link(bool up, uint64_t now_ms);
  // The operator's wan-set: true forces up, false forces down, nullopt releases. Forced is the
  // final word over every other input (a forced-up WAN with a dead link stays up until
  // released); the monitoring goes on underneath, and on release the state is what it says.
  // Forced up is usable for new flows at once.
  void force(std::optional<bool> forced, uint64_t now_ms);

  // Outputs.
  WanState state() const { return state_; }
  bool is_up() const { return state_ == WanState::kUp; }
  // Up and past its hold-down: takes new flows even when another WAN could.
  bool usable_for_new_flows(uint64_t now_ms) const {
    return state_ == WanState::kUp && now_ms >= hold_until_ms_;
  }
  // Until when a WAN that came back is kept off new flows; 0 when it was not held.
  uint64_t hold_until_ms() const { return hold_until_ms_; }
  const std::string& reason() const { return reason_; }      // of the last transition
  WanCause cause() const { return cause_; }
  uint64_t since_ms() const { return since_ms_; }  // when the state was entered
  std::optional<bool> forced() const { return forced_; }
  bool carrier_up() const { return carrier_up_; }
  bool gateway_answers_arp() const { return gateway_reachable_; }
  bool lpa_up() const { return lpa_up_; }
  bool probes_up() const { return probes_up_; }  // the probes' own verdict, under the other causes
  const WanProbeSettings& settings() const { return settings_; }

  struct Counters {
    uint64_t to_down = 0, to_degraded = 0, to_up = 0;  // transitions into each state
    uint64_t transitions_dropped = 0;                  // log entries nobody took in time
  };
  const Counters& counters() const { return counters_; }

  struct TargetStats {
    uint64_t sent = 0, answered = 0, lost = 0;
    std::optional<uint32_t> last_rtt_ms;
  };
  struct ProbeStats {
    uint64_t probes_sent = 0, probes_answered = 0, probes_lost = 0;
    uint64_t rounds_good = 0, rounds_lost = 0;
    uint64_t late_replies = 0;       // the probe had already been declared lost
    uint64_t duplicate_replies = 0;  // the probe had already been answered
    uint64_t unknown_replies = 0;    // no probe with that target and sequence
    uint64_t bad_sends = 0;          // target out of range, or the same probe sent twice
    std::optional<uint32_t> last_rtt_ms;  // of the last answered probe, any target
    std::array<TargetStats, WanProbeSettings::kMaxTargets> targets{};
  };
  const ProbeStats& probe_stats() const { return stats_; }
  // Over the window (the last `window` judged rounds): rounds lost, in percent of the rounds it
  // holds (0 when empty), and the average RTT of its answered rounds (a round's RTT is that of
  // the reply that made it succeed), nullopt when none was answered.
  std::size_t window_rounds() const { return window_.size(); }
  std::size_t window_lost() const { return window_lost_; }
  double loss_percent() const;
  std::optional<double> average_rtt_ms() const;

  // Transitions since the last call, oldest first.
  std::vector<WanTransition> take_transitions();

 private:
  struct Round {
    uint16_t sequence = 0;
    uint64_t first_sent_ms = 0;
    std::array<uint64_t, WanProbeSettings::kMaxTargets> sent_ms{};
    uint32_t sent_mask = 0, answered_mask = 0, lost_mask = 0;
    uint32_t answers = 0;
    uint32_t rtt_ms = 0;  // of the reply that made it succeed
    bool resolved() const { return (answered_mask | lost_mask) == sent_mask; }  // every probe answered or lost
  };
  struct WindowEntry {
    bool lost = false;
    uint32_t rtt_ms = 0;
  };
  static constexpr std::size_t kRecentRounds = 16;  // judged rounds remembered for late replies

  void advance(uint64_t now_ms);         // clock, lost probes, judged rounds
  void judge(const Round& round);        // one round, in sending order
  void push_window(const WindowEntry& entry);
  void recount_window();
  bool hard_down() const { return !carrier_up_ || !gateway_reachable_ || !lpa_up_; }
  void set_hard_cause(bool& flag, bool ok, WanCause cause, const char* reason);
  bool loss_exceeds() const;     // past loss_degraded_percent
  bool latency_judged() const;   // latency on, and enough answered rounds to judge it
  bool latency_exceeds() const;  // past latency_degraded_ms
  bool quality_within() const;   // at or below both recovery thresholds
  std::string loss_text(uint32_t threshold_percent) const;
  std::string latency_text(uint32_t threshold_ms) const;
  // Moves the state the monitoring gives to `to`, and the reported state with it unless forced.
  void set_natural(WanState to, WanCause cause, std::string reason);
  void set_state(WanState to, WanCause cause, std::string reason, bool hold);

  WanProbeSettings settings_;
  uint64_t now_ms_ = 0;
  std::deque<Round> pending_;  // sent, not yet judged, in sending order
  std::deque<Round> recent_;   // judged, for telling late replies from unknown ones
  std::deque<WindowEntry> window_;
  std::size_t window_lost_ = 0, window_answered_ = 0;
  uint64_t window_rtt_sum_ = 0;
  uint32_t lost_streak_ = 0, good_streak_ = 0;
  // Rounds sent before this (while a carrier, ARP or LPA cause held) do not count towards up.
  uint64_t fresh_since_ms_ = 0;
  bool carrier_up_ = true, gateway_reachable_ = true, lpa_up_ = true;
  bool probes_up_;
  std::optional<bool> forced_;
  WanState natural_;  // what the monitoring says
  WanCause natural_cause_ = WanCause::kProbesAnswered;
  WanCause degraded_by_ = WanCause::kLoss;  // kLoss or kLatency, while degraded
  std::string natural_reason_;
  WanState state_;  // what is reported: natural_ unless forced
  WanCause cause_ = WanCause::kProbesAnswered;
  std::string reason_;
  uint64_t since_ms_ = 0;
  uint64_t hold_until_ms_ = 0;
  Counters counters_;
  ProbeStats stats_;
  std::vector<WanTransition> log_;
};

// Which of up to kMaxWans WANs a subscriber's new flows leave by.
struct WanPolicy {
  enum class Kind : uint8_t {
    kWeighted,   // per subscriber, by the weights: a stable hash of the subscriber picks one
    kPreferred,  // `wan` while it is usable; otherwise as kWeighted among the others
  };
  Kind kind = Kind::kWeighted;
  uint8_t wan = 0;
  static constexpr WanPolicy weighted() { return {}; }
  static constexpr WanPolicy preferred(uint8_t wan) { return {Kind::kPreferred, wan}; }
};

// Reads the WANs' healths (update) and answers, for a subscriber and its policy, which WAN its
// new flows use. The choice goes by tiers: WANs usable for new flows (up, past hold-down), then
// WANs up but held down, then degraded ones; down WANs never. Within the best tier that has a
// WAN, a preferred WAN in it wins; otherwise weighted rendezvous hashing of the subscriber key
// over the tier's WANs with weight > 0 (all of them when every weight there is 0), so:
// - one subscriber always gets the same WAN while the tiers stay as they are (never per
//   connection: all its flows leave from one public address);
// - when a WAN leaves the tier, only the subscribers that were on it move, spread over the
//   rest by weight, and they come back when it returns; nobody else moves;
// - the hash has no seed, so a restart gives everyone the same WAN again.
// Weight 0 marks a backup: it takes weighted subscribers only when no WAN with weight in the
// same tier does. Preferred policies ignore weights for their own WAN.
class WanSelector {
 public:
  static constexpr std::size_t kMaxWans = 8;
  enum class Tier : uint8_t { kUsable, kHeldDown, kDegraded, kDown };

  // One weight per WAN, 1..kMaxWans of them. Throws std::invalid_argument.
  explicit WanSelector(std::vector<uint32_t> weights);

  std::size_t size() const { return weights_.size(); }
  uint32_t weight(std::size_t wan) const { return weights_.at(wan); }
  void set_weight(std::size_t wan, uint32_t weight) { weights_.at(wan) = weight; }

  // WAN `wan`'s health at now_ms; select() answers from what was observed last.
  void observe(std::size_t wan, const WanHealth& health, uint64_t now_ms);
  // All of them, index i being WAN i; the span's size must be size().
  void update(std::span<const WanHealth> wans, uint64_t now_ms);
  Tier tier(std::size_t wan) const { return tiers_.at(wan); }

  // The WAN for `subscriber`'s new flows (its key: an IPv4 address in host order, or any id
  // shared by the addresses that must leave together), nullopt when every WAN is down. A
  // preferred WAN out of range is treated as weighted.
  std::optional<std::size_t> select(uint32_t subscriber, WanPolicy policy) const;

  // The WANs observed going down since the last call (also those already back up), in index
  // order: the caller removes the NAT sessions that left by them, and only those. Forced down
  // counts; degraded does not (its sessions still work).
  std::vector<std::size_t> take_went_down();

  // The stable hash behind weighted choices, in (0, 1); exposed for tests.
  static double rendezvous_draw(uint32_t subscriber, std::size_t wan);

 private:
  std::vector<uint32_t> weights_;
  std::vector<Tier> tiers_;
  std::vector<uint64_t> downs_seen_;  // each WAN's counters().to_down when last observed
  std::vector<bool> went_down_;
};

}  // namespace fairgate
