// What the stage benchmarks share: their EAL setup and their synthetic frames.
#pragma once

#include "core/checksum.h"
#include "nat/flow_key.h"
#include "ports/eal_args.h"

#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include <malloc.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <string>
#include <unistd.h>

namespace fairgate::bench {

// One lcore, no PCI, a file prefix of its own so benchmarks run beside the lab. Hugepages as
// the gateway uses them when enough are free (else ordinary memory, and large tables then pay
// TLB misses the gateway does not); EAL refuses --in-memory with --no-huge.
// Bytes DPDK's heap on this socket has handed out.
inline std::size_t heap_allocated() {
  rte_malloc_socket_stats stats{};
  rte_malloc_get_socket_stats(static_cast<int>(rte_socket_id()), &stats);
  return stats.heap_allocsz_bytes;
}

// Bytes the C++ heap has handed out, including mmap()ed blocks.
inline std::size_t cxx_heap_allocated() {
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

inline bool init_eal(const char* program, unsigned memory_mb) {
  std::string prefix = std::string(program) + std::to_string(getpid());
  std::string memory = std::to_string(memory_mb);
  bool hugepages = read_hugepage_info().free_2mb_pages * 2 >= memory_mb;
  const char* eal_args[] = {program, hugepages ? "--in-memory" : "--no-huge", "--no-pci", "-m", memory.c_str(),
                            "--log-level=*:warning", "--file-prefix", prefix.c_str(), "--lcores", "0@0"};
  if (rte_eal_init(static_cast<int>(std::size(eal_args)), const_cast<char**>(eal_args)) < 0) return false;
  std::printf("memory: %s\n", hugepages ? "2 MB hugepages" : "ordinary pages (--no-huge)");
  return true;
}

inline constexpr uint16_t kFrameLen = 64;  // bytes of every synthetic frame

// A 64-byte UDP frame of `key` to `destination` (the receiving port's MAC), with valid IPv4 and
// UDP checksums.
inline void write_udp_frame(rte_mbuf* mbuf, const rte_ether_addr& destination, const FlowKey& key) {
  rte_pktmbuf_reset(mbuf);
  auto* data = rte_pktmbuf_mtod(mbuf, uint8_t*);
  std::memset(data, 0, kFrameLen);
  auto* eth = reinterpret_cast<rte_ether_hdr*>(data);
  eth->dst_addr = destination;
  eth->src_addr = rte_ether_addr{{0x02, 0, 0x0a, 0x0a, 0, 0x0b}};
  eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
  ip->version_ihl = RTE_IPV4_VHL_DEF;
  ip->total_length = rte_cpu_to_be_16(kFrameLen - sizeof(rte_ether_hdr));
  ip->time_to_live = 64;
  ip->next_proto_id = IPPROTO_UDP;
  ip->src_addr = rte_cpu_to_be_32(key.src);
  ip->dst_addr = rte_cpu_to_be_32(key.dst);
  ip->hdr_checksum = checksum::compute(ip, sizeof *ip);
  auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
  udp->src_port = rte_cpu_to_be_16(key.sport);
  udp->dst_port = rte_cpu_to_be_16(key.dport);
  udp->dgram_len = rte_cpu_to_be_16(kFrameLen - sizeof(rte_ether_hdr) - sizeof(rte_ipv4_hdr));
  udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
  mbuf->data_len = kFrameLen;
  mbuf->pkt_len = kFrameLen;
}

}  // namespace fairgate::bench
