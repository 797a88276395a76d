// Integration tests of fanoutd's own upstream client (server/
// plain_http_client.h), against a raw origin that answers exactly the bytes
// a test gives it: header values relayed unaltered, interim responses,
// folded headers, bodies delimited by the connection's close, and
// responses whose framing is invalid.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/fanoutd_fixture.h"

namespace fanout {
namespace {

using ::fanout::testing::Fetched;
using ::fanout::testing::RawConnection;

// Answers each request with the raw bytes set for its path, then closes.
class RawOrigin {
 public:
  RawOrigin() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 64);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~RawOrigin() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  void Set(const std::string& path, std::string response) {
    std::lock_guard<std::mutex> lock(mu_);
    responses_[path] = std::move(response);
  }
  std::string LastRequest() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_request_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      timeval tv{5, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      const std::size_t sp = request.find(' ');
      const std::string path = request.substr(sp + 1, request.find(' ', sp + 1) - sp - 1);
      std::string response;
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_request_ = request;
        auto it = responses_.find(path);
        response = it == responses_.end() ? "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
                                          : it->second;
      }
      ::send(c, response.data(), response.size(), MSG_NOSIGNAL);
      ::shutdown(c, SHUT_WR);
      ::close(c);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, std::string> responses_;  // guarded by mu_
  std::string last_request_;                      // guarded by mu_
};

class UpstreamClientTest : public ::fanout::testing::FanoutdTest {
 protected:
  void StartAgainstRawOrigin() {
    StartFanoutd({"--upstream", "http://127.0.0.1:" + std::to_string(raw_.port())});
  }
  // The raw response fanoutd gives for a GET of path.
  std::string RawGet(const std::string& path) {
    RawConnection conn(fanoutd_.port());
    conn.Send("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    return conn.ReadUntil([](const std::string&) { return false; });
  }
  RawOrigin raw_;
};

TEST_F(UpstreamClientTest, HeaderValuesAreRelayedExactlyAsTheOriginSentThem) {
  StartAgainstRawOrigin();
  raw_.Set("/moved", "HTTP/1.1 301 Moved Permanently\r\nLocation: /a%2Fb?x=1%20y\r\n"
                     "Link: </s%20t.css>; rel=preload\r\nContent-Length: 0\r\n\r\n");
  const std::string got = RawGet("/moved");
  EXPECT_EQ(got.rfind("HTTP/1.1 301", 0), 0u) << got << fanoutd_.log();
  EXPECT_NE(got.find("Location: /a%2Fb?x=1%20y\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("Link: </s%20t.css>; rel=preload\r\n"), std::string::npos) << got;
  // The request went out as a plain HTTP/1.1 GET, without Connection: close.
  const std::string request = raw_.LastRequest();
  EXPECT_EQ(request.rfind("GET /moved HTTP/1.1\r\n", 0), 0u) << request;
  EXPECT_EQ(request.find("Connection:"), std::string::npos) << "HTTP/1.1 persists by default: " << request;
  EXPECT_NE(request.find("Host: 127.0.0.1:" + std::to_string(raw_.port()) + "\r\n"),
            std::string::npos) << request;
}

TEST_F(UpstreamClientTest, RequestHeaderValuesGoUpstreamAsTheClientSentThem) {
  StartAgainstRawOrigin();
  raw_.Set("/c", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  // cpp-httplib's server decodes %XX in every header value it parses: a
  // session cookie or a token with escapes must still reach the upstream
  // byte for byte.
  Fetched f = Get("/c", {{"Cookie", "s=a%2Bb%3D"}, {"X-Token", "x%2Fy z%20"}});
  EXPECT_EQ(f.status, 200);
  const std::string request = raw_.LastRequest();
  EXPECT_NE(request.find("Cookie: s=a%2Bb%3D\r\n"), std::string::npos) << request;
  EXPECT_NE(request.find("X-Token: x%2Fy z%20\r\n"), std::string::npos) << request;
  Fetched shared = Get("/c?q", {{"X-Token", "p%25q"}});
  EXPECT_NE(raw_.LastRequest().find("X-Token: p%25q\r\n"), std::string::npos)
      << raw_.LastRequest();
}

TEST_F(UpstreamClientTest, InterimResponsesAreSkippedAndFoldedHeadersJoined) {
  StartAgainstRawOrigin();
  raw_.Set("/early", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                     "HTTP/1.1 200 OK\r\nX-Folded: one\r\n\ttwo\r\nCache-Control: max-age=60\r\n"
                     "Content-Length: 5\r\n\r\nhello");
  Fetched f = Get("/early");
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(f.body, "hello");
  EXPECT_EQ(f.headers.find("X-Folded")->second, "one two");
  WaitUntilHit("/early");
  EXPECT_EQ(Get("/early").body, "hello");
}

TEST_F(UpstreamClientTest, BodiesDelimitedByCloseAndChunkedWithTrailersArriveWhole) {
  StartAgainstRawOrigin();
  const std::string big(300000, 'z');
  raw_.Set("/close", "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n\r\n" + big);
  raw_.Set("/chunks", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                      "Cache-Control: max-age=60\r\n\r\n"
                      "3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Trailer: t\r\n\r\n");
  Fetched close = Get("/close");
  EXPECT_EQ(close.status, 200);
  EXPECT_TRUE(close.transfer_ok);
  EXPECT_TRUE(close.body == big);
  Fetched chunks = Get("/chunks");
  EXPECT_TRUE(chunks.transfer_ok);
  EXPECT_EQ(chunks.body, "abcdefg");
  WaitUntilHit("/close");
  WaitUntilHit("/chunks");
  EXPECT_TRUE(Get("/close").body == big);
  EXPECT_EQ(Get("/chunks").body, "abcdefg");
}

TEST_F(UpstreamClientTest, InvalidFramingIsABadGatewayAndACutBodyIsNeverComplete) {
  StartAgainstRawOrigin();
  raw_.Set("/two-lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
                           "hello!");
  raw_.Set("/not-http", "SSH-2.0-OpenSSH_9.2\r\n\r\n");
  raw_.Set("/bad-chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n");
  raw_.Set("/short", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this");
  for (const char* path : {"/two-lengths", "/not-http"}) {
    Fetched f = Get(path);
    EXPECT_EQ(f.status, 502) << path;
    EXPECT_NE(f.body.find("malformed"), std::string::npos) << path << ": " << f.body;
  }
  for (const char* path : {"/bad-chunk", "/short"}) {
    Fetched f = Get(path);
    EXPECT_FALSE(f.transfer_ok) << path << " was served as complete";
    EXPECT_NE(Get(path).x_cache, "HIT") << path << " was kept";
  }
}

}  // namespace
}  // namespace fanout
