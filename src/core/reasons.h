// Every reason a packet leaves the fast path, in one table that generates both the enums and
// the names shown by the `stats` command (VPP's error-table pattern). Add a row here, never a
// bare counter elsewhere.
#pragma once

#include <cstdint>
#include <string_view>

namespace fairgate {

// X(enum_name, "counter name", "help text")
#define FAIRGATE_DROP_REASONS(X)                                                              \
  X(kEthTruncated, "eth_truncated", "frame shorter than an Ethernet header")                  \
  X(kL2NotForUs, "l2_not_for_us", "unicast frame addressed to another MAC")                   \
  X(kVlanTruncated, "vlan_truncated", "802.1Q tag cut short")                                 \
  X(kVlanUnknown, "vlan_unknown", "VLAN id not configured on the port")                       \
  X(kVlanStacked, "vlan_stacked", "stacked (QinQ) tags are not supported")                    \
  X(kEthertypeUnsupported, "ethertype_unsupported", "neither IPv4, ARP nor IPv6")             \
  X(kIpv6Unsupported, "ipv6_unsupported", "IPv6 is not forwarded yet")                        \
  X(kIpv4Truncated, "ipv4_truncated", "IPv4 header or payload cut short")                     \
  X(kIpv4BadVersion, "ipv4_bad_version", "IP version field is not 4")                         \
  X(kIpv4BadIhl, "ipv4_bad_ihl", "IPv4 header length below 20 bytes")                         \
  X(kIpv4BadTotalLength, "ipv4_bad_total_length", "IPv4 total length below header length")   \
  X(kIpv4BadChecksum, "ipv4_bad_checksum", "IPv4 header checksum wrong")                      \
  X(kIpv4BadSource, "ipv4_bad_source", "source is multicast, broadcast, loopback or zero")    \
  X(kIpv4NotForwardable, "ipv4_not_forwardable", "broadcast or multicast destination")        \
  X(kTtlExceeded, "ttl_exceeded", "TTL ran out; ICMP time exceeded sent back")                \
  X(kMtuExceeded, "mtu_exceeded", "larger than the egress MTU with DF set; ICMP sent back")    \
  X(kNoRoute, "no_route", "no port reaches the destination")                                  \
  X(kNeighborUnresolved, "neighbor_unresolved", "next hop did not answer ARP")                \
  X(kNeighborHoldFull, "neighbor_hold_full", "too many packets waiting for one next hop")     \
  X(kNeighborTableFull, "neighbor_table_full", "no room for another neighbour")               \
  X(kPuntRingFull, "punt_ring_full", "management thread not keeping up")                      \
  X(kTxFull, "tx_full", "egress queue full")                                                  \
  X(kArpMalformed, "arp_malformed", "ARP packet not Ethernet/IPv4 or cut short")              \
  X(kArpNotForUs, "arp_not_for_us", "ARP request for an address that is not ours")            \
  X(kLocalUnsupported, "local_unsupported", "addressed to the gateway, no service for it")   \
  X(kIcmpMalformed, "icmp_malformed", "ICMP message cut short or with a bad checksum")        \
  X(kIcmpRateLimited, "icmp_rate_limited", "ICMP error not sent: over the rate limit")        \
  X(kSpoofedSource, "spoofed_source", "source address not allowed on the port it came in on") \
  X(kNatUnsolicited, "nat_unsolicited", "from a WAN to an address behind the NAT")            \
  X(kNatFiltered, "nat_filtered", "to a mapped port from a remote the mapping never reached")  \
  X(kNatTableFull, "nat_table_full", "no session free and none to reclaim")                   \
  X(kNatQuota, "nat_quota", "subscriber at its session quota")                                \
  X(kNatPortsExhausted, "nat_ports_exhausted", "no free external port")                       \
  X(kNatTruncated, "nat_truncated", "transport header cut short")                             \
  X(kNatUnsupported, "nat_unsupported", "protocol or ICMP type NAT cannot translate")          \
  X(kWanAllDown, "wan_all_down", "a new flow, and no WAN link is up to leave by")            \
  X(kP2pDropped, "p2p_dropped", "P2P flow of a subscriber whose policy drops P2P")             \
  X(kP2pCapped, "p2p_capped", "P2P over the subscriber's P2P rate cap")                        \
  X(kHandoffFull, "handoff_full", "the owning worker's handoff ring was full")                 \
  X(kSchedInboxFull, "sched_inbox_full", "the egress scheduler's worker was not keeping up")    \
  X(kSchedQueueFull, "sched_dropped", "subscriber's class queue full, or dropped early by AQM") \
  X(kNoVerdict, "no_verdict", "pipeline ended without a verdict (pipeline misconfigured)")    \
  X(kShutdown, "shutdown", "freed while stopping")

enum class DropReason : uint8_t {
#define FAIRGATE_ENUM(e, name, help) e,
  FAIRGATE_DROP_REASONS(FAIRGATE_ENUM)
#undef FAIRGATE_ENUM
      kCount
};
inline constexpr std::size_t kDropReasonCount = static_cast<std::size_t>(DropReason::kCount);

// Why a worker hands a packet to the management thread.
#define FAIRGATE_PUNT_REASONS(X)                                                   \
  X(kArp, "arp", "ARP request or reply")                                           \
  X(kLocal, "local", "IPv4 addressed to one of the gateway's addresses")           \
  X(kTtlExceeded, "ttl_exceeded", "needs an ICMP time exceeded")                   \
  X(kFragNeeded, "frag_needed", "needs an ICMP fragmentation needed")              \
  X(kResolve, "resolve", "next hop has no MAC yet")

enum class PuntReason : uint8_t {
#define FAIRGATE_ENUM(e, name, help) e,
  FAIRGATE_PUNT_REASONS(FAIRGATE_ENUM)
#undef FAIRGATE_ENUM
      kCount
};
inline constexpr std::size_t kPuntReasonCount = static_cast<std::size_t>(PuntReason::kCount);

std::string_view drop_reason_name(DropReason reason);
std::string_view drop_reason_help(DropReason reason);
std::string_view punt_reason_name(PuntReason reason);

}  // namespace fairgate
