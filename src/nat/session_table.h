// A worker's NAT sessions. Owned and used by exactly one worker, so nothing here is
// synchronised. Times are whole seconds from the worker's clock (tests pass their own).
//
// A session records a flow as its initiator sent it (`original`) and as it leaves the gateway
// (`translated`). Packets in the original direction are found by `original`, replies by
// `translated.reversed()`; each direction has a precomputed checksum adjustment. Outbound NAT
// also holds an endpoint-independent mapping (inside address:port -> external port), shared
// by all sessions of that inside endpoint, so every destination sees the same external port.
#pragma once

#include "classify/p2p_inspector.h"
#include "config/config.h"
#include "core/dpdk_array.h"
#include "flow/flow_accounting.h"
#include "nat/flow_index.h"
#include "nat/flow_key.h"

#include <rte_hash.h>

#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace fairgate {

enum class NatRefusal : uint8_t {
  kNone,
  kTableFull,        // no free session, none expired or transitory to reclaim
  kQuota,            // the subscriber has sessions_per_subscriber sessions already
  kPortsExhausted,   // no free external port in this worker's block
};

struct NatCounters {
  uint64_t created = 0, expired = 0, reclaimed = 0;
  uint64_t refused_table_full = 0, refused_quota = 0, refused_ports = 0;
};

class SessionTable {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr uint8_t kMaxWanIds = 8;  // WAN ids are port indices, below kMaxPorts
  static constexpr uint32_t kDefaultMaxSubscribers = 65536;

  enum Kind : uint8_t { kSnat, kForward, kHairpin };
  enum TcpFlags : uint8_t { kSynOut = 1, kSynIn = 2, kFinOut = 4, kFinIn = 8, kRst = 16 };

  // One cache line: the fast path reads nothing else of a session.
  struct alignas(64) Session {
    FlowKey original;      // as the initiator sent it
    FlowKey translated;    // as it leaves the gateway
    uint64_t bytes_original = 0, bytes_reply = 0;
    uint32_t last_seen_s = 0;       // next free slot while free
    uint16_t l3_delta[2] = {0, 0};  // [0] original direction, [1] reply: header checksum adjustment
    uint16_t l4_delta[2] = {0, 0};  // TCP/UDP pseudo-header + ports, or ICMP identifier
    uint8_t kind = kSnat;
    uint8_t tcp_flags = 0;
    uint8_t wan = 0;               // WAN port index the session leaves by
    uint8_t in_use = 0;

    // The inside host (host order), for the quota and the listing: a port forward's server,
    // else the initiator.
    uint32_t subscriber() const { return kind == kForward ? translated.dst : original.src; }
    // Whether the session holds an endpoint-independent mapping, the one of its original
    // source endpoint on its WAN.
    bool holds_mapping() const { return kind != kForward; }
  };
  static_assert(sizeof(Session) == 64);

  // `worker` of `workers`: this table allocates external ports p with p % workers == worker.
  // `wan_ids`: WAN ids (port indices) are below it; it sizes the external port table.
  // `max_subscribers`: inside hosts whose sessions are counted for the quota; a new host
  // beyond it is refused like one over its quota.
  SessionTable(const NatConfig& config, uint32_t capacity, uint16_t worker, uint16_t workers, uint32_t socket,
               uint8_t wan_ids = kMaxWanIds, uint32_t max_subscribers = kDefaultMaxSubscribers);
  ~SessionTable();
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;

  // Fast path: the session of a packet and whether it travels in the reply direction.
  uint32_t lookup(const FlowKey& key, bool* reply) const;
  // Bulk version for a burst: indices (kNone on miss) and directions for `count` keys.
  void lookup_bulk(const FlowKey* const* keys, uint32_t count, uint32_t* sessions, bool* reply) const;

  // Slow path: a session for a new outbound flow from `original` via WAN `wan` whose address
  // is `wan_address`. Allocates or reuses the inside endpoint's mapping. For hairpinning,
  // `destination` rewrites the destination too (else it stays).
  uint32_t create_outbound(const FlowKey& original, uint8_t wan, uint32_t wan_address, uint32_t now_s,
                           NatRefusal* refusal, const FlowKey* hairpin_destination = nullptr);
  // Slow path: an inbound flow to a port forward: `original` as received on the WAN, going
  // to `internal`:`internal_port`.
  uint32_t create_forward(const FlowKey& original, uint8_t wan, uint32_t internal, uint16_t internal_port,
                          uint32_t now_s, NatRefusal* refusal);
  // Endpoint-independent filtering: the mapping that owns external (proto, port) on `wan`,
  // and a new session for it to the remote that sent `inbound`.
  uint32_t create_from_mapping(const FlowKey& inbound, uint8_t wan, uint32_t now_s, NatRefusal* refusal);
  bool mapped(uint8_t proto, uint8_t wan, uint16_t external_port) const;
  // Tells flow accounting (NAT events) of a refused new flow that would have used `wan_address`.
  void report_refusal(NatRefusal refusal, const FlowKey& original, uint32_t wan_address);
  // Keeps an external port out of (or gives it back to) dynamic allocation: port forwards.
  void reserve_port(uint8_t proto, uint8_t wan, uint16_t port, bool reserved);

  // Per packet: refreshes the session, counts bytes and follows TCP flags (th_flags).
  void touch(uint32_t index, bool reply, uint32_t bytes, uint8_t tcp_flags, uint32_t now_s) {
    Session& s = sessions_[index];
    s.last_seen_s = now_s;
    (reply ? s.bytes_reply : s.bytes_original) += bytes;
    if (s.original.proto == 6 && (tcp_flags & 0x07)) track_tcp(s, reply, tcp_flags);  // SYN, FIN, RST
  }

  // Amortised expiry: examines up to `budget` sessions from a rotating cursor. `now_ms`: the
  // same moment on flow accounting's clock (FlowAccounting::now_ms), for the timeouts of the
  // flows that stay; unused without flow accounting.
  void expire(uint32_t now_s, uint32_t budget, uint64_t now_ms);
  // Removes every session (shutdown, tests).
  void clear();
  // Failover: removes the sessions that leave by WAN `wan` (their peers cannot reach them
  // through another WAN's address anyway) and returns how many; the others stay untouched.
  uint32_t remove_wan(uint8_t wan);
  uint32_t sessions_on_wan(uint8_t wan) const;

  const Session& session(uint32_t index) const { return sessions_[index]; }
  // Flow accounting (may be null): told of every session created and ended, of refusals, and
  // asked by the expiry scan to report long-lived flows. The table does not own it.
  void set_flow_accounting(FlowAccounting* flows) { flow_accounting_ = flows; }
  FlowAccounting* flow_accounting() const { return flow_accounting_; }
  // What flow accounting needs to know of a session.
  FlowAccounting::SessionView flow_view(uint32_t index) const {
    const Session& s = sessions_[index];
    return {s.original, s.translated, s.subscriber(), s.wan, s.kind, static_cast<uint8_t>(p2p_[index].protocol),
            closed(s)};
  }
  // A TCP session that saw both FINs or a RST.
  static bool closed(const Session& s) {
    return s.original.proto == 6 && ((s.tcp_flags & (kFinOut | kFinIn)) == (kFinOut | kFinIn) || (s.tcp_flags & kRst));
  }
  // The session's P2P inspection state and verdict (CONNMARK's job), zero when it is created.
  // Kept beside the sessions, not in them: the record is one cache line and full.
  P2pFlowState& p2p(uint32_t index) { return p2p_[index]; }
  const P2pFlowState& p2p(uint32_t index) const { return p2p_[index]; }
  uint32_t size() const { return size_; }
  uint32_t capacity() const { return capacity_; }
  uint32_t timeout_of(const Session& s) const;
  bool transitory(const Session& s) const;
  const NatCounters& counters() const { return counters_; }
  uint32_t subscriber_sessions(uint32_t address) const;
  // Bytes of memory per session slot: session record, hash entries, mapping.
  std::size_t bytes_per_session() const;

  // Rows for `nat-sessions`: filter by subscriber (0 = any), proto (0 = any), port (0 = any).
  void list(uint32_t subscriber, uint8_t proto, uint16_t port, uint32_t now_s, std::size_t skip, std::size_t limit,
            std::size_t* matched, nlohmann::ordered_json& rows) const;

 private:
  struct Mapping {
    uint32_t inside = 0;
    uint16_t inside_port = 0, external_port = 0;
    uint32_t sessions = 0;  // sessions holding it; next free slot while free
    uint8_t proto = 0, wan = 0, in_use = 0;
  };
  struct MappingKey {  // 8 bytes, hashed as such
    uint32_t inside;
    uint16_t port;
    uint8_t proto, wan;
  };

  uint32_t allocate_session(uint32_t now_s, NatRefusal* refusal);
  uint32_t finish(uint32_t index, const FlowKey& original, const FlowKey& translated, uint8_t kind, uint8_t wan,
                  uint32_t mapping, uint32_t now_s, NatRefusal* refusal);
  // Whether flow index reference `ref` (session index * 2 + reply) is the session of `key`.
  bool holds(uint32_t ref, const FlowKey& key) const {
    const Session& s = sessions_[ref >> 1];
    return (ref & 1) ? s.translated.reversed() == key : s.original == key;
  }
  uint32_t find_mapping(const Session& s) const;
  void release(uint32_t index, FlowEndReason reason);

  uint32_t find_or_create_mapping(const FlowKey& original, uint8_t wan, NatRefusal* refusal);
  void release_mapping(uint32_t mapping);
  bool quota_ok(uint32_t subscriber) const;
  void count_subscriber(uint32_t subscriber, int delta);
  void track_tcp(Session& s, bool reply, uint8_t flags);
  uint32_t& port_slot(uint8_t proto, uint8_t wan, uint16_t port);
  uint32_t port_slot_value(uint8_t proto, uint8_t wan, uint16_t port) const;

  // Free slots as a stack threaded through a field of the free records themselves, so the
  // table needs no separate array for them (memory per session is a goal of its own).
  template <typename T, uint32_t T::*Next>
  class FreeList {
   public:
    void push(DpdkArray<T>& items, uint32_t index) {
      items[index].*Next = head_;
      head_ = index;
      ++size_;
    }
    uint32_t pop(DpdkArray<T>& items) {
      uint32_t index = head_;
      head_ = items[index].*Next;
      --size_;
      return index;
    }
    bool empty() const { return size_ == 0; }

   private:
    uint32_t head_ = kNone;
    uint32_t size_ = 0;
  };

  NatConfig config_;
  uint32_t capacity_;
  uint16_t worker_, workers_;
  uint8_t wan_ids_;
  // In DPDK memory: hugepages spare the fast path a TLB miss per session record.
  DpdkArray<Session> sessions_;
  FreeList<Session, &Session::last_seen_s> free_sessions_;
  DpdkArray<P2pFlowState> p2p_;  // by session index
  DpdkArray<Mapping> mappings_;
  FreeList<Mapping, &Mapping::sessions> free_mappings_;
  // External port -> mapping index + 1 (0 = free, kReserved = port forward), per protocol
  // class (TCP, UDP, ICMP) and WAN.
  static constexpr uint32_t kReserved = UINT32_MAX;
  std::vector<uint32_t> port_owner_;
  std::array<uint32_t, 3> port_cursor_{};
  std::unique_ptr<FlowIndex> flows_;  // FlowKey -> session index * 2 + reply
  rte_hash* mapping_hash_ = nullptr; // MappingKey -> mapping index
  rte_hash* subscribers_ = nullptr;  // inside address -> slot in subscriber_counts_
  std::vector<uint32_t> subscriber_counts_;
  std::vector<uint32_t> free_subscriber_slots_;
  uint32_t size_ = 0;
  uint32_t expire_cursor_ = 0;
  std::size_t dpdk_bytes_ = 0;  // what the arrays, flow index and hashes took from the DPDK heap
  NatCounters counters_;
  FlowAccounting* flow_accounting_ = nullptr;
};

// Which worker owns the NAT state of an inside host.
inline uint16_t nat_owner_of_address(uint32_t address, uint16_t workers) {
  // Scaling a 32-bit hash to [0, workers) by multiplication: no division per packet.
  return static_cast<uint16_t>((uint64_t{address * 2654435761u} * workers) >> 32);
}
// Which worker allocated an external port.
inline uint16_t nat_owner_of_port(uint16_t port, uint16_t workers) { return static_cast<uint16_t>(port % workers); }

}  // namespace fairgate
