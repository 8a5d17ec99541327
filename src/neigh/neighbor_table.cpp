#include "neigh/neighbor_table.h"

#include "core/ipv4.h"

#include <bit>

namespace fairgate {

NeighborSnapshot::NeighborSnapshot(const std::vector<Entry>& entries) {
  // Load factor at most 1/2 keeps probe sequences short.
  std::size_t capacity = std::bit_ceil(std::max<std::size_t>(16, entries.size() * 2));
  slots_.assign(capacity, Slot{});
  mask_ = static_cast<uint32_t>(capacity - 1);
  for (const auto& entry : entries) {
    uint32_t slot = hash(entry.port, entry.ip) & mask_;
    while (slots_[slot].used) slot = (slot + 1) & mask_;
    slots_[slot] = Slot{entry.ip, entry.port, 1, entry.mac};
  }
  size_ = entries.size();
}

std::string_view neighbor_state_name(NeighborTable::State state) {
  switch (state) {
    case NeighborTable::State::kIncomplete: return "incomplete";
    case NeighborTable::State::kReachable: return "reachable";
    case NeighborTable::State::kProbe: return "probe";
    case NeighborTable::State::kStatic: return "static";
  }
  return "unknown";
}

NeighborTable::~NeighborTable() {
  std::vector<rte_mbuf*> released;
  clear(released);
  for (auto* mbuf : released) rte_pktmbuf_free(mbuf);
}

NeighborTable::Entry* NeighborTable::create_incomplete(uint16_t port, uint32_t ip, uint64_t now_ms,
                                                        std::optional<Request>* request) {
  if (entries_.size() >= config_.max_entries) return nullptr;
  Entry& entry = entries_[key(port, ip)];
  entry.state = State::kIncomplete;
  entry.probes_sent = 1;
  entry.next_probe_ms = now_ms + config_.retry_ms;
  if (request) *request = Request{port, ip};
  return &entry;
}

NeighborTable::HoldResult NeighborTable::hold(uint16_t port, uint32_t ip, rte_mbuf* packet, uint64_t now_ms,
                                              rte_ether_addr* mac, std::optional<Request>* request) {
  auto it = entries_.find(key(port, ip));
  Entry* entry = nullptr;
  if (it == entries_.end()) {
    entry = create_incomplete(port, ip, now_ms, request);
    if (entry == nullptr) return HoldResult::kTableFull;
  } else {
    entry = &it->second;
    if (entry->state != State::kIncomplete) {
      *mac = entry->mac;
      return HoldResult::kResolved;
    }
  }
  if (entry->held.size() >= config_.hold_packets) return HoldResult::kHoldFull;
  entry->held.push_back(packet);
  return HoldResult::kHeld;
}

void NeighborTable::resolve(uint16_t port, uint32_t ip, uint64_t now_ms, std::optional<Request>* request) {
  if (entries_.count(key(port, ip)) == 0) create_incomplete(port, ip, now_ms, request);
}

void NeighborTable::learn(uint16_t port, uint32_t ip, const rte_ether_addr& mac, bool create, uint64_t now_ms,
                          std::vector<rte_mbuf*>& released) {
  auto it = entries_.find(key(port, ip));
  if (it == entries_.end()) {
    if (!create || entries_.size() >= config_.max_entries) return;
    it = entries_.emplace(key(port, ip), Entry{}).first;
  }
  Entry& entry = it->second;
  if (entry.state == State::kStatic) return;
  if (entry.state == State::kIncomplete || !rte_is_same_ether_addr(&entry.mac, &mac)) changed_ = true;
  entry.state = State::kReachable;
  entry.mac = mac;
  entry.expires_ms = now_ms + uint64_t{config_.reachable_s} * 1000;
  entry.probes_sent = 0;
  released.insert(released.end(), entry.held.begin(), entry.held.end());
  entry.held.clear();
}

void NeighborTable::tick(uint64_t now_ms, std::vector<Request>& requests, std::vector<rte_mbuf*>& unreachable) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& entry = it->second;
    auto port = static_cast<uint16_t>(it->first >> 32);
    auto ip = static_cast<uint32_t>(it->first);
    if (entry.state == State::kReachable && now_ms >= entry.expires_ms) {
      // Keep forwarding with the old MAC while re-confirming it, like Linux's PROBE state.
      entry.state = State::kProbe;
      entry.probes_sent = 0;
      entry.next_probe_ms = now_ms;
    }
    if ((entry.state == State::kIncomplete || entry.state == State::kProbe) && now_ms >= entry.next_probe_ms) {
      if (entry.probes_sent >= config_.retries) {
        if (entry.state == State::kProbe) changed_ = true;
        unreachable.insert(unreachable.end(), entry.held.begin(), entry.held.end());
        it = entries_.erase(it);
        continue;
      }
      ++entry.probes_sent;
      entry.next_probe_ms = now_ms + config_.retry_ms;
      requests.push_back({port, ip});
    }
    ++it;
  }
}

void NeighborTable::add_static(uint16_t port, uint32_t ip, const rte_ether_addr& mac) {
  Entry& entry = entries_[key(port, ip)];
  entry.state = State::kStatic;
  entry.mac = mac;
  changed_ = true;
}

std::unique_ptr<NeighborSnapshot> NeighborTable::snapshot() {
  std::vector<NeighborSnapshot::Entry> resolved;
  resolved.reserve(entries_.size());
  for (const auto& [k, entry] : entries_)
    if (entry.state != State::kIncomplete)
      resolved.push_back({static_cast<uint16_t>(k >> 32), static_cast<uint32_t>(k), entry.mac});
  changed_ = false;
  return std::make_unique<NeighborSnapshot>(resolved);
}

const NeighborTable::Entry* NeighborTable::find(uint16_t port, uint32_t ip) const {
  auto it = entries_.find(key(port, ip));
  return it == entries_.end() ? nullptr : &it->second;
}

nlohmann::ordered_json NeighborTable::to_json(const std::vector<std::string>& port_names, uint64_t now_ms,
                                      int port_filter) const {
  auto list = nlohmann::ordered_json::array();
  for (const auto& [k, entry] : entries_) {
    auto port = static_cast<uint16_t>(k >> 32);
    if (port_filter >= 0 && port != port_filter) continue;
    nlohmann::ordered_json row;
    row["port"] = port < port_names.size() ? port_names[port] : std::to_string(port);
    row["address"] = format_ipv4(static_cast<uint32_t>(k));
    row["mac"] = entry.state == State::kIncomplete ? "" : format_mac(entry.mac.addr_bytes);
    row["state"] = neighbor_state_name(entry.state);
    row["expires_s"] = entry.state == State::kReachable && entry.expires_ms > now_ms
                           ? static_cast<double>(entry.expires_ms - now_ms) / 1000.0
                           : 0.0;
    row["held_packets"] = entry.held.size();
    list.push_back(std::move(row));
  }
  return list;
}

void NeighborTable::clear(std::vector<rte_mbuf*>& released) {
  for (auto& [k, entry] : entries_) {
    released.insert(released.end(), entry.held.begin(), entry.held.end());
    entry.held.clear();
  }
  entries_.clear();
  changed_ = true;
}

}  // namespace fairgate
