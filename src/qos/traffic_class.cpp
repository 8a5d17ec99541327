#include "qos/traffic_class.h"

#include <rte_byteorder.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include <netinet/in.h>

#include <cstring>

namespace fairgate {
namespace {

constexpr uint8_t kDscpEf = 46, kDscpCs6 = 48, kDscpCs7 = 56;
constexpr uint8_t kTosLowDelay = 0x10, kTosBits = 0x1e;  // RFC 1349, as iptables' tos match reads it
constexpr uint16_t kDnsPort = 53;

}  // namespace

ClassRules::ClassRules(const QosConfig& qos)
    : interactive_packet_bytes_(qos.interactive_packet_bytes), bulk_after_bytes_(qos.bulk_after_bytes) {
  for (uint16_t port : qos.interactive_ports) interactive_port_.set(port);
}

TrafficClass ClassRules::select(const rte_ipv4_hdr* ip, const uint8_t* l4, uint64_t flow_bytes) const {
  uint8_t tos = ip->type_of_service;
  uint8_t dscp = tos >> 2;
  if (dscp == kDscpEf || dscp == kDscpCs6 || dscp == kDscpCs7 || (tos & kTosBits) == kTosLowDelay)
    return TrafficClass::kInteractive;
  if (ip->next_proto_id == IPPROTO_ICMP) return TrafficClass::kInteractive;
  uint16_t total_length = rte_be_to_cpu_16(ip->total_length);
  if (l4 != nullptr && (ip->next_proto_id == IPPROTO_TCP || ip->next_proto_id == IPPROTO_UDP)) {
    uint16_t src_port, dst_port;
    std::memcpy(&src_port, l4, 2);
    std::memcpy(&dst_port, l4 + 2, 2);
    src_port = rte_be_to_cpu_16(src_port);
    dst_port = rte_be_to_cpu_16(dst_port);
    if (src_port == kDnsPort || dst_port == kDnsPort) return TrafficClass::kInteractive;
    if (ip->next_proto_id == IPPROTO_TCP) {
      uint32_t headers = rte_ipv4_hdr_len(ip) + ((l4[12] >> 4) * 4u);
      if (total_length <= headers) return TrafficClass::kInteractive;  // no payload: ACK, SYN, FIN
    }
    if (total_length <= interactive_packet_bytes_ && (interactive_port_[src_port] || interactive_port_[dst_port]))
      return TrafficClass::kInteractive;
  }
  return flow_bytes > bulk_after_bytes_ ? TrafficClass::kBulk : TrafficClass::kNormal;
}

FlowMeter::FlowMeter(uint32_t buckets_log2) : buckets_(std::size_t{1} << buckets_log2), bucket_mask_((1u << buckets_log2) - 1) {
  for (auto& bucket : buckets_)
    for (auto& slot : bucket.slots) slot = {0, 0, 0};
}

uint64_t FlowMeter::add(uint32_t hash, uint32_t bytes, uint32_t now_s) {
  Bucket& bucket = buckets_[hash & bucket_mask_];
  Slot* victim = &bucket.slots[0];
  for (auto& slot : bucket.slots) {
    if (slot.hash == hash && slot.bytes != 0) {
      uint64_t before = now_s - slot.last_s > kIdleResetS ? 0 : slot.bytes;
      slot.bytes = before + bytes;
      slot.last_s = now_s;
      return before;
    }
    // A new flow takes an empty slot, else the one idle longest.
    if (victim->bytes != 0 && (slot.bytes == 0 || slot.last_s < victim->last_s)) victim = &slot;
  }
  *victim = {hash, now_s, bytes};
  return 0;
}

}  // namespace fairgate
