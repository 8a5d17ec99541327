#include "control/control_server.h"
#include "control_client.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace fairgate {
namespace {

using nlohmann::json;
using Ordered = nlohmann::ordered_json;

class ControlServerTest : public test::ControlSocketTest {
 protected:
  ControlServerTest() {
    commands.add("version", "the version", [](const JsonField& args) {
      args.reject_unknown({});
      return Ordered{{"version", "test"}};
    });
    commands.add("echo", "returns its args", [](const JsonField& args) { return Ordered(args.raw()); });
  }
};

TEST_F(ControlServerTest, SocketIsGroupReadableOnly) {
  ControlServer server(path, commands);
  EXPECT_EQ(server.path(), path);
  struct stat info {};
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(info.st_mode & 07777, 0660u);
}

TEST_F(ControlServerTest, TwoRequestsInOneWriteGetTwoReplies) {
  ControlServer server(path, commands);
  int fd = connect_client();
  write_all(fd, "{\"command\": \"version\"}\n{\"command\": \"echo\", \"args\": {\"n\": 2}}\n");
  auto got = replies(server, fd, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["ok"], true);
  EXPECT_EQ(got[0]["result"]["version"], "test");
  EXPECT_EQ(got[1]["result"]["n"], 2);
  EXPECT_EQ(drain(server, fd), "") << "exactly one reply per request";
}

TEST_F(ControlServerTest, ARequestSplitAcrossWritesGetsOneReply) {
  ControlServer server(path, commands);
  int fd = connect_client();
  write_all(fd, "{\"command\": \"ec");
  EXPECT_EQ(drain(server, fd), "") << "no reply before the newline";
  write_all(fd, "ho\", \"args\": {\"part\": 2}}\r\n");
  auto got = replies(server, fd, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["result"]["part"], 2);
  EXPECT_EQ(drain(server, fd), "");
}

TEST_F(ControlServerTest, GarbageGetsAnErrorAndTheConnectionKeepsWorking) {
  ControlServer server(path, commands);
  int fd = connect_client();
  write_all(fd, "this is not json\n\n   \n");
  auto got = replies(server, fd, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["ok"], false);
  EXPECT_EQ(got[0]["error"], "request: not valid JSON");
  EXPECT_EQ(drain(server, fd), "") << "blank lines are ignored";
  write_all(fd, "{\"command\": \"version\", \"args\": {\"x\": 1}}\n{\"command\": \"version\"}\n");
  got = replies(server, fd, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["error"], "args.x: unknown field");
  EXPECT_EQ(got[1]["ok"], true);
}

TEST_F(ControlServerTest, SeveralClientsAreServedIndependently) {
  ControlServer server(path, commands);
  int a = connect_client();
  int b = connect_client();
  write_all(a, "{\"command\": \"echo\", \"args\": {\"from\": \"a\"}");
  write_all(b, "{\"command\": \"echo\", \"args\": {\"from\": \"b\"}}\n");
  auto got_b = replies(server, b, 1);
  ASSERT_EQ(got_b.size(), 1u);
  EXPECT_EQ(got_b[0]["result"]["from"], "b");
  write_all(a, "}\n");
  auto got_a = replies(server, a, 1);
  ASSERT_EQ(got_a.size(), 1u);
  EXPECT_EQ(got_a[0]["result"]["from"], "a");
}

TEST_F(ControlServerTest, AClientThatLeavesDoesNotDisturbTheOthers) {
  ControlServer server(path, commands);
  int leaving = connect_client();
  write_all(leaving, "{\"command\": \"version\"}\n");
  disconnect(leaving);
  for (int i = 0; i < 5; ++i) server.poll();
  int fd = connect_client();
  write_all(fd, "{\"command\": \"version\"}\n");
  EXPECT_EQ(replies(server, fd, 1).size(), 1u);
}

TEST_F(ControlServerTest, StaleSocketFileIsReplacedALiveOneIsNot) {
  {
    ControlServer first(path, commands);
    EXPECT_THROW(ControlServer second(path, commands), std::runtime_error) << "another server still answers";
  }
  EXPECT_FALSE(std::filesystem::exists(path)) << "removed when the server goes away";
  // A file left behind by a crash is replaced.
  {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    close(fd);  // bound, never listened: a stale socket file
  }
  ASSERT_TRUE(std::filesystem::exists(path));
  ControlServer server(path, commands);
  int fd = connect_client();
  write_all(fd, "{\"command\": \"version\"}\n");
  EXPECT_EQ(replies(server, fd, 1).size(), 1u);
}

TEST_F(ControlServerTest, PathTooLongIsRefused) {
  EXPECT_THROW(ControlServer(dir + "/" + std::string(120, 'x'), commands), std::runtime_error);
}

// ---- streams -------------------------------------------------------------------------------

// A command that turns its connection into a stream, as flow-watch does. What its reader sends
// is kept and answered, but "quiet" (no answer) and "end" (the handler ends the stream itself).
class ControlStreamTest : public ControlServerTest {
 protected:
  ControlStreamTest() {
    commands.add_for_connection("stream", "a stream", [this](const JsonField& args, int connection) {
      args.reject_unknown({});
      stream = connection;
      server.make_stream(
          connection,
          [this, connection](std::string_view line) -> std::string {
            heard.emplace_back(line);
            if (line == "quiet") return {};
            if (line == "end") {
              server.end_stream(connection, R"({"ended": "by its reader"})");
              return {};
            }
            return json{{"heard", line}}.dump();
          },
          [this] { ++closed; });
      return Ordered{{"streaming", true}};
    });
  }
  // A client whose connection became a stream.
  int open_stream() {
    int fd = connect_client();
    write_all(fd, "{\"command\": \"stream\"}\n");
    auto got = replies(server, fd, 1);
    EXPECT_EQ(got, std::vector<json>{json::parse(R"({"ok": true, "result": {"streaming": true}})")});
    return fd;
  }
  // Line `n` a test pushes: `bytes` long with its newline, its number first.
  static std::string numbered(int n, std::size_t bytes) {
    std::string line = json{{"n", n}, {"pad", ""}}.dump();
    line.insert(line.size() - 2, bytes - 1 - line.size(), 'x');
    return line;
  }

  ControlServer server{path, commands};
  int stream = -1;  // the server's side of the stream's connection
  std::vector<std::string> heard;
  int closed = 0;
};

TEST_F(ControlStreamTest, CarriesPushedLinesAndAnswersTheLinesItsReaderSends) {
  int fd = open_stream();
  EXPECT_TRUE(server.stream_send(stream, R"({"n": 1})", 1 << 20));
  EXPECT_TRUE(server.stream_send(stream, R"({"n": 2})", 1 << 20));
  EXPECT_EQ(replies(server, fd, 2), (std::vector<json>{{{"n", 1}}, {{"n", 2}}}));
  write_all(fd, "hello\n{\"command\": \"version\"}\nquiet\n");
  EXPECT_EQ(replies(server, fd, 2),
            (std::vector<json>{{{"heard", "hello"}}, {{"heard", "{\"command\": \"version\"}"}}}))
      << "a request on a stream is the stream's line, not a command";
  EXPECT_EQ(drain(server, fd), "") << "no answer to \"quiet\"";
  EXPECT_EQ(heard, (std::vector<std::string>{"hello", "{\"command\": \"version\"}", "quiet"}));
  EXPECT_EQ(closed, 0);
}

TEST_F(ControlStreamTest, StreamSendRefusesALineThatWouldPassTheLimitAndQueuesNothing) {
  int fd = open_stream();
  EXPECT_FALSE(server.stream_send(stream, numbered(0, 100), 99)) << "alone more than the limit";
  EXPECT_EQ(drain(server, fd), "");
  EXPECT_TRUE(server.stream_send(stream, numbered(1, 100), 100)) << "exactly the limit";
  EXPECT_EQ(drain(server, fd), numbered(1, 100) + "\n");
}

TEST_F(ControlStreamTest, StreamSendRefusesOnceTheUnreadOutputOfAReaderThatDoesNotReadPassesTheLimit) {
  int fd = open_stream();
  // The kernel's buffer for the connection, small: a reader that does not read fills it soon.
  int bytes = 4096;
  ASSERT_EQ(setsockopt(stream, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes), 0);
  constexpr std::size_t kLine = 200, kLimit = 2000;
  int accepted = 0;
  while (accepted < 100000 && server.stream_send(stream, numbered(accepted, kLine), kLimit)) ++accepted;
  ASSERT_LT(accepted, 100000) << "never refused";
  EXPECT_GT(accepted * kLine, kLimit) << "the socket took lines before the limit counted";
  EXPECT_FALSE(server.stream_send(stream, numbered(accepted, kLine), kLimit)) << "still full";
  // The reader reads: every accepted line, whole and in order, and nothing of the refused ones.
  auto lines = replies(server, fd, static_cast<std::size_t>(accepted));
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(accepted));
  for (int i = 0; i < accepted; ++i) EXPECT_EQ(lines[static_cast<std::size_t>(i)]["n"], i);
  EXPECT_EQ(drain(server, fd), "");
  EXPECT_TRUE(server.stream_send(stream, numbered(accepted, kLine), kLimit)) << "read, it takes lines again";
  EXPECT_EQ(closed, 0);
}

TEST_F(ControlStreamTest, EndStreamWritesTheLastLineAndCloses) {
  int fd = open_stream();
  ASSERT_TRUE(server.stream_send(stream, R"({"n": 1})", 1 << 20));
  server.end_stream(stream, R"({"bye": true})");
  EXPECT_EQ(replies(server, fd, 2), (std::vector<json>{{{"n", 1}}, {{"bye", true}}}));
  EXPECT_TRUE(closed_by_server(server, fd));
  EXPECT_EQ(closed, 0) << "the owner ended it: it is not told";
  EXPECT_FALSE(server.stream_send(stream, R"({"n": 2})", 1 << 20));
}

// The lines a reader got, as numbers (numbered()), and its last line; fails on a torn line.
struct ReadStream {
  std::vector<int> numbers;
  json last;
};
::testing::AssertionResult whole_lines(const std::string& text, ReadStream* read) {
  std::size_t start = 0, newline;
  while ((newline = text.find('\n', start)) != std::string::npos) {
    json line = json::parse(text.substr(start, newline - start), nullptr, false);
    if (line.is_discarded()) return ::testing::AssertionFailure() << "torn line at byte " << start;
    if (line.contains("n")) read->numbers.push_back(line["n"]);
    read->last = line;
    start = newline + 1;
  }
  if (start != text.size()) return ::testing::AssertionFailure() << "unterminated line at byte " << start;
  return ::testing::AssertionSuccess();
}

TEST_F(ControlStreamTest, AReaderThatFellBehindGetsWhatWasQueuedThenTheLastLine) {
  int fd = open_stream();
  int bytes = 4096;
  ASSERT_EQ(setsockopt(stream, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes), 0);
  constexpr std::size_t kLine = 333, kLimit = 3000;
  int accepted = 0;
  while (accepted < 100000 && server.stream_send(stream, numbered(accepted, kLine), kLimit)) ++accepted;
  ASSERT_LT(accepted, 100000) << "never refused";
  server.end_stream(stream, R"({"bye": "fell behind"})");
  EXPECT_FALSE(server.stream_send(stream, numbered(accepted, kLine), kLimit)) << "ended";
  write_all(fd, "hello\n");
  // The reader reads at last: every line it was sent, whole, the last line, the end.
  EXPECT_TRUE(closed_by_server(server, fd));
  ReadStream read;
  ASSERT_TRUE(whole_lines(drain(server, fd), &read));
  EXPECT_EQ(read.last, json::parse(R"({"bye": "fell behind"})"));
  ASSERT_EQ(read.numbers.size(), static_cast<std::size_t>(accepted));
  for (std::size_t i = 0; i < read.numbers.size(); ++i) EXPECT_EQ(read.numbers[i], static_cast<int>(i));
  EXPECT_TRUE(heard.empty()) << "an ended stream reads nothing more";
  EXPECT_EQ(closed, 0);
}

// File descriptors this process has open.
std::size_t open_descriptors() {
  auto entries = std::filesystem::directory_iterator("/proc/self/fd");
  return static_cast<std::size_t>(std::distance(begin(entries), end(entries)));
}

TEST_F(ControlStreamTest, AnEndedStreamWhoseReaderLeavesIsClosedWithoutTellingItsOwner) {
  std::size_t before = open_descriptors();
  int fd = open_stream();
  int bytes = 4096;
  ASSERT_EQ(setsockopt(stream, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes), 0);
  int accepted = 0;
  while (accepted < 100000 && server.stream_send(stream, numbered(accepted, 200), 2000)) ++accepted;
  server.end_stream(stream, R"({"bye": true})");
  EXPECT_EQ(open_descriptors(), before + 2) << "still writing its last line";
  disconnect(fd);
  for (int i = 0; i < 10; ++i) server.poll();
  EXPECT_EQ(open_descriptors(), before) << "the server's side is closed too";
  EXPECT_EQ(closed, 0);
}

TEST_F(ControlStreamTest, ItsOwnerIsToldWhenTheReaderLeaves) {
  int fd = open_stream();
  disconnect(fd);
  for (int i = 0; i < 10; ++i) server.poll();
  EXPECT_EQ(closed, 1);
  EXPECT_FALSE(server.stream_send(stream, R"({"n": 1})", 1 << 20));
  for (int i = 0; i < 10; ++i) server.poll();
  EXPECT_EQ(closed, 1) << "once";
}

TEST_F(ControlStreamTest, AHandlerMayEndItsStreamWithLinesStillUnread) {
  int fd = open_stream();
  write_all(fd, "hello\nend\nafter\n");
  EXPECT_EQ(replies(server, fd, 2), (std::vector<json>{{{"heard", "hello"}}, {{"ended", "by its reader"}}}));
  EXPECT_TRUE(closed_by_server(server, fd));
  EXPECT_EQ(heard, (std::vector<std::string>{"hello", "end"})) << "nothing read after the end";
  EXPECT_EQ(closed, 0);
}

TEST_F(ControlStreamTest, AnOrdinaryConnectionStaysOne) {
  int fd = connect_client();
  write_all(fd, "hello\n{\"command\": \"version\"}\n");
  auto got = replies(server, fd, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["error"], "request: not valid JSON");
  EXPECT_EQ(got[1]["result"]["version"], "test");
  disconnect(fd);
  for (int i = 0; i < 10; ++i) server.poll();
  EXPECT_TRUE(heard.empty());
  EXPECT_EQ(closed, 0);
}

}  // namespace
}  // namespace fairgate
