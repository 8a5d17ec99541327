// Frames the gateway originates: ARP requests, replies and announcements, ICMP errors.
// Control plane only; each allocates one mbuf from the packet pool (nullptr when empty).
#pragma once

#include "ports/ports.h"

#include <rte_ether.h>
#include <rte_mbuf.h>

#include <cstdint>

namespace fairgate {

// A complete Ethernet frame (tagged when the port has a VLAN) carrying an ARP message from
// the port's own MAC and address. Requests go to broadcast; `target_ip == own address` makes
// a gratuitous announcement (RFC 5227).
rte_mbuf* build_arp_request(rte_mempool* pool, const PortInfo& port, uint32_t target_ip);

// Turns a received ARP request for our address into the reply, in place. `l2_len` is the
// frame's header length.
void make_arp_reply(rte_mbuf* request, uint16_t l2_len, const PortInfo& port);

// An IPv4 packet (no Ethernet header yet; PacketMeta says l2_len 0) carrying an ICMP error
// about `original` (an IPv4 header plus whatever follows it in the same buffer, `available`
// bytes): from `source`, to the original's source. `next_hop_mtu` is for "fragmentation
// needed" (type 3 code 4).
rte_mbuf* build_icmp_error(rte_mempool* pool, const uint8_t* original, uint32_t available, uint32_t source,
                           uint8_t type, uint8_t code, uint16_t next_hop_mtu);

// An IPv4 packet the gateway originates (no Ethernet header yet, as build_icmp_error):
// `transport` (`length` bytes, its checksum already filled in) after a header from `source` to
// `destination` with `ttl` and DSCP CS6 (network control: probes and LPA must not queue
// behind subscribers' traffic).
rte_mbuf* build_ipv4_packet(rte_mempool* pool, uint32_t source, uint32_t destination, uint8_t proto, uint8_t ttl,
                            const uint8_t* transport, uint32_t length);
// An ICMP echo request: `identifier`, `sequence`, then `payload` bytes of padding.
rte_mbuf* build_echo_request(rte_mempool* pool, uint32_t source, uint32_t destination, uint16_t identifier,
                             uint16_t sequence, uint16_t payload);
// A UDP datagram with its checksum.
rte_mbuf* build_udp_datagram(rte_mempool* pool, uint32_t source, uint32_t destination, uint16_t source_port,
                             uint16_t destination_port, uint8_t ttl, const uint8_t* payload, uint32_t length);

// Whether RFC 1812 4.3.2.7 allows an ICMP error about this packet: not about ICMP errors,
// non-first fragments, or broadcast/multicast/invalid sources.
bool icmp_error_allowed(const uint8_t* original, uint32_t available);

}  // namespace fairgate
