// What the control socket tests share: a ControlServer's socket in a fresh directory, clients
// that connect to it, write requests and read reply lines while polling the server from the
// same thread (the server never blocks, so the test drives it).
#pragma once

#include "control/command_registry.h"
#include "control/control_server.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace fairgate::test {

class ControlSocketTest : public ::testing::Test {
 protected:
  ControlSocketTest() {
    char pattern[] = "/tmp/fgunit-ctl.XXXXXX";
    if (mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir = pattern;
    path = dir + "/run/fairgate.sock";  // the server makes the missing directory
  }
  ~ControlSocketTest() override {
    for (int fd : clients) close(fd);
    std::filesystem::remove_all(dir);
  }

  int connect_client() {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      close(fd);
      throw std::runtime_error("connect failed: " + std::string(std::strerror(errno)));
    }
    timeval timeout{0, 20'000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    clients.push_back(fd);
    return fd;
  }
  // The client hangs up.
  void disconnect(int fd) {
    close(fd);
    std::erase(clients, fd);
  }
  static void write_all(int fd, const std::string& text) {
    ASSERT_EQ(send(fd, text.data(), text.size(), MSG_NOSIGNAL), static_cast<ssize_t>(text.size()));
  }
  // Polls the server and reads until `count` reply lines arrived (or two seconds passed).
  std::vector<nlohmann::json> replies(ControlServer& server, int fd, std::size_t count) {
    std::vector<nlohmann::json> lines;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (lines.size() < count && std::chrono::steady_clock::now() < deadline) {
      server.poll();
      receive(fd);
      std::size_t newline;
      while ((newline = pending[fd].find('\n')) != std::string::npos) {
        lines.push_back(nlohmann::json::parse(pending[fd].substr(0, newline)));
        pending[fd].erase(0, newline + 1);
      }
    }
    return lines;
  }
  // Gives the server time to answer anything more, and returns what arrived.
  std::string drain(ControlServer& server, int fd) {
    for (int i = 0; i < 10; ++i) {
      server.poll();
      receive(fd);
    }
    std::string rest = pending[fd];
    pending[fd].clear();
    return rest;
  }
  // Whether the server closed the connection (end of file after what it wrote) within two
  // seconds; what it wrote before stays for replies() and drain().
  bool closed_by_server(ControlServer& server, int fd) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < deadline) {
      server.poll();
      if (receive(fd) == 0) return true;
    }
    return false;
  }

  std::string dir, path;
  CommandRegistry commands;
  std::vector<int> clients;
  std::map<int, std::string> pending;  // received, not yet returned as lines

 private:
  // One read into pending[fd]: its result (0 at end of file, -1 when nothing came in time).
  ssize_t receive(int fd) {
    char buffer[4096];
    ssize_t got = recv(fd, buffer, sizeof buffer, 0);
    if (got > 0) pending[fd].append(buffer, static_cast<std::size_t>(got));
    return got;
  }
};

}  // namespace fairgate::test
