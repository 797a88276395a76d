// fanout_load: the benchmark suite's HTTP load client. Every byte received
// is checked against the project origin's pattern (MatchesOrigin), so a
// cache that serves wrong bytes cannot win. Prints one JSON object.
//
// --mode fetch (default): N clients for one URL, client i starting at
//   i * spread / (N - 1); each reads the whole body on its own blocking
//   socket with 256 KiB reads. Reports TTFB, completion, aggregate rate.
//   --detail adds each client's outcome (bytes, complete, X-Cache).
// --mode slow: N connections that each read at most --rate bytes/s for
//   --duration seconds (one thread, small receive buffers, so the server
//   really has N slow readers), while a probe thread requests
//   --probe-target every 100 ms from the second second on and records its
//   time to first byte.
//
//   fanout_load --port 19080 --clients 50 --spread-ms 1500
//               --target '/x.bin?size=200MB&rate=100MB'
//   fanout_load --mode slow --port 19080 --clients 1000 --rate 1MB
//               --duration 10 --target /big.bin?size=50MB --probe-target /small?size=4KiB

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/origin/origin_server.h"

namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// CLOCK_REALTIME in ms: the clock of the kernel's receive timestamps.
double RealtimeMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// One recv that also returns when the kernel received the last segment it
// read (SO_TIMESTAMPNS), in CLOCK_REALTIME ms; -1 if none was attached.
ssize_t RecvStamped(int fd, char* buf, std::size_t len, double* stamp_ms) {
  iovec iov{buf, len};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t r = ::recvmsg(fd, &msg, 0);
  *stamp_ms = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); r > 0 && c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      timespec ts{};
      std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
      *stamp_ms = static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
    }
  }
  return r;
}

// Asks the kernel to timestamp what fd sends (software, at the device).
void StampSends(int fd) {
  const int flags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE |
                    SOF_TIMESTAMPING_OPT_TSONLY;
  ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags);
}

// The kernel's timestamp of the last send on fd (after StampSends), in
// CLOCK_REALTIME ms; -1 if none is queued. On loopback the stamp is taken
// inside send(), so it is there when send returns.
double SentStampMs(int fd) {
  char data[64];
  iovec iov{data, sizeof data};
  alignas(cmsghdr) char control[512];
  double stamp = -1;
  for (;;) {
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (::recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return stamp;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING) {
        scm_timestamping ts{};
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        stamp = static_cast<double>(ts.ts[0].tv_sec) * 1e3 +
                static_cast<double>(ts.ts[0].tv_nsec) / 1e6;
      }
    }
  }
}

int Connect(int port, int rcvbuf) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendRequest(int fd, const std::string& target) {
  const std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Connection: close\r\n\r\n";
  return ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
}

// An HTTP/1.1 response read incrementally: the head, then the body checked
// byte for byte (identity or chunked transfer coding).
class ResponseParser {
 public:
  explicit ResponseParser(std::string path) : path_(std::move(path)) {}

  // Feeds received bytes; returns the count of body bytes among them.
  std::size_t Feed(const char* p, std::size_t n) {
    std::size_t body = 0;
    if (!in_body_) {
      head_.append(p, n);
      const auto end = head_.find("\r\n\r\n");
      if (end == std::string::npos) return 0;
      in_body_ = true;
      ParseHead(head_.substr(0, end));
      std::string rest = head_.substr(end + 4);
      head_.clear();
      return FeedBody(rest.data(), rest.size());
    }
    body += FeedBody(p, n);
    return body;
  }

  bool has_head() const { return in_body_; }
  bool complete() const {
    return chunked_ ? chunked_done_ : (length_ != UINT64_MAX && offset_ == length_);
  }
  bool verified() const { return match_; }
  std::uint64_t body_bytes() const { return offset_; }
  int status() const { return status_; }
  const std::string& x_cache() const { return x_cache_; }

 private:
  void ParseHead(const std::string& head) {
    status_ = std::atoi(head.c_str() + head.find(' ') + 1);
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    auto value = [&](const char* name) -> std::string {
      const auto at = lower.find(std::string("\r\n") + name + ":");
      if (at == std::string::npos) return "";
      auto v = at + 2 + std::strlen(name) + 1;
      while (v < head.size() && head[v] == ' ') ++v;
      return head.substr(v, head.find("\r\n", v) - v);
    };
    const std::string cl = value("content-length");
    if (!cl.empty()) length_ = std::stoull(cl);
    chunked_ = value("transfer-encoding").find("chunked") != std::string::npos;
    x_cache_ = value("x-cache");
  }

  std::size_t FeedBody(const char* p, std::size_t n) {
    if (!chunked_) {
      Check(p, n);
      return n;
    }
    // Chunked: alternate between size lines and data.
    std::size_t data = 0;
    while (n > 0 && !chunked_done_) {
      if (chunk_left_ > 0) {
        const std::size_t take = std::min<std::size_t>(n, chunk_left_);
        Check(p, take);
        data += take;
        p += take;
        n -= take;
        chunk_left_ -= take;
        continue;
      }
      line_.push_back(*p++);
      --n;
      if (line_.size() >= 2 && line_.compare(line_.size() - 2, 2, "\r\n") == 0) {
        const std::string text = line_.substr(0, line_.size() - 2);
        line_.clear();
        if (text.empty()) continue;  // the CRLF after a chunk's data
        chunk_left_ = std::strtoull(text.c_str(), nullptr, 16);
        if (chunk_left_ == 0) chunked_done_ = true;
      }
    }
    return data;
  }

  void Check(const char* p, std::size_t n) {
    if (match_ && !fanout::OriginServer::MatchesOrigin(path_, offset_, p, n)) match_ = false;
    offset_ += n;
  }

  const std::string path_;
  std::string head_, line_, x_cache_;
  bool in_body_ = false, chunked_ = false, chunked_done_ = false, match_ = true;
  int status_ = 0;
  std::uint64_t length_ = UINT64_MAX, offset_ = 0, chunk_left_ = 0;
};

std::string PathOf(const std::string& target) { return target.substr(0, target.find('?')); }

struct Outcome {
  bool complete = false, verified = false;
  int status = 0;
  std::uint64_t bytes = 0;
  double start_s = 0, ttfb_ms = -1, app_ttfb_ms = -1, done_s = 0;
  double connect_ms = -1;  // of ttfb_ms: the connect() call
  std::string x_cache;
};

// Time to first byte is measured on the wire: the time connect() took,
// plus the time from the kernel's transmit timestamp of the request to its
// receive timestamp of the segment holding the first body byte. Until that
// byte, reads are small, so the timestamp is of that segment (or the next)
// and not of data that queued up while this thread waited for a core; and
// a wait for a core between connect() and send() is not counted either:
// with 50 busy client threads (or one thread serving 1,000 slow
// connections) on 2 cores, the time a thread takes to be scheduled would
// otherwise be counted as the server's. A full accept queue still counts
// (connect() waits for the retried SYN).
// app_ttfb_ms is the interval from before connect() to when this thread saw
// the byte.
Outcome FetchOnce(int port, const std::string& target, Clock::time_point t0) {
  Outcome out;
  const auto start = Clock::now();
  const double start_real_ms = RealtimeMs();
  out.start_s = std::chrono::duration<double>(start - t0).count();
  const int fd = Connect(port, 0);
  const double connect_ms = MsSince(start);
  out.connect_ms = connect_ms;
  const int on = 1;
  if (fd >= 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    StampSends(fd);
  }
  if (fd < 0 || !SendRequest(fd, target)) {
    if (fd >= 0) ::close(fd);
    return out;
  }
  const double sent_ms = SentStampMs(fd);
  // The wire interval starts when the request left; without a transmit
  // stamp, when connect() was called.
  const double wire_start_ms = sent_ms >= 0 ? sent_ms - connect_ms : start_real_ms;
  ResponseParser parser(PathOf(target));
  std::vector<char> buf(256 * 1024);
  for (;;) {
    const bool first = out.ttfb_ms < 0;
    double stamp_ms = -1;
    const ssize_t r = first ? RecvStamped(fd, buf.data(), 1024, &stamp_ms)
                            : ::recv(fd, buf.data(), buf.size(), 0);
    if (r <= 0) break;
    if (parser.Feed(buf.data(), static_cast<std::size_t>(r)) > 0 && first) {
      out.app_ttfb_ms = MsSince(start);
      out.ttfb_ms = stamp_ms >= 0 ? stamp_ms - wire_start_ms : out.app_ttfb_ms;
      // From here on, wake this thread per 128 KiB, not per segment: 50
      // client threads on the server's 2 cores must not cost it more CPU
      // in context switches than the bytes they check.
      const int lowat = 128 * 1024;
      ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
    }
    if (parser.complete()) break;
  }
  ::close(fd);
  out.status = parser.status();
  out.bytes = parser.body_bytes();
  out.complete = parser.complete();
  out.verified = out.complete && parser.verified();
  out.x_cache = parser.x_cache();
  out.done_s = std::chrono::duration<double>(Clock::now() - t0).count();
  return out;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

int RunFetch(int port, const std::string& target, int clients, int spread_ms, bool detail) {
  std::vector<Outcome> outcomes(clients);
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      std::this_thread::sleep_until(
          t0 + std::chrono::milliseconds(clients > 1 ? spread_ms * i / (clients - 1) : 0));
      outcomes[i] = FetchOnce(port, target, t0);
    });
  }
  for (auto& t : threads) t.join();
  std::vector<double> ttfb, joiner_ttfb, joiner_app_ttfb;
  double last_done = 0;
  std::uint64_t bytes = 0;
  int complete = 0, verified = 0;
  for (int i = 0; i < clients; ++i) {
    const auto& o = outcomes[i];
    complete += o.complete;
    verified += o.verified;
    bytes += o.bytes;
    if (o.ttfb_ms >= 0) ttfb.push_back(o.ttfb_ms);
    if (i > 0 && o.ttfb_ms >= 0) joiner_ttfb.push_back(o.ttfb_ms);
    if (i > 0 && o.app_ttfb_ms >= 0) joiner_app_ttfb.push_back(o.app_ttfb_ms);
    last_done = std::max(last_done, o.done_s);
  }
  std::printf("{\"clients\": %d, \"complete\": %d, \"verified\": %d, \"bytes\": %llu, "
              "\"ttfb_p50_ms\": %.3f, \"ttfb_p99_ms\": %.3f, \"joiner_ttfb_p50_ms\": %.3f, "
              "\"joiner_ttfb_p99_ms\": %.3f, \"joiner_ttfb_max_ms\": %.3f, "
              "\"joiner_app_ttfb_p50_ms\": %.3f, \"joiner_app_ttfb_p99_ms\": %.3f, "
              "\"last_done_s\": %.4f, \"aggregate_gbps\": %.4f",
              clients, complete, verified, static_cast<unsigned long long>(bytes),
              Percentile(ttfb, 0.5), Percentile(ttfb, 0.99), Percentile(joiner_ttfb, 0.5),
              Percentile(joiner_ttfb, 0.99), Percentile(joiner_ttfb, 1.0),
              Percentile(joiner_app_ttfb, 0.5), Percentile(joiner_app_ttfb, 0.99), last_done,
              last_done > 0 ? static_cast<double>(bytes) / last_done / 1e9 : 0.0);
  if (detail) {
    std::printf(", \"detail\": [");
    for (int i = 0; i < clients; ++i) {
      const auto& o = outcomes[i];
      std::printf("%s{\"status\": %d, \"x_cache\": \"%s\", \"bytes\": %llu, \"complete\": %s, "
                  "\"verified\": %s, \"start_s\": %.3f, \"ttfb_ms\": %.3f, "
                  "\"app_ttfb_ms\": %.3f, \"done_s\": %.3f}",
                  i ? ", " : "", o.status, o.x_cache.c_str(),
                  static_cast<unsigned long long>(o.bytes), o.complete ? "true" : "false",
                  o.verified ? "true" : "false", o.start_s, o.ttfb_ms, o.app_ttfb_ms,
                  o.done_s);
    }
    std::printf("]");
  }
  std::printf("}\n");
  return verified == clients ? 0 : 1;
}

// One slow reader's state in the slow-mode loop.
struct SlowConn {
  int fd = -1;
  ResponseParser parser;
  double budget = 0;  // bytes it may still read now
  bool open = false;
};

int RunSlow(int port, const std::string& target, const std::string& probe_target, int clients,
            double rate, double duration_s) {
  std::vector<SlowConn> conns;
  conns.reserve(clients);
  const std::string path = PathOf(target);
  int connected = 0;
  const auto t0 = Clock::now();
  for (int i = 0; i < clients; ++i) {
    conns.push_back(SlowConn{-1, ResponseParser(path), 0, false});
    // Small receive buffers: the server's sends block, as for a slow client.
    const int fd = Connect(port, 64 * 1024);
    if (fd < 0 || !SendRequest(fd, target)) {
      if (fd >= 0) ::close(fd);
      continue;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    conns.back().fd = fd;
    conns.back().open = true;
    ++connected;
  }
  const double connect_s = std::chrono::duration<double>(Clock::now() - t0).count();
  // Probe, once every connection is streaming (after the first second, when
  // each has filled its socket buffers): one fresh request every 100 ms,
  // its time to first byte.
  std::atomic<bool> stop{false};
  std::vector<double> probe_ms, probe_app_ms;
  double worst_probe_ms = -1, worst_probe_connect_ms = 0;  // the slowest probe, its connect()
  int probe_failures = 0;
  std::thread probe([&] {
    for (int i = 0; i < 10 && !stop.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    while (!stop.load()) {
      const Outcome o = FetchOnce(port, probe_target, Clock::now());
      if (o.verified) {
        if (o.ttfb_ms > worst_probe_ms) {
          worst_probe_ms = o.ttfb_ms;
          worst_probe_connect_ms = o.connect_ms;
        }
        probe_ms.push_back(o.ttfb_ms);
        probe_app_ms.push_back(o.app_ttfb_ms);
      } else {
        ++probe_failures;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  // Each connection may read rate * (time since its last turn), capped at
  // 200 ms worth, so a slow pass over all connections does not lower the
  // rate. Passes every 50 ms keep the client's syscalls few.
  const auto tick = std::chrono::milliseconds(50);
  const double cap = rate / 5.0;
  auto last_pass = Clock::now();
  std::vector<char> buf(64 * 1024);
  std::uint64_t bytes = 0;
  int errors = 0, mismatched = 0;
  const auto start = Clock::now();
  auto next = start;
  while (std::chrono::duration<double>(Clock::now() - start).count() < duration_s) {
    next += tick;
    const auto now = Clock::now();
    const double earned = rate * std::chrono::duration<double>(now - last_pass).count();
    last_pass = now;
    for (auto& c : conns) {
      if (!c.open) continue;
      c.budget = std::min(c.budget + earned, cap);
      while (c.budget >= 1) {
        const std::size_t want = std::min<std::size_t>(buf.size(), static_cast<std::size_t>(c.budget));
        const ssize_t r = ::recv(c.fd, buf.data(), want, 0);
        if (r > 0) {
          bytes += c.parser.Feed(buf.data(), static_cast<std::size_t>(r));
          c.budget -= static_cast<double>(r);
          if (c.parser.complete()) break;
          continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (!c.parser.complete()) ++errors;
        ::close(c.fd);
        c.open = false;
        break;
      }
    }
    if (Clock::now() < next) std::this_thread::sleep_until(next);
    else next = Clock::now();
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  int alive = 0;
  for (auto& c : conns) {
    if (!c.parser.verified()) ++mismatched;
    if (c.open) {
      ++alive;
      ::close(c.fd);
    }
  }
  stop = true;
  probe.join();
  std::printf("{\"clients\": %d, \"connected\": %d, \"alive_at_end\": %d, \"errors\": %d, "
              "\"mismatched\": %d, \"bytes\": %llu, \"per_client_bps\": %.0f, "
              "\"connect_s\": %.3f, \"probes\": %zu, \"probe_failures\": %d, "
              "\"probe_ttfb_p50_ms\": %.3f, \"probe_ttfb_p99_ms\": %.3f, "
              "\"probe_ttfb_max_ms\": %.3f, \"probe_app_ttfb_max_ms\": %.3f, "
              "\"worst_probe_connect_ms\": %.3f}\n",
              clients, connected, alive, errors, mismatched,
              static_cast<unsigned long long>(bytes),
              connected ? static_cast<double>(bytes) / connected / elapsed : 0.0, connect_s,
              probe_ms.size(), probe_failures, Percentile(probe_ms, 0.5),
              Percentile(probe_ms, 0.99), Percentile(probe_ms, 1.0),
              Percentile(probe_app_ms, 1.0), worst_probe_connect_ms);
  return mismatched == 0 && errors == 0 ? 0 : 1;
}

double ParseRate(const std::string& text) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  const std::string unit(end);
  if (unit == "KB") v *= 1e3;
  else if (unit == "MB") v *= 1e6;
  else if (unit == "GB") v *= 1e9;
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fanout_load: HTTP load for the benchmark suite (checks every byte)"};
  int port = 0, clients = 50, spread_ms = 1500;
  std::string target, probe_target, mode = "fetch", rate = "1MB";
  double duration = 10;
  bool detail = false;
  app.add_option("--port", port)->required();
  app.add_option("--target", target)->required();
  app.add_option("--mode", mode)->check(CLI::IsMember({"fetch", "slow"}));
  app.add_option("--clients", clients);
  app.add_option("--spread-ms", spread_ms);
  app.add_flag("--detail", detail, "per-client outcomes (fetch mode)");
  app.add_option("--rate", rate, "per-client read rate, e.g. 1MB (slow mode)");
  app.add_option("--duration", duration, "seconds (slow mode)");
  app.add_option("--probe-target", probe_target, "probed every 100 ms (slow mode)");
  CLI11_PARSE(app, argc, argv);
  if (mode == "slow") {
    return RunSlow(port, target, probe_target.empty() ? target : probe_target, clients,
                   ParseRate(rate), duration);
  }
  return RunFetch(port, target, clients, spread_ms, detail);
}
