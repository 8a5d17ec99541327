// IPv4 neighbours (ARP). The management thread owns NeighborTable: it learns from ARP, holds a
// bounded number of packets per unresolved neighbour, retries and expires entries. Workers see
// only NeighborSnapshot, an immutable hash of the resolved entries published through RCU.
#pragma once

#include "config/config.h"

#include <rte_ether.h>
#include <rte_mbuf.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>
#include <vector>

namespace fairgate {

class NeighborSnapshot {
 public:
  struct Entry {
    uint16_t port;    // port index
    uint32_t ip;      // host order
    rte_ether_addr mac;
  };
  explicit NeighborSnapshot(const std::vector<Entry>& entries);

  // The neighbour's MAC, or nullptr when it is not resolved. Wait-free.
  const rte_ether_addr* lookup(uint16_t port, uint32_t ip) const {
    uint32_t slot = hash(port, ip) & mask_;
    while (true) {
      const Slot& s = slots_[slot];
      if (!s.used) return nullptr;
      if (s.ip == ip && s.port == port) return &s.mac;
      slot = (slot + 1) & mask_;
    }
  }
  std::size_t size() const { return size_; }

 private:
  struct Slot {
    uint32_t ip;
    uint16_t port;
    uint8_t used;
    rte_ether_addr mac;
  };
  static uint32_t hash(uint16_t port, uint32_t ip) { return (ip ^ (uint32_t{port} << 24)) * 0x9e3779b1u >> 7; }
  std::vector<Slot> slots_;
  uint32_t mask_ = 0;
  std::size_t size_ = 0;
};

class NeighborTable {
 public:
  enum class State : uint8_t {
    kIncomplete,  // ARP requests sent, no answer yet; packets are held
    kReachable,   // confirmed within reachable_s
    kProbe,       // lifetime over: still used, re-confirming with ARP requests
    kStatic,      // never expires (unit tests and future static entries)
  };

  struct Request {  // an ARP request the caller must send
    uint16_t port;
    uint32_t ip;
  };

  struct Entry {
    State state = State::kIncomplete;
    rte_ether_addr mac{};
    uint64_t expires_ms = 0;     // kReachable: when it turns to kProbe
    uint64_t next_probe_ms = 0;  // kIncomplete/kProbe: when to send the next request
    uint32_t probes_sent = 0;
    std::deque<rte_mbuf*> held;  // packets waiting for the MAC, oldest first
  };

  enum class HoldResult {
    kHeld,          // kept; send `request` if one was returned
    kResolved,      // already resolved: the caller sends it with `mac`
    kHoldFull,      // dropped: too many packets for this neighbour already
    kTableFull,     // dropped: no room for a new neighbour
  };

  explicit NeighborTable(const NeighborConfig& config) : config_(config) {}
  ~NeighborTable();
  NeighborTable(const NeighborTable&) = delete;
  NeighborTable& operator=(const NeighborTable&) = delete;

  // A packet for (port, ip). On kHeld the table owns the mbuf; on kHoldFull/kTableFull the
  // caller still does (and drops it). `request` is set when a first ARP request is due.
  HoldResult hold(uint16_t port, uint32_t ip, rte_mbuf* packet, uint64_t now_ms, rte_ether_addr* mac,
                  std::optional<Request>* request);

  // An ARP message from (port, ip, mac). `create` when the message was addressed to us (a
  // request for our address or a reply): only then may a new entry appear, so unsolicited
  // traffic cannot fill the table. Packets that were waiting are appended to `released`.
  void learn(uint16_t port, uint32_t ip, const rte_ether_addr& mac, bool create, uint64_t now_ms,
             std::vector<rte_mbuf*>& released);

  // Timers: requests to send; entries that never answered are removed and their held packets
  // appended to `unreachable` (the caller drops them and answers their senders).
  void tick(uint64_t now_ms, std::vector<Request>& requests, std::vector<rte_mbuf*>& unreachable);

  // Ensures an entry exists and is being resolved (WAN gateways at start), without a packet.
  void resolve(uint16_t port, uint32_t ip, uint64_t now_ms, std::optional<Request>* request);

  void add_static(uint16_t port, uint32_t ip, const rte_ether_addr& mac);

  // True when the resolved set changed since the last snapshot.
  bool changed() const { return changed_; }
  std::unique_ptr<NeighborSnapshot> snapshot();

  std::size_t size() const { return entries_.size(); }
  const Entry* find(uint16_t port, uint32_t ip) const;
  nlohmann::ordered_json to_json(const std::vector<std::string>& port_names, uint64_t now_ms, int port_filter) const;

  // Releases every held packet (shutdown).
  void clear(std::vector<rte_mbuf*>& released);

 private:
  static uint64_t key(uint16_t port, uint32_t ip) { return (uint64_t{port} << 32) | ip; }
  Entry* create_incomplete(uint16_t port, uint32_t ip, uint64_t now_ms, std::optional<Request>* request);
  NeighborConfig config_;
  std::unordered_map<uint64_t, Entry> entries_;
  bool changed_ = true;
};

std::string_view neighbor_state_name(NeighborTable::State state);

}  // namespace fairgate
