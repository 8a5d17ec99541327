// A table the management thread rebuilds and the workers read without locks: the management
// thread publishes a new immutable version with one atomic store and frees the old one once
// every worker has passed a quiescent state (rte_rcu_qsbr), so a worker never waits on it.
#pragma once

#include <rte_rcu_qsbr.h>

#include <atomic>
#include <memory>
#include <vector>

namespace fairgate {

template <typename T>
class RcuPublished {
 public:
  // `qsbr` may be null when no worker runs (unit tests, offline tools): old versions are then
  // freed at once.
  explicit RcuPublished(rte_rcu_qsbr* qsbr = nullptr) : qsbr_(qsbr) {}
  RcuPublished(const RcuPublished&) = delete;
  RcuPublished& operator=(const RcuPublished&) = delete;
  ~RcuPublished() {
    delete current_.load(std::memory_order_relaxed);
    for (auto& retired : retired_) delete retired.table;
  }

  void set_qsbr(rte_rcu_qsbr* qsbr) { qsbr_ = qsbr; }

  // Workers: the current version, valid until this worker's next quiescent-state report.
  const T* current() const { return current_.load(std::memory_order_acquire); }

  // Management thread only.
  void publish(std::unique_ptr<T> table) {
    const T* old = current_.exchange(table.release(), std::memory_order_acq_rel);
    if (old == nullptr) return;
    if (qsbr_ == nullptr) {
      delete old;
      return;
    }
    retired_.push_back({rte_rcu_qsbr_start(qsbr_), old});
  }

  // Management thread, from its loop: frees the versions no worker can still be reading.
  void reclaim() {
    std::size_t kept = 0;
    for (auto& retired : retired_) {
      if (rte_rcu_qsbr_check(qsbr_, retired.token, false) == 1)
        delete retired.table;
      else
        retired_[kept++] = retired;
    }
    retired_.resize(kept);
  }

 private:
  struct Retired {
    uint64_t token;
    const T* table;
  };
  std::atomic<const T*> current_{nullptr};
  rte_rcu_qsbr* qsbr_;
  std::vector<Retired> retired_;
};

}  // namespace fairgate
