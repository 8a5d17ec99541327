// The LPA codec and sequence tracker. Datagrams are written byte by byte here, not with the
// encoder, so a bug in one cannot hide one in the other; the encoder is then checked against
// the same bytes and by round trips. Every decode reads from the end of a page followed by an
// unmapped page, so a read past the datagram kills the suite instead of passing unnoticed.
#include "lpa/lpa_message.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <initializer_list>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace fairgate {
// Readable failure messages.
inline std::ostream& operator<<(std::ostream& out, LpaDecodeError error) {
  return out << lpa_decode_error_name(error);
}
inline std::ostream& operator<<(std::ostream& out, LpaSequenceTracker::Verdict verdict) {
  return out << lpa_verdict_name(verdict);
}
inline std::ostream& operator<<(std::ostream& out, const LpaLink& link) {
  out << "{interface " << link.interface_id << (link.both_directions ? " both" : link.incoming ? " in" : " out")
      << (link.up ? " up " : " down ") << link.current_bps << "/" << link.minimum_bps << "/" << link.maximum_bps;
  if (link.ipv4) out << " ipv4 " << *link.ipv4;
  if (link.ipv6) out << " ipv6";
  return out << "}";
}
inline std::ostream& operator<<(std::ostream& out, const LpaMessage& message) {
  out << "{type " << static_cast<int>(message.type) << " modem " << message.modem_id << " sequence "
      << message.sequence << (message.some ? " some" : " all");
  for (const LpaLink& link : message.links) out << " " << link;
  return out << "}";
}
}  // namespace fairgate

namespace fairgate {
namespace {

using Bytes = std::vector<uint8_t>;
using Verdict = LpaSequenceTracker::Verdict;

// Interface flags, modem flags.
constexpr uint32_t kI = 0x01, kU = 0x02, k6 = 0x04, k4 = 0x08, kB = 0x10;
constexpr uint16_t kS = 0x0001;
constexpr uint8_t kAdvertisement = 1, kSolicitation = 2;

// The format's example: modem 42, sequence 7, one outgoing link, up, 2 Mbit/s now, 128 kbit/s
// to 8 Mbit/s.
const Bytes kExample = {
    0x10, 0x01, 0x00, 0x28, 0x00, 0x00, 0x00, 0x2A, 0x00, 0x00, 0x00, 0x07,  // header
    0x00, 0x01, 0x00, 0x18,                                                  // rate block, 24 bytes
    0x01, 0x01, 0x00, 0x00,                                                  // 1 link, 32-bit, All
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,                          // interface 1, U
    0x00, 0x1E, 0x84, 0x80, 0x00, 0x01, 0xF4, 0x00, 0x00, 0x7A, 0x12, 0x00,  // rates
};

// `bytes` copied to the end of a readable page that an unmapped page follows: reading one byte
// past them faults. Writable, so a test can change bytes in place.
class GuardedBytes {
 public:
  explicit GuardedBytes(const Bytes& bytes) : size_(bytes.size()) {
    page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    if (bytes.size() > page_) throw std::invalid_argument("guarded bytes larger than a page");
    void* region = mmap(nullptr, 2 * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) throw std::runtime_error("mmap failed");
    region_ = static_cast<uint8_t*>(region);
    if (mprotect(region_ + page_, page_, PROT_NONE) != 0) throw std::runtime_error("mprotect failed");
    data_ = region_ + page_ - bytes.size();
    if (!bytes.empty()) std::memcpy(data_, bytes.data(), bytes.size());
  }
  ~GuardedBytes() { munmap(region_, 2 * page_); }
  GuardedBytes(const GuardedBytes&) = delete;
  GuardedBytes& operator=(const GuardedBytes&) = delete;

  uint8_t* data() { return data_; }
  std::size_t size() const { return size_; }

 private:
  std::size_t page_ = 0;
  std::size_t size_;
  uint8_t* region_ = nullptr;
  uint8_t* data_ = nullptr;
};

LpaDecodeError decode(const Bytes& bytes, LpaMessage* out) {
  GuardedBytes guarded(bytes);
  return decode_lpa(guarded.data(), guarded.size(), out);
}
LpaDecodeError decode_error(const Bytes& bytes) {
  LpaMessage ignored;
  return decode(bytes, &ignored);
}

// ---- datagrams by hand ----------------------------------------------------------------------

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes all;
  for (const Bytes& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}
Bytes be16(uint16_t v) { return {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)}; }
Bytes be32(uint32_t v) { return cat({be16(static_cast<uint16_t>(v >> 16)), be16(static_cast<uint16_t>(v))}); }
Bytes be64(uint64_t v) { return cat({be32(static_cast<uint32_t>(v >> 32)), be32(static_cast<uint32_t>(v))}); }

Bytes block(uint16_t type, const Bytes& value) {
  return cat({be16(type), be16(static_cast<uint16_t>(value.size())), value});
}
// A rate block: its 4-byte header, then `links` (link instances, written with link32/link64).
Bytes rate_block(uint8_t count, uint8_t rate_size, uint16_t modem_flags, const Bytes& links) {
  return block(1, cat({{count, rate_size}, be16(modem_flags), links}));
}
Bytes link32(uint32_t id, uint32_t flags, uint32_t current, uint32_t minimum, uint32_t maximum) {
  return cat({be32(id), be32(flags), be32(current), be32(minimum), be32(maximum)});
}
Bytes link64(uint32_t id, uint32_t flags, uint64_t current, uint64_t minimum, uint64_t maximum) {
  return cat({be32(id), be32(flags), be64(current), be64(minimum), be64(maximum)});
}
// A whole datagram: header with the right total length, then `blocks`. `first_byte` is
// version (high nibble) and reserved bits.
Bytes datagram(uint8_t type, const Bytes& blocks, uint32_t modem = 42, uint32_t sequence = 7,
               uint8_t first_byte = 0x10) {
  Bytes header = cat({{first_byte, type}, be16(static_cast<uint16_t>(12 + blocks.size())), be32(modem), be32(sequence)});
  return cat({header, blocks});
}
Bytes advertisement(const Bytes& blocks) { return datagram(kAdvertisement, blocks); }

void set16(Bytes& bytes, std::size_t at, std::size_t value) {
  bytes[at] = static_cast<uint8_t>(value >> 8);
  bytes[at + 1] = static_cast<uint8_t>(value);
}

const Bytes kIpv4 = be32(0xC0000201);  // 192.0.2.1
const Bytes kIpv6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};  // 2001:db8::1
std::array<uint8_t, 16> ipv6_array() {
  std::array<uint8_t, 16> address{};
  std::copy(kIpv6.begin(), kIpv6.end(), address.begin());
  return address;
}

LpaLink link(uint32_t id, bool up, uint64_t current, uint64_t minimum, uint64_t maximum) {
  LpaLink l;
  l.interface_id = id;
  l.up = up;
  l.current_bps = current;
  l.minimum_bps = minimum;
  l.maximum_bps = maximum;
  return l;
}

// ---- decoding valid messages ----------------------------------------------------------------

TEST(LpaDecode, TheFormatsExample) {
  ASSERT_EQ(kExample.size(), 40u);
  LpaMessage message;
  ASSERT_EQ(decode(kExample, &message), LpaDecodeError::kOk);
  EXPECT_EQ(message.type, LpaMessageType::kAdvertisement);
  EXPECT_EQ(message.modem_id, 42u);
  EXPECT_EQ(message.sequence, 7u);
  EXPECT_FALSE(message.some) << "S = 0: All";
  ASSERT_EQ(message.links.size(), 1u);
  const LpaLink& l = message.links[0];
  EXPECT_EQ(l.interface_id, 1u);
  EXPECT_TRUE(l.up);
  EXPECT_FALSE(l.incoming) << "I = 0: outgoing";
  EXPECT_FALSE(l.both_directions);
  EXPECT_EQ(l.current_bps, 2'000'000u);
  EXPECT_EQ(l.minimum_bps, 128'000u);
  EXPECT_EQ(l.maximum_bps, 8'000'000u);
  EXPECT_FALSE(l.ipv4);
  EXPECT_FALSE(l.ipv6);
}

TEST(LpaDecode, HandWrittenExampleIsTheFormatsExample) {
  // Checks the helpers the other tests write datagrams with.
  EXPECT_EQ(advertisement(rate_block(1, 1, 0, link32(1, kU, 2'000'000, 128'000, 8'000'000))), kExample);
}

TEST(LpaDecode, InterfaceFlags) {
  struct Case {
    const char* name;
    uint32_t flags;
    bool incoming, up, both_directions;
  };
  const std::vector<Case> cases = {
      {"none: outgoing, down", 0, false, false, false},
      {"I", kI, true, false, false},
      {"U", kU, false, true, false},
      {"I U", kI | kU, true, true, false},
      {"B", kB, false, false, true},
      {"B U", kB | kU, false, true, true},
      {"B I: I ignored", kB | kI, false, false, true},
      {"B I U", kB | kI | kU, false, true, true},
  };
  for (const Case& c : cases) {
    LpaMessage message;
    ASSERT_EQ(decode(advertisement(rate_block(1, 1, 0, link32(3, c.flags, 5, 0, 0))), &message), LpaDecodeError::kOk)
        << c.name;
    ASSERT_EQ(message.links.size(), 1u) << c.name;
    EXPECT_EQ(message.links[0].incoming, c.incoming) << c.name;
    EXPECT_EQ(message.links[0].up, c.up) << c.name;
    EXPECT_EQ(message.links[0].both_directions, c.both_directions) << c.name;
  }
}

TEST(LpaDecode, SixtyFourBitRates) {
  LpaMessage message;
  ASSERT_EQ(decode(advertisement(rate_block(1, 2, 0, link64(9, kU | kI, 10'000'000'000, 4'294'967'296, UINT64_MAX))),
                   &message),
            LpaDecodeError::kOk);
  ASSERT_EQ(message.links.size(), 1u);
  EXPECT_EQ(message.links[0].current_bps, 10'000'000'000u);
  EXPECT_EQ(message.links[0].minimum_bps, 4'294'967'296u) << "2^32: needs the high word";
  EXPECT_EQ(message.links[0].maximum_bps, UINT64_MAX);
  EXPECT_TRUE(message.links[0].incoming);
}

TEST(LpaDecode, AddressesIpv4FirstThenIpv6) {
  struct Case {
    const char* name;
    uint32_t flags;
    Bytes addresses;
    bool ipv4, ipv6;
  };
  const std::vector<Case> cases = {
      {"IPv4", kU | k4, kIpv4, true, false},
      {"IPv6", kU | k6, kIpv6, false, true},
      {"both", kU | k4 | k6, cat({kIpv4, kIpv6}), true, true},
  };
  for (uint8_t rate_size : {uint8_t{1}, uint8_t{2}}) {
    for (const Case& c : cases) {
      Bytes fixed = rate_size == 1 ? link32(5, c.flags, 1000, 0, 0) : link64(5, c.flags, 1000, 0, 0);
      LpaMessage message;
      ASSERT_EQ(decode(advertisement(rate_block(1, rate_size, 0, cat({fixed, c.addresses}))), &message),
                LpaDecodeError::kOk)
          << c.name << ", rate size " << int{rate_size};
      ASSERT_EQ(message.links.size(), 1u);
      const LpaLink& l = message.links[0];
      EXPECT_EQ(l.ipv4.has_value(), c.ipv4) << c.name;
      EXPECT_EQ(l.ipv6.has_value(), c.ipv6) << c.name;
      if (l.ipv4) {
        EXPECT_EQ(*l.ipv4, 0xC0000201u) << c.name << ": host order";
      }
      if (l.ipv6) {
        EXPECT_EQ(*l.ipv6, ipv6_array()) << c.name;
      }
      EXPECT_EQ(l.current_bps, 1000u) << c.name;
    }
  }
}

TEST(LpaDecode, SomeFlag) {
  const Bytes one_link = link32(1, kU, 1000, 0, 0);
  struct Case {
    const char* name;
    Bytes blocks;
    bool some;
  };
  const std::vector<Case> cases = {
      {"S = 0: All", rate_block(1, 1, 0, one_link), false},
      {"S = 1: Some", rate_block(1, 1, kS, one_link), true},
      {"two blocks, both Some", cat({rate_block(1, 1, kS, one_link), rate_block(1, 1, kS, one_link)}), true},
      {"two blocks, Some then All", cat({rate_block(1, 1, kS, one_link), rate_block(1, 1, 0, one_link)}), false},
      {"two blocks, All then Some", cat({rate_block(1, 1, 0, one_link), rate_block(1, 1, kS, one_link)}), false},
      {"no rate block: changes nothing", Bytes{}, true},
      {"only an unknown block", block(9, {1, 2, 3}), true},
      {"All with no link: the modem has none", rate_block(0, 1, 0, {}), false},
  };
  for (const Case& c : cases) {
    LpaMessage message;
    ASSERT_EQ(decode(advertisement(c.blocks), &message), LpaDecodeError::kOk) << c.name;
    EXPECT_EQ(message.some, c.some) << c.name;
  }
}

TEST(LpaDecode, ReservedBitsAndUnknownFlagsAreIgnored) {
  // Header reserved nibble, the 15 reserved modem flags, the 27 reserved interface flags.
  Bytes noisy = datagram(kAdvertisement, rate_block(1, 1, 0xFFFE, link32(1, 0xFFFFFFE0 | kU, 2'000'000, 128'000, 8'000'000)),
                         42, 7, 0x1F);
  LpaMessage expected, message;
  ASSERT_EQ(decode(kExample, &expected), LpaDecodeError::kOk);
  ASSERT_EQ(decode(noisy, &message), LpaDecodeError::kOk);
  EXPECT_EQ(message, expected);
}

TEST(LpaDecode, UnknownBlockTypesAreSkipped) {
  const Bytes rates = rate_block(1, 1, 0, link32(1, kU, 2'000'000, 128'000, 8'000'000));
  struct Case {
    const char* name;
    Bytes blocks;
  };
  const std::vector<Case> cases = {
      {"before", cat({block(2, {0xAA, 0xBB, 0xCC}), rates})},
      {"after", cat({rates, block(0xFFFF, {1, 2, 3, 4, 5, 6, 7, 8})})},
      {"empty, type 0", cat({block(0, {}), rates, block(0, {})})},
      // An unknown block whose content looks like a broken rate block is not read.
      {"rate block look-alike", cat({block(0x0100, {0xFF, 0x07, 0x00}), rates})},
  };
  LpaMessage expected;
  ASSERT_EQ(decode(kExample, &expected), LpaDecodeError::kOk);
  for (const Case& c : cases) {
    LpaMessage message;
    ASSERT_EQ(decode(advertisement(c.blocks), &message), LpaDecodeError::kOk) << c.name;
    EXPECT_EQ(message, expected) << c.name;
  }
}

// Two rate blocks of different rate sizes and an unknown block between them; the truncation
// tests below cut it everywhere. Block starts and value lengths are listed with it.
const Bytes kRich = advertisement(cat({
    rate_block(2, 1, 0, cat({link32(1, kU, 2'000'000, 128'000, 8'000'000),            // upload
                             link32(1, kU | kI | k4, 20'000'000, 0, 0), kIpv4})),    // download, fixed rate
    block(0x7F00, {0xDE, 0xAD, 0xBE, 0xEF, 0x01}),                                    // unknown
    rate_block(1, 2, kS, cat({link64(7, kB | k4 | k6, 10'000'000'000, 1'000'000'000, 20'000'000'000), kIpv4, kIpv6})),
}));
constexpr std::size_t kRichFirstBlockEnd = 12 + 4 + 48, kRichSecondBlockEnd = kRichFirstBlockEnd + 4 + 5;

LpaMessage rich_expected() {
  LpaMessage m;
  m.modem_id = 42;
  m.sequence = 7;
  m.some = false;  // the first block is All
  m.links.push_back(link(1, true, 2'000'000, 128'000, 8'000'000));
  m.links.push_back(link(1, true, 20'000'000, 0, 0));
  m.links.back().incoming = true;
  m.links.back().ipv4 = 0xC0000201;
  m.links.push_back(link(7, false, 10'000'000'000, 1'000'000'000, 20'000'000'000));
  m.links.back().both_directions = true;
  m.links.back().ipv4 = 0xC0000201;
  m.links.back().ipv6 = ipv6_array();
  return m;
}

TEST(LpaDecode, SeveralRateBlocksAreReadInTurn) {
  ASSERT_EQ(kRich.size(), kRichSecondBlockEnd + 4 + 56);
  LpaMessage message;
  ASSERT_EQ(decode(kRich, &message), LpaDecodeError::kOk);
  EXPECT_EQ(message, rich_expected());
}

TEST(LpaDecode, SixtyFourLinksAreTheMost) {
  Bytes links;
  for (uint32_t i = 0; i < 40; ++i) links = cat({links, link32(i, kU, 1000 + i, 0, 0)});
  Bytes more;
  for (uint32_t i = 40; i < 64; ++i) more = cat({more, link32(i, kU, 1000 + i, 0, 0)});
  LpaMessage message;
  ASSERT_EQ(decode(advertisement(cat({rate_block(40, 1, 0, links), rate_block(24, 1, 0, more)})), &message),
            LpaDecodeError::kOk);
  ASSERT_EQ(message.links.size(), 64u);
  EXPECT_EQ(message.links[63].interface_id, 63u);
  EXPECT_EQ(message.links[63].current_bps, 1063u);
  // One more, in a third block, is too many.
  Bytes one = link32(64, kU, 1064, 0, 0);
  EXPECT_EQ(decode_error(advertisement(cat({rate_block(40, 1, 0, links), rate_block(24, 1, 0, more), rate_block(1, 1, 0, one)}))),
            LpaDecodeError::kTooManyLinks);
}

TEST(LpaDecode, Solicitation) {
  LpaMessage message;
  ASSERT_EQ(decode({0x10, 0x02, 0x00, 0x0C, 0x00, 0x00, 0x00, 0x2A, 0x00, 0x00, 0x00, 0x03}, &message),
            LpaDecodeError::kOk);
  EXPECT_EQ(message.type, LpaMessageType::kSolicitation);
  EXPECT_EQ(message.modem_id, 42u);
  EXPECT_EQ(message.sequence, 3u);
  EXPECT_TRUE(message.links.empty());
  // Blocks in a solicitation are framed but not read: even a broken rate block is skipped...
  ASSERT_EQ(decode(datagram(kSolicitation, rate_block(9, 7, 0, {})), &message), LpaDecodeError::kOk);
  EXPECT_TRUE(message.links.empty());
  // ...a good one too...
  ASSERT_EQ(decode(datagram(kSolicitation, rate_block(1, 1, 0, link32(1, kU, 5, 0, 0))), &message), LpaDecodeError::kOk);
  EXPECT_TRUE(message.links.empty());
  // ...but one that runs past the end is malformed.
  Bytes overrun = datagram(kSolicitation, block(1, {0, 0, 0, 0}));
  set16(overrun, 14, 5);
  EXPECT_EQ(decode_error(overrun), LpaDecodeError::kBlockTruncated);
}

// ---- malformed messages ---------------------------------------------------------------------

TEST(LpaDecode, EveryLengthShorterThanTheHeader) {
  for (std::size_t length = 0; length < kLpaHeaderBytes; ++length)
    EXPECT_EQ(decode_error(Bytes(kExample.begin(), kExample.begin() + static_cast<long>(length))),
              LpaDecodeError::kHeaderTruncated)
        << length << " bytes";
}

TEST(LpaDecode, MalformedMessages) {
  const Bytes one_link = link32(1, kU, 1000, 0, 0);  // 20 bytes
  auto with_total = [](Bytes bytes, std::size_t total) {
    set16(bytes, 2, total);
    return bytes;
  };
  auto with_byte = [](Bytes bytes, std::size_t at, uint8_t value) {
    bytes[at] = value;
    return bytes;
  };
  struct Case {
    const char* name;
    Bytes bytes;
    LpaDecodeError error;
  };
  const std::vector<Case> cases = {
      {"version 0", with_byte(kExample, 0, 0x00), LpaDecodeError::kBadVersion},
      {"version 2", with_byte(kExample, 0, 0x20), LpaDecodeError::kBadVersion},
      {"version 15", with_byte(kExample, 0, 0xF0), LpaDecodeError::kBadVersion},
      {"type 0", with_byte(kExample, 1, 0), LpaDecodeError::kUnknownType},
      {"type 3", with_byte(kExample, 1, 3), LpaDecodeError::kUnknownType},
      {"type 255", with_byte(kExample, 1, 255), LpaDecodeError::kUnknownType},
      {"total length one short", with_total(kExample, 39), LpaDecodeError::kTotalLengthMismatch},
      {"total length one long", with_total(kExample, 41), LpaDecodeError::kTotalLengthMismatch},
      {"total length 0", with_total(kExample, 0), LpaDecodeError::kTotalLengthMismatch},
      {"total length of the header alone", with_total(kExample, 12), LpaDecodeError::kTotalLengthMismatch},
      {"total length 65535", with_total(kExample, 65535), LpaDecodeError::kTotalLengthMismatch},
      {"trailing byte after the message", cat({kExample, {0}}), LpaDecodeError::kTotalLengthMismatch},
      {"1 byte of block header", advertisement({0x00}), LpaDecodeError::kBlockTruncated},
      {"3 bytes of block header", advertisement({0x00, 0x01, 0x00}), LpaDecodeError::kBlockTruncated},
      {"rate block longer than the datagram", advertisement(cat({be16(1), be16(25), {1, 1, 0, 0}, one_link})),
       LpaDecodeError::kBlockTruncated},
      {"unknown block longer than the datagram", advertisement(cat({be16(9), be16(4), {1, 2, 3}})),
       LpaDecodeError::kBlockTruncated},
      {"block length 65535", advertisement(cat({be16(1), be16(65535), {1, 1, 0, 0}, one_link})),
       LpaDecodeError::kBlockTruncated},
      {"good block, then one past the end", advertisement(cat({rate_block(1, 1, 0, one_link), be16(1), be16(1)})),
       LpaDecodeError::kBlockTruncated},
      {"rate block of 0 bytes", advertisement(block(1, {})), LpaDecodeError::kRateBlockTruncated},
      {"rate block of 3 bytes", advertisement(block(1, {1, 1, 0})), LpaDecodeError::kRateBlockTruncated},
      {"rate size 0", advertisement(rate_block(1, 0, 0, one_link)), LpaDecodeError::kBadRateSize},
      {"rate size 3", advertisement(rate_block(1, 3, 0, cat({one_link, Bytes(24, 0)}))), LpaDecodeError::kBadRateSize},
      {"rate size 255", advertisement(rate_block(0, 255, 0, {})), LpaDecodeError::kBadRateSize},
      {"2 links, room for 1", advertisement(rate_block(2, 1, 0, one_link)), LpaDecodeError::kTooManyLinks},
      {"1 link, no room", advertisement(rate_block(1, 1, 0, {})), LpaDecodeError::kTooManyLinks},
      {"255 links, room for 1", advertisement(rate_block(255, 1, 0, one_link)), LpaDecodeError::kTooManyLinks},
      {"65 links", advertisement(rate_block(65, 1, 0, Bytes(65 * 20, 0))), LpaDecodeError::kTooManyLinks},
      {"rate size 2, 32-bit rates", advertisement(rate_block(1, 2, 0, one_link)), LpaDecodeError::kTooManyLinks},
      {"flag 4, no room", advertisement(rate_block(1, 1, 0, link32(1, kU | k4, 1000, 0, 0))),
       LpaDecodeError::kLinkTruncated},
      {"flag 4, 3 bytes", advertisement(rate_block(1, 1, 0, cat({link32(1, kU | k4, 1000, 0, 0), {192, 0, 2}}))),
       LpaDecodeError::kLinkTruncated},
      {"flag 6, no room", advertisement(rate_block(1, 1, 0, link32(1, kU | k6, 1000, 0, 0))),
       LpaDecodeError::kLinkTruncated},
      {"flag 6, 15 bytes",
       advertisement(rate_block(1, 1, 0, cat({link32(1, kU | k6, 1000, 0, 0), Bytes(kIpv6.begin(), kIpv6.end() - 1)}))),
       LpaDecodeError::kLinkTruncated},
      {"flags 4 and 6, no room", advertisement(rate_block(1, 1, 0, link32(1, kU | k4 | k6, 1000, 0, 0))),
       LpaDecodeError::kLinkTruncated},
      {"flags 4 and 6, room for IPv4 only",
       advertisement(rate_block(1, 1, 0, cat({link32(1, kU | k4 | k6, 1000, 0, 0), kIpv4}))),
       LpaDecodeError::kLinkTruncated},
      {"flags 4 and 6, room for IPv6 only",
       advertisement(rate_block(1, 1, 0, cat({link32(1, kU | k4 | k6, 1000, 0, 0), kIpv6}))),
       LpaDecodeError::kLinkTruncated},
      {"flag 4 on the last of two links, no room",
       advertisement(rate_block(2, 1, 0, cat({one_link, link32(2, kU | k4, 1000, 0, 0)}))),
       LpaDecodeError::kLinkTruncated},
      {"flag 4 on the first of two links eats the second's room",
       advertisement(rate_block(2, 1, 0, cat({link32(1, kU | k4, 1000, 0, 0), one_link}))),
       LpaDecodeError::kTooManyLinks},
      {"a byte after the last link", advertisement(rate_block(1, 1, 0, cat({one_link, {0}}))),
       LpaDecodeError::kRateBlockOverlong},
      {"an address its flags do not announce", advertisement(rate_block(1, 1, 0, cat({one_link, kIpv4}))),
       LpaDecodeError::kRateBlockOverlong},
      {"0 links, 4 bytes more", advertisement(rate_block(0, 1, 0, kIpv4)), LpaDecodeError::kRateBlockOverlong},
      {"good block, then a broken one", advertisement(cat({rate_block(1, 1, 0, one_link), rate_block(1, 3, 0, one_link)})),
       LpaDecodeError::kBadRateSize},
  };
  for (const Case& c : cases) EXPECT_EQ(decode_error(c.bytes), c.error) << c.name;
}

TEST(LpaDecode, AnErrorLeavesTheOutputAsItWas) {
  LpaMessage message;
  message.modem_id = 99;
  message.links.push_back(link(5, true, 1, 2, 3));
  const LpaMessage before = message;
  Bytes broken = advertisement(cat({rate_block(1, 1, 0, link32(1, kU, 1000, 0, 0)), rate_block(1, 0, 0, {})}));
  ASSERT_EQ(decode(broken, &message), LpaDecodeError::kBadRateSize);
  EXPECT_EQ(message, before) << "the first block's link must not leak out";
}

// Every prefix of kRich as it is: the total length no longer matches.
TEST(LpaDecode, EveryTruncationIsRefused) {
  for (std::size_t length = 0; length < kRich.size(); ++length) {
    Bytes prefix(kRich.begin(), kRich.begin() + static_cast<long>(length));
    EXPECT_EQ(decode_error(prefix),
              length < kLpaHeaderBytes ? LpaDecodeError::kHeaderTruncated : LpaDecodeError::kTotalLengthMismatch)
        << length << " bytes";
  }
}

// Every prefix of kRich with the total length patched to match: a cut inside a block runs past
// the end; a cut between blocks is a shorter message that is well formed (the header alone is
// an advertisement without blocks).
TEST(LpaDecode, EveryTruncationWithTheTotalLengthPatched) {
  LpaMessage first_block = rich_expected();
  first_block.links.resize(2);
  LpaMessage header_only = rich_expected();
  header_only.links.clear();
  header_only.some = true;
  for (std::size_t length = kLpaHeaderBytes; length < kRich.size(); ++length) {
    Bytes prefix(kRich.begin(), kRich.begin() + static_cast<long>(length));
    set16(prefix, 2, length);
    LpaMessage message;
    LpaDecodeError error = decode(prefix, &message);
    if (length == kLpaHeaderBytes) {
      ASSERT_EQ(error, LpaDecodeError::kOk);
      EXPECT_EQ(message, header_only);
    } else if (length == kRichFirstBlockEnd || length == kRichSecondBlockEnd) {
      ASSERT_EQ(error, LpaDecodeError::kOk) << length << " bytes";
      EXPECT_EQ(message, first_block) << length << " bytes";
    } else {
      EXPECT_EQ(error, LpaDecodeError::kBlockTruncated) << length << " bytes";
    }
  }
}

// Every cut inside a rate block's value, with the block length and the total length patched to
// match: the block itself is then too short, and the error says where the cut fell.
TEST(LpaDecode, EveryTruncationOfARateBlockWithItsLengthPatched) {
  struct Segment {
    std::size_t end;  // value bytes: a cut before this offset gives `error`
    LpaDecodeError error;
  };
  struct RateBlock {
    const char* name;
    std::size_t value_start;  // in kRich
    std::size_t value_length;
    std::vector<Segment> segments;
  };
  const std::vector<RateBlock> blocks = {
      {"first (32-bit, two links, IPv4 on the second)", 16, 48,
       {{4, LpaDecodeError::kRateBlockTruncated},
        {44, LpaDecodeError::kTooManyLinks},  // inside either link's fixed part, or no room for the second
        {48, LpaDecodeError::kLinkTruncated}}},
      {"second (64-bit, one link, IPv4 and IPv6)", kRichSecondBlockEnd + 4, 56,
       {{4, LpaDecodeError::kRateBlockTruncated},
        {36, LpaDecodeError::kTooManyLinks},
        {56, LpaDecodeError::kLinkTruncated}}},
  };
  for (const RateBlock& b : blocks) {
    ASSERT_EQ(kRich[b.value_start - 4], 0x00);
    ASSERT_EQ(kRich[b.value_start - 3], 0x01) << b.name << ": not a rate block";
    ASSERT_EQ(b.segments.back().end, b.value_length);
    for (std::size_t cut = 0; cut < b.value_length; ++cut) {
      Bytes prefix(kRich.begin(), kRich.begin() + static_cast<long>(b.value_start + cut));
      set16(prefix, b.value_start - 2, cut);
      set16(prefix, 2, prefix.size());
      LpaDecodeError expected = LpaDecodeError::kOk;
      for (const Segment& segment : b.segments) {
        if (cut < segment.end) {
          expected = segment.error;
          break;
        }
      }
      EXPECT_EQ(decode_error(prefix), expected) << b.name << ", " << cut << " value bytes";
    }
  }
}

// Every byte of kRich set to every value in turn, in place behind the guard page: whatever the
// decoder makes of it, it stays inside the datagram and within the link limit.
TEST(LpaDecode, EverySingleByteChangeStaysInsideTheDatagram) {
  GuardedBytes guarded(kRich);
  std::set<LpaDecodeError> seen;
  for (std::size_t at = 0; at < kRich.size(); ++at) {
    for (unsigned value = 0; value < 256; ++value) {
      guarded.data()[at] = static_cast<uint8_t>(value);
      LpaMessage message;
      LpaDecodeError error = decode_lpa(guarded.data(), guarded.size(), &message);
      seen.insert(error);
      if (error == LpaDecodeError::kOk) {
        EXPECT_LE(message.links.size(), kLpaMaxLinks);
      }
    }
    guarded.data()[at] = kRich[at];
  }
  EXPECT_EQ(seen.size(), kLpaDecodeErrorCount - 1) << "every outcome but header_truncated reached";
  EXPECT_EQ(seen.count(LpaDecodeError::kHeaderTruncated), 0u);
}

TEST(LpaDecode, ErrorNamesAreUniqueCounterNamesWithHelp) {
  std::set<std::string> names;
  for (std::size_t e = 1; e < kLpaDecodeErrorCount; ++e) {
    auto error = static_cast<LpaDecodeError>(e);
    std::string name(lpa_decode_error_name(error));
    EXPECT_FALSE(name.empty()) << e;
    EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"), std::string::npos) << name;
    EXPECT_FALSE(lpa_decode_error_help(error).empty()) << name;
    EXPECT_TRUE(names.insert(name).second) << name << " twice";
  }
  EXPECT_EQ(lpa_decode_error_name(LpaDecodeError::kOk), "ok");
  EXPECT_EQ(lpa_decode_error_name(LpaDecodeError::kHeaderTruncated), "header_truncated");
  EXPECT_EQ(lpa_decode_error_name(LpaDecodeError::kLinkTruncated), "link_truncated");
  EXPECT_EQ(lpa_decode_error_name(LpaDecodeError::kRateBlockOverlong), "rate_block_overlong");
}

// ---- encoding -------------------------------------------------------------------------------

TEST(LpaEncode, TheFormatsExample) {
  LpaMessage message;
  message.modem_id = 42;
  message.sequence = 7;
  message.some = false;
  message.links.push_back(link(1, true, 2'000'000, 128'000, 8'000'000));
  EXPECT_EQ(encode_lpa_advertisement(message, 1), kExample);
}

TEST(LpaEncode, Solicitation) {
  EXPECT_EQ(encode_lpa_solicitation(42, 3), Bytes({0x10, 0x02, 0x00, 0x0C, 0x00, 0x00, 0x00, 0x2A, 0x00, 0x00, 0x00, 0x03}));
  LpaMessage message;
  ASSERT_EQ(decode(encode_lpa_solicitation(0xFFFFFFFF, 0x80000000), &message), LpaDecodeError::kOk);
  EXPECT_EQ(message.type, LpaMessageType::kSolicitation);
  EXPECT_EQ(message.modem_id, 0xFFFFFFFFu);
  EXPECT_EQ(message.sequence, 0x80000000u);
}

TEST(LpaEncode, RoundTrips) {
  auto message = [](bool some, std::vector<LpaLink> links) {
    LpaMessage m;
    m.modem_id = 0xDEADBEEF;
    m.sequence = 0xFFFFFFFF;
    m.some = some;
    m.links = std::move(links);
    return m;
  };
  LpaLink download = link(2, true, 20'000'000, 1'000'000, 24'000'000);
  download.incoming = true;
  LpaLink down = link(3, false, 5'000'000, 0, 0);  // down: current keeps the rate before the drop
  LpaLink both = link(4, true, UINT32_MAX, 0, UINT32_MAX);
  both.both_directions = true;
  LpaLink v4 = link(5, true, 1, 2, 3);
  v4.ipv4 = 0xC0000201;
  LpaLink v6 = link(6, true, 1, 2, 3);
  v6.ipv6 = ipv6_array();
  LpaLink v4v6 = v4;
  v4v6.ipv6 = ipv6_array();
  LpaLink fast = link(7, true, 10'000'000'000, 4'294'967'296, UINT64_MAX);
  std::vector<LpaLink> sixty_four;
  for (uint32_t i = 0; i < kLpaMaxLinks; ++i) sixty_four.push_back(link(i, i % 2 == 0, i * 1000, i, i * 2000));

  struct Case {
    const char* name;
    LpaMessage message;
    bool fits_32_bits;
  };
  const std::vector<Case> cases = {
      {"no links, All", message(false, {}), true},
      {"no links, Some", message(true, {}), true},
      {"both directions of a link", message(false, {link(2, true, 8'000'000, 0, 0), download}), true},
      {"down", message(true, {down}), true},
      {"B, 32-bit maximum", message(false, {both}), true},
      {"addresses", message(false, {v4, v6, v4v6}), true},
      {"64 links", message(false, sixty_four), true},
      {"beyond 32 bits", message(true, {fast, v4v6}), false},
  };
  for (const Case& c : cases) {
    for (uint8_t rate_size : {uint8_t{1}, uint8_t{2}}) {
      if (rate_size == 1 && !c.fits_32_bits) continue;
      Bytes bytes = encode_lpa_advertisement(c.message, rate_size);
      EXPECT_EQ(bytes[17], rate_size) << c.name;
      LpaMessage decoded;
      ASSERT_EQ(decode(bytes, &decoded), LpaDecodeError::kOk) << c.name << ", rate size " << int{rate_size};
      EXPECT_EQ(decoded, c.message) << c.name << ", rate size " << int{rate_size};
    }
  }
}

TEST(LpaEncode, RefusesWhatItCannotWrite) {
  LpaMessage good;
  good.links.push_back(link(1, true, 1000, 0, 0));
  LpaMessage solicitation = good;
  solicitation.type = LpaMessageType::kSolicitation;
  LpaMessage fast = good;
  fast.links[0].maximum_bps = uint64_t{UINT32_MAX} + 1;
  LpaMessage crowded;
  crowded.links.resize(kLpaMaxLinks + 1);
  struct Case {
    const char* name;
    const LpaMessage& message;
    uint8_t rate_size;
  };
  const std::vector<Case> cases = {
      {"a solicitation", solicitation, 1},
      {"rate size 0", good, 0},
      {"rate size 3", good, 3},
      {"2^32 bit/s in 32 bits", fast, 1},
      {"65 links", crowded, 2},
  };
  for (const Case& c : cases)
    EXPECT_THROW(encode_lpa_advertisement(c.message, c.rate_size), std::invalid_argument) << c.name;
  EXPECT_NO_THROW(encode_lpa_advertisement(fast, 2));
}

// ---- sequence numbers -----------------------------------------------------------------------

// Advertisements in order of arrival, each with the verdict it must get. The period is 1 s, so a
// modem expires 3 s after its last accepted advertisement.
struct Step {
  uint32_t modem;
  uint32_t sequence;
  uint64_t now_ms;
  Verdict verdict;
  const char* why;
};
constexpr uint32_t kPeriodMs = 1000;

// Runs `steps` through a new tracker; the tracker, for a look at it afterwards.
LpaSequenceTracker run(const std::vector<Step>& steps, uint32_t period_ms = kPeriodMs) {
  LpaSequenceTracker tracker;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    EXPECT_EQ(tracker.observe(s.modem, s.sequence, s.now_ms, period_ms), s.verdict)
        << "step " << i << ": modem " << s.modem << " sequence " << s.sequence << " at " << s.now_ms << " ms: " << s.why;
  }
  return tracker;
}

TEST(LpaSequence, SerialNumberArithmetic) {
  run({
      {1, 100, 0, Verdict::kNew, "first from the modem"},
      {1, 101, 100, Verdict::kNew, "next"},
      {1, 101, 200, Verdict::kDuplicate, "equal"},
      {1, 100, 300, Verdict::kOld, "older"},
      {1, 105, 400, Verdict::kNew, "a gap: lost advertisements"},
      {1, 101, 500, Verdict::kOld, "late, reordered"},
      {1, 105u + 0x7FFFFFFFu, 600, Verdict::kNew, "2^31 - 1 ahead: newer"},
      {1, 105u + 0x7FFFFFFFu + 0x80000000u, 700, Verdict::kOld, "exactly 2^31 ahead: undefined, taken as older"},
      {1, 105u + 0x7FFFFFFFu, 800, Verdict::kDuplicate, "still the last accepted"},
  });
}

TEST(LpaSequence, WrapsFromTheLargestNumberToZero) {
  run({
      {1, 0xFFFFFFFE, 0, Verdict::kNew, "first"},
      {1, 0xFFFFFFFF, 100, Verdict::kNew, "the largest"},
      {1, 0, 200, Verdict::kNew, "wrapped: newer"},
      {1, 0xFFFFFFFF, 300, Verdict::kOld, "before the wrap: older"},
      {1, 1, 400, Verdict::kNew, "after the wrap"},
  });
}

TEST(LpaSequence, NumericBackwardsJumpOverHalfTheSpaceIsAWrapNotARestart) {
  run({
      {1, 0xF0000000, 0, Verdict::kNew, "first"},
      {1, 0x10, 100, Verdict::kNew, "0x10000010 ahead modulo 2^32: serially newer"},
      {1, 0x11, 200, Verdict::kNew, "counts on from there"},
      {1, 0xF0000001, 300, Verdict::kOld, "the old numbering is behind now"},
  });
}

TEST(LpaSequence, RestartAfterSilence) {
  run({
      {1, 5000, 0, Verdict::kNew, "running modem"},
      {1, 5001, 1000, Verdict::kNew, "last accepted at 1000 ms"},
      {1, 1, 2000, Verdict::kOld, "rebooted quickly: 1 s since the last accepted one, not expired"},
      {1, 2, 3000, Verdict::kOld, "2 s: ignored ones do not refresh the expiry"},
      {1, 3, 3999, Verdict::kOld, "1 ms short of 3 periods"},
      {1, 4, 4000, Verdict::kRestart, "3 periods since the last accepted one: expired, restart"},
      {1, 5, 5000, Verdict::kNew, "counts on from the restart"},
      {1, 5001, 5100, Verdict::kNew, "the old numbering is merely newer now"},
  });
}

TEST(LpaSequence, AfterSilenceEqualIsARestartAndNewerIsNew) {
  run({
      {1, 7, 0, Verdict::kNew, "first"},
      {1, 7, 10'000, Verdict::kRestart, "the same number long after: a reboot that started at it"},
      {1, 7, 10'001, Verdict::kDuplicate, "now a duplicate again"},
      {1, 9, 20'000, Verdict::kNew, "newer after silence: accepted as new, not a restart"},
  });
}

TEST(LpaSequence, TheExpiryFollowsThePeriod) {
  run(
      {
          {1, 10, 0, Verdict::kNew, "first"},
          {1, 1, 299, Verdict::kOld, "period 100 ms: not expired before 300 ms"},
          {1, 1, 300, Verdict::kRestart, "expired at 300 ms"},
      },
      100);
}

TEST(LpaSequence, AClockThatWentBackExpiresNothing) {
  run({
      {1, 10, 1'000'000, Verdict::kNew, "first"},
      {1, 1, 0, Verdict::kOld, "earlier than the last accepted one"},
  });
}

TEST(LpaSequence, ModemsAreIndependent) {
  LpaSequenceTracker tracker = run({
      {1, 500, 0, Verdict::kNew, "modem 1 first"},
      {2, 1, 0, Verdict::kNew, "modem 2 first, far behind modem 1"},
      {1, 1, 100, Verdict::kOld, "modem 1's own numbering counts"},
      {2, 2, 100, Verdict::kNew, "modem 2's own numbering counts"},
      {2, 500, 200, Verdict::kNew, "modem 1's number is new for modem 2"},
      {1, 500, 200, Verdict::kDuplicate, "and a duplicate for modem 1"},
      {3, 500, 200, Verdict::kNew, "a third modem"},
  });
  EXPECT_EQ(tracker.modems(), 3u);
}

TEST(LpaSequence, VerdictNames) {
  EXPECT_EQ(lpa_verdict_name(Verdict::kNew), "new");
  EXPECT_EQ(lpa_verdict_name(Verdict::kRestart), "restart");
  EXPECT_EQ(lpa_verdict_name(Verdict::kDuplicate), "duplicate");
  EXPECT_EQ(lpa_verdict_name(Verdict::kOld), "old");
}

}  // namespace
}  // namespace fairgate
