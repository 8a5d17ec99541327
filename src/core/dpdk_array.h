// A fixed-size array in DPDK memory: hugepage-backed when the EAL has hugepages, so a large
// table read at random (NAT sessions) costs a cache miss per access, not a TLB miss as well.
#pragma once

#include <rte_malloc.h>

#include <cstddef>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace fairgate {

template <typename T>
class DpdkArray {
  static_assert(std::is_trivially_destructible_v<T>, "elements are released without destructors");

 public:
  DpdkArray() = default;
  // `what` names the array in errors. Elements are value-initialised.
  DpdkArray(const char* what, std::size_t size, int socket) : size_(size) {
    if (size == 0) return;
    items_ = static_cast<T*>(rte_malloc_socket(what, size * sizeof(T), alignof(T) < 64 ? 64 : alignof(T), socket));
    if (items_ == nullptr)
      throw std::runtime_error(std::string("cannot allocate ") + what + " (" + std::to_string((size * sizeof(T)) >> 20) +
                               " MiB): raise eal.memory_mb");
    for (std::size_t i = 0; i < size; ++i) new (&items_[i]) T{};
  }
  ~DpdkArray() { rte_free(items_); }
  DpdkArray(const DpdkArray&) = delete;
  DpdkArray& operator=(const DpdkArray&) = delete;
  DpdkArray(DpdkArray&& other) noexcept : items_(other.items_), size_(other.size_) {
    other.items_ = nullptr;
    other.size_ = 0;
  }
  DpdkArray& operator=(DpdkArray&& other) noexcept {
    std::swap(items_, other.items_);
    std::swap(size_, other.size_);
    return *this;
  }

  T& operator[](std::size_t i) { return items_[i]; }
  const T& operator[](std::size_t i) const { return items_[i]; }
  std::size_t size() const { return size_; }
  std::size_t bytes() const { return size_ * sizeof(T); }

 private:
  T* items_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace fairgate
