#include "core/checksum.h"
#include "test_packets.h"

#include <rte_byteorder.h>

#include <gtest/gtest.h>

#include <cstring>
#include <random>

namespace fairgate::test {
namespace {

// A 16-bit result of fold()/compute() is in memory order: read it as the two bytes it
// would occupy in the packet.
uint16_t as_network(uint16_t memory_order) { return rte_be_to_cpu_16(memory_order); }

uint16_t load16(const uint8_t* p) {
  uint16_t value;
  std::memcpy(&value, p, 2);
  return value;
}
uint32_t load32(const uint8_t* p) {
  uint32_t value;
  std::memcpy(&value, p, 4);
  return value;
}
void store16(uint8_t* p, uint16_t value) { std::memcpy(p, &value, 2); }

TEST(Checksum, Rfc1071Example) {
  // RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is 2ddf0, folded ddf2.
  const uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(as_network(checksum::fold(data, sizeof data)), 0xddf2);
  EXPECT_EQ(as_network(checksum::compute(data, sizeof data)), static_cast<uint16_t>(~0xddf2));
}

TEST(Checksum, OddLengthPadsTheLastByteWithZero) {
  const uint8_t data[] = {0x01, 0x02, 0x03};  // 0102 + 0300
  EXPECT_EQ(as_network(checksum::fold(data, sizeof data)), 0x0402);
  EXPECT_EQ(as_network(checksum::fold(data, 1)), 0x0100);
  EXPECT_EQ(checksum::fold(data, 0), 0);
}

TEST(Checksum, CarriesWrapAround) {
  const uint8_t data[] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x02};  // ffff + ffff + 0002 = 2 0000 -> 0002
  EXPECT_EQ(as_network(checksum::fold(data, sizeof data)), 0x0002);
}

TEST(Checksum, InitialValueContinuesASum) {
  const Bytes data = payload_bytes(40, 3);
  uint16_t first = checksum::fold(data.data(), 16);
  EXPECT_EQ(checksum::fold(data.data() + 16, 24, first), checksum::fold(data.data(), 40));
}

TEST(Checksum, CapturedIpv4Header) {
  // A real UDP packet's header, 192.168.0.1 -> 192.168.0.199, checksum b861.
  uint8_t header[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                      0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(checksum::fold(header, sizeof header), 0xffff) << "a correct header sums to all ones";
  header[10] = header[11] = 0;
  EXPECT_EQ(as_network(checksum::compute(header, sizeof header)), 0xb861);
  header[8] = 0x3f;  // TTL 63: the header no longer verifies with the old checksum
  header[10] = 0xb8;
  header[11] = 0x61;
  EXPECT_NE(checksum::fold(header, sizeof header), 0xffff);
}

TEST(Checksum, HeaderBuiltByTheTestHelpersVerifies) {
  Bytes packet = ipv4(ip("10.10.0.11"), ip("192.0.2.10"), kProtoUdp, payload_bytes(8));
  EXPECT_EQ(checksum::fold(packet.data(), 20), 0xffff);
}

TEST(Checksum, AgreesWithAReferenceSumOnRandomData) {
  std::mt19937 random(1071);
  for (int round = 0; round < 2000; ++round) {
    Bytes data(random() % 200);
    for (auto& byte : data) byte = static_cast<uint8_t>(random());
    SCOPED_TRACE("length " + std::to_string(data.size()));
    EXPECT_EQ(as_network(checksum::compute(data.data(), data.size())), inet_checksum(data));
  }
}

TEST(Checksum, Rfc1624Example) {
  // RFC 1624 section 4: m 5555 -> 3285 with the other words summing to cd7a. The full
  // recomputation gives 0000; eqn. 3 must too (eqn. 2 would wrongly give ffff).
  EXPECT_EQ(checksum::update16(0xdd2f, 0x5555, 0x3285), 0x0000);
  EXPECT_EQ(checksum::update16(rte_cpu_to_be_16(0xdd2f), rte_cpu_to_be_16(0x5555), rte_cpu_to_be_16(0x3285)),
            rte_cpu_to_be_16(0x0000));
}

// A random IPv4 header (with options sometimes) and its correct checksum, in memory order.
Bytes random_header(std::mt19937& random) {
  Bytes header(20 + 4 * (random() % 3));
  for (auto& byte : header) byte = static_cast<uint8_t>(random());
  header[0] = static_cast<uint8_t>(0x40 | header.size() / 4);
  store16(&header[10], 0);
  store16(&header[10], checksum::compute(header.data(), header.size()));
  return header;
}

TEST(Checksum, Update16EqualsFullRecompute) {
  std::mt19937 random(1624);
  for (int round = 0; round < 20000; ++round) {
    Bytes header = random_header(random);
    std::size_t word = 2 * (random() % (header.size() / 2));
    if (word == 10) continue;  // the checksum itself
    uint16_t old_word = load16(&header[word]);
    uint16_t new_word = static_cast<uint16_t>(round % 7 == 0 ? ~old_word : random());
    if (round % 11 == 0) new_word = 0;
    store16(&header[word], new_word);
    uint16_t incremental = checksum::update16(load16(&header[10]), old_word, new_word);
    store16(&header[10], 0);
    uint16_t full = checksum::compute(header.data(), header.size());
    ASSERT_EQ(incremental, full) << "round " << round << ", word at " << word;
  }
}

TEST(Checksum, Update32EqualsFullRecompute) {
  std::mt19937 random(791);
  for (int round = 0; round < 20000; ++round) {
    Bytes header = random_header(random);
    std::size_t field = round % 2 ? 12 : 16;  // source or destination address
    uint32_t old_value = load32(&header[field]);
    uint32_t new_value = static_cast<uint32_t>(random());
    std::memcpy(&header[field], &new_value, 4);
    uint16_t incremental = checksum::update32(load16(&header[10]), old_value, new_value);
    store16(&header[10], 0);
    ASSERT_EQ(incremental, checksum::compute(header.data(), header.size())) << "round " << round;
  }
}

// A 20-byte header whose checksum field (memory order) is `target`, with `word` set to
// `value`: the id field absorbs the difference.
Bytes header_with_checksum(uint16_t target, std::size_t word, uint16_t value) {
  Bytes header = ipv4(ip("10.10.0.11"), ip("192.0.2.10"), kProtoUdp, {});
  store16(&header[word], value);
  store16(&header[4], 0);
  store16(&header[10], 0);
  // The ones-complement sum must come to ~target: id = ~target - others = ~target + ~others.
  uint16_t others = checksum::fold(header.data(), header.size());
  uint16_t id = checksum::fold(nullptr, 0, uint32_t{static_cast<uint16_t>(~target)} + static_cast<uint16_t>(~others));
  store16(&header[4], id);
  store16(&header[10], target);
  return header;
}

TEST(Checksum, UpdateAtTheCarryEdges) {
  // Checksums and words at the extremes, where the second end-around carry fold matters
  // (e.g. checksum 0000, word 0000 -> 0001: the sum is 1ffff) and random data rarely goes.
  const uint16_t extremes[] = {0x0000, 0x0001, 0x00ff, 0x7fff, 0x8000, 0xff00, 0xfffe, 0xffff};
  int checked = 0;
  for (uint16_t target : {0x0000, 0x0001, 0x8000, 0xfffe})
    for (std::size_t word : {6, 8, 12, 14, 16, 18})
      for (uint16_t old_word : extremes) {
        Bytes header = header_with_checksum(target, word, old_word);
        ASSERT_EQ(checksum::fold(header.data(), 20), 0xffff) << "a valid header to start from";
        for (uint16_t new_word : extremes) {
          Bytes changed = header;
          store16(&changed[word], new_word);
          uint16_t incremental = checksum::update16(target, old_word, new_word);
          store16(&changed[10], 0);
          ASSERT_EQ(incremental, checksum::compute(changed.data(), 20))
              << std::hex << "checksum " << target << ", word at " << std::dec << word << std::hex << ": " << old_word
              << " -> " << new_word;
          ++checked;
        }
      }
  EXPECT_EQ(checked, 4 * 6 * 8 * 8);
}

TEST(Checksum, TtlDecrementKeepsTheHeaderValid) {
  Bytes packet = ipv4(ip("10.10.0.11"), ip("192.0.2.10"), kProtoTcp, {}, {.ttl = 200});
  for (int ttl = 200; ttl > 1; --ttl) {
    uint16_t old_word = load16(&packet[8]);
    --packet[8];
    store16(&packet[10], checksum::update16(load16(&packet[10]), old_word, load16(&packet[8])));
    ASSERT_EQ(checksum::fold(packet.data(), 20), 0xffff) << "TTL " << ttl - 1;
  }
}

}  // namespace
}  // namespace fairgate::test
