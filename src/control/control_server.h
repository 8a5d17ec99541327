// The control socket: a UNIX stream socket (mode 0660), one JSON request per line, one JSON
// reply per line. Non-blocking, served from the management thread's event loop; a client
// that misbehaves loses its connection, never the gateway's state.
#pragma once

#include "control/command_registry.h"

#include <cstddef>
#include <functional>
#include <string_view>
#include <map>
#include <string>

namespace fairgate {

class ControlServer {
 public:
  // Binds `path` (replacing a stale socket file); throws std::runtime_error on failure.
  ControlServer(std::string path, const CommandRegistry& commands);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // An epoll descriptor that becomes readable when poll() has work.
  int fd() const { return epoll_fd_; }
  // Accepts, reads, dispatches and writes whatever is ready, without blocking.
  void poll();
  const std::string& path() const { return path_; }

  // Streams (flow-watch): a command handler turns its connection into a stream. The stream's
  // further request lines go to `on_line`, whose reply line (if not empty) is written back;
  // `on_closed` is called when the peer goes (not after end_stream).
  using LineHandler = std::function<std::string(std::string_view line)>;
  void make_stream(int connection, LineHandler on_line, std::function<void()> on_closed);
  // Queues `line` (a newline is added) on a stream and writes what the socket takes now.
  // False, with nothing queued, when the peer is gone or the unread output would pass
  // `limit_bytes`: the caller then ends the stream.
  bool stream_send(int connection, std::string_view line, std::size_t limit_bytes);
  // Ends a stream: `last_line` goes after what is queued, and the connection closes once the
  // peer has taken it all (or when the peer goes); what the peer sends is not read any more.
  // A reader let go for falling behind thus gets whole lines, then why.
  void end_stream(int connection, std::string_view last_line);

 private:
  struct Connection {
    std::string in;
    std::string out;
    bool ending = false;  // an ended stream, writing what it has queued
    LineHandler on_line;  // set on a stream
    std::function<void()> on_closed;
  };
  void accept_all();
  void serve(int fd, uint32_t events);
  void close_connection(int fd);
  bool flush(int fd, Connection& connection);

  std::string path_;
  const CommandRegistry& commands_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  std::map<int, Connection> connections_;
};

}  // namespace fairgate
