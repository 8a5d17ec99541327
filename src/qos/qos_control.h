// The management thread's side of fair sharing: the live subscribers (configured, added at run
// time, and automatic ones for unknown hosts), the link rates, and the pipes they hold. Every
// change rebuilds the hierarchy, brings each scheduler to it on the worker that owns it, and
// then publishes the subscriber map; queued packets and NAT sessions are never touched. A
// change a scheduler refuses is undone on every scheduler and reported.
#pragma once

#include "config/config.h"
#include "qos/hierarchy.h"
#include "qos/qos_dataplane.h"

#include <array>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fairgate {

class QosControl {
 public:
  // Runs `work` on worker `owner`'s thread and waits; false when the worker did not get to it.
  using RunOnWorker = std::function<bool(uint16_t owner, const std::function<void()>& work)>;
  static constexpr uint64_t kSampleMs = 1000;  // rates now are averaged over this

  QosControl(const Config& config, QosDataplane& dataplane, RunOnWorker run_on_worker);

  const std::vector<LiveSubscriber>& subscribers() const { return subscribers_; }
  const LinkRates& links() const { return links_; }
  std::vector<PortNode> hierarchy() const { return build_hierarchy(config_, subscribers_, links_); }

  // Each throws FieldError naming the argument and the reason, with nothing changed.
  // A new subscriber takes over the addresses of automatic subscribers it covers.
  void add(SubscriberConfig plan);
  void replace(const std::string& name, SubscriberConfig plan);  // same name, new addresses or plan
  void remove(const std::string& name);
  // The one function that changes a WAN link's rates (bits/s; 0 keeps a direction as it is).
  // Returns the milliseconds until every scheduler ran at the new rates.
  double set_link_rate(uint16_t port, uint64_t down_bps, uint64_t up_bps);

  // From the management loop: turns reported unknown hosts into subscribers, expires idle
  // automatic ones, and samples the rates.
  void tick(uint64_t now_ms);

  // A subscriber's rate now in one class on one scheduler (bits/s, over the last sample).
  double rate_bps(std::size_t scheduler, uint32_t pipe, TrafficClass tc) const;
  double gateway_rate_bps(std::size_t scheduler) const;
  // Packets queued now and dropped since start, per class, for the live pipes (read on the
  // owners). Key: scheduler index, pipe (kGatewayPipe for the local subport).
  static constexpr uint32_t kGatewayPipe = UINT32_MAX;
  struct ClassQueues {
    std::array<uint64_t, 4> queued{}, dropped{};
  };
  std::map<std::pair<std::size_t, uint32_t>, ClassQueues> read_queues();

  const LiveSubscriber* find(const std::string& name) const;
  // Called after every change of the subscribers has been published (P2P policies follow them).
  void on_change(std::function<void(const std::vector<LiveSubscriber>&)> listener) { listener_ = std::move(listener); }
  uint64_t automatic_created() const { return automatic_created_; }
  uint64_t automatic_expired() const { return automatic_expired_; }
  uint64_t unknown_without_pipe() const { return unknown_without_pipe_; }
  uint64_t idle_ms(const LiveSubscriber& subscriber, uint64_t now_ms) const;

 private:
  // Brings every scheduler to `subscribers` and `links`, publishes the map and keeps them;
  // on failure every scheduler goes back to the current state and FieldError(field) is thrown.
  void commit(std::vector<LiveSubscriber> subscribers, LinkRates links, const std::string& field);
  void apply_everywhere(const std::vector<PortNode>& hierarchy, std::string* error);
  void publish_map();
  std::optional<uint32_t> free_pipe(const std::vector<LiveSubscriber>& subscribers) const;
  // Guarantees the operator set must fit what each link leaves for subscribers.
  void check_guarantees(const std::vector<LiveSubscriber>& subscribers, const std::vector<PortNode>& hierarchy) const;
  void forget_pipe(uint32_t pipe);  // its idle time and drop totals, before the pipe is reused
  void add_unknown_hosts(uint64_t now_ms);
  void expire_idle(uint64_t now_ms);
  void sample(uint64_t now_ms);
  uint64_t pipe_bytes(uint32_t pipe) const;  // sent on every scheduler, all classes

  const Config& config_;
  QosDataplane& dataplane_;
  RunOnWorker run_on_worker_;
  std::function<void(const std::vector<LiveSubscriber>&)> listener_;
  std::vector<LiveSubscriber> subscribers_;
  LinkRates links_;
  // Rates: the byte counters at the last sample and the rates they gave, by scheduler and pipe.
  struct Sample {
    std::array<uint64_t, 4> bytes{};
    std::array<double, 4> bps{};
  };
  std::vector<std::map<uint32_t, Sample>> samples_;
  std::vector<Sample> gateway_samples_;
  uint64_t last_sample_ms_ = 0;
  // Idle tracking of automatic subscribers: bytes seen and when they last changed, by pipe.
  std::map<uint32_t, std::pair<uint64_t, uint64_t>> activity_;
  std::map<std::pair<std::size_t, uint32_t>, std::array<uint64_t, 4>> drops_;  // since start
  uint64_t automatic_created_ = 0, automatic_expired_ = 0, unknown_without_pipe_ = 0;
};

}  // namespace fairgate
