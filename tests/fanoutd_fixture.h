// The integration-test fixture: the real fanoutd binary in front of a real
// origin (OriginServer, in this process), driven by real HTTP clients.

#ifndef FANOUT_TESTS_FANOUTD_FIXTURE_H_
#define FANOUT_TESTS_FANOUTD_FIXTURE_H_

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bench/origin/origin_server.h"
#include "tests/fanoutd_process.h"
#include "tests/test_util.h"

namespace fanout::testing {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Fetched {
  int status = 0;
  std::string x_cache;
  std::string body;
  httplib::Headers headers;
  bool transfer_ok = false;  // the body arrived with a proper end
  Clock::time_point started, head_at, first_byte, done;
};

class FanoutdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    origin_port_ = origin_.Start("127.0.0.1", 0);
    ASSERT_GT(origin_port_, 0);
  }

  void StartFanoutd(std::vector<std::string> extra = {}) {
    if (std::find(extra.begin(), extra.end(), "--config") == extra.end() &&
        std::find(extra.begin(), extra.end(), "--upstream") == extra.end()) {
      extra.push_back("--upstream");
      extra.push_back("http://127.0.0.1:" + std::to_string(origin_port_));
    }
    ASSERT_TRUE(fanoutd_.Start(dir_.path(), extra)) << fanoutd_.log();
  }

  std::string WriteConfig(const std::string& json) {
    const std::string path = dir_.path() + "/fanout.json";
    std::ofstream(path) << json;
    return path;
  }

  // One real HTTP client request through fanoutd, streaming the body.
  Fetched Get(const std::string& target, httplib::Headers headers = {},
              std::size_t stop_after = SIZE_MAX, const std::string& method = "GET") {
    httplib::Client client("127.0.0.1", fanoutd_.port());
    client.set_read_timeout(60, 0);
    client.set_decompress(false);
    Fetched f;
    f.started = Clock::now();
    httplib::Request req;
    req.method = method;
    req.path = target;
    req.headers = headers;
    req.response_handler = [&](const httplib::Response& res) {
      f.head_at = Clock::now();
      ++heads_seen_;
      f.status = res.status;
      f.x_cache = res.get_header_value("X-Cache");
      f.headers = res.headers;
      return true;
    };
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
      if (f.body.empty()) {
        f.first_byte = Clock::now();
        ++first_bytes_seen_;
      }
      f.body.append(d, n);
      return f.body.size() < stop_after;
    };
    auto res = client.send(req);
    f.done = Clock::now();
    f.transfer_ok = static_cast<bool>(res);
    if (res && f.status == 0) f.status = res->status;
    if (res && f.x_cache.empty()) f.x_cache = res->get_header_value("X-Cache");
    if (res && f.body.empty() && !res->body.empty()) f.body = res->body;
    return f;
  }

  // Waits until the fetch for target has finished and the entry is a hit,
  // asking with HEAD (which changes nothing).
  void WaitUntilHit(const std::string& target) {
    httplib::Client client("127.0.0.1", fanoutd_.port());
    ASSERT_TRUE(WaitFor([&] {
      auto res = client.Head(target.c_str());
      return res && res->get_header_value("X-Cache") == "HIT";
    }));
  }

  httplib::Client Admin() {
    httplib::Client admin("127.0.0.1", fanoutd_.admin_port());
    admin.set_read_timeout(10, 0);
    return admin;
  }

  // Fetches target whole once and waits until it is stored.
  void Store(const std::string& target) {
    EXPECT_TRUE(Get(target).transfer_ok) << target;
    WaitUntilHit(target);
  }

  // The admin interface's GET /stats (an empty object if it fails).
  nlohmann::json Stats() {
    auto res = Admin().Get("/stats");
    EXPECT_TRUE(res && res->status == 200);
    return res ? nlohmann::json::parse(res->body) : nlohmann::json::object();
  }

  // The cache key of a target on the default route.
  std::string Key(const std::string& target) const {
    return "http://127.0.0.1:" + std::to_string(origin_port_) + target;
  }

  // Requests attached to the fetch in flight for target (admin /fetches);
  // -1 if none is in flight.
  int Joins(const std::string& target) {
    auto res = Admin().Get("/fetches");
    if (!res || res->status != 200) return -1;
    for (const auto& f : nlohmann::json::parse(res->body)) {
      if (f["key"] == Key(target)) return f["joins"].get<int>();
    }
    return -1;
  }

  // Whether the fetch in flight for target has its response head (admin
  // /fetches): from then on, requests are judged against it.
  bool FetchHasHead(const std::string& target) {
    auto res = Admin().Get("/fetches");
    if (!res || res->status != 200) return false;
    for (const auto& f : nlohmann::json::parse(res->body)) {
      if (f["key"] == Key(target)) return f["head"].get<bool>();
    }
    return false;
  }

  std::string Url(const std::string& target) const {
    return "http://127.0.0.1:" + std::to_string(fanoutd_.port()) + target;
  }

  // Runs `n` clients for `target`, client i starting i*spacing after the
  // first, and returns what each got.
  std::vector<Fetched> ManyClients(const std::string& target, int n,
                                   std::chrono::milliseconds spacing) {
    std::vector<Fetched> results(n);
    std::vector<std::thread> threads;
    const auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        std::this_thread::sleep_until(t0 + i * spacing);
        results[i] = Get(target);
      });
    }
    for (auto& t : threads) t.join();
    return results;
  }

  // 50 clients, arriving 10 ms apart, for an object the origin holds open
  // half-way (hold_at) until every client has its first byte: each must
  // have joined the one fetch and streamed from byte 0 while it ran.
  void CheckFanOut(const std::string& path, const std::string& query, std::uint64_t size) {
    const std::string target = path + "?" + query + "&hold_at=" + std::to_string(size / 2);
    const int first_bytes_before = first_bytes_seen_.load();
    std::vector<Fetched> results;
    std::thread clients([&] { results = ManyClients(target, 50, 10ms); });
    const bool all_streaming = WaitFor([&] { return first_bytes_seen_ - first_bytes_before == 50; });
    const auto released = Clock::now();
    origin_.Release(path);
    clients.join();
    EXPECT_TRUE(all_streaming) << "every client gets its first bytes while the fetch is held";
    EXPECT_EQ(origin_.Count(target), 1) << "exactly one upstream fetch";
    const std::string expected = OriginServer::OriginBody(path, size);
    int misses = 0, joins = 0;
    for (const auto& r : results) {
      EXPECT_EQ(r.status, 200);
      EXPECT_TRUE(r.transfer_ok);
      EXPECT_TRUE(r.body == expected) << "body differs (" << r.body.size() << " bytes)";
      misses += r.x_cache == "MISS";
      joins += r.x_cache == "JOIN";
      // A client that waited for the fetch to end would get no byte
      // before the origin was released.
      EXPECT_LT(r.first_byte, released) << r.x_cache << " client did not stream";
    }
    EXPECT_EQ(misses, 1);
    EXPECT_EQ(joins, 49);
    WaitUntilHit(target);
    Fetched later = Get(target);
    EXPECT_EQ(later.x_cache, "HIT");
    EXPECT_TRUE(later.body == expected);
    EXPECT_EQ(origin_.Count(target), 1);
  }

  std::atomic<int> heads_seen_{0};        // response heads any Get received
  std::atomic<int> first_bytes_seen_{0};  // bodies any Get began receiving
  TempDir dir_;
  OriginServer origin_;
  int origin_port_ = 0;
  FanoutdProcess fanoutd_;
};

// A loopback port nothing listens on: bind one, read its number, close it.
inline int DeadPort() {
  int port = 0;
  ::close(ListenOnLoopback(&port));
  return port;
}

class RawConnection {
 public:
  // `source`: the local address to connect from (any of 127.0.0.0/8 is
  // loopback, so a test can play several clients); null: the default.
  explicit RawConnection(int port, int receive_buffer = 0, const char* source = nullptr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (receive_buffer > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    if (source != nullptr) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      ::inet_pton(AF_INET, source, &local.sin_addr);
      ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawConnection() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  bool Send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Reads until `done(received)` holds or the peer closes / 30 s pass.
  template <typename Done>
  std::string ReadUntil(Done done) {
    std::string got;
    char buf[65536];
    while (!done(got)) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

}  // namespace fanout::testing

#endif  // FANOUT_TESTS_FANOUTD_FIXTURE_H_
