#include "qos/qos_control.h"

#include "config/json_path.h"

#include <chrono>
#include <memory>
#include <set>

namespace fairgate {
namespace {

constexpr unsigned kHostsPerTick = 256;  // unknown-host reports taken per management tick

bool overlaps(const SubscriberConfig& a, const SubscriberConfig& b) {
  for (const auto& x : a.addresses)
    for (const auto& y : b.addresses)
      if (prefixes_overlap(x, y)) return true;
  return false;
}

}  // namespace

QosControl::QosControl(const Config& config, QosDataplane& dataplane, RunOnWorker run_on_worker)
    : config_(config),
      dataplane_(dataplane),
      run_on_worker_(std::move(run_on_worker)),
      subscribers_(initial_subscribers(config)),
      links_(configured_link_rates(config)),
      samples_(dataplane.schedulers().size()),
      gateway_samples_(dataplane.schedulers().size()) {
  publish_map();
}

const LiveSubscriber* QosControl::find(const std::string& name) const {
  for (const auto& s : subscribers_)
    if (s.plan.name == name) return &s;
  return nullptr;
}

void QosControl::publish_map() {
  std::vector<SubscriberMap::Entry> entries;
  for (const auto& s : subscribers_)
    for (const auto& prefix : s.plan.addresses) entries.push_back({prefix, s.pipe});
  dataplane_.map().publish(std::make_unique<SubscriberMap>(entries));
  if (listener_) listener_(subscribers_);
}

std::optional<uint32_t> QosControl::free_pipe(const std::vector<LiveSubscriber>& subscribers) const {
  std::set<uint32_t> used;
  for (const auto& s : subscribers) used.insert(s.pipe);
  uint32_t capacity = std::min<uint32_t>(config_.qos.max_subscribers,
                                         dataplane_.schedulers().empty() ? config_.qos.max_subscribers
                                                                         : dataplane_.schedulers()[0]->sched->pipe_capacity());
  for (uint32_t pipe = 1; pipe < capacity; ++pipe)
    if (!used.count(pipe)) return pipe;
  return std::nullopt;
}

void QosControl::check_guarantees(const std::vector<LiveSubscriber>& subscribers,
                                  const std::vector<PortNode>& hierarchy) const {
  for (const auto& port : hierarchy) {
    uint64_t guaranteed = 0;
    for (const auto& s : subscribers) guaranteed += port.download ? s.plan.down.rate_bps : s.plan.up.rate_bps;
    // Against the largest link: on a smaller one guarantees still weigh the shares.
    uint64_t share = 0;
    for (const auto& subport : port.internet()) share = std::max(share, subport.rate_bps);
    if (guaranteed > share)
      throw FieldError(port.download ? "args.down.rate" : "args.up.rate",
                       std::string(port.download ? "download" : "upload") + " guarantees would add up to " +
                           format_rate(guaranteed) + ", more than the " + format_rate(share) + " " + port.name +
                           " leaves for subscribers");
  }
}

void QosControl::forget_pipe(uint32_t pipe) {
  activity_.erase(pipe);
  for (std::size_t i = 0; i < dataplane_.schedulers().size(); ++i) drops_.erase({i, pipe});
}

void QosControl::apply_everywhere(const std::vector<PortNode>& hierarchy, std::string* error) {
  for (const auto& scheduler : dataplane_.schedulers()) {
    const PortNode* node = nullptr;
    for (const auto& candidate : hierarchy)
      if (candidate.port == scheduler->port) node = &candidate;
    if (node == nullptr) continue;
    // Shared with the job: a worker that is late still writes into live memory.
    auto outcome = std::make_shared<std::string>();
    SchedPort* sched = scheduler->sched.get();
    auto work = [sched, node_copy = *node, outcome] {
      try {
        sched->apply(node_copy);
      } catch (const std::exception& failure) {
        *outcome = failure.what();
      }
    };
    if (!run_on_worker_(scheduler->owner, work)) *outcome = "the worker owning " + node->name + " did not answer";
    if (!outcome->empty() && error->empty()) *error = *outcome;
  }
}

void QosControl::commit(std::vector<LiveSubscriber> subscribers, LinkRates links, const std::string& field) {
  auto wanted = build_hierarchy(config_, subscribers, links);
  std::string error;
  apply_everywhere(wanted, &error);
  if (!error.empty()) {
    std::string ignored;
    apply_everywhere(hierarchy(), &ignored);
    throw FieldError(field, error);
  }
  subscribers_ = std::move(subscribers);
  links_ = std::move(links);
  publish_map();
}

void QosControl::add(SubscriberConfig plan) {
  if (find(plan.name) != nullptr) throw FieldError("args.name", "a subscriber \"" + plan.name + "\" exists");
  std::vector<LiveSubscriber> next;
  for (const auto& s : subscribers_) {
    if (!overlaps(plan, s.plan)) {
      next.push_back(s);
      continue;
    }
    if (s.kind != LiveSubscriber::Kind::kAutomatic)
      throw FieldError("args.addresses", "overlaps subscriber \"" + s.plan.name + "\"");
  }
  auto pipe = free_pipe(next);
  if (!pipe) throw FieldError("args.name", "no pipe left: qos.max_subscribers is " + std::to_string(config_.qos.max_subscribers));
  next.push_back({std::move(plan), *pipe, LiveSubscriber::Kind::kConfigured});
  check_guarantees(next, build_hierarchy(config_, next, links_));
  std::vector<uint32_t> released;
  for (const auto& s : subscribers_)
    if (overlaps(next.back().plan, s.plan)) released.push_back(s.pipe);  // automatic ones it took over
  commit(std::move(next), links_, "args");
  for (uint32_t old : released) forget_pipe(old);
  forget_pipe(*pipe);
}

void QosControl::replace(const std::string& name, SubscriberConfig plan) {
  const LiveSubscriber* current = find(name);
  if (current == nullptr) throw FieldError("args.name", "no subscriber \"" + name + "\"");
  if (current->kind == LiveSubscriber::Kind::kUnknown && !plan.addresses.empty())
    throw FieldError("args.addresses", "\"unknown\" covers the hosts nobody else does; it has no addresses");
  std::vector<LiveSubscriber> next;
  for (const auto& s : subscribers_) {
    if (s.plan.name == name) {
      LiveSubscriber changed = s;
      changed.plan = plan;
      // A subscriber the operator changed is the operator's, no longer automatic.
      if (changed.kind == LiveSubscriber::Kind::kAutomatic) changed.kind = LiveSubscriber::Kind::kConfigured;
      next.push_back(std::move(changed));
      continue;
    }
    if (!overlaps(plan, s.plan)) {
      next.push_back(s);
      continue;
    }
    if (s.kind != LiveSubscriber::Kind::kAutomatic)
      throw FieldError("args.addresses", "overlaps subscriber \"" + s.plan.name + "\"");
  }
  check_guarantees(next, build_hierarchy(config_, next, links_));
  commit(std::move(next), links_, "args");
}

void QosControl::remove(const std::string& name) {
  const LiveSubscriber* current = find(name);
  if (current == nullptr) throw FieldError("args.name", "no subscriber \"" + name + "\"");
  if (current->kind == LiveSubscriber::Kind::kUnknown)
    throw FieldError("args.name", "\"unknown\" takes the hosts nobody else covers; it cannot go");
  std::vector<LiveSubscriber> next;
  for (const auto& s : subscribers_)
    if (s.plan.name != name) next.push_back(s);
  uint32_t pipe = current->pipe;
  commit(std::move(next), links_, "args.name");
  forget_pipe(pipe);
}

double QosControl::set_link_rate(uint16_t port, uint64_t down_bps, uint64_t up_bps) {
  auto start = std::chrono::steady_clock::now();
  LinkRates next = links_;
  if (down_bps != 0) next.down_bps.at(port) = down_bps;
  if (up_bps != 0) next.up_bps.at(port) = up_bps;
  commit(subscribers_, std::move(next), "args");
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

void QosControl::add_unknown_hosts(uint64_t now_ms) {
  void* reports[kHostsPerTick];
  unsigned count = rte_ring_dequeue_burst(dataplane_.new_hosts(), reports, kHostsPerTick, nullptr);
  if (count == 0) return;
  std::vector<LiveSubscriber> next = subscribers_;
  const SubscriberMap* map = dataplane_.map().current();
  std::set<uint32_t> added;
  for (unsigned i = 0; i < count; ++i) {
    auto host = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(reports[i]));
    // Reported twice, or covered since it was reported.
    if (added.count(host) || (map != nullptr && map->find(host) != SubscriberMap::kNoPipe)) continue;
    auto pipe = free_pipe(next);
    if (!pipe) {
      ++unknown_without_pipe_;  // it stays with "unknown"
      continue;
    }
    SubscriberConfig plan;
    // Named by its address, unless an operator's subscriber already has that name.
    plan.name = format_ipv4(host);
    auto taken = [&next](const std::string& name) {
      for (const auto& s : next)
        if (s.plan.name == name) return true;
      return false;
    };
    if (taken(plan.name)) plan.name = "auto-" + plan.name;
    if (taken(plan.name)) {
      ++unknown_without_pipe_;
      continue;
    }
    plan.addresses = {Ipv4Prefix{host, 32}};
    next.push_back({std::move(plan), *pipe, LiveSubscriber::Kind::kAutomatic});
    forget_pipe(*pipe);
    activity_[*pipe] = {pipe_bytes(*pipe), now_ms};
    added.insert(host);
  }
  if (added.empty()) return;
  try {
    commit(std::move(next), links_, "qos.unknown_hosts");
    automatic_created_ += added.size();
  } catch (const FieldError&) {
    ++unknown_without_pipe_;  // the schedulers refused: the hosts stay with "unknown"
  }
}

uint64_t QosControl::pipe_bytes(uint32_t pipe) const {
  uint64_t total = 0;
  for (const auto& scheduler : dataplane_.schedulers())
    for (const auto& bytes : scheduler->pipes[pipe].bytes) total += bytes.get();
  return total;
}

uint64_t QosControl::idle_ms(const LiveSubscriber& subscriber, uint64_t now_ms) const {
  auto found = activity_.find(subscriber.pipe);
  return found == activity_.end() ? 0 : now_ms - found->second.second;
}

void QosControl::expire_idle(uint64_t now_ms) {
  std::vector<LiveSubscriber> next;
  std::size_t expired = 0;
  for (const auto& s : subscribers_) {
    if (s.kind != LiveSubscriber::Kind::kAutomatic) {
      next.push_back(s);
      continue;
    }
    auto& [bytes, since] = activity_[s.pipe];
    uint64_t now_bytes = pipe_bytes(s.pipe);
    if (now_bytes != bytes) {
      bytes = now_bytes;
      since = now_ms;
    }
    if (now_ms - since >= uint64_t{config_.qos.idle_s} * 1000) {
      ++expired;
      continue;
    }
    next.push_back(s);
  }
  if (expired == 0) return;
  std::set<uint32_t> kept;
  for (const auto& s : next) kept.insert(s.pipe);
  try {
    commit(std::move(next), links_, "qos.idle_s");
    automatic_expired_ += expired;
    for (const auto& [pipe, ignored] : std::map(activity_))
      if (!kept.count(pipe)) forget_pipe(pipe);
  } catch (const FieldError&) {
    // Expiry is retried at the next sample.
  }
}

void QosControl::sample(uint64_t now_ms) {
  double seconds = static_cast<double>(now_ms - last_sample_ms_) / 1000.0;
  for (std::size_t i = 0; i < dataplane_.schedulers().size(); ++i) {
    const auto& scheduler = *dataplane_.schedulers()[i];
    auto update = [seconds](Sample& sample, const PipeCounters& counters) {
      for (std::size_t tc = 0; tc < 4; ++tc) {
        uint64_t bytes = counters.bytes[tc].get();
        sample.bps[tc] = seconds > 0 ? static_cast<double>(bytes - sample.bytes[tc]) * 8.0 / seconds : 0.0;
        sample.bytes[tc] = bytes;
      }
    };
    std::map<uint32_t, Sample> next;
    for (const auto& s : subscribers_) {
      const PipeCounters& counters = scheduler.pipes[s.pipe];
      Sample sample;
      if (auto found = samples_[i].find(s.pipe); found != samples_[i].end()) {
        sample = found->second;
      } else {
        // New on this pipe: the counters hold what earlier subscribers of the pipe sent.
        for (std::size_t tc = 0; tc < 4; ++tc) sample.bytes[tc] = counters.bytes[tc].get();
      }
      update(sample, counters);
      next[s.pipe] = sample;
    }
    samples_[i] = std::move(next);
    update(gateway_samples_[i], scheduler.gateway);
  }
  last_sample_ms_ = now_ms;
}

void QosControl::tick(uint64_t now_ms) {
  if (dataplane_.own_unknown_hosts()) add_unknown_hosts(now_ms);
  dataplane_.map().reclaim();
  if (now_ms - last_sample_ms_ < kSampleMs) return;
  sample(now_ms);
  expire_idle(now_ms);
}

double QosControl::rate_bps(std::size_t scheduler, uint32_t pipe, TrafficClass tc) const {
  auto found = samples_.at(scheduler).find(pipe);
  return found == samples_[scheduler].end() ? 0.0 : found->second.bps[static_cast<std::size_t>(tc)];
}

double QosControl::gateway_rate_bps(std::size_t scheduler) const {
  double total = 0;
  for (double bps : gateway_samples_.at(scheduler).bps) total += bps;
  return total;
}

std::map<std::pair<std::size_t, uint32_t>, QosControl::ClassQueues> QosControl::read_queues() {
  std::map<std::pair<std::size_t, uint32_t>, ClassQueues> result;
  for (std::size_t i = 0; i < dataplane_.schedulers().size(); ++i) {
    const auto& scheduler = *dataplane_.schedulers()[i];
    std::vector<uint32_t> pipes;
    for (const auto& s : subscribers_) pipes.push_back(s.pipe);
    auto readings = std::make_shared<std::vector<ClassQueues>>(pipes.size() + 1);
    SchedPort* sched = scheduler.sched.get();
    // A subscriber's queues in every internet subport, summed.
    auto work = [sched, pipes, readings] {
      for (std::size_t p = 0; p <= pipes.size(); ++p) {
        bool gateway = p == pipes.size();
        for (std::size_t tc = 0; tc < 4; ++tc) {
          for (uint32_t s = 0; s < sched->subport_count(); ++s) {
            if (gateway != (s == sched->local_subport())) continue;
            auto reading = sched->read_class(s, gateway ? 0 : pipes[p], static_cast<TrafficClass>(tc));
            (*readings)[p].queued[tc] += reading.queued;
            (*readings)[p].dropped[tc] += reading.dropped;
          }
        }
      }
    };
    if (!run_on_worker_(scheduler.owner, work)) continue;
    for (std::size_t p = 0; p <= pipes.size(); ++p) {
      uint32_t pipe = p == pipes.size() ? kGatewayPipe : pipes[p];
      auto& total = drops_[{i, pipe}];
      ClassQueues queues;
      for (std::size_t tc = 0; tc < 4; ++tc) {
        total[tc] += (*readings)[p].dropped[tc];
        queues.queued[tc] = (*readings)[p].queued[tc];
        queues.dropped[tc] = total[tc];
      }
      result[{i, pipe}] = queues;
    }
  }
  return result;
}

}  // namespace fairgate
