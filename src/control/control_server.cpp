#include "control/control_server.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace fairgate {
namespace {
constexpr std::size_t kMaxRequestBytes = 1 << 20;  // a longer line is an error, not a memory sink
constexpr std::size_t kMaxConnections = 64;
constexpr int kListenBacklog = 16;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("control socket: " + what + ": " + std::strerror(errno));
}
}  // namespace

ControlServer::ControlServer(std::string path, const CommandRegistry& commands)
    : path_(std::move(path)), commands_(commands) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(address.sun_path)) throw std::runtime_error("control socket: path too long: " + path_);
  std::memcpy(address.sun_path, path_.c_str(), path_.size() + 1);
  std::error_code ignored;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ignored);
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) fail("socket");
  // A socket file left by a crashed instance is replaced; a live one would still answer.
  if (connect(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    close(listen_fd_);
    throw std::runtime_error("control socket: another fairgate is already serving " + path_);
  }
  unlink(path_.c_str());
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) fail("bind " + path_);
  if (chmod(path_.c_str(), 0660) != 0) fail("chmod " + path_);
  if (listen(listen_fd_, kListenBacklog) != 0) fail("listen");
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) fail("epoll_create1");
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = listen_fd_;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &event) != 0) fail("epoll_ctl");
}

ControlServer::~ControlServer() {
  for (auto& [fd, connection] : connections_) close(fd);
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    unlink(path_.c_str());
  }
}

void ControlServer::poll() {
  epoll_event events[16];
  int count = epoll_wait(epoll_fd_, events, 16, 0);
  for (int i = 0; i < count; ++i) {
    if (events[i].data.fd == listen_fd_)
      accept_all();
    else
      serve(events[i].data.fd, events[i].events);
  }
}

void ControlServer::accept_all() {
  while (true) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (connections_.size() >= kMaxConnections) {
      static const char kBusy[] = "{\"ok\":false,\"error\":\"connection: too many control connections\"}\n";
      [[maybe_unused]] auto written = write(fd, kBusy, sizeof kBusy - 1);
      close(fd);
      continue;
    }
    epoll_event event{};
    event.events = EPOLLIN | EPOLLRDHUP;
    event.data.fd = fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
      close(fd);
      continue;
    }
    connections_[fd];
  }
}

void ControlServer::close_connection(int fd) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  close(fd);
  connections_.erase(fd);
}

bool ControlServer::flush(int fd, Connection& connection) {
  while (!connection.out.empty()) {
    ssize_t written = send(fd, connection.out.data(), connection.out.size(), MSG_NOSIGNAL);
    if (written < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    connection.out.erase(0, static_cast<std::size_t>(written));
  }
  epoll_event event{};
  event.events = EPOLLIN | EPOLLRDHUP | (connection.out.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
  event.data.fd = fd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event);
  return true;
}

void ControlServer::serve(int fd, uint32_t events) {
  auto it = connections_.find(fd);
  if (it == connections_.end()) return;
  Connection& connection = it->second;
  bool peer_closed = false;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    char buffer[4096];
    while (true) {
      ssize_t count = read(fd, buffer, sizeof buffer);
      if (count > 0) {
        if (connection.ending) continue;  // read only to see the peer go
        connection.in.append(buffer, static_cast<std::size_t>(count));
        if (connection.in.size() > kMaxRequestBytes && connection.in.find('\n') == std::string::npos) {
          connection.out += "{\"ok\":false,\"error\":\"request: longer than 1 MiB\"}\n";
          flush(fd, connection);
          close_connection(fd);
          return;
        }
        continue;
      }
      if (count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) peer_closed = true;
      break;
    }
  }
  std::size_t newline;
  while (!connection.ending && (newline = connection.in.find('\n')) != std::string::npos) {
    std::string line = connection.in.substr(0, newline);
    connection.in.erase(0, newline + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::string reply = connection.on_line ? connection.on_line(line) : commands_.dispatch(line, fd);
    // The handler may have ended the stream (and closed the connection) itself, replying or
    // not: then `connection` is gone, and so are the lines its reader sent after.
    it = connections_.find(fd);
    if (it == connections_.end()) return;
    if (reply.empty() || it->second.ending) continue;  // nothing goes after a stream's last line
    it->second.out += reply;
    it->second.out += '\n';
  }
  Connection& current = it->second;
  bool peer_gone = !flush(fd, current) || (peer_closed && current.out.empty());
  if (peer_gone || (peer_closed && current.on_line) || (current.ending && current.out.empty())) {
    // A stream whose reader left: its owner forgets it (not one it ended: that is done).
    auto on_closed = std::move(current.on_closed);
    close_connection(fd);
    if (on_closed) on_closed();
  }
}

void ControlServer::make_stream(int connection, LineHandler on_line, std::function<void()> on_closed) {
  auto it = connections_.find(connection);
  if (it == connections_.end()) return;
  it->second.on_line = std::move(on_line);
  it->second.on_closed = std::move(on_closed);
}

bool ControlServer::stream_send(int connection, std::string_view line, std::size_t limit_bytes) {
  auto it = connections_.find(connection);
  if (it == connections_.end() || it->second.ending) return false;
  Connection& stream = it->second;
  if (stream.out.size() + line.size() + 1 > limit_bytes) return false;
  stream.out.append(line);
  stream.out += '\n';
  return flush(connection, stream);
}

void ControlServer::end_stream(int connection, std::string_view last_line) {
  auto it = connections_.find(connection);
  if (it == connections_.end() || it->second.ending) return;
  Connection& stream = it->second;
  stream.out.append(last_line);
  stream.out += '\n';
  stream.in.clear();
  stream.ending = true;
  stream.on_closed = nullptr;  // its owner ended it
  // What the socket does not take now goes as the peer reads (serve); a peer that neither
  // reads nor leaves holds its connection, as an idle client does.
  if (!flush(connection, stream) || stream.out.empty()) close_connection(connection);
}

}  // namespace fairgate
