// Per-lcore counters. Each counter has exactly one writer (its lcore); the management thread
// reads them while they change. A relaxed load+store compiles to a plain add on x86, with no
// locked instruction, and still makes the concurrent read well defined.
#pragma once

#include <atomic>
#include <cstdint>

namespace fairgate {

class RelaxedCounter {
 public:
  void add(uint64_t n = 1) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

}  // namespace fairgate
