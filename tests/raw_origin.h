// RawOrigin: a scripted upstream for tests that need bytes no library
// would send or accept: extension methods, interim 1xx responses, framing
// errors. It listens on 127.0.0.1 (an ephemeral port), reads each request
// (head, then a body by Content-Length or chunked), records it, and writes
// whatever the script returns for it, byte for byte. A connection stays
// open for further requests unless the script's answer says
// "Connection: close" or is empty (then the connection is closed).
//
// Thread-safety: the accessors may be called from any thread.

#ifndef FANOUT_TESTS_RAW_ORIGIN_H_
#define FANOUT_TESTS_RAW_ORIGIN_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/header_text.h"
#include "server/upstream_response_parser.h"

namespace fanout::testing {

class RawOrigin {
 public:
  struct Received {
    std::string head;  // request line and fields, blank line included
    std::string body;  // decoded
  };
  // Returns the bytes to answer with ("" to close without answering).
  using Script = std::function<std::string(const Received&)>;

  explicit RawOrigin(Script script) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listen_fd_, 64);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~RawOrigin() {
    stopping_ = true;
    acceptor_.join();
    std::vector<std::thread> connections;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
      connections.swap(connections_);
    }
    for (auto& t : connections) t.join();
    for (int fd : open_) ::close(fd);
    ::close(listen_fd_);
  }

  int port() const { return port_; }
  int connections() const { return accepted_.load(); }
  std::vector<Received> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      ++accepted_;
      std::lock_guard<std::mutex> lock(mu_);
      open_.push_back(fd);
      connections_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  // Reads until `bytes` holds at least `n` bytes; false if the peer closed.
  static bool Fill(int fd, std::string& bytes, std::size_t n) {
    char buf[65536];
    while (bytes.size() < n) {
      const ssize_t got = ::recv(fd, buf, sizeof buf, 0);
      if (got <= 0) return false;
      bytes.append(buf, static_cast<std::size_t>(got));
    }
    return true;
  }

  void Serve(int fd) {
    std::string in;
    for (;;) {
      std::size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        if (!Fill(fd, in, in.size() + 1)) return Close(fd);
      }
      Received r;
      r.head = in.substr(0, end + 4);
      in.erase(0, end + 4);
      const std::string length = Field(r.head, "Content-Length");
      if (!length.empty()) {
        const std::size_t n = std::stoul(length);
        if (!Fill(fd, in, n)) return Close(fd);
        r.body = in.substr(0, n);
        in.erase(0, n);
      } else if (!Field(r.head, "Transfer-Encoding").empty()) {
        ChunkedDecoder decoder;
        for (;;) {
          std::vector<std::string_view> pieces;
          std::size_t consumed = 0;
          const auto result = decoder.Feed(in, &pieces, &consumed);
          for (auto piece : pieces) r.body.append(piece);
          if (result == ChunkedDecoder::Result::kMalformed) return Close(fd);
          if (result == ChunkedDecoder::Result::kDone) {
            in.erase(0, consumed);
            break;
          }
          in.clear();
          if (!Fill(fd, in, 1)) return Close(fd);
        }
      }
      std::string answer;
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(r);
      }
      answer = script_(r);
      if (answer.empty()) return Close(fd);
      if (::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL) < 0) return Close(fd);
      if (answer.find("Connection: close") != std::string::npos) return Close(fd);
    }
  }

  void Close(int fd) { ::shutdown(fd, SHUT_RDWR); }

  // The value of the first field `name` in a head ("" if none).
  static std::string Field(const std::string& head, std::string_view name) {
    std::size_t at = head.find("\r\n");
    while (at != std::string::npos && at + 2 < head.size()) {
      const std::size_t eol = head.find("\r\n", at + 2);
      const std::string_view line(head.data() + at + 2, eol - at - 2);
      const std::size_t colon = line.find(':');
      if (colon != std::string_view::npos && EqualsIgnoreCase(line.substr(0, colon), name)) {
        return std::string(TrimOws(line.substr(colon + 1)));
      }
      at = eol;
    }
    return "";
  }

  const Script script_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<int> open_;                 // guarded by mu_
  std::vector<std::thread> connections_;  // guarded by mu_
  std::vector<Received> requests_;        // guarded by mu_
};

}  // namespace fanout::testing

#endif  // FANOUT_TESTS_RAW_ORIGIN_H_
