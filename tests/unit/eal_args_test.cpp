#include "config/config.h"
#include "ports/eal_args.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace fairgate {
namespace {

using Args = std::vector<std::string>;

bool has(const Args& args, const std::string& arg) { return std::find(args.begin(), args.end(), arg) != args.end(); }
// The value that follows `option`, or "" when the option is absent.
std::string value_of(const Args& args, const std::string& option) {
  auto it = std::find(args.begin(), args.end(), option);
  return it == args.end() || it + 1 == args.end() ? "" : *(it + 1);
}

Config two_workers(const std::string& hugepages, const std::string& wan_device = "net_af_packet1,iface=wan0") {
  return parse_config(R"({"eal": {"memory_mb": 512, "hugepages": ")" + hugepages +
                          R"(", "file_prefix": "unit", "extra_args": ["--log-level=pmd.net.ring:debug"]},
    "dataplane": {"workers": 2},
    "ports": [
      {"name": "lan0", "role": "lan", "device": "net_af_packet0,iface=lan0", "address": "10.10.0.1/24"},
      {"name": "wan0", "role": "wan", "device": ")" + wan_device +
                          R"(", "address": "198.51.100.2/25", "gateway": "198.51.100.1"}]})");
}

TEST(EalArgs, WithoutHugepagesRunsNoHugeAndNeverInMemory) {
  std::string note;
  Args args = build_eal_args(two_workers("auto"), {3, 5}, HugepageInfo{10}, note);
  EXPECT_EQ(args.front(), "fairgate");
  EXPECT_EQ(value_of(args, "--lcores"), "0@3,1@5,2@3") << "management on the first CPU, workers after, wrapping";
  EXPECT_EQ(value_of(args, "--main-lcore"), "0");
  EXPECT_EQ(value_of(args, "--file-prefix"), "unit");
  EXPECT_EQ(value_of(args, "-m"), "512");
  EXPECT_TRUE(has(args, "--no-huge"));
  // EAL 22.11 rejects --in-memory with --no-huge ("--legacy-mem is not compatible").
  EXPECT_FALSE(has(args, "--in-memory"));
  EXPECT_NE(note.find("10 free 2 MB hugepages"), std::string::npos) << note;
  EXPECT_TRUE(has(args, "--no-pci"));
  EXPECT_EQ(args.back(), "--log-level=pmd.net.ring:debug") << "extra_args come last so they can override";
  // The vdevs with their derived queue pairs.
  EXPECT_TRUE(has(args, "net_af_packet0,iface=lan0,qpairs=2"));
  EXPECT_TRUE(has(args, "net_af_packet1,iface=wan0,qpairs=2"));
}

TEST(EalArgs, EnoughHugepagesRunInMemory) {
  std::string note;
  Args args = build_eal_args(two_workers("auto"), {0}, HugepageInfo{256}, note);
  EXPECT_TRUE(has(args, "--in-memory"));
  EXPECT_FALSE(has(args, "--no-huge"));
  EXPECT_TRUE(note.empty()) << note;
  EXPECT_EQ(value_of(args, "--lcores"), "0@0,1@0,2@0");
}

TEST(EalArgs, HugepagesNoAndYesAreObeyed) {
  std::string note;
  Args off = build_eal_args(two_workers("no"), {0}, HugepageInfo{100000}, note);
  EXPECT_TRUE(has(off, "--no-huge"));
  EXPECT_FALSE(has(off, "--in-memory"));
  EXPECT_EQ(note, "hugepages off by configuration");
  note.clear();
  Args on = build_eal_args(two_workers("yes"), {0}, HugepageInfo{0}, note);
  EXPECT_TRUE(has(on, "--in-memory"));
  EXPECT_FALSE(has(on, "--no-huge"));
}

TEST(EalArgs, PciDevicesAreAllowListed) {
  std::string note;
  Args args = build_eal_args(two_workers("auto", "0000:03:00.0"), {0}, HugepageInfo{0}, note);
  EXPECT_EQ(value_of(args, "-a"), "0000:03:00.0");
  EXPECT_FALSE(has(args, "--no-pci"));
  EXPECT_EQ(value_of(args, "--vdev"), "net_af_packet0,iface=lan0,qpairs=2");
}

TEST(EalArgs, AllowedCpusPreferTheConfig) {
  Config config = two_workers("auto");
  config.eal.cpus = {4, 6};
  EXPECT_EQ(allowed_cpus(config), (std::vector<unsigned>{4, 6}));
  config.eal.cpus.clear();
  EXPECT_FALSE(allowed_cpus(config).empty()) << "the process's affinity";
}

}  // namespace
}  // namespace fairgate
