#include "qos/sched_port.h"

#include <rte_cycles.h>
#include <rte_pie.h>
#include <rte_red.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <stdexcept>
#include <string>

namespace fairgate {
namespace {

// fairgate's classes on librte_sched's traffic classes (see the header).
constexpr uint32_t kSchedTc[] = {0, 1, RTE_SCHED_TRAFFIC_CLASS_BE, RTE_SCHED_TRAFFIC_CLASS_BE};
constexpr uint32_t kMaxProfiles = 1024;  // distinct rates a port may see in its life

// AQM: PIE aims at this queueing delay; RED starts dropping at min_th of the queue.
constexpr uint16_t kPieTargetMs = 15, kPieUpdateMs = 15, kPieMaxBurstMs = 150;
constexpr uint16_t kRedMinPackets = 16, kRedMaxPackets = 48, kRedMaxPInverse = 10, kRedWeightLog2 = 9;

std::atomic<uint32_t> port_serial{0};

// librte_sched's PIE wants a queue under every traffic class, so the ten fairgate does not use
// get the smallest it accepts (they never see a packet).
constexpr uint16_t kUnusedQueuePackets = 2;
uint16_t queue_packets(uint32_t sched_tc, bool count_drops) {
  bool used = sched_tc == 0 || sched_tc == 1 || sched_tc == RTE_SCHED_TRAFFIC_CLASS_BE ||
              (count_drops && sched_tc == SchedPort::kChargeTc);
  return used ? SchedPort::kQueuePackets : kUnusedQueuePackets;
}

// Three significant digits, so rates that differ by less than 0.1 % share one profile and a
// link whose rate wanders does not use up the profile tables.
uint64_t round_rate(uint64_t bytes_per_s) {
  uint64_t scale = 1;
  while (bytes_per_s / scale >= 1000) scale *= 10;
  return std::max<uint64_t>((bytes_per_s + scale / 2) / scale * scale, 1);
}

uint64_t bytes_per_s(uint64_t bps) { return round_rate(std::max<uint64_t>(bps / 8, 1)); }

// A token bucket deep enough for the credits that accrue between two polls of a busy worker,
// and for a few full packets at low rates.
uint64_t bucket_bytes(uint64_t rate_bytes_per_s, uint16_t mtu) {
  return std::max<uint64_t>(rate_bytes_per_s * SchedPort::kBucketMs / 1000, uint64_t{mtu} * 4);
}

void check(int result, const std::string& what) {
  if (result != 0) throw std::runtime_error("scheduler: " + what + " failed (" + std::to_string(result) + ")");
}

// librte_sched frees the whole port when a subport or pipe configuration fails, so the caller
// must check its arguments first; this forgets the freed port so it is not freed twice.
void check_or_lost(int result, rte_sched_port*& port, const std::string& what) {
  if (result == 0) return;
  port = nullptr;
  throw std::runtime_error("scheduler: " + what + " failed (" + std::to_string(result) + "), port lost");
}

rte_sched_cman_params cman_params(QosConfig::Aqm aqm, bool count_drops) {
  rte_sched_cman_params params{};
  if (aqm == QosConfig::Aqm::kPie) {
    params.cman_mode = RTE_SCHED_CMAN_PIE;
    for (uint32_t tc = 0; tc < RTE_SCHED_TRAFFIC_CLASSES_PER_PIPE; ++tc)
      params.pie_params[tc] = {kPieTargetMs, kPieUpdateMs, kPieMaxBurstMs, queue_packets(tc, count_drops)};
  } else {
    params.cman_mode = RTE_SCHED_CMAN_RED;
    // Thresholds of zero leave RED off for the classes fairgate does not use.
    for (uint32_t tc : kSchedTc)
      for (auto& red : params.red_params[tc]) red = {kRedMinPackets, kRedMaxPackets, kRedMaxPInverse, kRedWeightLog2};
  }
  return params;
}

}  // namespace

void SchedPort::queue_of(TrafficClass tc, uint32_t flow_hash, uint32_t* sched_tc, uint32_t* queue) {
  *sched_tc = kSchedTc[static_cast<uint8_t>(tc)];
  switch (tc) {
    case TrafficClass::kBulk: *queue = flow_hash % kBulkQueues; break;
    case TrafficClass::kP2p: *queue = kBulkQueues; break;
    default: *queue = 0; break;
  }
}

uint64_t SchedPort::tc_period_ms(uint64_t rate_bytes_per_s) const {
  uint64_t frames_bytes = uint64_t{kFramesPerTcPeriod} * max_frame_wire_bytes_;
  uint64_t ms = (frames_bytes * 1000 + rate_bytes_per_s - 1) / std::max<uint64_t>(rate_bytes_per_s, 1);
  return std::clamp<uint64_t>(ms, kTcPeriodMs, kMaxTcPeriodMs);
}

rte_sched_subport_profile_params SchedPort::subport_params(uint64_t rate_bytes_per_s) const {
  rte_sched_subport_profile_params profile{};
  profile.tb_rate = rate_bytes_per_s;
  profile.tb_size = bucket_bytes(rate_bytes_per_s, mtu_);
  // librte_sched wants every class's rate at the subport, used or not.
  for (auto& tc_rate : profile.tc_rate) tc_rate = profile.tb_rate;
  profile.tc_period = tc_period_ms(rate_bytes_per_s);
  return profile;
}

SchedPort::PipeKey SchedPort::pipe_key(uint64_t ceil_bps, uint64_t rate_bps, uint64_t smallest_rate_bps) const {
  uint64_t ceil = bytes_per_s(ceil_bps);
  // When the best-effort class is oversubscribed, pipes get it in proportion to this weight:
  // their guarantees, relative to the smallest.
  auto weight = static_cast<uint8_t>(std::clamp<uint64_t>(rate_bps / std::max<uint64_t>(smallest_rate_bps, 1), 1, 255));
  return {ceil, bucket_bytes(ceil, mtu_), weight};
}

SchedPort::SchedPort(const PortNode& node, const Options& options) : mtu_(options.mtu) {
  pipes_per_subport_ = std::bit_ceil(std::max<uint32_t>(options.pipe_capacity, 1));
  pipes_log2_ = static_cast<uint32_t>(std::countr_zero(pipes_per_subport_));
  count_drops_ = options.count_drops;
  arrival_room_percent_ = options.arrival_room_percent;
  const uint64_t built_at = rte_get_tsc_cycles();  // the room for arrivals grows from here
  charged_ = std::vector<RelaxedCounter>(node.subports.size());
  if (node.subports.size() < 2) throw std::runtime_error("scheduler: port " + node.name + " has no internet subport");
  local_subport_ = static_cast<uint32_t>(node.subports.size() - 1);
  for (uint32_t s = 0; s < node.subports.size(); ++s) {
    const SubportNode& subport = node.subports[s];
    subports_.push_back({subport.framing, 0, {}, {}, 0, built_at});
    max_frame_wire_bytes_ = std::max(max_frame_wire_bytes_, wire_bytes(s, uint32_t{mtu_} + RTE_ETHER_HDR_LEN));
    if (subport.wan_port < 0) continue;
    auto rx_port = static_cast<std::size_t>(subport.wan_port);
    if (rx_port >= subport_by_rx_port_.size()) subport_by_rx_port_.resize(rx_port + 1, kInternetSubport);
    subport_by_rx_port_[rx_port] = s;
  }

  uint64_t port_rate = std::max(node.rate_bps, kMinPortRateBps) / 8;
  port_rate_bps_ = port_rate * 8;
  std::vector<rte_sched_subport_profile_params> initial{subport_params(1000)};
  std::string name = "sched_" + node.name + "_" + std::to_string(port_serial.fetch_add(1));
  rte_sched_port_params port_params{};
  port_params.name = name.c_str();
  port_params.socket = options.socket;
  port_params.rate = port_rate;
  port_params.mtu = max_frame_wire_bytes_;
  port_params.frame_overhead = 0;  // pkt_len carries the wire bytes (see wire_bytes)
  // librte_sched wants a power of two: the spares are configured and never see a packet.
  port_params.n_subports_per_port = std::bit_ceil(subport_count());
  port_params.subport_profiles = initial.data();
  port_params.n_subport_profiles = 1;
  port_params.n_max_subport_profiles = kMaxProfiles;
  port_params.n_pipes_per_subport = pipes_per_subport_;
  port_ = rte_sched_port_config(&port_params);
  if (port_ == nullptr) throw std::runtime_error("scheduler: cannot configure port " + node.name);
  subport_profiles_[1000 * 8] = 0;

  try {
    // librte_sched configures a subport only with at least one pipe profile: each starts with
    // the smallest (8 kbit/s) at id 0, which no pipe uses until apply() picks it for a rate
    // that small; the profiles the pipes need are added as they need them.
    PipeKey first_profile = pipe_key(8000, 8000, 8000);
    rte_sched_pipe_params first_params{};
    first_params.tb_rate = std::get<0>(first_profile);
    first_params.tb_size = std::get<1>(first_profile);
    for (auto& rate : first_params.tc_rate) rate = first_params.tb_rate;
    first_params.tc_period = tc_period_ms(first_params.tb_rate);
    first_params.tc_ov_weight = 1;
    for (auto& weight : first_params.wrr_weights) weight = 1;
    rte_sched_cman_params aqm = cman_params(options.aqm, count_drops_);
    rte_sched_subport_params params{};
    for (uint32_t tc = 0; tc < RTE_SCHED_TRAFFIC_CLASSES_PER_PIPE; ++tc)
      params.qsize[tc] = queue_packets(tc, count_drops_);
    params.pipe_profiles = &first_params;
    params.n_pipe_profiles = 1;
    params.n_max_pipe_profiles = kMaxProfiles;
    params.cman_params = &aqm;
    for (uint32_t s = 0; s < std::bit_ceil(subport_count()); ++s) {
      bool local = s == local_subport_;
      params.n_pipes_per_subport_enabled = s < local_subport_ ? pipes_per_subport_ : 1;
      check_or_lost(rte_sched_subport_config(port_, s, &params, 0), port_,
                    (s < subport_count() ? node.subports[s].name : "spare") + " subport");
      if (s >= subport_count()) continue;
      subports_[s].pipe_profiles[first_profile] = 0;  // so it is not added twice
      subports_[s].pipe_profile.assign(local ? 1 : pipes_per_subport_, -1);
      rte_sched_subport_tc_ov_config(port_, s, true);
    }
    apply(node);
  } catch (...) {
    if (port_ != nullptr) rte_sched_port_free(port_);
    throw;
  }
}

SchedPort::~SchedPort() {
  if (port_ == nullptr) return;
  release_queued();
  if (port_ != nullptr) rte_sched_port_free(port_);
}

void SchedPort::release_queued() {
  // rte_sched_port_free frees the packets of every queue but a full one (its read and write
  // indexes meet), so the queues are emptied here first, at the port's own pacing rate.
  if (backlog_ == 0) return;
  try {
    PipeKey drain = pipe_key(port_rate_bps_, port_rate_bps_, port_rate_bps_);
    for (uint32_t s = 0; s < subport_count(); ++s) {
      set_subport_rate(s, port_rate_bps_);
      for (uint32_t pipe = 0; pipe < subports_[s].pipe_profile.size(); ++pipe)
        if (subports_[s].pipe_profile[pipe] >= 0) set_pipe(s, pipe, drain);
    }
  } catch (const std::runtime_error&) {
    if (port_ == nullptr) return;  // librte_sched freed the port and its packets
    // Out of profiles: the queues drain at the rates they have.
  }
  constexpr uint64_t kDrainLimitMs = 2000;
  const uint64_t deadline = rte_get_tsc_cycles() + rte_get_tsc_hz() * kDrainLimitMs / 1000;
  rte_mbuf* packets[64];
  while (backlog_ > 0 && rte_get_tsc_cycles() < deadline) {
    // Packets and charges alike.
    auto released = static_cast<uint32_t>(rte_sched_port_dequeue(port_, packets, 64));
    rte_pktmbuf_free_bulk(packets, released);
    backlog_ -= std::min<uint64_t>(released, backlog_);
  }
}

uint32_t SchedPort::subport_profile(uint64_t rate_bps) {
  uint64_t rate = bytes_per_s(rate_bps);
  auto found = subport_profiles_.find(rate * 8);
  if (found != subport_profiles_.end()) return found->second;
  rte_sched_subport_profile_params params = subport_params(rate);
  uint32_t id = 0;
  check(rte_sched_port_subport_profile_add(port_, &params, &id), "adding a subport rate of " + format_rate(rate * 8));
  subport_profiles_[rate * 8] = id;
  return id;
}

uint32_t SchedPort::pipe_profile(uint32_t subport, const PipeKey& key) {
  auto& profiles = subports_[subport].pipe_profiles;
  auto found = profiles.find(key);
  if (found != profiles.end()) return found->second;
  auto [ceil, bucket, weight] = key;
  rte_sched_pipe_params params{};
  params.tb_rate = ceil;
  params.tb_size = bucket;
  for (auto& rate : params.tc_rate) rate = ceil;
  params.tc_rate[0] = std::max<uint64_t>(ceil * kInteractiveShare / 100, 1);
  params.tc_rate[1] = std::max<uint64_t>(ceil * kNormalShare / 100, 1);
  // The interactive class has the smallest rate: its period is the pipe's.
  params.tc_period = tc_period_ms(params.tc_rate[0]);
  params.tc_ov_weight = weight;
  for (uint32_t q = 0; q < RTE_SCHED_BE_QUEUES_PER_PIPE; ++q) params.wrr_weights[q] = q < kBulkQueues ? kBulkWeight : kP2pWeight;
  uint32_t id = 0;
  check(rte_sched_subport_pipe_profile_add(port_, subport, &params, &id), "adding a pipe rate of " + format_rate(ceil * 8));
  profiles[key] = id;
  return id;
}

void SchedPort::set_subport_rate(uint32_t subport, uint64_t rate_bps) {
  rate_bps = std::max<uint64_t>(rate_bps, 8000);
  if (subports_[subport].rate_bps == rate_bps) return;
  check_or_lost(rte_sched_subport_config(port_, subport, nullptr, subport_profile(rate_bps)), port_, "subport rate change");
  subports_[subport].rate_bps = rate_bps;
}

void SchedPort::set_pipe(uint32_t subport, uint32_t pipe, const PipeKey& key) {
  auto profile = static_cast<int32_t>(pipe_profile(subport, key));
  int32_t& current = subports_[subport].pipe_profile[pipe];
  if (current == profile) return;
  check_or_lost(rte_sched_pipe_config(port_, subport, pipe, profile), port_, "pipe " + std::to_string(pipe));
  current = profile;
}

void SchedPort::apply(const PortNode& node) {
  if (node.subports.size() != subport_count())
    throw std::runtime_error("scheduler: " + node.name + " has " + std::to_string(node.subports.size()) +
                             " subports, the port was built with " + std::to_string(subport_count()));
  for (const auto& subport : node.subports)
    for (const auto& pipe : subport.pipes)
      if (pipe.pipe >= pipe_capacity())
        throw std::runtime_error("scheduler: pipe " + std::to_string(pipe.pipe) + " of " + pipe.name +
                                 " is beyond the capacity of " + std::to_string(pipe_capacity()));
  for (uint32_t s = 0; s < subport_count(); ++s) {
    const SubportNode& subport = node.subports[s];
    set_subport_rate(s, subport.ceil_bps);
    if (s == local_subport_) {
      uint64_t local_bps = std::max<uint64_t>(subport.ceil_bps, 8000);
      set_pipe(s, 0, pipe_key(local_bps, local_bps, local_bps));
      continue;
    }
    uint64_t smallest = UINT64_MAX;
    for (const auto& pipe : subport.pipes) smallest = std::min(smallest, std::max<uint64_t>(pipe.rate_bps, 1));
    for (const auto& pipe : subport.pipes) set_pipe(s, pipe.pipe, pipe_key(pipe.ceil_bps, pipe.rate_bps, smallest));
  }
}

uint32_t SchedPort::dequeue(rte_mbuf** packets, uint32_t count) {
  auto released = static_cast<uint32_t>(rte_sched_port_dequeue(port_, packets, count));
  backlog_ -= released;
  if (!counts_drops()) return released;
  uint32_t kept = 0;
  for (uint32_t i = 0; i < released; ++i) {
    rte_mbuf* packet = packets[i];
    uint32_t subport = subport_of(packet);
    if (subport != local_subport_) subports_[subport].arrival_room_bytes -= packet->pkt_len;
    if (is_charge(packet))
      rte_pktmbuf_free(packet);  // its bytes have used the link's rate: that was its job
    else
      packets[kept++] = packet;
  }
  return kept;
}

bool SchedPort::drop_is_free(uint32_t subport, uint32_t bytes, uint64_t now_tsc) {
  Subport& s = subports_[subport];
  double allowed_bytes_per_s = static_cast<double>(s.rate_bps) / 8 * (1 + arrival_room_percent_ / 100);
  double elapsed_s = static_cast<double>(now_tsc - s.arrival_room_at_tsc) / static_cast<double>(rte_get_tsc_hz());
  double most = allowed_bytes_per_s * kArrivalWindowMs / 1000;
  s.arrival_room_at_tsc = now_tsc;
  s.arrival_room_bytes = std::clamp(s.arrival_room_bytes + elapsed_s * allowed_bytes_per_s, -most, most);
  if (s.arrival_room_bytes < bytes) return false;
  s.arrival_room_bytes -= bytes;
  return true;
}

uint32_t SchedPort::enqueue(rte_mbuf** packets, uint32_t count) {
  if (!count_drops_) {
    auto queued = static_cast<uint32_t>(rte_sched_port_enqueue(port_, packets, count));
    backlog_ += queued;
    return queued;
  }
  uint32_t queued = 0;
  for (uint32_t first = 0; first < count; first += kEnqueueChunk)
    queued += enqueue_counting_drops(packets + first, std::min(count - first, kEnqueueChunk));
  return queued;
}

uint32_t SchedPort::enqueue_counting_drops(rte_mbuf** packets, uint32_t count) {
  // librte_sched frees what it drops and does not say which. While it has them, the packets hold
  // one more reference: one it dropped comes back with the reference count it had before.
  uint16_t references[kEnqueueChunk];
  for (uint32_t i = 0; i < count; ++i) {
    references[i] = rte_mbuf_refcnt_read(packets[i]);
    // A chain's other segments keep their count: librte_sched would free them under the first.
    if (packets[i]->nb_segs == 1) rte_mbuf_refcnt_set(packets[i], static_cast<uint16_t>(references[i] + 1));
  }
  // The array is read again below: librte_sched leaves it as it was.
  auto queued = static_cast<uint32_t>(rte_sched_port_enqueue(port_, packets, count));
  backlog_ += queued;
  rte_mbuf* charges[kEnqueueChunk];
  uint32_t charge_subports[kEnqueueChunk], charge_bytes[kEnqueueChunk];
  uint32_t charge_count = 0;
  uint64_t now = 0;
  for (uint32_t i = 0; i < count; ++i) {
    rte_mbuf* packet = packets[i];
    if (packet->nb_segs != 1) continue;
    if (rte_mbuf_refcnt_read(packet) != references[i]) {  // queued: only this lcore takes it out
      rte_mbuf_refcnt_set(packet, references[i]);
      continue;
    }
    // Dropped, and ours again. Packets of the gateway's own, or shared with another holder, are
    // let go; the rest pay in their pipe's charge class.
    uint32_t subport = subport_of(packet);
    if (now == 0) now = rte_get_tsc_cycles();
    if (subport == local_subport_ || references[i] != 1 || drop_is_free(subport, packet->pkt_len, now)) {
      rte_pktmbuf_free(packet);
      continue;
    }
    rte_sched_port_pkt_write(port_, packet, subport, pipe_of(packet), kChargeTc, 0, RTE_COLOR_GREEN);
    charge_subports[charge_count] = subport;
    charge_bytes[charge_count] = packet->pkt_len;  // librte_sched frees a charge it drops
    charges[charge_count++] = packet;
  }
  for (uint32_t i = 0; i < charge_count; ++i) {
    // One at a time, to know which were taken; charges are few (what AQM drops).
    if (rte_sched_port_enqueue(port_, charges + i, 1) != 1) continue;
    charged_[charge_subports[i]].add(charge_bytes[i]);
    ++backlog_;
  }
  return queued;
}

SchedPort::QueueReading SchedPort::read_class(uint32_t subport, uint32_t pipe, TrafficClass tc) {
  QueueReading reading;
  uint32_t sched_tc, first_queue;
  queue_of(tc, 0, &sched_tc, &first_queue);
  uint32_t queues = tc == TrafficClass::kBulk ? kBulkQueues : 1;
  uint32_t pipe_base = (subport << (pipes_log2_ + 4)) | (pipe << 4);
  for (uint32_t q = 0; q < queues; ++q) {
    uint32_t offset = sched_tc == RTE_SCHED_TRAFFIC_CLASS_BE ? RTE_SCHED_TRAFFIC_CLASS_BE + first_queue + q : sched_tc;
    rte_sched_queue_stats stats{};
    uint16_t length = 0;
    if (rte_sched_queue_read_stats(port_, pipe_base | offset, &stats, &length) != 0) continue;
    reading.queued += length;
    reading.dropped += stats.n_pkts_dropped;
  }
  return reading;
}

}  // namespace fairgate
