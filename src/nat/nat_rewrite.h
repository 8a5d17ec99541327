// Applying a session's translation to a packet, with incremental checksums (RFC 1624): the
// IPv4 header with the address delta, TCP/UDP with the pseudo-header and port delta, ICMP echo
// with the identifier delta. Also the TCP MSS clamp.
#pragma once

#include "core/checksum.h"
#include "nat/flow_key.h"

#include <rte_byteorder.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

namespace fairgate {

// checksum' = ~(~checksum + delta), the delta being a folded sum of (~old + new) words.
inline uint16_t apply_checksum_delta(uint16_t checksum, uint16_t delta) {
  uint32_t sum = static_cast<uint16_t>(~checksum);
  sum += delta;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// The checksum adjustment for a packet whose flow key changes from `from` to `to`, in packet
// byte order: over the addresses (IPv4 header, TCP/UDP pseudo-header) when `with_addresses`,
// over the ports or the ICMP identifier when `with_ports`.
inline uint16_t flow_checksum_delta(const FlowKey& from, const FlowKey& to, bool with_addresses, bool with_ports) {
  uint32_t sum = 0;
  auto add = [&sum](uint16_t old_word, uint16_t new_word) {
    sum += static_cast<uint16_t>(~rte_cpu_to_be_16(old_word));
    sum += rte_cpu_to_be_16(new_word);
  };
  if (with_addresses) {
    add(static_cast<uint16_t>(from.src >> 16), static_cast<uint16_t>(to.src >> 16));
    add(static_cast<uint16_t>(from.src), static_cast<uint16_t>(to.src));
    add(static_cast<uint16_t>(from.dst >> 16), static_cast<uint16_t>(to.dst >> 16));
    add(static_cast<uint16_t>(from.dst), static_cast<uint16_t>(to.dst));
  }
  if (with_ports) {
    add(from.sport, to.sport);
    add(from.dport, to.dport);
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// Where a packet's transport header is and how long the bytes after the IPv4 header are.
struct L4View {
  uint8_t* header = nullptr;
  uint32_t length = 0;  // bytes from the transport header to the end of the IPv4 packet
};

// Rewrites addresses and ports (or the ICMP echo identifier) of a packet whose flow key is
// being changed to `to`, using the session's precomputed deltas.
inline void rewrite_flow(rte_ipv4_hdr* ip, const L4View& l4, const FlowKey& to, uint16_t l3_delta,
                         uint16_t l4_delta) {
  ip->src_addr = rte_cpu_to_be_32(to.src);
  ip->dst_addr = rte_cpu_to_be_32(to.dst);
  ip->hdr_checksum = apply_checksum_delta(ip->hdr_checksum, l3_delta);
  switch (ip->next_proto_id) {
    case IPPROTO_TCP: {
      auto* tcp = reinterpret_cast<rte_tcp_hdr*>(l4.header);
      tcp->src_port = rte_cpu_to_be_16(to.sport);
      tcp->dst_port = rte_cpu_to_be_16(to.dport);
      tcp->cksum = apply_checksum_delta(tcp->cksum, l4_delta);
      break;
    }
    case IPPROTO_UDP: {
      auto* udp = reinterpret_cast<rte_udp_hdr*>(l4.header);
      udp->src_port = rte_cpu_to_be_16(to.sport);
      udp->dst_port = rte_cpu_to_be_16(to.dport);
      // 0 means "no checksum" in UDP over IPv4: leave it so; a computed 0 is sent as 0xffff.
      if (udp->dgram_cksum != 0) {
        udp->dgram_cksum = apply_checksum_delta(udp->dgram_cksum, l4_delta);
        if (udp->dgram_cksum == 0) udp->dgram_cksum = 0xffff;
      }
      break;
    }
    case IPPROTO_ICMP: {
      auto* icmp = reinterpret_cast<rte_icmp_hdr*>(l4.header);
      icmp->icmp_ident = rte_cpu_to_be_16(icmp->icmp_type == RTE_IP_ICMP_ECHO_REQUEST ? to.sport : to.dport);
      icmp->icmp_cksum = apply_checksum_delta(icmp->icmp_cksum, l4_delta);
      break;
    }
    default:
      break;
  }
}

// Lowers the MSS option of a TCP SYN to `mss` (bytes) when it is larger. Reads options only
// within the header's data offset and the packet. True when the segment was changed.
bool clamp_tcp_mss(const L4View& l4, uint16_t mss);

}  // namespace fairgate
