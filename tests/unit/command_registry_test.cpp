#include "control/command_registry.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace fairgate {
namespace {

using nlohmann::json;
using Ordered = nlohmann::ordered_json;

class CommandRegistryTest : public ::testing::Test {
 protected:
  CommandRegistryTest() {
    commands.add("echo", "returns its args", [](const JsonField& args) { return Ordered(args.raw()); });
    commands.add("ports", "ports; args: port (name, optional)", [](const JsonField& args) {
      args.reject_unknown({"port"});
      if (auto port = args.find("port")) {
        auto name = port->string();
        if (name != "lan0") port->fail("no port named \"" + name + "\"");
      }
      return Ordered::array({{{"name", "lan0"}}});
    });
    commands.add("explode", "throws a plain exception", [](const JsonField&) -> Ordered {
      throw std::runtime_error("boom");
    });
    commands.add("broken-field", "throws a FieldError", [](const JsonField&) -> Ordered {
      throw FieldError("args.port", "no port named \"x\"");
    });
    commands.add("binary", "returns bytes that are not UTF-8", [](const JsonField&) {
      return Ordered(std::string("\xff\xfe ok"));
    });
  }

  json reply(std::string_view line) {
    std::string text = commands.dispatch(line);
    EXPECT_EQ(text.find('\n'), std::string::npos) << "one line per reply";
    return json::parse(text);
  }
  void expect_error(std::string_view line, const std::string& message) {
    json r = reply(line);
    EXPECT_EQ(r["ok"], false) << line;
    EXPECT_EQ(r["error"].get<std::string>(), message) << line;
    EXPECT_FALSE(r.contains("result"));
  }

  CommandRegistry commands;
};

TEST_F(CommandRegistryTest, DispatchesAValidCommand) {
  json r = reply(R"({"command": "echo", "args": {"a": 1, "b": [true]}})");
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["result"], json::parse(R"({"a": 1, "b": [true]})"));
  EXPECT_FALSE(r.contains("error"));
}

TEST_F(CommandRegistryTest, ArgsAreOptionalAndMayBeNull) {
  EXPECT_EQ(reply(R"({"command": "echo"})")["result"], json::object());
  EXPECT_EQ(reply(R"({"command": "echo", "args": null})")["result"], json::object());
  EXPECT_EQ(reply(R"({"command": "ports"})")["result"][0]["name"], "lan0");
}

TEST_F(CommandRegistryTest, MalformedRequests) {
  expect_error(R"({"command": "nope"})", "command: unknown command \"nope\" (see command-list)");
  expect_error(R"({"args": {}})", "command: required");
  expect_error(R"({"command": 7})", "command: must be a string");
  expect_error(R"(["echo"])", "request: must be a JSON object");
  expect_error(R"("echo")", "request: must be a JSON object");
  expect_error("{\"command\": \"echo\"", "request: not valid JSON");
  expect_error("", "request: not valid JSON");
  expect_error("garbage", "request: not valid JSON");
  expect_error(R"({"command": "echo", "args": [1]})", "args: must be an object");
  expect_error(R"({"command": "echo", "args": "port=lan0"})", "args: must be an object");
  expect_error(R"({"command": "echo", "verbose": true})", "verbose: unknown field (a request has command and args)");
}

TEST_F(CommandRegistryTest, HandlerFieldErrorsNameTheArgument) {
  expect_error(R"({"command": "broken-field"})", "args.port: no port named \"x\"");
  expect_error(R"({"command": "ports", "args": {"port": "wan9"}})", "args.port: no port named \"wan9\"");
  expect_error(R"({"command": "ports", "args": {"port": 3}})", "args.port: must be a string, not number");
  expect_error(R"({"command": "ports", "args": {"prot": "lan0"}})", "args.prot: unknown field");
}

TEST_F(CommandRegistryTest, OtherExceptionsDoNotEscape) {
  std::string text;
  EXPECT_NO_THROW(text = commands.dispatch(R"({"command": "explode"})"));
  json r = json::parse(text);
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["error"], "explode: boom");
}

TEST_F(CommandRegistryTest, InvalidUtf8InAResultIsStillValidJson) {
  std::string text;
  EXPECT_NO_THROW(text = commands.dispatch(R"({"command": "binary"})"));
  json r = json::parse(text);
  EXPECT_EQ(r["ok"], true);
}

TEST_F(CommandRegistryTest, ListIsSortedWithHelp) {
  Ordered list = commands.list();
  ASSERT_EQ(list.size(), 5u);
  std::vector<std::string> names;
  for (const auto& entry : list) {
    names.push_back(entry["name"]);
    EXPECT_FALSE(entry["help"].get<std::string>().empty()) << entry.dump();
    EXPECT_EQ(entry.size(), 2u);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"binary", "broken-field", "echo", "explode", "ports"}));
  EXPECT_EQ(list[2]["help"], "returns its args");
}

TEST_F(CommandRegistryTest, AddingAgainReplaces) {
  commands.add("echo", "new help", [](const JsonField&) { return Ordered(42); });
  EXPECT_EQ(reply(R"({"command": "echo"})")["result"], 42);
  EXPECT_EQ(commands.list().size(), 5u);
}

}  // namespace
}  // namespace fairgate
