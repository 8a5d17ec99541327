#include "mgmt/frame_builder.h"

#include "core/checksum.h"
#include "core/packet_meta.h"
#include "stages/l3/l2_rewrite.h"

#include <rte_arp.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace fairgate {
namespace {

constexpr uint8_t kDefaultTtl = 64;
constexpr uint32_t kIcmpQuoteMax = 548;  // keeps the error within 576 bytes (RFC 1812 4.3.2.3)
constexpr uint32_t kMaxOriginatedBytes = 1400;  // transport bytes of a packet the gateway sends

rte_ether_hdr* append_ethernet(rte_mbuf* mbuf, const PortInfo& port, const rte_ether_addr& destination,
                               uint16_t ethertype) {
  uint16_t l2_len = l2_header_len(port);
  auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_append(mbuf, l2_len));
  write_l2_header(eth, port, destination, ethertype);
  auto* meta = packet_meta(mbuf);
  meta->l2_len = l2_len;
  meta->ethertype = ethertype;
  return eth;
}

}  // namespace

rte_mbuf* build_arp_request(rte_mempool* pool, const PortInfo& port, uint32_t target_ip) {
  rte_mbuf* mbuf = rte_pktmbuf_alloc(pool);
  if (mbuf == nullptr) return nullptr;
  rte_ether_addr broadcast;
  std::memset(broadcast.addr_bytes, 0xff, RTE_ETHER_ADDR_LEN);
  append_ethernet(mbuf, port, broadcast, RTE_ETHER_TYPE_ARP);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(rte_pktmbuf_append(mbuf, sizeof(rte_arp_hdr)));
  arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
  arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
  arp->arp_hlen = RTE_ETHER_ADDR_LEN;
  arp->arp_plen = 4;
  arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
  arp->arp_data.arp_sha = port.mac;
  arp->arp_data.arp_sip = rte_cpu_to_be_32(port.prefix.address);
  std::memset(&arp->arp_data.arp_tha, 0, RTE_ETHER_ADDR_LEN);
  arp->arp_data.arp_tip = rte_cpu_to_be_32(target_ip);
  return mbuf;
}

void make_arp_reply(rte_mbuf* request, uint16_t l2_len, const PortInfo& port) {
  auto* eth = rte_pktmbuf_mtod(request, rte_ether_hdr*);
  auto* arp = rte_pktmbuf_mtod_offset(request, rte_arp_hdr*, l2_len);
  arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
  arp->arp_data.arp_tha = arp->arp_data.arp_sha;
  arp->arp_data.arp_tip = arp->arp_data.arp_sip;
  arp->arp_data.arp_sha = port.mac;
  arp->arp_data.arp_sip = rte_cpu_to_be_32(port.prefix.address);
  eth->dst_addr = arp->arp_data.arp_tha;
  eth->src_addr = port.mac;
}

bool icmp_error_allowed(const uint8_t* original, uint32_t available) {
  if (available < sizeof(rte_ipv4_hdr)) return false;
  auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(original);
  if (rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK) return false;
  uint32_t source = rte_be_to_cpu_32(ip->src_addr);
  if (source == 0 || (source >> 28) >= 14 || (source >> 24) == 127) return false;
  if (ip->next_proto_id == IPPROTO_ICMP) {
    uint32_t header_len = (ip->version_ihl & 0x0f) * 4u;
    if (available < header_len + 1) return false;
    uint8_t type = original[header_len];
    // Only queries (echo, timestamp, ...) may provoke an error; never another error.
    return type == RTE_IP_ICMP_ECHO_REQUEST || type == RTE_IP_ICMP_ECHO_REPLY || type == 13 || type == 14;
  }
  return true;
}

rte_mbuf* build_icmp_error(rte_mempool* pool, const uint8_t* original, uint32_t available, uint32_t source,
                           uint8_t type, uint8_t code, uint16_t next_hop_mtu) {
  auto* original_ip = reinterpret_cast<const rte_ipv4_hdr*>(original);
  uint32_t quote = std::min({available, kIcmpQuoteMax, uint32_t{rte_be_to_cpu_16(original_ip->total_length)}});
  std::vector<uint8_t> message(sizeof(rte_icmp_hdr) + quote, 0);
  auto* icmp = reinterpret_cast<rte_icmp_hdr*>(message.data());
  icmp->icmp_type = type;
  icmp->icmp_code = code;
  // Bytes 4..7: unused, except the next-hop MTU in the low half for "fragmentation needed".
  icmp->icmp_seq_nb = rte_cpu_to_be_16(next_hop_mtu);
  std::memcpy(icmp + 1, original, quote);
  icmp->icmp_cksum = checksum::compute(message.data(), static_cast<uint32_t>(message.size()));
  return build_ipv4_packet(pool, source, rte_be_to_cpu_32(original_ip->src_addr), IPPROTO_ICMP, kDefaultTtl,
                           message.data(), static_cast<uint32_t>(message.size()));
}

rte_mbuf* build_ipv4_packet(rte_mempool* pool, uint32_t source, uint32_t destination, uint8_t proto, uint8_t ttl,
                            const uint8_t* transport, uint32_t length) {
  if (length > kMaxOriginatedBytes) return nullptr;
  rte_mbuf* mbuf = rte_pktmbuf_alloc(pool);
  if (mbuf == nullptr) return nullptr;
  auto total = static_cast<uint16_t>(sizeof(rte_ipv4_hdr) + length);
  auto* data = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(mbuf, total));
  if (data == nullptr) {
    rte_pktmbuf_free(mbuf);
    return nullptr;
  }
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(data);
  std::memset(ip, 0, sizeof *ip);
  ip->version_ihl = RTE_IPV4_VHL_DEF;
  ip->type_of_service = 0xc0;  // CS6, network control
  ip->total_length = rte_cpu_to_be_16(total);
  ip->time_to_live = ttl;
  ip->next_proto_id = proto;
  ip->src_addr = rte_cpu_to_be_32(source);
  ip->dst_addr = rte_cpu_to_be_32(destination);
  ip->hdr_checksum = checksum::compute(ip, sizeof *ip);
  std::memcpy(ip + 1, transport, length);
  auto* meta = packet_meta(mbuf);
  meta->l2_len = 0;
  meta->l3_len = sizeof(rte_ipv4_hdr);
  meta->ethertype = RTE_ETHER_TYPE_IPV4;
  return mbuf;
}

rte_mbuf* build_echo_request(rte_mempool* pool, uint32_t source, uint32_t destination, uint16_t identifier,
                             uint16_t sequence, uint16_t payload) {
  std::vector<uint8_t> message(sizeof(rte_icmp_hdr) + payload, 0);
  auto* icmp = reinterpret_cast<rte_icmp_hdr*>(message.data());
  icmp->icmp_type = RTE_IP_ICMP_ECHO_REQUEST;
  icmp->icmp_ident = rte_cpu_to_be_16(identifier);
  icmp->icmp_seq_nb = rte_cpu_to_be_16(sequence);
  icmp->icmp_cksum = checksum::compute(message.data(), static_cast<uint32_t>(message.size()));
  return build_ipv4_packet(pool, source, destination, IPPROTO_ICMP, kDefaultTtl, message.data(),
                           static_cast<uint32_t>(message.size()));
}

rte_mbuf* build_udp_datagram(rte_mempool* pool, uint32_t source, uint32_t destination, uint16_t source_port,
                             uint16_t destination_port, uint8_t ttl, const uint8_t* payload, uint32_t length) {
  std::vector<uint8_t> datagram(sizeof(rte_udp_hdr) + length);
  auto* udp = reinterpret_cast<rte_udp_hdr*>(datagram.data());
  udp->src_port = rte_cpu_to_be_16(source_port);
  udp->dst_port = rte_cpu_to_be_16(destination_port);
  udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(datagram.size()));
  udp->dgram_cksum = 0;
  if (length) std::memcpy(udp + 1, payload, length);
  rte_mbuf* mbuf = build_ipv4_packet(pool, source, destination, IPPROTO_UDP, ttl, datagram.data(),
                                     static_cast<uint32_t>(datagram.size()));
  if (mbuf == nullptr) return nullptr;
  auto* ip = rte_pktmbuf_mtod(mbuf, rte_ipv4_hdr*);
  auto* header = reinterpret_cast<rte_udp_hdr*>(ip + 1);
  header->dgram_cksum = rte_ipv4_udptcp_cksum(ip, header);  // never 0: 0 means "none" in UDP
  return mbuf;
}

}  // namespace fairgate
