// One egress port's hierarchical scheduler (librte_sched), built from its hierarchy node: the
// internet subports first (one per WAN on a LAN egress, one on a WAN egress), each with a pipe
// per subscriber, then "local" with one pipe for the gateway's own traffic. Pipes are capped at
// their ceil by their token bucket and share what the subport leaves in proportion to their
// guarantees (best-effort oversubscription weights).
//
// fairgate's classes on librte_sched's traffic classes, strict priority between them:
//   interactive -> TC 0 (at most kInteractiveShare of the pipe, so the lower classes keep some)
//   normal      -> TC 1 (at most kNormalShare of the pipe)
//   bulk        -> best-effort TC, queues 0..2 (flows hashed onto them, weight kBulkWeight each)
//   p2p         -> best-effort TC, queue 3 (weight kP2pWeight: a small but guaranteed share)
// Every queue has active queue management (PIE or RED) so the standing queue stays short.
//
// A download port can count what it drops against its links (Options::count_drops): a packet
// dropped in an internet subport is queued again as a "charge" in its own pipe's charge class
// (librte_sched's traffic class 2: below normal, above bulk), where it uses the pipe's and the
// link's rates like a packet sent, and is freed, not sent, when it leaves. The subscriber whose
// traffic was dropped pays, before its own bulk traffic. Only drops that would take what arrives
// (what leaves, charges included, plus what is dropped) past the subport's rate plus
// Options::arrival_room_percent are charged: below that the modem has room for them (a link
// that is not full, or the few drops of loss-based TCP, whose charging would only cost goodput).
//
// Single-writer: one lcore enqueues, dequeues and reconfigures (librte_sched's rule). Rates are
// bytes per second inside librte_sched; this class takes the hierarchy's bits per second.
#pragma once

#include "config/config.h"
#include "core/counters.h"
#include "qos/hierarchy.h"

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_sched.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

namespace fairgate {

class SchedPort {
 public:
  // The first internet subport: an upload port's only one.
  static constexpr uint32_t kInternetSubport = 0;
  static constexpr uint16_t kQueuePackets = 64;   // per queue
  // Traffic-class credits: librte_sched sets (not adds) a class's credits every period, and a
  // frame leaves only whole, so a period must buy many frames or the class never reaches its
  // rate (a period short of one frame would stall it). The token buckets keep the pace smooth.
  static constexpr uint32_t kTcPeriodMs = 10;        // the shortest period
  static constexpr uint32_t kMaxTcPeriodMs = 2000;
  static constexpr uint32_t kFramesPerTcPeriod = 64;
  static constexpr uint32_t kBucketMs = 2;        // token buckets hold this long at their rate
  static constexpr uint32_t kInteractiveShare = 50, kNormalShare = 90;  // percent of a pipe's ceil
  static constexpr uint8_t kBulkWeight = 8, kP2pWeight = 1;
  static constexpr uint32_t kBulkQueues = 3;
  // The port's own pacing rate: never the bottleneck, the subports shape (bits/s).
  static constexpr uint64_t kMinPortRateBps = 10'000'000'000;

  struct Options {
    uint16_t mtu = 1500;            // the largest IPv4 packet on the port (bytes)
    int socket = 0;
    uint32_t pipe_capacity = 0;     // pipes the internet subport can ever hold (rounded up to 2^n)
    QosConfig::Aqm aqm = QosConfig::Aqm::kPie;
    bool count_drops = false;       // drops in the internet subports use their rates (see above)
    double arrival_room_percent = 0;  // of a subport's rate: arrivals above it are charged
  };

  // Throws std::runtime_error with librte_sched's complaint when the hierarchy cannot be built.
  SchedPort(const PortNode& node, const Options& options);
  ~SchedPort();
  SchedPort(const SchedPort&) = delete;
  SchedPort& operator=(const SchedPort&) = delete;

  // Brings the port to `node`'s rates and pipes: new subport rates, pipes added or changed.
  // Queued packets stay; pipes no longer in `node` keep their configuration until reused.
  // Throws std::runtime_error (nothing changed for the failing element) when librte_sched
  // refuses, or when `node` has other subports than the port was built with.
  void apply(const PortNode& node);

  // The internet subport of a packet that arrived on port `rx_port`: on a LAN egress the one
  // shaped to that WAN's download, else the first.
  uint32_t internet_subport(uint16_t rx_port) const {
    return rx_port < subport_by_rx_port_.size() ? subport_by_rx_port_[rx_port] : kInternetSubport;
  }
  uint32_t local_subport() const { return local_subport_; }
  uint32_t subport_count() const { return local_subport_ + 1; }

  // What a frame of `frame_bytes` (Ethernet header to the end of the payload, no FCS) costs on a
  // link with this framing: plus the overhead, at least the mpu, in whole ATM cells of 48
  // payload bytes sent as 53, or PTM's 65 bytes for every 64.
  static uint32_t wire_bytes(const LinkFraming& framing, uint32_t frame_bytes) {
    int64_t bytes = std::max<int64_t>(int64_t{frame_bytes} + framing.overhead, framing.mpu);
    if (bytes < 1) bytes = 1;
    switch (framing.cells) {
      case LinkFraming::Cells::kAtm: return static_cast<uint32_t>((bytes + 47) / 48 * 53);
      case LinkFraming::Cells::kPtm: return static_cast<uint32_t>((bytes * 65 + 63) / 64);
      case LinkFraming::Cells::kNone: break;
    }
    return static_cast<uint32_t>(bytes);
  }
  // librte_sched charges a packet its pkt_len: the scheduler's owner sets pkt_len to the wire
  // bytes before enqueue and restores the frame length after dequeue. Each subport has the
  // framing of the link it is shaped to.
  uint32_t wire_bytes(uint32_t subport, uint32_t frame_bytes) const {
    return wire_bytes(subports_[subport].framing, frame_bytes);
  }

  // librte_sched's traffic class and queue for a class and a flow's hash.
  static void queue_of(TrafficClass tc, uint32_t flow_hash, uint32_t* sched_tc, uint32_t* queue);
  // The class of a packet tagged by this port (read back from the mbuf's sched field).
  static TrafficClass class_of(const rte_mbuf* packet) {
    uint32_t queue = rte_mbuf_sched_queue_get(packet) & (RTE_SCHED_QUEUES_PER_PIPE - 1);
    if (queue < RTE_SCHED_TRAFFIC_CLASS_BE) return queue == 0 ? TrafficClass::kInteractive : TrafficClass::kNormal;
    return queue - RTE_SCHED_TRAFFIC_CLASS_BE < kBulkQueues ? TrafficClass::kBulk : TrafficClass::kP2p;
  }
  uint32_t pipe_of(const rte_mbuf* packet) const {
    return (rte_mbuf_sched_queue_get(packet) >> 4) & (pipes_per_subport_ - 1);
  }
  uint32_t subport_of(const rte_mbuf* packet) const { return rte_mbuf_sched_queue_get(packet) >> (pipes_log2_ + 4); }

  // Tags a packet with its place in the hierarchy (written into the mbuf's sched field).
  void tag(rte_mbuf* packet, uint32_t subport, uint32_t pipe, TrafficClass tc, uint32_t flow_hash) const {
    uint32_t sched_tc, queue;
    queue_of(tc, flow_hash, &sched_tc, &queue);
    rte_sched_port_pkt_write(port_, packet, subport, pipe, sched_tc, queue, RTE_COLOR_GREEN);
  }
  // Packets tagged before; those that do not fit their queue or that AQM drops are freed by
  // librte_sched and show in the queue statistics (with count_drops those of the internet
  // subports are queued as charges instead; a charge that does not fit is freed, unpaid).
  // Returns how many packets were queued.
  uint32_t enqueue(rte_mbuf** packets, uint32_t count);
  // Up to `count` packets that the rates allow now (charges that left are freed, not returned).
  uint32_t dequeue(rte_mbuf** packets, uint32_t count);
  // Packets and charges inside the scheduler now: while there are any, the owner dequeues.
  uint64_t backlog() const { return backlog_; }

  bool counts_drops() const { return count_drops_; }
  // Dropped bytes (wire bytes) queued as charges since the port was built, by internet subport;
  // any thread may read it.
  uint64_t charged_bytes(uint32_t subport) const { return charged_.at(subport).get(); }
  // librte_sched's traffic class (and queue in the pipe) of charges.
  static constexpr uint32_t kChargeTc = 2;
  static constexpr uint32_t kArrivalWindowMs = 50;  // room for arrivals left unused is kept this long

  // Packets queued now and dropped since the last reading (then cleared) for one class of one
  // pipe of one subport. Owner lcore only.
  struct QueueReading {
    uint64_t queued = 0, dropped = 0;
  };
  QueueReading read_class(uint32_t subport, uint32_t pipe, TrafficClass tc);

  uint32_t pipe_capacity() const { return pipes_per_subport_; }
  // Whether `pipe` is configured in every internet subport.
  bool pipe_configured(uint32_t pipe) const {
    return pipe < pipes_per_subport_ && std::all_of(subports_.begin(), subports_.end() - 1, [pipe](const Subport& s) {
             return s.pipe_profile[pipe] >= 0;
           });
  }
  uint64_t subport_rate_bps(uint32_t subport) const { return subports_.at(subport).rate_bps; }
  rte_sched_port* raw() const { return port_; }

 private:
  using PipeKey = std::tuple<uint64_t, uint64_t, uint8_t>;  // ceil bytes/s, bucket bytes, weight
  uint32_t subport_profile(uint64_t rate_bps);
  uint32_t pipe_profile(uint32_t subport, const PipeKey& key);
  void set_subport_rate(uint32_t subport, uint64_t rate_bps);
  void set_pipe(uint32_t subport, uint32_t pipe, const PipeKey& key);
  PipeKey pipe_key(uint64_t ceil_bps, uint64_t rate_bps, uint64_t smallest_rate_bps) const;
  // The credit period (ms) for a class of `rate_bytes_per_s`: kFramesPerTcPeriod full frames
  // (of the port's costliest framing).
  uint64_t tc_period_ms(uint64_t rate_bytes_per_s) const;
  rte_sched_subport_profile_params subport_params(uint64_t rate_bytes_per_s) const;
  // Frees every queued packet before the port goes (see the destructor).
  void release_queued();
  uint32_t enqueue_counting_drops(rte_mbuf** packets, uint32_t count);
  static bool is_charge(const rte_mbuf* packet) {
    return (rte_mbuf_sched_queue_get(packet) & (RTE_SCHED_QUEUES_PER_PIPE - 1)) == kChargeTc;
  }
  static constexpr uint32_t kEnqueueChunk = 64;  // packets counted at a time
  // Whether a drop of `bytes` in `subport` now fits the room arrivals have (and takes it).
  bool drop_is_free(uint32_t subport, uint32_t bytes, uint64_t now_tsc);

  struct Subport {
    LinkFraming framing;
    uint64_t rate_bps = 0;
    std::map<PipeKey, uint32_t> pipe_profiles;  // the profiles added to it -> profile id
    std::vector<int32_t> pipe_profile;          // pipe -> profile, -1 none
    // count_drops: room for arrivals (bytes; grows at the allowed arrival rate, shrinks by what
    // leaves and by free drops), and when it last grew.
    double arrival_room_bytes = 0;
    uint64_t arrival_room_at_tsc = 0;
  };

  rte_sched_port* port_ = nullptr;
  uint16_t mtu_;
  uint32_t max_frame_wire_bytes_ = 0;  // a full frame on the costliest subport's framing
  uint32_t pipes_per_subport_ = 0, pipes_log2_ = 0;
  std::map<uint64_t, uint32_t> subport_profiles_;  // rate bits/s -> profile id
  std::vector<Subport> subports_;                  // the internet ones, then local
  uint32_t local_subport_ = 0;
  std::vector<uint32_t> subport_by_rx_port_;       // port index -> internet subport
  uint64_t port_rate_bps_ = 0;
  bool count_drops_ = false;
  double arrival_room_percent_ = 0;
  std::vector<RelaxedCounter> charged_;  // by subport
  uint64_t backlog_ = 0;
};

}  // namespace fairgate
