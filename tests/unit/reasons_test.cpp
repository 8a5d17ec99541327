#include "core/reasons.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace fairgate {
namespace {

TEST(Reasons, DropNamesAreUniqueCounterNamesWithHelp) {
  std::set<std::string> names;
  for (std::size_t r = 0; r < kDropReasonCount; ++r) {
    auto reason = static_cast<DropReason>(r);
    std::string name(drop_reason_name(reason));
    EXPECT_FALSE(name.empty()) << r;
    EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"), std::string::npos) << name;
    EXPECT_FALSE(drop_reason_help(reason).empty()) << name;
    EXPECT_TRUE(names.insert(name).second) << name << " twice";
  }
  EXPECT_EQ(drop_reason_name(DropReason::kEthTruncated), "eth_truncated");
  EXPECT_EQ(drop_reason_name(DropReason::kShutdown), "shutdown");
  EXPECT_EQ(drop_reason_name(DropReason::kIpv4BadChecksum), "ipv4_bad_checksum");
}

TEST(Reasons, PuntNamesAreUnique) {
  std::set<std::string> names;
  for (std::size_t r = 0; r < kPuntReasonCount; ++r) {
    std::string name(punt_reason_name(static_cast<PuntReason>(r)));
    EXPECT_FALSE(name.empty());
    EXPECT_TRUE(names.insert(name).second) << name;
  }
  EXPECT_EQ(punt_reason_name(PuntReason::kArp), "arp");
  EXPECT_EQ(punt_reason_name(PuntReason::kResolve), "resolve");
  EXPECT_LE(kPuntReasonCount, 256u) << "PacketMeta::punt_reason is a byte";
}

}  // namespace
}  // namespace fairgate
