// The control socket: a UNIX stream socket (mode 0660), one JSON request per line, one JSON
// reply per line. Non-blocking, served from the management thread's event loop; a client
// that misbehaves loses its connection, never the gateway's state.
#pragma once

#include "control/command_registry.h"

#include <cstddef>
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

 private:
  struct Connection {
    std::string in;
    std::string out;
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
