// ScriptedOrigin: a raw-socket HTTP/1.1 origin for tests of the upstream
// client's connections. It keeps connections open (keep-alive), reads
// each request whole (body by Content-Length or chunked, decoded), records
// it with the number of the connection it came on, and answers with the
// bytes a test's handler returns — or closes the connection instead, at
// the moment the handler says. It counts the connections it accepted.
//
// Thread-safety: the handler runs on the connection's thread (one per
// connection); requests() and connections() from any thread.

#ifndef FANOUT_TESTS_SCRIPTED_ORIGIN_H_
#define FANOUT_TESTS_SCRIPTED_ORIGIN_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_util.h"

namespace fanout::testing {

struct ScriptedRequest {
  int connection = 0;  // which accepted connection (0, 1, ...)
  int on_connection = 0;  // its place among that connection's requests
  std::string method;
  std::string target;
  std::string head;  // the request line and header lines, as sent
  std::string body;  // decoded
  bool chunked = false;
  bool has_content_length = false;
};

struct ScriptedReply {
  std::string bytes;          // sent as they are
  bool close_after = false;   // then close the connection
  bool drop = false;          // close the connection without sending anything
};

class ScriptedOrigin {
 public:
  using Handler = std::function<ScriptedReply(const ScriptedRequest&)>;

  explicit ScriptedOrigin(Handler handler) : handler_(std::move(handler)) {
    fd_ = ListenOnLoopback(&port_);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~ScriptedOrigin() {
    stop_ = true;
    acceptor_.join();
    for (auto& t : connection_threads_) t.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int connections() const { return accepted_.load(); }
  std::vector<ScriptedRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

  // A 200 with `body`, Content-Length framed, cacheable for a minute.
  static std::string Ok(const std::string& body, const std::string& extra = "") {
    return "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
  }

 private:
  void Accept() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      const int id = accepted_++;
      connection_threads_.emplace_back([this, c, id] { Serve(c, id); });
    }
  }

  // Waits for bytes (checking stop_); appends them to *in. False at the
  // end of the connection or when stopping.
  bool ReadMore(int c, std::string* in) {
    for (;;) {
      if (stop_) return false;
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      char buf[65536];
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return false;
      in->append(buf, static_cast<std::size_t>(n));
      return true;
    }
  }

  // Reads one request from `in` (reading more as needed); false if the
  // connection ended first.
  bool ReadRequest(int c, std::string* in, ScriptedRequest* r) {
    std::size_t end;
    while ((end = in->find("\r\n\r\n")) == std::string::npos) {
      if (!ReadMore(c, in)) return false;
    }
    r->head = in->substr(0, end + 2);
    in->erase(0, end + 4);
    const std::size_t sp = r->head.find(' ');
    r->method = r->head.substr(0, sp);
    r->target = r->head.substr(sp + 1, r->head.find(' ', sp + 1) - sp - 1);
    std::size_t length = 0;
    for (std::size_t at = r->head.find("\r\n") + 2; at < r->head.size();) {
      const std::size_t eol = r->head.find("\r\n", at);
      const std::string line = r->head.substr(at, eol - at);
      at = eol + 2;
      const std::size_t colon = line.find(':');
      const std::string name = line.substr(0, colon);
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      if (::strcasecmp(name.c_str(), "Content-Length") == 0) {
        r->has_content_length = true;
        length = std::stoul(value);
      }
      if (::strcasecmp(name.c_str(), "Transfer-Encoding") == 0) r->chunked = true;
    }
    if (!r->chunked) {
      while (in->size() < length) {
        if (!ReadMore(c, in)) return false;
      }
      r->body = in->substr(0, length);
      in->erase(0, length);
      return true;
    }
    for (;;) {
      std::size_t eol;
      while ((eol = in->find("\r\n")) == std::string::npos) {
        if (!ReadMore(c, in)) return false;
      }
      const std::size_t size = std::strtoul(in->substr(0, eol).c_str(), nullptr, 16);
      while (in->size() < eol + 2 + size + 2) {
        if (!ReadMore(c, in)) return false;
      }
      r->body.append(*in, eol + 2, size);
      in->erase(0, eol + 2 + size + 2);  // no trailer fields from fanoutd
      if (size == 0) return true;
    }
  }

  void Serve(int c, int id) {
    std::string in;
    for (int n = 0;; ++n) {
      ScriptedRequest r;
      r.connection = id;
      r.on_connection = n;
      if (!ReadRequest(c, &in, &r)) break;
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(r);
      }
      const ScriptedReply reply = handler_(r);
      if (reply.drop) break;
      if (::send(c, reply.bytes.data(), reply.bytes.size(), MSG_NOSIGNAL) < 0) break;
      if (reply.close_after) break;
    }
    ::close(c);
  }

  const Handler handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::vector<std::thread> connection_threads_;  // the acceptor's alone until joined
  mutable std::mutex mu_;
  std::vector<ScriptedRequest> requests_;  // guarded by mu_
};

}  // namespace fanout::testing

#endif  // FANOUT_TESTS_SCRIPTED_ORIGIN_H_
