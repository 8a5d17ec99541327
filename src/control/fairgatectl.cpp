// fairgatectl: client for fairgate's control socket.
//
//   fairgatectl [--socket PATH] [--json] [--timeout SECONDS] COMMAND [KEY=VALUE...]
//
// Sends {"command": COMMAND, "args": {KEY: VALUE, ...}} as one line on the UNIX stream socket,
// reads one reply line, and prints its result as tables (or the reply as received with --json).
// flow-watch is a stream: after its reply every line fairgate sends (a flow record) is printed
// as it comes, and lines typed on standard input (pause, resume, stop) go to fairgate.
// Exit status: 0 ok, 1 fairgate answered with an error, 2 usage error, no connection or timeout.
#include "control/table_format.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using fairgate::ctl::Json;
using Clock = std::chrono::steady_clock;

constexpr const char* kDefaultSocket = "/run/fairgate/fairgate.sock";
constexpr double kDefaultTimeoutSeconds = 10.0;
constexpr std::size_t kMaxReplyBytes = 64u << 20;  // a reply longer than this is not fairgate's

enum Exit : int { kOk = 0, kCommandFailed = 1, kUnreachable = 2, kUsage = 2 };

const char* const kUsageText =
    "usage: fairgatectl [--socket PATH] [--json] [--timeout SECONDS] COMMAND [KEY=VALUE...]\n"
    "\n"
    "Sends COMMAND to fairgate's control socket and prints the result as tables.\n"
    "\n"
    "options:\n"
    "  --socket PATH      control socket (default: $FAIRGATE_SOCKET if set,\n"
    "                     else /run/fairgate/fairgate.sock)\n"
    "  --json             print the reply object as received (for scripts);\n"
    "                     exit 1 if it is an error\n"
    "  --timeout SECONDS  how long to wait for the reply (default 10; 0 waits forever)\n"
    "  -h, --help         show this help\n"
    "\n"
    "arguments:\n"
    "  KEY=VALUE          becomes \"KEY\": VALUE in the command's args; VALUE is read as JSON\n"
    "                     when it parses (10, 2.5, true, null, [1,2], \"text\", {\"a\":1}),\n"
    "                     otherwise it is a string (port=lan0, addr=10.10.0.11)\n"
    "\n"
    "commands:\n"
    "  fairgatectl help             the commands fairgate knows, with their help text\n"
    "  fairgatectl flow-watch [filter]  a live stream of flow records, one JSON object per\n"
    "                               line; type pause, resume or stop (Enter) to control it\n"
    "  fairgatectl help COMMAND     the help text of one command\n"
    "\n"
    "exit status: 0 ok, 1 fairgate answered with an error,\n"
    "             2 usage error, cannot connect, or no reply in time\n";

const char* const kTryHelp = "(fairgatectl --help shows the usage)\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Connection, timeout and protocol failures: exit 2 with `message` on stderr.
struct Unreachable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string socket_path;
  bool json = false;
  double timeout_seconds = kDefaultTimeoutSeconds;  // 0: no limit
  bool help = false;
  std::string command;
  std::vector<std::string> args;
};

double parse_timeout(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double seconds = std::strtod(text.c_str(), &end);
  if (text.empty() || errno != 0 || *end != '\0' || !std::isfinite(seconds) || seconds < 0) {
    throw UsageError("--timeout: '" + text + "' is not a number of seconds >= 0");
  }
  return seconds;
}

Options parse_options(int argc, char** argv) {
  Options opt;
  const char* env_socket = std::getenv("FAIRGATE_SOCKET");
  opt.socket_path = (env_socket != nullptr && *env_socket != '\0') ? env_socket : kDefaultSocket;

  // Options may stand anywhere (`fairgatectl ports --json` works); "--" ends them.
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (options_done || arg.empty() || arg[0] != '-') {
      if (opt.command.empty()) {
        opt.command = arg;
      } else {
        opt.args.push_back(arg);
      }
      continue;
    }
    // "--name VALUE" or "--name=VALUE".
    auto value_of = [&](const std::string& name) -> std::optional<std::string> {
      if (arg == name) {
        if (i + 1 >= argc) throw UsageError(name + " needs a value");
        return std::string(argv[++i]);
      }
      if (arg.rfind(name + "=", 0) == 0) return arg.substr(name.size() + 1);
      return std::nullopt;
    };
    if (arg == "--") {
      options_done = true;
    } else if (arg == "-h" || arg == "--help") {
      opt.help = true;
    } else if (arg == "--json") {
      opt.json = true;
    } else if (auto path = value_of("--socket")) {
      if (path->empty()) throw UsageError("--socket: empty path");
      opt.socket_path = *path;
    } else if (auto timeout = value_of("--timeout")) {
      opt.timeout_seconds = parse_timeout(*timeout);
    } else {
      throw UsageError("unknown option '" + arg + "'");
    }
  }
  return opt;
}

// KEY=VALUE words -> the args object. VALUE is JSON when it parses as JSON, else a string.
Json parse_command_args(const std::vector<std::string>& words) {
  Json args = Json::object();
  for (const std::string& word : words) {
    const auto eq = word.find('=');
    if (eq == std::string::npos) {
      throw UsageError("argument '" + word + "' is not KEY=VALUE");
    }
    const std::string key = word.substr(0, eq);
    const std::string text = word.substr(eq + 1);
    if (key.empty()) throw UsageError("argument '" + word + "' has no key before '='");
    if (args.contains(key)) throw UsageError("argument '" + key + "' given twice");
    Json value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    args[key] = value.is_discarded() ? Json(text) : std::move(value);
  }
  return args;
}

class Connection {
 public:
  Connection(const std::string& path, double timeout_seconds) : path_(path) {
    if (timeout_seconds > 0) {
      deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(timeout_seconds));
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
      throw Unreachable("fairgatectl: socket path too long (" + std::to_string(path.size()) +
                        " bytes, at most " + std::to_string(sizeof addr.sun_path - 1) + "): " +
                        path);
    }
    std::memcpy(addr.sun_path, path.data(), path.size());

    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw Unreachable(std::string("fairgatectl: socket: ") + std::strerror(errno));
    if (deadline_) {
      // connect() on a UNIX socket blocks only while the server's backlog is full;
      // SO_SNDTIMEO bounds that wait.
      timeval tv{};
      tv.tv_sec = static_cast<time_t>(timeout_seconds);
      tv.tv_usec = static_cast<suseconds_t>((timeout_seconds - std::floor(timeout_seconds)) * 1e6);
      if (tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1;
      ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    int rc;
    do {
      rc = ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
      const int err = errno;
      ::close(fd_);
      fd_ = -1;
      if (err == EAGAIN || err == EWOULDBLOCK) timed_out("connecting to");
      std::string message = "fairgatectl: cannot connect to " + path + ": " + std::strerror(err);
      if (err == EACCES || err == EPERM) {
        message += "\n(the socket is mode 0660: run as root or as a member of its group)";
      } else {
        message += "\n(is fairgate running? the socket path is set in its config; "
                   "use --socket PATH or $FAIRGATE_SOCKET)";
      }
      throw Unreachable(message);
    }
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }

  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }
  // What arrived after the last line read_line returned.
  std::string take_pending() { return std::exchange(pending_, {}); }
  // Reads from now on wait as long as it takes (a stream has no end in sight).
  void no_deadline() { deadline_.reset(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void send_line(const std::string& line) {
    std::size_t sent = 0;
    while (sent < line.size()) {
      wait_for(POLLOUT, "sending to");
      const ssize_t n = ::send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
        throw Unreachable("fairgatectl: sending to " + path_ + ": " + std::strerror(errno));
      }
      sent += static_cast<std::size_t>(n);
    }
  }

  // One line, without its '\n'. A reply cut short by the server closing is returned as is
  // if it has any bytes (the caller's parse decides whether it is whole).
  std::string read_line() {
    std::string data = std::move(pending_);
    pending_.clear();
    if (const auto nl = data.find('\n'); nl != std::string::npos) {
      pending_ = data.substr(nl + 1);
      data.resize(nl);
      return data;
    }
    char buf[65536];
    for (;;) {
      wait_for(POLLIN, "waiting for a reply from");
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
        throw Unreachable("fairgatectl: reading from " + path_ + ": " + std::strerror(errno));
      }
      if (n == 0) {
        if (data.empty()) {
          throw Unreachable("fairgatectl: fairgate closed the connection without a reply (" +
                            path_ + ")");
        }
        return data;
      }
      const std::size_t old_size = data.size();
      data.append(buf, static_cast<std::size_t>(n));
      const auto nl = data.find('\n', old_size);
      if (nl != std::string::npos) {
        pending_ = data.substr(nl + 1);  // a stream's next lines may come in the same read
        data.resize(nl);
        return data;
      }
      if (data.size() > kMaxReplyBytes) {
        throw Unreachable("fairgatectl: reply from " + path_ + " is longer than " +
                          std::to_string(kMaxReplyBytes >> 20) + " MiB without a newline");
      }
    }
  }

 private:
  [[noreturn]] void timed_out(const char* doing) const {
    throw Unreachable("fairgatectl: timed out " + std::string(doing) + " " + path_ +
                      " (raise --timeout SECONDS if fairgate is busy)");
  }

  void wait_for(short events, const char* doing) const {
    for (;;) {
      int timeout_ms = -1;
      if (deadline_) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline_ - Clock::now());
        if (left.count() <= 0) timed_out(doing);
        timeout_ms = static_cast<int>(std::min<long long>(left.count(), 1 << 30));
      }
      pollfd pfd{fd_, events, 0};
      const int rc = ::poll(&pfd, 1, timeout_ms);
      if (rc > 0) return;  // ready, or an error/hangup the next send/recv reports
      if (rc < 0 && errno != EINTR) {
        throw Unreachable(std::string("fairgatectl: poll: ") + std::strerror(errno));
      }
    }
  }

  std::string path_;
  int fd_ = -1;
  std::optional<Clock::time_point> deadline_;
  std::string pending_;
};

// The rest of a flow-watch stream: fairgate's lines to standard output as they come, lines
// from standard input to fairgate. Returns when fairgate ends the stream: ok if its last line
// was not an error (the operator's "stop"), else kCommandFailed (a slow reader dropped).
int follow_stream(Connection& conn) {
  conn.no_deadline();
  std::string from_fairgate = conn.take_pending(), from_operator, last_line;
  bool operator_open = true;
  char buf[65536];
  for (;;) {
    pollfd fds[2] = {{conn.fd(), POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    if (::poll(fds, operator_open ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      throw Unreachable(std::string("fairgatectl: poll: ") + std::strerror(errno));
    }
    if (fds[0].revents || !from_fairgate.empty()) {
      if (fds[0].revents) {
        const ssize_t n = ::recv(conn.fd(), buf, sizeof buf, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (n <= 0) break;
        from_fairgate.append(buf, static_cast<std::size_t>(n));
      }
      std::size_t newline;
      while ((newline = from_fairgate.find('\n')) != std::string::npos) {
        last_line = from_fairgate.substr(0, newline);
        from_fairgate.erase(0, newline + 1);
        std::cout << last_line << "\n";
      }
      std::cout.flush();
    }
    if (operator_open && fds[1].revents) {
      const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n <= 0) {
        operator_open = false;  // no more input: keep watching
        continue;
      }
      from_operator.append(buf, static_cast<std::size_t>(n));
      std::size_t newline;
      while ((newline = from_operator.find('\n')) != std::string::npos) {
        conn.send_line(from_operator.substr(0, newline + 1));
        from_operator.erase(0, newline + 1);
      }
    }
  }
  Json last = Json::parse(last_line, nullptr, false);
  bool failed = !last.is_discarded() && last.is_object() && last.value("ok", true) == false;
  return failed ? kCommandFailed : kOk;
}

// Client-side `help [COMMAND]`: command-list, optionally narrowed to one command.
Json select_help(const Json& command_list, const std::string& name) {
  if (!command_list.is_array()) return command_list;
  for (const Json& entry : command_list) {
    if (entry.is_object() && entry.value("name", Json()) == name) return Json::array({entry});
  }
  throw std::runtime_error("no command '" + name + "' (fairgatectl help lists them)");
}

int run(int argc, char** argv) {
  Options opt;
  try {
    opt = parse_options(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "fairgatectl: " << e.what() << "\n" << kTryHelp;
    return kUsage;
  }
  if (opt.help) {
    std::cout << kUsageText;
    return kOk;
  }
  if (opt.command.empty()) {
    std::cerr << "fairgatectl: no COMMAND given\n" << kTryHelp;
    return kUsage;
  }

  std::string command = opt.command;
  std::string help_for;
  Json args;
  try {
    if (command == "help") {
      command = "command-list";
      if (opt.args.size() > 1) throw UsageError("help takes at most one COMMAND");
      if (opt.args.size() == 1) help_for = opt.args[0];
      args = Json::object();
    } else {
      args = parse_command_args(opt.args);
    }
  } catch (const UsageError& e) {
    std::cerr << "fairgatectl: " << e.what() << "\n" << kTryHelp;
    return kUsage;
  }

  const Json request = {{"command", command}, {"args", args}};
  std::string reply_line;
  std::optional<Connection> conn;
  try {
    conn.emplace(opt.socket_path, opt.timeout_seconds);
    conn->send_line(request.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n");
    reply_line = conn->read_line();
  } catch (const Unreachable& e) {
    std::cerr << e.what() << "\n";
    return kUnreachable;
  }
  if (!reply_line.empty() && reply_line.back() == '\r') reply_line.pop_back();

  Json reply = Json::parse(reply_line, nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded() || !reply.is_object() || !reply.contains("ok") ||
      !reply["ok"].is_boolean()) {
    std::cerr << "fairgatectl: malformed reply from " << opt.socket_path
              << " (expected {\"ok\": true|false, ...}): "
              << reply_line.substr(0, 200) << (reply_line.size() > 200 ? "..." : "") << "\n";
    return kUnreachable;
  }
  const bool ok = reply["ok"].get<bool>();

  if (ok && command == "flow-watch") {
    std::cout << reply_line << "\n";
    std::cout.flush();
    try {
      return follow_stream(*conn);
    } catch (const Unreachable& e) {
      std::cerr << e.what() << "\n";
      return kUnreachable;
    }
  }
  if (opt.json) {
    std::cout << reply_line << "\n";
    return ok ? kOk : kCommandFailed;
  }
  if (!ok) {
    const Json error = reply.value("error", Json("(no error message)"));
    std::cerr << "error: " << (error.is_string() ? error.get<std::string>() : error.dump()) << "\n";
    return kCommandFailed;
  }
  try {
    Json result = reply.value("result", Json());
    if (!help_for.empty()) result = select_help(result, help_for);
    std::cout << fairgate::ctl::format_result(result);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kCommandFailed;
  }
  std::cout.flush();
  return std::cout ? kOk : kCommandFailed;
}

}  // namespace

int main(int argc, char** argv) {
  return run(argc, argv);
}
