#include "nat/session_table.h"

#include "core/ipv4.h"
#include "nat/nat_rewrite.h"

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>

#include <atomic>
#include <stdexcept>

namespace fairgate {
namespace {

constexpr uint32_t kReclaimScan = 64;  // sessions examined for reclaim when the table is full
constexpr uint8_t kTcp = 6, kUdp = 17, kIcmp = 1;

std::atomic<uint32_t> table_serial{0};  // distinct rte_hash names per table

rte_hash* make_hash(const std::string& what, uint32_t entries, uint32_t key_len, uint32_t socket) {
  std::string name = what + std::to_string(table_serial.fetch_add(1));
  rte_hash_parameters params{};
  params.name = name.c_str();
  params.entries = std::max<uint32_t>(entries, 16);
  params.key_len = key_len;
  params.hash_func = rte_hash_crc;
  params.socket_id = static_cast<int>(socket);
  // Extendable buckets: every one of `entries` keys fits, whatever the collisions.
  params.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
  rte_hash* hash = rte_hash_create(&params);
  if (hash == nullptr)
    throw std::runtime_error("cannot create NAT hash " + name + " of " + std::to_string(entries) +
                             " entries: " + rte_strerror(rte_errno) + " (raise eal.memory_mb or lower nat.sessions)");
  return hash;
}

unsigned proto_class(uint8_t proto) { return proto == kTcp ? 0 : proto == kUdp ? 1 : 2; }

std::string endpoint(uint32_t address, uint16_t port) { return format_ipv4(address) + ":" + std::to_string(port); }

const char* proto_name(uint8_t proto) { return proto == kTcp ? "tcp" : proto == kUdp ? "udp" : "icmp"; }

}  // namespace

SessionTable::SessionTable(const NatConfig& config, uint32_t capacity, uint16_t worker, uint16_t workers,
                           uint32_t socket, uint8_t wan_ids, uint32_t max_subscribers)
    : config_(config), capacity_(capacity), worker_(worker), workers_(workers), wan_ids_(std::min(wan_ids, kMaxWanIds)) {
  uint32_t subscribers = std::max<uint32_t>(16, std::min(max_subscribers, capacity));
  subscriber_counts_.resize(subscribers);
  free_subscriber_slots_.reserve(subscribers);
  for (uint32_t i = subscribers; i-- > 0;) free_subscriber_slots_.push_back(i);
  port_owner_.assign(std::size_t{3} * wan_ids_ * 65536, 0);
  rte_malloc_socket_stats before{}, after{};
  rte_malloc_get_socket_stats(static_cast<int>(socket), &before);
  sessions_ = DpdkArray<Session>("nat_sessions", capacity, static_cast<int>(socket));
  for (uint32_t i = capacity; i-- > 0;) free_sessions_.push(sessions_, i);
  p2p_ = DpdkArray<P2pFlowState>("nat_p2p", capacity, static_cast<int>(socket));
  mappings_ = DpdkArray<Mapping>("nat_mappings", capacity, static_cast<int>(socket));
  for (uint32_t i = capacity; i-- > 0;) free_mappings_.push(mappings_, i);
  flows_ = std::make_unique<FlowIndex>(capacity * 2, static_cast<int>(socket));
  mapping_hash_ = make_hash("natm", capacity, sizeof(MappingKey), socket);
  subscribers_ = make_hash("nats", subscribers, sizeof(uint32_t), socket);
  rte_malloc_get_socket_stats(static_cast<int>(socket), &after);
  dpdk_bytes_ = after.heap_allocsz_bytes - before.heap_allocsz_bytes;
  for (auto& cursor : port_cursor_) cursor = config_.port_min;
}

SessionTable::~SessionTable() {
  rte_hash_free(mapping_hash_);
  rte_hash_free(subscribers_);
}

uint32_t& SessionTable::port_slot(uint8_t proto, uint8_t wan, uint16_t port) {
  return port_owner_[(std::size_t{proto_class(proto)} * wan_ids_ + wan) * 65536 + port];
}
uint32_t SessionTable::port_slot_value(uint8_t proto, uint8_t wan, uint16_t port) const {
  return port_owner_[(std::size_t{proto_class(proto)} * wan_ids_ + wan) * 65536 + port];
}

void SessionTable::reserve_port(uint8_t proto, uint8_t wan, uint16_t port, bool reserved) {
  uint32_t& slot = port_slot(proto, wan, port);
  if (reserved && slot == 0) slot = kReserved;
  if (!reserved && slot == kReserved) slot = 0;
}

uint32_t SessionTable::lookup(const FlowKey& key, bool* reply) const {
  uint32_t ref = flows_->find(FlowIndex::hash(key), [&](uint32_t candidate) { return holds(candidate, key); });
  if (ref == FlowIndex::kNone) return kNone;
  *reply = ref & 1;
  return ref >> 1;
}

void SessionTable::lookup_bulk(const FlowKey* const* keys, uint32_t count, uint32_t* sessions, bool* reply) const {
  constexpr uint32_t kChunk = 64;
  uint32_t hashes[kChunk], candidates[kChunk];
  for (uint32_t first = 0; first < count; first += kChunk) {
    uint32_t n = std::min(kChunk, count - first);
    // Three passes so the memory reads of one key overlap those of the others: home buckets,
    // then the likely session records, then the comparisons.
    for (uint32_t k = 0; k < n; ++k) {
      hashes[k] = FlowIndex::hash(*keys[first + k]);
      flows_->prefetch(hashes[k]);
    }
    for (uint32_t k = 0; k < n; ++k) {
      candidates[k] = flows_->first_candidate(hashes[k]);
      if (candidates[k] != FlowIndex::kNone) rte_prefetch0(&sessions_[candidates[k] >> 1]);
    }
    for (uint32_t k = 0; k < n; ++k) {
      const FlowKey& key = *keys[first + k];
      uint32_t ref = candidates[k];
      if (ref == FlowIndex::kNone || !holds(ref, key))
        ref = flows_->find(hashes[k], [&](uint32_t candidate) { return holds(candidate, key); });
      sessions[first + k] = ref == FlowIndex::kNone ? kNone : ref >> 1;
      reply[first + k] = ref != FlowIndex::kNone && (ref & 1);
    }
  }
}

bool SessionTable::transitory(const Session& s) const {
  if (s.original.proto != kTcp) return false;
  bool established = (s.tcp_flags & (kSynOut | kSynIn)) == (kSynOut | kSynIn);
  return !established || (s.tcp_flags & (kFinOut | kFinIn | kRst));
}

uint32_t SessionTable::timeout_of(const Session& s) const {
  switch (s.original.proto) {
    case kTcp: return transitory(s) ? config_.tcp_transitory_s : config_.tcp_established_s;
    case kUdp: return config_.udp_s;
    default: return config_.icmp_s;
  }
}

void SessionTable::track_tcp(Session& s, bool reply, uint8_t flags) {
  if (flags & 0x02) s.tcp_flags |= reply ? kSynIn : kSynOut;  // SYN
  if (flags & 0x01) s.tcp_flags |= reply ? kFinIn : kFinOut;  // FIN
  if (flags & 0x04) s.tcp_flags |= kRst;                       // RST
}

uint32_t SessionTable::subscriber_sessions(uint32_t address) const {
  void* data = nullptr;
  if (rte_hash_lookup_data(subscribers_, &address, &data) < 0) return 0;
  return subscriber_counts_[static_cast<uint32_t>(reinterpret_cast<uintptr_t>(data))];
}

bool SessionTable::quota_ok(uint32_t subscriber) const {
  void* data = nullptr;
  if (rte_hash_lookup_data(subscribers_, &subscriber, &data) < 0) return !free_subscriber_slots_.empty();
  return subscriber_counts_[static_cast<uint32_t>(reinterpret_cast<uintptr_t>(data))] < config_.sessions_per_subscriber;
}

void SessionTable::count_subscriber(uint32_t subscriber, int delta) {
  void* data = nullptr;
  if (rte_hash_lookup_data(subscribers_, &subscriber, &data) < 0) {
    if (delta < 0 || free_subscriber_slots_.empty()) return;
    uint32_t slot = free_subscriber_slots_.back();
    if (rte_hash_add_key_data(subscribers_, &subscriber, reinterpret_cast<void*>(uintptr_t{slot})) != 0) return;
    free_subscriber_slots_.pop_back();
    subscriber_counts_[slot] = 0;
    data = reinterpret_cast<void*>(uintptr_t{slot});
  }
  auto slot = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(data));
  subscriber_counts_[slot] = static_cast<uint32_t>(static_cast<int64_t>(subscriber_counts_[slot]) + delta);
  if (subscriber_counts_[slot] == 0) {
    rte_hash_del_key(subscribers_, &subscriber);
    free_subscriber_slots_.push_back(slot);
  }
}

uint32_t SessionTable::allocate_session(uint32_t now_s, NatRefusal* refusal) {
  if (!free_sessions_.empty()) return free_sessions_.pop(sessions_);
  // Full: take an expired or transitory session near the expiry cursor, never an established one.
  for (uint32_t scanned = 0; scanned < std::min(kReclaimScan, capacity_); ++scanned) {
    uint32_t index = (expire_cursor_ + scanned) % capacity_;
    const Session& s = sessions_[index];
    if (s.in_use && (now_s - s.last_seen_s >= timeout_of(s) || transitory(s))) {
      release(index, FlowEndReason::kLackOfResources);
      ++counters_.reclaimed;
      return free_sessions_.pop(sessions_);
    }
  }
  *refusal = NatRefusal::kTableFull;
  ++counters_.refused_table_full;
  return kNone;
}

uint32_t SessionTable::finish(uint32_t index, const FlowKey& original, const FlowKey& translated, uint8_t kind,
                              uint8_t wan, uint32_t mapping, uint32_t now_s, NatRefusal* refusal) {
  Session& s = sessions_[index];
  s = Session{};
  s.original = original;
  s.translated = translated;
  s.kind = kind;
  s.wan = wan;
  s.last_seen_s = now_s;
  p2p_[index] = P2pFlowState{};
  bool icmp = original.proto == kIcmp;
  FlowKey reply_in = translated.reversed(), reply_out = original.reversed();
  s.l3_delta[0] = flow_checksum_delta(original, translated, true, false);
  s.l4_delta[0] = flow_checksum_delta(original, translated, !icmp, true);
  s.l3_delta[1] = flow_checksum_delta(reply_in, reply_out, true, false);
  s.l4_delta[1] = flow_checksum_delta(reply_in, reply_out, !icmp, true);
  bool reply_unused;
  if (lookup(original, &reply_unused) != kNone || lookup(reply_in, &reply_unused) != kNone ||
      flows_->size() + 2 > flows_->capacity()) {
    free_sessions_.push(sessions_, index);
    if (mapping != kNone) release_mapping(mapping);
    *refusal = NatRefusal::kTableFull;
    ++counters_.refused_table_full;
    return kNone;
  }
  flows_->insert(FlowIndex::hash(original), index * 2);
  flows_->insert(FlowIndex::hash(reply_in), index * 2 + 1);
  s.in_use = 1;
  ++size_;
  ++counters_.created;
  count_subscriber(s.subscriber(), 1);
  if (flow_accounting_) flow_accounting_->session_created(index, flow_view(index));
  return index;
}

uint32_t SessionTable::find_or_create_mapping(const FlowKey& original, uint8_t wan, NatRefusal* refusal) {
  MappingKey key{original.src, original.sport, original.proto, wan};
  void* data = nullptr;
  if (rte_hash_lookup_data(mapping_hash_, &key, &data) >= 0) {
    auto index = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(data));
    ++mappings_[index].sessions;
    return index;
  }
  // Keep the inside port when it is free and ours to give; else the next free one of our block.
  uint16_t chosen = 0;
  uint16_t wanted = original.sport;
  if (wanted >= config_.port_min && wanted <= config_.port_max && nat_owner_of_port(wanted, workers_) == worker_ &&
      port_slot(original.proto, wan, wanted) == 0) {
    chosen = wanted;
  } else {
    uint32_t span = config_.port_max - config_.port_min + 1u;
    uint32_t& cursor = port_cursor_[proto_class(original.proto)];
    for (uint32_t tried = 0; tried < span; ++tried) {
      uint32_t port = config_.port_min + (cursor - config_.port_min + tried) % span;
      if (nat_owner_of_port(static_cast<uint16_t>(port), workers_) != worker_) continue;
      if (port_slot(original.proto, wan, static_cast<uint16_t>(port)) != 0) continue;
      chosen = static_cast<uint16_t>(port);
      cursor = port + 1;
      break;
    }
  }
  if (chosen == 0 || free_mappings_.empty()) {
    *refusal = NatRefusal::kPortsExhausted;
    ++counters_.refused_ports;
    return kNone;
  }
  uint32_t index = free_mappings_.pop(mappings_);
  if (rte_hash_add_key_data(mapping_hash_, &key, reinterpret_cast<void*>(uintptr_t{index})) != 0) {
    free_mappings_.push(mappings_, index);
    *refusal = NatRefusal::kTableFull;
    ++counters_.refused_table_full;
    return kNone;
  }
  mappings_[index] = Mapping{original.src, original.sport, chosen, 1, original.proto, wan, 1};
  port_slot(original.proto, wan, chosen) = index + 1;
  return index;
}

uint32_t SessionTable::find_mapping(const Session& s) const {
  MappingKey key{s.original.src, s.original.sport, s.original.proto, s.wan};
  void* data = nullptr;
  if (rte_hash_lookup_data(mapping_hash_, &key, &data) < 0) return kNone;
  return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(data));
}

void SessionTable::release_mapping(uint32_t index) {
  Mapping& m = mappings_[index];
  if (--m.sessions > 0) return;
  MappingKey key{m.inside, m.inside_port, m.proto, m.wan};
  rte_hash_del_key(mapping_hash_, &key);
  port_slot(m.proto, m.wan, m.external_port) = 0;
  m.in_use = 0;
  free_mappings_.push(mappings_, index);
}

bool SessionTable::mapped(uint8_t proto, uint8_t wan, uint16_t external_port) const {
  uint32_t slot = port_slot_value(proto, wan, external_port);
  return slot != 0 && slot != kReserved;
}

uint32_t SessionTable::create_outbound(const FlowKey& original, uint8_t wan, uint32_t wan_address, uint32_t now_s,
                                       NatRefusal* refusal, const FlowKey* hairpin_destination) {
  *refusal = NatRefusal::kNone;
  if (!quota_ok(original.src)) {
    *refusal = NatRefusal::kQuota;
    ++counters_.refused_quota;
    return kNone;
  }
  uint32_t index = allocate_session(now_s, refusal);
  if (index == kNone) return kNone;
  uint32_t mapping = find_or_create_mapping(original, wan, refusal);
  if (mapping == kNone) {
    free_sessions_.push(sessions_, index);
    return kNone;
  }
  FlowKey translated = original;
  translated.src = wan_address;
  translated.sport = mappings_[mapping].external_port;
  if (hairpin_destination) {
    translated.dst = hairpin_destination->dst;
    translated.dport = hairpin_destination->dport;
  }
  return finish(index, original, translated, hairpin_destination ? kHairpin : kSnat, wan, mapping, now_s, refusal);
}

uint32_t SessionTable::create_forward(const FlowKey& original, uint8_t wan, uint32_t internal, uint16_t internal_port,
                                      uint32_t now_s, NatRefusal* refusal) {
  *refusal = NatRefusal::kNone;
  if (!quota_ok(internal)) {
    *refusal = NatRefusal::kQuota;
    ++counters_.refused_quota;
    return kNone;
  }
  uint32_t index = allocate_session(now_s, refusal);
  if (index == kNone) return kNone;
  FlowKey translated = original;
  translated.dst = internal;
  translated.dport = internal_port;
  return finish(index, original, translated, kForward, wan, kNone, now_s, refusal);
}

uint32_t SessionTable::create_from_mapping(const FlowKey& inbound, uint8_t wan, uint32_t now_s, NatRefusal* refusal) {
  *refusal = NatRefusal::kNone;
  if (inbound.proto == kIcmp || !mapped(inbound.proto, wan, inbound.dport)) return kNone;
  uint32_t mapping = port_slot(inbound.proto, wan, inbound.dport) - 1;
  const Mapping& m = mappings_[mapping];
  if (!quota_ok(m.inside)) {
    *refusal = NatRefusal::kQuota;
    ++counters_.refused_quota;
    return kNone;
  }
  // Hold the mapping first: reclaiming a slot may release its last other session.
  ++mappings_[mapping].sessions;
  uint32_t index = allocate_session(now_s, refusal);
  if (index == kNone) {
    release_mapping(mapping);
    return kNone;
  }
  FlowKey original;
  original.proto = inbound.proto;
  original.src = m.inside;
  original.sport = m.inside_port;
  original.dst = inbound.src;
  original.dport = inbound.sport;
  FlowKey translated = original;
  translated.src = inbound.dst;
  translated.sport = inbound.dport;
  return finish(index, original, translated, kSnat, wan, mapping, now_s, refusal);
}

void SessionTable::release(uint32_t index, FlowEndReason reason) {
  Session& s = sessions_[index];
  if (flow_accounting_) flow_accounting_->session_ended(index, flow_view(index), reason);
  flows_->erase(FlowIndex::hash(s.original), index * 2);
  flows_->erase(FlowIndex::hash(s.translated.reversed()), index * 2 + 1);
  if (s.holds_mapping())
    if (uint32_t mapping = find_mapping(s); mapping != kNone) release_mapping(mapping);
  count_subscriber(s.subscriber(), -1);
  s.in_use = 0;
  --size_;
  free_sessions_.push(sessions_, index);
}

void SessionTable::report_refusal(NatRefusal refusal, const FlowKey& original, uint32_t wan_address) {
  if (flow_accounting_ == nullptr) return;
  switch (refusal) {
    case NatRefusal::kNone:
      return;
    case NatRefusal::kQuota:
      flow_accounting_->refused(original, wan_address, NatEventType::kQuotaExceeded, NatQuotaEvent::kMaxEntriesPerUser,
                                config_.sessions_per_subscriber);
      return;
    case NatRefusal::kPortsExhausted:
      flow_accounting_->refused(original, wan_address, NatEventType::kPortsExhausted, NatQuotaEvent::kNone, 0);
      return;
    case NatRefusal::kTableFull:
      flow_accounting_->refused(original, wan_address, NatEventType::kQuotaExceeded, NatQuotaEvent::kMaxSessionEntries,
                                capacity_);
      return;
  }
}

void SessionTable::expire(uint32_t now_s, uint32_t budget, uint64_t now_ms) {
  if (size_ == 0) return;
  for (uint32_t i = 0; i < budget && i < capacity_; ++i) {
    uint32_t index = expire_cursor_;
    expire_cursor_ = expire_cursor_ + 1 == capacity_ ? 0 : expire_cursor_ + 1;
    const Session& s = sessions_[index];
    if (!s.in_use) continue;
    if (now_s - s.last_seen_s >= timeout_of(s)) {
      // A TCP session that closed (both FINs or a RST) ended; any other ran out of time.
      release(index, closed(s) ? FlowEndReason::kEndOfFlow : FlowEndReason::kIdleTimeout);
      ++counters_.expired;
    } else if (flow_accounting_) {
      flow_accounting_->check_timeouts(index, flow_view(index), now_ms);
    }
  }
}

void SessionTable::clear() {
  for (uint32_t i = 0; i < capacity_; ++i)
    if (sessions_[i].in_use) release(i, FlowEndReason::kForcedEnd);
}

uint32_t SessionTable::remove_wan(uint8_t wan) {
  uint32_t removed = 0;
  for (uint32_t i = 0; i < capacity_; ++i)
    if (sessions_[i].in_use && sessions_[i].wan == wan) {
      release(i, FlowEndReason::kForcedEnd);
      ++removed;
    }
  return removed;
}

uint32_t SessionTable::sessions_on_wan(uint8_t wan) const {
  uint32_t count = 0;
  for (uint32_t i = 0; i < capacity_; ++i) count += sessions_[i].in_use && sessions_[i].wan == wan;
  return count;
}

std::size_t SessionTable::bytes_per_session() const {
  // What the table holds per session slot: the DPDK heap taken by its records, flow index and
  // hashes (buckets, extendable buckets, key store, free-slot rings), and its C++ arrays.
  std::size_t arrays = subscriber_counts_.capacity() * sizeof(uint32_t) +
                       free_subscriber_slots_.capacity() * sizeof(uint32_t) + port_owner_.size() * sizeof(uint32_t);
  return (dpdk_bytes_ + arrays) / capacity_;
}

void SessionTable::list(uint32_t subscriber, uint8_t proto, uint16_t port, uint32_t now_s, std::size_t skip,
                        std::size_t limit, std::size_t* matched, nlohmann::ordered_json& rows) const {
  for (uint32_t i = 0; i < capacity_; ++i) {
    const Session& s = sessions_[i];
    if (!s.in_use) continue;
    // inside: the LAN host's endpoint; outside: the gateway's; remote: the far end.
    uint32_t inside = s.original.src, remote = s.original.dst;
    uint16_t inside_port = s.original.sport, remote_port = s.original.dport;
    uint32_t outside = s.translated.src;
    uint16_t outside_port = s.translated.sport;
    if (s.kind == kForward) {
      inside = s.translated.dst;
      inside_port = s.translated.dport;
      outside = s.original.dst;
      outside_port = s.original.dport;
      remote = s.original.src;
      remote_port = s.original.sport;
    } else if (s.kind == kHairpin) {
      remote = s.translated.dst;
      remote_port = s.translated.dport;
    }
    if (subscriber != 0 && s.subscriber() != subscriber) continue;
    if (proto != 0 && s.original.proto != proto) continue;
    if (port != 0 && port != inside_port && port != outside_port && port != remote_port) continue;
    if ((*matched)++ < skip || rows.size() >= limit) continue;
    const char* state = s.original.proto != kTcp ? "active" : transitory(s) ? "transitory" : "established";
    rows.push_back({{"worker", worker_},
                    {"proto", proto_name(s.original.proto)},
                    {"kind", s.kind == kSnat ? "snat" : s.kind == kForward ? "forward" : "hairpin"},
                    {"inside", endpoint(inside, inside_port)},
                    {"outside", endpoint(outside, outside_port)},
                    {"remote", endpoint(remote, remote_port)},
                    {"state", state},
                    {"idle_s", now_s - s.last_seen_s},
                    {"bytes_out", s.kind == kForward ? s.bytes_reply : s.bytes_original},
                    {"bytes_in", s.kind == kForward ? s.bytes_original : s.bytes_reply},
                    {"p2p", p2p_protocol_name(p2p_[i].protocol)}});
  }
}

}  // namespace fairgate
