// Integration tests of fanoutd's own upstream client (server/
// upstream_client.h), against a raw origin that answers exactly the bytes
// a test gives it: header values relayed unaltered, interim responses,
// folded headers, bodies delimited by the connection's close, and
// responses whose framing is invalid; and against a scripted keep-alive
// origin (tests/scripted_origin.h): connections reused across fetches, a
// stale one retried, request bodies streamed upstream.

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
#include "tests/scripted_origin.h"

#include "tests/test_util.h"

namespace fanout {
namespace {

using ::fanout::testing::Fetched;
using ::fanout::testing::RawConnection;
using ::fanout::testing::ScriptedOrigin;
using ::fanout::testing::ScriptedReply;
using ::fanout::testing::ScriptedRequest;

// Answers each request with the raw bytes set for its path, then closes.
class RawOrigin {
 public:
  RawOrigin() {
    fd_ = ::fanout::testing::ListenOnLoopback(&port_);
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

TEST_F(UpstreamClientTest, InterimResponsesAreRelayedNotStoredAndFoldedHeadersJoined) {
  StartAgainstRawOrigin();
  raw_.Set("/early", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                     "HTTP/1.1 200 OK\r\nX-Folded: one\r\n\ttwo\r\nCache-Control: max-age=60\r\n"
                     "Content-Length: 5\r\n\r\nhello");
  // A raw client: cpp-httplib 0.11.4's client takes a 103 for the answer.
  RawConnection c(fanoutd_.port());
  ASSERT_TRUE(c.Send("GET /early HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
  const std::string got = c.ReadUntil([](const std::string&) { return false; });
  ASSERT_EQ(got.rfind("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\n", 0),
            0u)
      << got;
  EXPECT_NE(got.find("\r\nX-Folded: one two\r\n"), std::string::npos) << got;
  EXPECT_EQ(got.substr(got.size() - 5), "hello");
  WaitUntilHit("/early");
  const Fetched hit = Get("/early");
  EXPECT_EQ(hit.body, "hello");
  EXPECT_EQ(hit.headers.count("Link"), 0u) << "an interim response is never stored";
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

TEST_F(UpstreamClientTest, MalformedFramingNamesTheRule) {
  StartAgainstRawOrigin();
  raw_.Set("/cl-and-te", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  raw_.Set("/plus", "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc");
  raw_.Set("/chunked-twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n");
  raw_.Set("/bare-cr", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n");
  for (const char* path : {"/cl-and-te", "/plus", "/chunked-twice", "/bare-cr"}) {
    Fetched f = Get(path);
    EXPECT_EQ(f.status, 502) << path;
    EXPECT_NE(f.body.find("malformed"), std::string::npos) << path << ": " << f.body;
  }
}

// fanoutd in front of a keep-alive origin run by `handler`.
class UpstreamConnectionTest : public ::fanout::testing::FanoutdTest {
 protected:
  void StartAgainst(const ScriptedOrigin& origin) {
    StartFanoutd({"--upstream", "http://127.0.0.1:" + std::to_string(origin.port())});
  }
  static ScriptedReply BodyOfTarget(const ScriptedRequest& r) {
    return ScriptedReply{ScriptedOrigin::Ok("body of " + r.target)};
  }
};

TEST_F(UpstreamConnectionTest, SequentialFetchesReuseOneUpstreamConnection) {
  ScriptedOrigin origin(BodyOfTarget);
  StartAgainst(origin);
  constexpr int kFetches = 6;
  for (int i = 0; i < kFetches; ++i) {
    const std::string target = "/obj" + std::to_string(i);
    const Fetched f = Get(target);
    EXPECT_EQ(f.status, 200);
    EXPECT_EQ(f.body, "body of " + target);
    // A hit once the fetch has ended, and with it the exchange: the
    // connection is back in the pool before the next fetch starts.
    WaitUntilHit(target);
  }
  EXPECT_EQ(origin.requests().size(), static_cast<std::size_t>(kFetches));
  EXPECT_LT(origin.connections(), kFetches);
  EXPECT_EQ(origin.connections(), 1) << "every fetch found the connection idle in the pool";
}

TEST_F(UpstreamConnectionTest, AnIdleConnectionTheOriginDropsIsRetriedOnANewOne) {
  // The origin drops its first connection when the second request comes
  // on it, answering nothing — a keep-alive timeout firing just then.
  ScriptedOrigin origin([](const ScriptedRequest& r) {
    ScriptedReply reply = BodyOfTarget(r);
    reply.drop = r.connection == 0 && r.on_connection == 1;
    return reply;
  });
  StartAgainst(origin);
  EXPECT_EQ(Get("/a").body, "body of /a");
  WaitUntilHit("/a");
  const Fetched b = Get("/b");
  EXPECT_EQ(b.status, 200) << b.body;
  EXPECT_TRUE(b.transfer_ok);
  EXPECT_EQ(b.body, "body of /b");
  const auto requests = origin.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].target, "/b");
  EXPECT_EQ(requests[1].connection, 0) << "sent on the pooled connection first";
  EXPECT_EQ(requests[2].target, "/b");
  EXPECT_EQ(requests[2].connection, 1) << "then once more, on a new connection";
}

TEST_F(UpstreamConnectionTest, UploadsGoUpstreamByteForByteWithLengthOrChunked) {
  ScriptedOrigin origin([](const ScriptedRequest& r) {
    return ScriptedReply{"HTTP/1.1 200 OK\r\nContent-Length: " +
                         std::to_string(std::to_string(r.body.size()).size()) + "\r\n\r\n" +
                         std::to_string(r.body.size())};
  });
  StartAgainst(origin);
  const std::string body = ::fanout::testing::Pattern(7, 3 << 20);
  httplib::Client client("127.0.0.1", fanoutd_.port());
  client.set_read_timeout(60, 0);
  client.set_write_timeout(60, 0);
  auto with_length = client.Post("/post", body, "application/octet-stream");
  ASSERT_TRUE(with_length);
  EXPECT_EQ(with_length->status, 200);
  EXPECT_EQ(with_length->body, std::to_string(body.size()));
  auto chunked = client.Put(
      "/put",
      [&](size_t offset, httplib::DataSink& sink) {
        if (offset == body.size()) {
          sink.done();
          return true;
        }
        return sink.write(body.data() + offset, std::min<std::size_t>(100000, body.size() - offset));
      },
      "application/octet-stream");
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->status, 200);
  const auto requests = origin.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_TRUE(requests[0].has_content_length);
  EXPECT_FALSE(requests[0].chunked);
  EXPECT_TRUE(requests[0].body == body) << "POST body differs (" << requests[0].body.size() << ")";
  EXPECT_EQ(requests[1].method, "PUT");
  EXPECT_TRUE(requests[1].chunked);
  EXPECT_FALSE(requests[1].has_content_length);
  EXPECT_TRUE(requests[1].body == body) << "PUT body differs (" << requests[1].body.size() << ")";
}

}  // namespace
}  // namespace fanout
