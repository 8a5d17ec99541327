// Link Property Advertisements (LPA): the messages a smart modem (satellite with adaptive coding,
// ADSL2 with rate adaptation, LTE, a crypto box) sends the router over UDP to say how fast each
// of its links runs now and whether it is up, so that fairgate shapes to the real rate instead
// of a static guess and fails over at once when a link drops. The wire format is the Rate Block
// of draft-wood-dna-link-properties-advertisement-01 behind a 12-byte header (version, message
// type, modem id, sequence number); this file decodes and encodes it and decides which
// advertisements are new. Management thread only: everything here may allocate, and the
// encoders throw on arguments they cannot represent.
//
// Wire format, network byte order:
//   header   ver(4)=1 rsvd(4) | type(8) | total length(16, header and blocks = the UDP payload)
//            modem id(32) | sequence number(32)
//   blocks   type(16) | length(16, value bytes only) | value; unknown types are skipped
//   rate block (type 1) value:
//            links(8) | rate size(8, 1: 32-bit rates, 2: 64-bit) | modem flags(16, 0x0001 = S)
//            then per link: interface id(32) | flags(32: B 0x10, 4 0x08, 6 0x04, U 0x02, I 0x01)
//                           current, minimum, maximum rate (rate size x 32 bits each, bit/s)
//                           [IPv4 address if 4] [IPv6 address if 6]
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace fairgate {

inline constexpr uint8_t kLpaVersion = 1;
inline constexpr std::size_t kLpaHeaderBytes = 12;
inline constexpr uint16_t kLpaRateBlockType = 1;
// Link instances one message may carry, over all its rate blocks. A modem has a handful of
// links, two directions each; the cap bounds what a forged datagram can make us allocate.
inline constexpr std::size_t kLpaMaxLinks = 64;

enum class LpaMessageType : uint8_t {
  kAdvertisement = 1,  // modem to router: link rates and states
  kSolicitation = 2,   // router to modem: send a full advertisement now (unicast reply)
};

// One direction of one modem link (or both directions, when both_directions is set).
struct LpaLink {
  uint32_t interface_id = 0;     // the modem's identifier of the link; configuration maps it to a WAN port
  bool incoming = false;         // I: modem to router (download); false: router to modem (upload).
                                 // Meaningless, and decoded as false, when both_directions is set.
  bool up = false;               // U: false means the link is down: use a rate of zero;
                                 // current_bps still holds the rate before the drop
  bool both_directions = false;  // B: the rates apply to upload and download alike
  uint64_t current_bps = 0;      // bit/s
  uint64_t minimum_bps = 0;      // bit/s; minimum = maximum = 0: a fixed-rate link
  uint64_t maximum_bps = 0;      // bit/s
  std::optional<uint32_t> ipv4;                 // the modem's address on this link, host order
  std::optional<std::array<uint8_t, 16>> ipv6;  // the same, IPv6, network order

  bool operator==(const LpaLink&) const = default;
};

struct LpaMessage {
  LpaMessageType type = LpaMessageType::kAdvertisement;
  uint32_t modem_id = 0;
  uint32_t sequence = 0;  // +1 per advertisement; see LpaSequenceTracker
  // S: the links listed are Some of the modem's links (an event update), the others keep their
  // last advertised state. False (All) means the list is complete: a link missing from it is
  // gone. True when no rate block says All, so an advertisement without a rate block changes
  // nothing.
  bool some = true;
  std::vector<LpaLink> links;  // every rate block's link instances, in message order

  bool operator==(const LpaMessage&) const = default;
};

// Why a datagram is not a valid LPA message; each is counted under its name.
// X(enum_name, "counter name", "help text")
#define FAIRGATE_LPA_DECODE_ERRORS(X)                                                                  \
  X(kHeaderTruncated, "header_truncated", "datagram shorter than the 12-byte header")                  \
  X(kBadVersion, "bad_version", "version is not 1")                                                    \
  X(kUnknownType, "unknown_type", "message type neither advertisement (1) nor solicitation (2)")      \
  X(kTotalLengthMismatch, "total_length_mismatch", "total length differs from the datagram length")   \
  X(kBlockTruncated, "block_truncated", "a block's header or value runs past the end of the message") \
  X(kRateBlockTruncated, "rate_block_truncated", "rate block shorter than its 4-byte header")         \
  X(kBadRateSize, "bad_rate_size", "link rate size neither 1 (32-bit) nor 2 (64-bit)")                 \
  X(kTooManyLinks, "too_many_links", "more link instances than the rate block can hold, or over 64")   \
  X(kLinkTruncated, "link_truncated", "a link instance's addresses run past the end of its block")   \
  X(kRateBlockOverlong, "rate_block_overlong", "rate block longer than its link instances")

enum class LpaDecodeError : uint8_t {
  kOk = 0,
#define FAIRGATE_ENUM(e, name, help) e,
  FAIRGATE_LPA_DECODE_ERRORS(FAIRGATE_ENUM)
#undef FAIRGATE_ENUM
      kCount
};
// Including kOk: errors are 1 .. kLpaDecodeErrorCount - 1.
inline constexpr std::size_t kLpaDecodeErrorCount = static_cast<std::size_t>(LpaDecodeError::kCount);

std::string_view lpa_decode_error_name(LpaDecodeError error);  // "block_truncated"; "ok"
std::string_view lpa_decode_error_help(LpaDecodeError error);

// Decodes the UDP payload `data`, `length` bytes, reading none past them. On success fills *out
// and returns kOk; on an error *out is left as it was.
//
// Strict about lengths (the total length must equal `length`, every block and link instance must
// fit exactly), liberal about bits: the header's reserved bits and the modem and interface
// flags the format reserves (sent as zero) are ignored, so a modem that sets one, perhaps for
// an extension we do not know, still has its rates heard.
// A solicitation's blocks are framed (each must fit) but not decoded: it carries none today,
// and a later version may define some. Several rate blocks in one advertisement are read in
// turn, their links appended; the message says Some only when every rate block does.
LpaDecodeError decode_lpa(const uint8_t* data, std::size_t length, LpaMessage* out);

// An advertisement with one rate block holding every link of `message`, rates `rate_size` x 32
// bits (1 or 2). Throws std::invalid_argument when message.type is not an advertisement,
// rate_size is neither 1 nor 2, a rate does not fit 32 bits with rate_size 1, or there are more
// than kLpaMaxLinks links.
std::vector<uint8_t> encode_lpa_advertisement(const LpaMessage& message, uint8_t rate_size);
// A solicitation: the header alone. fairgate sends one per modem when it starts.
std::vector<uint8_t> encode_lpa_solicitation(uint32_t modem_id, uint32_t sequence);

// Which advertisements of each modem are new, by sequence number in RFC 1982 serial-number
// arithmetic: `sequence` is newer than the last accepted one when (sequence - last) mod 2^32 is
// between 1 and 2^31 - 1, so the wrap from 0xFFFFFFFF to 0 moves forward, and older when that
// difference is 2^31 or more (exactly 2^31, undefined in RFC 1982, counts as older).
//
//   first advertisement of a modem     kNew
//   serially newer                     kNew
//   equal                              kDuplicate   (ignored)
//   serially older                     kOld         (ignored)
//   older or equal after expiry        kRestart     (accepted; forget the modem's old state)
//
// The format says a backwards jump larger than 2^31 means the modem restarted. Serial arithmetic
// cannot see that jump: a numeric step back by more than 2^31 is, modulo 2^32, a step forward
// by less than 2^31, the same as a wrap, so it is accepted as kNew and the new number carries
// on. A modem that restarts is silent while it boots, and counts again from wherever it starts;
// so a sequence that is not newer is taken as a restart once the modem's last accepted
// advertisement has expired: kExpiryPeriods advertisement periods passed without an accepted
// one (the time after which fairgate falls back to the configured rate anyway). A modem that
// reboots faster than that has its advertisements ignored until its last accepted one expires;
// the next one after that is the restart.
//
// Times are milliseconds on whatever monotonic clock the caller passes in. One entry per modem id
// ever seen, kept: pass only the ids configuration knows.
class LpaSequenceTracker {
 public:
  static constexpr uint32_t kExpiryPeriods = 3;

  enum class Verdict : uint8_t { kNew, kRestart, kDuplicate, kOld };

  // An advertisement numbered `sequence` from `modem_id` arrived at `now_ms`; `period_ms` is the
  // modem's advertisement period (the format's default is 1000; 0 would make every advertisement
  // that is not newer a restart). kNew and kRestart accept it: it becomes the modem's last
  // accepted advertisement. kDuplicate and kOld change nothing.
  Verdict observe(uint32_t modem_id, uint32_t sequence, uint64_t now_ms, uint32_t period_ms);

  std::size_t modems() const { return modems_.size(); }

 private:
  struct Accepted {
    uint32_t sequence;
    uint64_t at_ms;
  };
  std::unordered_map<uint32_t, Accepted> modems_;
};

std::string_view lpa_verdict_name(LpaSequenceTracker::Verdict verdict);  // "new", "restart", ...

}  // namespace fairgate
