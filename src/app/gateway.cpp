#include "app/gateway.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <stdexcept>

#include "core/packet_meta.h"
#include "mgmt/frame_builder.h"

namespace fairgate {
namespace {

constexpr unsigned kMempoolCache = 256;      // mbufs per lcore cache
constexpr long kLoopTimeoutNs = 250'000;     // management loop wakes at least every 250 us
constexpr uint64_t kTickMs = 10;             // neighbour timers and RCU reclaim
constexpr uint64_t kFlowFlushMs = 100;       // at shutdown, the workers' time to send the last export
constexpr unsigned kPuntsPerRound = 256;     // per worker per loop round, so commands stay responsive
constexpr unsigned kJobTimeoutMs = 1000;     // longest the management thread waits for a worker

int worker_main(void* arg) {
  auto* launch = static_cast<Gateway::Launch*>(arg);
  launch->worker->run(*launch->stop);
  return 0;
}

}  // namespace

void WorkerRingSink::send(uint16_t port, rte_mbuf* frame) {
  frame->port = port;
  // Spread by port so each port's management frames keep their order through one worker.
  const auto& worker = (*workers_)[port % workers_->size()];
  if (rte_ring_enqueue(worker->tx_ring(), frame) != 0) {
    dropped_.add();
    rte_pktmbuf_free(frame);
  }
}

Gateway::Gateway(Config config, PipelineSpec pipeline) : config_(std::move(config)), pipeline_(std::move(pipeline)) {}

Gateway::~Gateway() {
  if (workers_running_ || ports_open_) stop();
}

namespace {
uint64_t wall_clock_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}
}  // namespace

std::vector<FlowRecord> Gateway::flow_snapshot(std::size_t limit, bool* truncated) {
  std::vector<FlowRecord> records;
  *truncated = false;
  for (auto& worker : workers_) {
    SessionTable* nat = worker->nat();
    FlowAccounting* flows = worker->flows();
    if (nat == nullptr || flows == nullptr) continue;
    std::vector<FlowRecord> mine;
    bool more = false;
    bool answered = worker->run_job(
        [&] {
          for (uint32_t i = 0; i < nat->capacity(); ++i) {
            if (!nat->session(i).in_use) continue;
            if (mine.size() == limit) {
              more = true;
              break;
            }
            mine.push_back(flows->snapshot(i, nat->flow_view(i)));
          }
        },
        kJobTimeoutMs, workers_running_);
    if (!answered) throw std::runtime_error("worker " + std::to_string(worker->index()) + " did not answer");
    *truncated |= more;
    records.insert(records.end(), mine.begin(), mine.end());
  }
  return records;
}

double Gateway::uptime_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

uint64_t Gateway::now_ms() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void Gateway::start() {
  pool_ = rte_pktmbuf_pool_create(("pkt_" + config_.eal.file_prefix).substr(0, 24).c_str(), config_.dataplane.mbufs,
                                  kMempoolCache, kMbufPrivSize, config_.dataplane.mbuf_size,
                                  static_cast<int>(rte_socket_id()));
  if (pool_ == nullptr)
    throw std::runtime_error("cannot create the packet pool of " + std::to_string(config_.dataplane.mbufs) +
                             " mbufs: " + rte_strerror(rte_errno) + " (raise eal.memory_mb or lower dataplane.mbufs)");
  ports_ = open_ports(config_, pool_);
  ports_open_ = true;

  auto worker_count = static_cast<uint32_t>(config_.workers.size());
  qsbr_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("qsbr", rte_rcu_qsbr_get_memsize(worker_count), RTE_CACHE_LINE_SIZE));
  if (qsbr_ == nullptr || rte_rcu_qsbr_init(qsbr_, worker_count) != 0)
    throw std::runtime_error("cannot set up RCU for the workers");
  neighbors_.set_qsbr(qsbr_);
  port_forwards_.publish(std::make_unique<PortForwardTable>(PortForwardTable{config_.nat.port_forwards}));
  port_forwards_.set_qsbr(qsbr_);

  if (config_.qos.enabled()) {
    qos_dataplane_ = std::make_unique<QosDataplane>(config_, build_hierarchy(config_), static_cast<uint16_t>(worker_count),
                                                    static_cast<int>(rte_socket_id()));
    qos_dataplane_->map().set_qsbr(qsbr_);
  }
  P2pSignatureLoader signatures;
  std::filesystem::path signatures_path;
  if (config_.p2p.enabled) {
    // Relative paths were resolved against the configuration's directory when it was loaded.
    signatures = load_configured_signatures(config_.p2p, std::filesystem::current_path(), &signatures_path);
    p2p_dataplane_ = std::make_unique<P2pDataplane>(config_.p2p, static_cast<uint16_t>(worker_count),
                                                    config_.qos.enabled() ? config_.qos.max_subscribers : 0,
                                                    signatures.current());
    p2p_dataplane_->set_qsbr(qsbr_);
  }
  wan_routing_.set_qsbr(qsbr_);
  WorkerDeps deps{config_,         ports_,           pipeline_,           neighbors_, qsbr_, &handoff_rings_,
                  &port_forwards_, qos_dataplane_.get(), p2p_dataplane_.get(),
                  config_.wan.enabled ? &wan_routing_ : nullptr};
  for (uint16_t w = 0; w < worker_count; ++w) {
    workers_.push_back(std::make_unique<Worker>(w, config_.workers[w], deps));
    handoff_rings_.push_back(workers_.back()->handoff_ring());
  }
  if (qos_dataplane_) {
    qos_ = std::make_unique<QosControl>(config_, *qos_dataplane_, [this](uint16_t owner, const std::function<void()>& work) {
      return workers_[owner]->run_job(work, kJobTimeoutMs, workers_running_);
    });
  }
  if (p2p_dataplane_) {
    p2p_ = std::make_unique<P2pControl>(*p2p_dataplane_, std::move(signatures), signatures_path);
    if (qos_) {
      p2p_->follow(qos_->subscribers());
      qos_->on_change([this](const std::vector<LiveSubscriber>& subscribers) { p2p_->follow(subscribers); });
    }
  }
  sink_.set_workers(&workers_);
  local_ = std::make_unique<LocalHandler>(ports_, config_.neighbors, pool_, sink_, neighbors_);

  if (config_.wan.enabled) {
    auto remove_sessions = [this](uint8_t port) {
      uint64_t removed = 0;
      for (auto& worker : workers_)
        if (SessionTable* nat = worker->nat())
          worker->run_job([&] { removed += nat->remove_wan(port); }, kJobTimeoutMs, workers_running_);
      return removed;
    };
    wan_ = std::make_unique<WanControl>(config_, ports_, *local_, qos_.get(), wan_routing_, remove_sessions, now_ms());
    local_->listen_echo_replies([this](uint16_t port, uint32_t from, uint16_t identifier, uint16_t sequence,
                                       uint64_t now) { wan_->on_echo_reply(port, from, identifier, sequence, now); });
    local_->listen_udp(config_.wan.lpa_port, [this](uint16_t port, uint32_t from, const uint8_t* payload,
                                                    uint32_t length, uint64_t now) {
      wan_->on_lpa(port, from, payload, length, now);
    });
  }
  std::vector<FlowAccounting*> flow_workers;
  for (auto& worker : workers_) flow_workers.push_back(worker->flows());
  if (std::any_of(flow_workers.begin(), flow_workers.end(), [](FlowAccounting* f) { return f != nullptr; })) {
    auto send = [this](uint32_t collector, uint16_t collector_port, uint16_t source_port,
                       const std::vector<uint8_t>& payload) {
      // From the address of the port the collector is reached by, as any host would send it.
      uint32_t source = local_->route_source(collector);
      if (source == 0) return false;
      rte_mbuf* datagram = build_udp_datagram(pool_, source, collector, source_port, collector_port, 64, payload.data(),
                                              static_cast<uint32_t>(payload.size()));
      return local_->send_routed(datagram, now_ms());
    };
    auto subscriber_name = [this](uint32_t inside) -> std::string {
      if (!qos_) return {};
      uint32_t pipe = qos_dataplane_->map().current()->find(inside);
      for (const auto& subscriber : qos_->subscribers())
        if (subscriber.pipe == pipe) return subscriber.plan.name;
      return {};
    };
    uint64_t wall_ms = wall_clock_ms();
    FlowAccounting* any = *std::find_if(flow_workers.begin(), flow_workers.end(), [](FlowAccounting* f) { return f; });
    flows_ = std::make_unique<FlowMonitor>(config_.flows, ports_, flow_workers, send, subscriber_name, any->now_ms(),
                                           wall_ms);
  }
  register_commands(commands_, *this);
  control_ = std::make_unique<ControlServer>(config_.control.socket, commands_);

  for (auto& worker : workers_) launches_.push_back({worker.get(), &stop_workers_});
  unsigned lcore = rte_get_next_lcore(-1, 1, 0);
  for (auto& launch : launches_) {
    if (lcore >= RTE_MAX_LCORE) throw std::runtime_error("fewer lcores than workers");
    if (rte_eal_remote_launch(worker_main, &launch, lcore) != 0)
      throw std::runtime_error("cannot launch a worker on lcore " + std::to_string(lcore));
    lcore = rte_get_next_lcore(lcore, 1, 0);
  }
  workers_running_ = true;
  local_->start(now_ms());
  if (wan_) wan_->start(now_ms());
}

uint64_t Gateway::sessions_on_wan(uint8_t port) {
  uint64_t total = 0;
  for (auto& worker : workers_)
    if (SessionTable* nat = worker->nat())
      worker->run_job([&] { total += nat->sessions_on_wan(port); }, kJobTimeoutMs, workers_running_);
  return total;
}

void Gateway::set_port_forwards(std::vector<PortForwardRule> rules) {
  const auto& old_rules = port_forwards_.current()->rules;
  auto reserve = [this](const PortForwardRule& rule, bool reserved) {
    for (auto& worker : workers_) {
      SessionTable* nat = worker->nat();
      if (nat == nullptr) continue;
      worker->run_job(
          [&] {
            for (uint8_t p = 0; p < ports_.ports.size(); ++p) {
              if (ports_.ports[p].role != PortRole::kWan) continue;
              for (uint32_t port = rule.external_first; port <= rule.external_last; ++port) {
                if (rule.tcp) nat->reserve_port(IPPROTO_TCP, p, static_cast<uint16_t>(port), reserved);
                if (rule.udp) nat->reserve_port(IPPROTO_UDP, p, static_cast<uint16_t>(port), reserved);
              }
            }
          },
          kJobTimeoutMs, workers_running_);
    }
  };
  auto contains = [](const std::vector<PortForwardRule>& list, const PortForwardRule& rule) {
    for (const auto& other : list)
      if (other.tcp == rule.tcp && other.udp == rule.udp && other.external_first == rule.external_first &&
          other.external_last == rule.external_last && other.internal == rule.internal &&
          other.internal_first == rule.internal_first)
        return true;
    return false;
  };
  // New ports leave dynamic allocation before the rule is visible; freed ones return after.
  for (const auto& rule : rules)
    if (!contains(old_rules, rule)) reserve(rule, true);
  std::vector<PortForwardRule> removed;
  for (const auto& rule : old_rules)
    if (!contains(rules, rule)) removed.push_back(rule);
  port_forwards_.publish(std::make_unique<PortForwardTable>(PortForwardTable{std::move(rules)}));
  for (const auto& rule : removed) reserve(rule, false);
}

void Gateway::drain_punts(uint64_t now) {
  rte_mbuf* pkts[32];
  for (auto& worker : workers_) {
    unsigned handled = 0;
    while (handled < kPuntsPerRound) {
      unsigned count = rte_ring_dequeue_burst(worker->punt_ring(), reinterpret_cast<void**>(pkts), 32, nullptr);
      if (count == 0) break;
      for (unsigned i = 0; i < count; ++i) local_->handle(pkts[i], now);
      handled += count;
    }
  }
}

void Gateway::run(int signal_fd) {
  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = signal_fd;
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, signal_fd, &event);
  event.data.fd = control_->fd();
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, control_->fd(), &event);
  uint64_t last_tick = 0;
  std::fprintf(stderr, "fairgate: running, %zu workers, control socket %s\n", workers_.size(),
               config_.control.socket.c_str());
  while (!stop_requested_) {
    epoll_event events[4];
    timespec timeout{0, kLoopTimeoutNs};
    int count = epoll_pwait2(epoll_fd, events, 4, &timeout, nullptr);
    for (int i = 0; i < count; ++i) {
      if (events[i].data.fd == signal_fd) {
        signalfd_siginfo info;
        if (read(signal_fd, &info, sizeof info) == sizeof info)
          std::fprintf(stderr, "fairgate: signal %u, stopping\n", info.ssi_signo);
        stop_requested_ = true;
      }
    }
    control_->poll();
    uint64_t now = now_ms();
    drain_punts(now);
    if (flows_) flows_->poll(wall_clock_ms());
    if (now - last_tick >= kTickMs) {
      local_->tick(now);
      port_forwards_.reclaim();
      if (qos_) qos_->tick(now);
      if (p2p_dataplane_) p2p_dataplane_->reclaim();
      if (wan_) {
        wan_->tick(now);
        wan_routing_.reclaim();
      }
      last_tick = now;
    }
  }
  close(epoll_fd);
}

void Gateway::export_remaining_flows() {
  // Every session ends here: its flow record and NAT delete event go out (forced end) while
  // the workers still run, since they send what the management thread builds.
  for (auto& worker : workers_)
    if (SessionTable* nat = worker->nat()) worker->run_job([nat] { nat->clear(); }, kJobTimeoutMs, workers_running_);
  flows_->poll(wall_clock_ms());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kFlowFlushMs);
  for (auto& worker : workers_)
    while (rte_ring_count(worker->tx_ring()) != 0 && std::chrono::steady_clock::now() < deadline)
      rte_delay_us_sleep(1000);
}

uint32_t Gateway::stop() {
  if (workers_running_) {
    if (flows_) export_remaining_flows();
    stop_workers_ = true;
    rte_eal_mp_wait_lcore();
    workers_running_ = false;
  }
  control_.reset();
  // Packets still in the rings or waiting for ARP go back to the pool, counted as shutdown drops.
  if (local_) local_->release_all();
  local_.reset();
  wan_.reset();
  p2p_.reset();
  qos_.reset();
  flows_.reset();  // before the workers: it reads their rings
  workers_.clear();
  p2p_dataplane_.reset();
  qos_dataplane_.reset();  // packets still queued in the schedulers go back to the pool
  if (ports_open_) {
    close_ports(ports_);
    ports_open_ = false;
  }
  uint32_t missing = 0;
  if (pool_ != nullptr) {
    missing = config_.dataplane.mbufs - rte_mempool_avail_count(pool_);
    rte_mempool_free(pool_);
    pool_ = nullptr;
  }
  rte_free(qsbr_);
  qsbr_ = nullptr;
  return missing;
}

}  // namespace fairgate
