#include "control/table_format.h"

#include <gtest/gtest.h>

namespace fairgate::ctl {
namespace {

Json parse(const char* text) { return Json::parse(text); }

TEST(FormatValue, ScalarsAndNested) {
  EXPECT_EQ(format_value(parse("\"lan0\"")), "lan0");
  EXPECT_EQ(format_value(parse("true")), "true");
  EXPECT_EQ(format_value(parse("null")), "-");
  EXPECT_EQ(format_value(parse("-7")), "-7");
  EXPECT_EQ(format_value(parse("2.5")), "2.5");
  EXPECT_EQ(format_value(parse("[1,\"a\"]")), "[1,\"a\"]");
  EXPECT_EQ(format_value(parse("{\"b\":1,\"a\":2}")), "{\"b\":1,\"a\":2}");
  EXPECT_EQ(format_value(parse("\"two\\nlines\"")), "two lines");
}

TEST(FormatValue, BigNumbersHaveNoExponent) {
  EXPECT_EQ(format_value(parse("18446744073709551615")), "18446744073709551615");
  EXPECT_EQ(format_value(parse("123456789012345")), "123456789012345");
  EXPECT_EQ(format_value(parse("1.5e10")), "15000000000");
  EXPECT_EQ(format_value(parse("1e3")), "1000");
}

TEST(DisplayWidth, CountsCodePoints) {
  EXPECT_EQ(display_width("abc"), 3u);
  EXPECT_EQ(display_width("\xc3\xa9t\xc3\xa9"), 3u);  // "été"
}

TEST(FormatTable, UnionOfKeysInFirstSeenOrderNumbersRightAligned) {
  const Json rows = parse(R"([
    {"name": "lan0", "rx_packets": 12, "up": true},
    {"name": "wan0", "rx_packets": 98765432101, "vdev": {"iface": "wan0"}}
  ])");
  EXPECT_EQ(format_table(rows),
            "name   rx_packets  up    vdev\n"
            "----  -----------  ----  ----------------\n"
            "lan0           12  true\n"
            "wan0  98765432101        {\"iface\":\"wan0\"}\n");
}

TEST(FormatTable, IndentAndNullCells) {
  const Json rows = parse(R"([{"a": null, "b": 1}, {"a": 22, "b": null}])");
  EXPECT_EQ(format_table(rows, 2),
            "   a  b\n"
            "  --  -\n"
            "   -  1\n"
            "  22  -\n");
}

TEST(FormatObject, NestedObjectsAndTables) {
  const Json stats = parse(R"({
    "drops": {"ipv4_bad_checksum": 3, "no_route": 120},
    "stages": [{"stage": "parse", "packets": 1200}],
    "mempool": {"size": 16383, "in_use": 12, "name": "mbufs"}
  })");
  EXPECT_EQ(format_object(stats),
            "drops:\n"
            "  ipv4_bad_checksum:   3\n"
            "  no_route:          120\n"
            "stages:\n"
            "  stage  packets\n"
            "  -----  -------\n"
            "  parse     1200\n"
            "mempool:\n"
            "  size:   16383\n"
            "  in_use: 12\n"
            "  name:   mbufs\n");
}

TEST(FormatResult, Shapes) {
  EXPECT_EQ(format_result(Json()), "ok\n");
  EXPECT_EQ(format_result(parse("[]")), "(none)\n");
  EXPECT_EQ(format_result(parse("{}")), "(none)\n");
  EXPECT_EQ(format_result(parse("\"digraph {\\n}\"")), "digraph {\n}\n");
  EXPECT_EQ(format_result(parse("[1, \"x\"]")), "1\nx\n");
  EXPECT_EQ(format_result(parse("42")), "42\n");
  EXPECT_EQ(format_result(parse(R"([{"name": "version", "help": "build"}])")),
            "name     help\n"
            "-------  -----\n"
            "version  build\n");
}

}  // namespace
}  // namespace fairgate::ctl
