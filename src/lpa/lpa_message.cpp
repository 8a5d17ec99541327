#include "lpa/lpa_message.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

namespace fairgate {
namespace {

constexpr std::array<std::string_view, kLpaDecodeErrorCount> kErrorNames = {
    "ok",
#define FAIRGATE_NAME(e, name, help) name,
    FAIRGATE_LPA_DECODE_ERRORS(FAIRGATE_NAME)
#undef FAIRGATE_NAME
};
constexpr std::array<std::string_view, kLpaDecodeErrorCount> kErrorHelp = {
    "decoded",
#define FAIRGATE_HELP(e, name, help) help,
    FAIRGATE_LPA_DECODE_ERRORS(FAIRGATE_HELP)
#undef FAIRGATE_HELP
};

constexpr std::size_t kBlockHeaderBytes = 4;      // type, length
constexpr std::size_t kRateBlockHeaderBytes = 4;  // links, rate size, modem flags
constexpr uint16_t kModemFlagSome = 0x0001;
constexpr uint32_t kLinkIncoming = 0x01, kLinkUp = 0x02, kLinkHasIpv6 = 0x04, kLinkHasIpv4 = 0x08,
                   kLinkBothDirections = 0x10;
constexpr std::size_t kIpv4Bytes = 4, kIpv6Bytes = 16;

// A link instance without its addresses: interface id, flags, three rates.
constexpr std::size_t link_fixed_bytes(uint8_t rate_size) { return 8 + 3 * 4 * std::size_t{rate_size}; }

// Network-order reads; the caller has checked that the bytes are there.
uint16_t read16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t read32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}
uint64_t read_rate(const uint8_t* p, uint8_t rate_size) {
  return rate_size == 1 ? read32(p) : uint64_t{read32(p)} << 32 | read32(p + 4);
}

// Appends the links of the rate block `value` (`length` bytes) to `message`.
LpaDecodeError decode_rate_block(const uint8_t* value, std::size_t length, LpaMessage& message) {
  if (length < kRateBlockHeaderBytes) return LpaDecodeError::kRateBlockTruncated;
  uint8_t count = value[0];
  uint8_t rate_size = value[1];
  uint16_t modem_flags = read16(value + 2);
  if (rate_size != 1 && rate_size != 2) return LpaDecodeError::kBadRateSize;
  if (message.links.size() + count > kLpaMaxLinks) return LpaDecodeError::kTooManyLinks;
  if ((modem_flags & kModemFlagSome) == 0) message.some = false;

  const std::size_t fixed = link_fixed_bytes(rate_size);
  const std::size_t rate_bytes = 4 * std::size_t{rate_size};
  std::size_t offset = kRateBlockHeaderBytes;
  for (unsigned i = 0; i < count; ++i) {
    if (length - offset < fixed) return LpaDecodeError::kTooManyLinks;
    const uint8_t* p = value + offset;
    uint32_t flags = read32(p + 4);
    LpaLink link;
    link.interface_id = read32(p);
    link.both_directions = (flags & kLinkBothDirections) != 0;
    link.incoming = !link.both_directions && (flags & kLinkIncoming) != 0;
    link.up = (flags & kLinkUp) != 0;
    link.current_bps = read_rate(p + 8, rate_size);
    link.minimum_bps = read_rate(p + 8 + rate_bytes, rate_size);
    link.maximum_bps = read_rate(p + 8 + 2 * rate_bytes, rate_size);
    offset += fixed;

    std::size_t addresses = ((flags & kLinkHasIpv4) ? kIpv4Bytes : 0) + ((flags & kLinkHasIpv6) ? kIpv6Bytes : 0);
    if (length - offset < addresses) return LpaDecodeError::kLinkTruncated;
    if (flags & kLinkHasIpv4) {  // IPv4 first
      link.ipv4 = read32(value + offset);
      offset += kIpv4Bytes;
    }
    if (flags & kLinkHasIpv6) {
      link.ipv6.emplace();
      std::copy(value + offset, value + offset + kIpv6Bytes, link.ipv6->begin());
      offset += kIpv6Bytes;
    }
    message.links.push_back(link);
  }
  // Bytes left over mean the link instances are not what the modem meant them to be (a flag we
  // do not know that adds a field, say): rates read from them would be wrong.
  if (offset != length) return LpaDecodeError::kRateBlockOverlong;
  return LpaDecodeError::kOk;
}

void put16(std::vector<uint8_t>& bytes, uint16_t value) {
  bytes.push_back(static_cast<uint8_t>(value >> 8));
  bytes.push_back(static_cast<uint8_t>(value));
}
void put32(std::vector<uint8_t>& bytes, uint32_t value) {
  put16(bytes, static_cast<uint16_t>(value >> 16));
  put16(bytes, static_cast<uint16_t>(value));
}
void patch16(std::vector<uint8_t>& bytes, std::size_t at, std::size_t value) {
  bytes[at] = static_cast<uint8_t>(value >> 8);
  bytes[at + 1] = static_cast<uint8_t>(value);
}

void put_rate(std::vector<uint8_t>& bytes, uint64_t bps, uint8_t rate_size) {
  if (rate_size == 1) {
    if (bps > UINT32_MAX)
      throw std::invalid_argument("LPA rate " + std::to_string(bps) + " bit/s does not fit 32 bits: use rate size 2");
    put32(bytes, static_cast<uint32_t>(bps));
  } else {
    put32(bytes, static_cast<uint32_t>(bps >> 32));
    put32(bytes, static_cast<uint32_t>(bps));
  }
}

// The header, its total length still zero.
std::vector<uint8_t> header(LpaMessageType type, uint32_t modem_id, uint32_t sequence) {
  std::vector<uint8_t> bytes;
  bytes.push_back(kLpaVersion << 4);
  bytes.push_back(static_cast<uint8_t>(type));
  put16(bytes, 0);
  put32(bytes, modem_id);
  put32(bytes, sequence);
  return bytes;
}
constexpr std::size_t kTotalLengthOffset = 2;

}  // namespace

std::string_view lpa_decode_error_name(LpaDecodeError error) {
  auto i = static_cast<std::size_t>(error);
  return i < kLpaDecodeErrorCount ? kErrorNames[i] : "unknown";
}
std::string_view lpa_decode_error_help(LpaDecodeError error) {
  auto i = static_cast<std::size_t>(error);
  return i < kLpaDecodeErrorCount ? kErrorHelp[i] : "unknown";
}

LpaDecodeError decode_lpa(const uint8_t* data, std::size_t length, LpaMessage* out) {
  if (length < kLpaHeaderBytes) return LpaDecodeError::kHeaderTruncated;
  if (data[0] >> 4 != kLpaVersion) return LpaDecodeError::kBadVersion;
  uint8_t type = data[1];
  if (type != static_cast<uint8_t>(LpaMessageType::kAdvertisement) &&
      type != static_cast<uint8_t>(LpaMessageType::kSolicitation))
    return LpaDecodeError::kUnknownType;
  if (read16(data + kTotalLengthOffset) != length) return LpaDecodeError::kTotalLengthMismatch;

  LpaMessage message;
  message.type = static_cast<LpaMessageType>(type);
  message.modem_id = read32(data + 4);
  message.sequence = read32(data + 8);
  std::size_t offset = kLpaHeaderBytes;
  while (offset < length) {
    if (length - offset < kBlockHeaderBytes) return LpaDecodeError::kBlockTruncated;
    uint16_t block_type = read16(data + offset);
    uint16_t block_length = read16(data + offset + 2);
    offset += kBlockHeaderBytes;
    if (length - offset < block_length) return LpaDecodeError::kBlockTruncated;
    if (message.type == LpaMessageType::kAdvertisement && block_type == kLpaRateBlockType) {
      LpaDecodeError error = decode_rate_block(data + offset, block_length, message);
      if (error != LpaDecodeError::kOk) return error;
    }
    offset += block_length;
  }
  *out = std::move(message);
  return LpaDecodeError::kOk;
}

std::vector<uint8_t> encode_lpa_advertisement(const LpaMessage& message, uint8_t rate_size) {
  if (message.type != LpaMessageType::kAdvertisement)
    throw std::invalid_argument("encode_lpa_advertisement: the message is not an advertisement");
  if (rate_size != 1 && rate_size != 2)
    throw std::invalid_argument("LPA link rate size must be 1 (32-bit) or 2 (64-bit), not " +
                                std::to_string(rate_size));
  if (message.links.size() > kLpaMaxLinks)
    throw std::invalid_argument("LPA advertisement with " + std::to_string(message.links.size()) +
                                " links: at most " + std::to_string(kLpaMaxLinks));

  std::vector<uint8_t> bytes = header(LpaMessageType::kAdvertisement, message.modem_id, message.sequence);
  put16(bytes, kLpaRateBlockType);
  const std::size_t block_length_at = bytes.size();
  put16(bytes, 0);
  bytes.push_back(static_cast<uint8_t>(message.links.size()));
  bytes.push_back(rate_size);
  put16(bytes, message.some ? kModemFlagSome : 0);
  for (const LpaLink& link : message.links) {
    uint32_t flags = (link.up ? kLinkUp : 0) | (link.ipv4 ? kLinkHasIpv4 : 0) | (link.ipv6 ? kLinkHasIpv6 : 0);
    flags |= link.both_directions ? kLinkBothDirections : (link.incoming ? kLinkIncoming : 0);
    put32(bytes, link.interface_id);
    put32(bytes, flags);
    put_rate(bytes, link.current_bps, rate_size);
    put_rate(bytes, link.minimum_bps, rate_size);
    put_rate(bytes, link.maximum_bps, rate_size);
    if (link.ipv4) put32(bytes, *link.ipv4);
    if (link.ipv6) bytes.insert(bytes.end(), link.ipv6->begin(), link.ipv6->end());
  }
  // At most 64 links of 52 bytes: both lengths fit their 16 bits.
  patch16(bytes, block_length_at, bytes.size() - block_length_at - 2);
  patch16(bytes, kTotalLengthOffset, bytes.size());
  return bytes;
}

std::vector<uint8_t> encode_lpa_solicitation(uint32_t modem_id, uint32_t sequence) {
  std::vector<uint8_t> bytes = header(LpaMessageType::kSolicitation, modem_id, sequence);
  patch16(bytes, kTotalLengthOffset, bytes.size());
  return bytes;
}

LpaSequenceTracker::Verdict LpaSequenceTracker::observe(uint32_t modem_id, uint32_t sequence, uint64_t now_ms,
                                                        uint32_t period_ms) {
  auto [entry, first] = modems_.try_emplace(modem_id, Accepted{sequence, now_ms});
  if (first) return Verdict::kNew;
  Accepted& last = entry->second;
  uint32_t step = sequence - last.sequence;  // modulo 2^32
  Verdict verdict;
  if (step != 0 && step < 0x80000000u) {
    verdict = Verdict::kNew;
  } else if (now_ms >= last.at_ms && now_ms - last.at_ms >= uint64_t{kExpiryPeriods} * period_ms) {
    // Expired (a clock that went back expires nothing).
    verdict = Verdict::kRestart;
  } else {
    return step == 0 ? Verdict::kDuplicate : Verdict::kOld;
  }
  last = Accepted{sequence, now_ms};
  return verdict;
}

std::string_view lpa_verdict_name(LpaSequenceTracker::Verdict verdict) {
  switch (verdict) {
    case LpaSequenceTracker::Verdict::kNew: return "new";
    case LpaSequenceTracker::Verdict::kRestart: return "restart";
    case LpaSequenceTracker::Verdict::kDuplicate: return "duplicate";
    case LpaSequenceTracker::Verdict::kOld: return "old";
  }
  return "unknown";
}

}  // namespace fairgate
