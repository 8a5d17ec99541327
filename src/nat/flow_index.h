// The index from a flow key to the NAT session that holds it: open addressing over 64-byte
// buckets of eight (16-bit signature, 32-bit reference) slots, probing to the next bucket when
// one is full.
//
// Keys are not stored: a signature match hands the reference to the caller, which compares the
// key with the session record itself. A hit therefore touches one bucket line and the session
// record the packet needs anyway, where a general hash with a key store touches three lines.
// Sized at most half full, so nearly every key is found in its home bucket.
//
// Owned by one worker's SessionTable; nothing here is synchronised.
#pragma once

#include "nat/flow_key.h"

#include <cstddef>
#include <cstdint>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace fairgate {

class FlowIndex {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr uint32_t kSlots = 8;  // per bucket

  // Room for `entries` references with the table at most half full. Memory from the DPDK heap
  // of `socket`; throws std::runtime_error when there is not enough.
  FlowIndex(uint32_t entries, int socket);
  ~FlowIndex();
  FlowIndex(const FlowIndex&) = delete;
  FlowIndex& operator=(const FlowIndex&) = delete;

  static uint32_t hash(const FlowKey& key);
  // Brings the key's home bucket towards the core before a burst's lookups.
  void prefetch(uint32_t hash) const;

  // The stored reference for which `matches(reference)` is true among those whose signature
  // matches the hash, in probe order; kNone if there is none.
  template <typename Matches>
  uint32_t find(uint32_t hash, Matches&& matches) const {
    uint32_t bucket = hash & mask_;
    uint16_t sig = signature(hash);
    for (uint32_t probed = 0; probed <= mask_; ++probed) {
      const Bucket& b = buckets_[bucket];
      for (uint32_t hits = signature_hits(b, sig); hits != 0; hits &= hits - 1) {
        uint32_t ref = b.ref[__builtin_ctz(hits)];
        if (matches(ref)) return ref;
      }
      if (b.overflow == 0) return kNone;  // no key whose home is here or before went further
      bucket = (bucket + 1) & mask_;
    }
    return kNone;
  }
  // The first reference in the home bucket with the hash's signature, or kNone: the likely hit,
  // for prefetching its record before `find` confirms it.
  uint32_t first_candidate(uint32_t hash) const {
    const Bucket& b = buckets_[hash & mask_];
    uint32_t hits = signature_hits(b, signature(hash));
    return hits ? b.ref[__builtin_ctz(hits)] : kNone;
  }

  // False when the index already holds `capacity()` references.
  bool insert(uint32_t hash, uint32_t ref);
  // Removes `ref` stored under `hash`; false if it is not there.
  bool erase(uint32_t hash, uint32_t ref);

  uint32_t size() const { return size_; }
  uint32_t capacity() const { return capacity_; }
  std::size_t bytes() const { return (std::size_t{mask_} + 1) * sizeof(Bucket); }

 private:
  struct alignas(64) Bucket {
    uint16_t sig[kSlots];   // 0: free slot
    uint32_t ref[kSlots];
    uint32_t overflow;      // keys whose home is this bucket or an earlier one, stored beyond it
  };
  static_assert(sizeof(Bucket) == 64);

  static uint16_t signature(uint32_t hash) {
    auto sig = static_cast<uint16_t>(hash >> 16);
    return static_cast<uint16_t>(sig | (sig == 0));
  }
  // Bit i set when slot i holds signature `sig`.
  static uint32_t signature_hits(const Bucket& b, uint16_t sig) {
#if defined(__SSE2__)
    __m128i sigs = _mm_load_si128(reinterpret_cast<const __m128i*>(b.sig));
    __m128i equal = _mm_cmpeq_epi16(sigs, _mm_set1_epi16(static_cast<short>(sig)));
    // Narrow each 16-bit lane (0 or -1) to a byte so the mask has one bit per slot.
    return static_cast<uint32_t>(_mm_movemask_epi8(_mm_packs_epi16(equal, _mm_setzero_si128())));
#else
    uint32_t hits = 0;
    for (uint32_t i = 0; i < kSlots; ++i) hits |= uint32_t{b.sig[i] == sig} << i;
    return hits;
#endif
  }

  Bucket* buckets_ = nullptr;
  uint32_t mask_ = 0;
  uint32_t size_ = 0;
  uint32_t capacity_ = 0;
};

}  // namespace fairgate
