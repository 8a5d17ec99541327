// What most tests share: the standard two-port configuration, a fixture that fails a test
// which leaves mbufs out of the test pool, and helpers to run stages on a burst.
#pragma once

#include "config/config.h"
#include "core/reasons.h"
#include "pipeline/stage.h"
#include "ports/ports.h"
#include "test_packets.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif
#include <unistd.h>

#include <initializer_list>
#include <ostream>
#include <stdexcept>
#include <vector>

namespace fairgate {
// Readable failure messages: reasons and actions by name.
inline std::ostream& operator<<(std::ostream& out, DropReason reason) {
  return reason < DropReason::kCount ? out << drop_reason_name(reason) : out << "(no drop reason)";
}
inline std::ostream& operator<<(std::ostream& out, PuntReason reason) {
  return reason < PuntReason::kCount ? out << punt_reason_name(reason) : out << "(no punt reason)";
}
inline std::ostream& operator<<(std::ostream& out, Action action) {
  switch (action) {
    case Action::kContinue: return out << "continue";
    case Action::kForward: return out << "forward";
    case Action::kSent: return out << "sent";
    case Action::kPunt: return out << "punt";
    case Action::kHandoff: return out << "handoff";
    case Action::kDrop: return out << "drop";
  }
  return out << "action " << static_cast<int>(action);
}
}  // namespace fairgate

namespace fairgate::test {

// Port 0: LAN 10.10.0.1/24. Port 1: WAN 198.51.100.2/25 behind 198.51.100.1.
inline constexpr const char* kTwoPortConfig = R"({
  "name": "unit",
  "ports": [
    {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24"},
    {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1"}
  ]
})";

// Same addresses with the LAN side on VLAN 10.
inline constexpr const char* kVlanLanConfig = R"({
  "ports": [
    {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.10.0.1/24", "vlan": 10},
    {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1"}
  ]
})";

// The lab's neighbours.
inline uint32_t lan_gw() { return ip("10.10.0.1"); }
inline uint32_t lan_host() { return ip("10.10.0.11"); }
inline uint32_t lan_host2() { return ip("10.10.0.12"); }
inline uint32_t wan_own() { return ip("198.51.100.2"); }
inline uint32_t wan_gw() { return ip("198.51.100.1"); }
inline uint32_t internet_host() { return ip("192.0.2.10"); }
inline rte_ether_addr lan_host_mac() { return host_mac(0x11); }
inline rte_ether_addr lan_host2_mac() { return host_mac(0x12); }
inline rte_ether_addr wan_gw_mac() { return host_mac(0x01); }

// Fails the test when it ends with fewer mbufs in the test pool than it started with. The
// check runs in the destructor, after the derived fixture's members (handlers, tables, bursts)
// have released theirs.
class PoolCheckedTest : public ::testing::Test {
 protected:
  PoolCheckedTest() : available_at_start_(rte_mempool_avail_count(test_pool())) {}
  ~PoolCheckedTest() override {
    EXPECT_EQ(rte_mempool_avail_count(test_pool()), available_at_start_) << "mbufs left out of the test pool";
  }

 private:
  unsigned available_at_start_;
};

// A burst of the given frames from port index `rx_port`, mbuf->port set to it.
inline void fill_burst(Burst& burst, uint16_t rx_port, const std::vector<Bytes>& frames) {
  if (frames.size() > kBurstSize) throw std::invalid_argument("more frames than a burst");
  burst.reset(rx_port, static_cast<uint16_t>(frames.size()));
  for (std::size_t i = 0; i < frames.size(); ++i) burst.pkts[i] = to_mbuf(frames[i], rx_port);
}

inline void run_stages(Burst& burst, std::initializer_list<Stage*> stages) {
  for (Stage* stage : stages) stage->process(burst);
}

inline void free_burst(Burst& burst) {
  for (uint16_t i = 0; i < burst.count; ++i) rte_pktmbuf_free(burst.pkts[i]);
  burst.count = 0;
}

// An mbuf whose data is `frame` placed at the end of a readable page, followed by an unmapped
// page: a read past the frame faults. The frame starts 2-byte aligned, as DPDK's headers
// require, so an odd-length frame leaves one byte before the guard page; the address
// sanitizer, when built in, is told that byte is off limits. The mbuf's own buffer is replaced
// by that memory (an external buffer), so mbuf->buf_len is the frame length and there is no
// headroom. Free the mbuf (or let the code under test free it) before this object goes away.
class GuardedFrame {
 public:
  GuardedFrame(const Bytes& frame, uint16_t port) {
    page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    if (frame.size() > page_) throw std::invalid_argument("guarded frame larger than a page");
    void* region = mmap(nullptr, 2 * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) throw std::runtime_error("mmap failed");
    region_ = static_cast<uint8_t*>(region);
    if (mprotect(region_ + page_, page_, PROT_NONE) != 0) throw std::runtime_error("mprotect failed");
    uint8_t* start = region_ + page_ - ((frame.size() + 1) & ~std::size_t{1});
    if (!frame.empty()) std::memcpy(start, frame.data(), frame.size());
#ifdef __SANITIZE_ADDRESS__
    if (frame.size() & 1) ASAN_POISON_MEMORY_REGION(start + frame.size(), 1);
#endif
    shinfo_.free_cb = [](void*, void*) {};
    shinfo_.fcb_opaque = nullptr;
    rte_mbuf_ext_refcnt_set(&shinfo_, 1);
    mbuf_ = rte_pktmbuf_alloc(test_pool());
    if (mbuf_ == nullptr) throw std::runtime_error("test pool empty");
    rte_pktmbuf_attach_extbuf(mbuf_, start, static_cast<rte_iova_t>(reinterpret_cast<uintptr_t>(start)),
                              static_cast<uint16_t>(frame.size()), &shinfo_);
    mbuf_->data_off = 0;
    mbuf_->data_len = static_cast<uint16_t>(frame.size());
    mbuf_->pkt_len = static_cast<uint32_t>(frame.size());
    mbuf_->port = port;
    std::memset(packet_meta(mbuf_), 0, sizeof(PacketMeta));
  }
  ~GuardedFrame() {
#ifdef __SANITIZE_ADDRESS__
    ASAN_UNPOISON_MEMORY_REGION(region_, page_);
#endif
    munmap(region_, 2 * page_);
  }
  GuardedFrame(const GuardedFrame&) = delete;
  GuardedFrame& operator=(const GuardedFrame&) = delete;

  rte_mbuf* mbuf() const { return mbuf_; }

 private:
  std::size_t page_ = 0;
  uint8_t* region_ = nullptr;
  rte_mbuf_ext_shared_info shinfo_{};
  rte_mbuf* mbuf_ = nullptr;
};

}  // namespace fairgate::test
