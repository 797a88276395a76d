// server/upstream_client: fanoutd's own HTTP/1.1 client against a scripted
// raw origin — interim responses, persistent connections and when they are
// not kept, the one retry of a stale pooled connection, request bodies
// whole and streamed, and Stop() — and against an https origin: reuse,
// read timeouts and Stop() under TLS.

#include "server/upstream_client.h"

#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include <gtest/gtest.h>

#include "tests/scripted_origin.h"
#include "tests/test_certs.h"
#include "tests/test_util.h"

namespace fanout {
namespace {

using ::fanout::testing::ScriptedOrigin;
using ::fanout::testing::ScriptedReply;
using ::fanout::testing::ScriptedRequest;

struct Got {
  UpstreamClient::Result result;
  std::vector<int> interim;  // statuses, in order
  std::string interim_link;
  int status = 0;
  bool interim_before_head = true;
  std::string body;
};

class UpstreamClientTest : public ::testing::Test {
 protected:
  UpstreamOrigin Origin(const ScriptedOrigin& origin) const {
    UpstreamOrigin o;
    o.host = "127.0.0.1";
    o.port = origin.port();
    return o;
  }
  Got Send(UpstreamClient& client, UpstreamClient::Request request) {
    Got got;
    got.result = client.Send(
        request,
        [&](const UpstreamResponseHead& head) {
          got.status = head.status;
          return true;
        },
        [&](const char* data, std::size_t n) {
          got.body.append(data, n);
          return true;
        },
        [&](const UpstreamResponseHead& head) {
          got.interim.push_back(head.status);
          got.interim_before_head = got.interim_before_head && got.status == 0;
          for (const auto& [name, value] : head.headers) {
            if (name == "Link") got.interim_link = value;
          }
        });
    return got;
  }
  Got Get(const ScriptedOrigin& origin, const std::string& target,
          const std::string& method = "GET") {
    UpstreamClient client(Origin(origin), &pool_, options_);
    UpstreamClient::Request request;
    request.method = method;
    request.target = target;
    request.headers = {{"Host", "origin.test"}, {"X-Kept", "a%2Fb"}};
    return Send(client, request);
  }

  UpstreamClient::Options options_{std::chrono::milliseconds(2000),
                                   std::chrono::milliseconds(2000)};
  UpstreamConnectionPool pool_;
};

TEST_F(UpstreamClientTest, InterimResponsesGoToOnInterimBeforeTheFinalHead) {
  ScriptedOrigin origin([](const ScriptedRequest&) {
    return ScriptedReply{"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                         "HTTP/1.1 100 Continue\r\n\r\n" +
                         ScriptedOrigin::Ok("hello")};
  });
  const Got got = Get(origin, "/early");
  ASSERT_TRUE(got.result.ok()) << got.result.message;
  EXPECT_EQ(got.interim, (std::vector<int>{103, 100}));
  EXPECT_TRUE(got.interim_before_head);
  EXPECT_EQ(got.interim_link, "</a.css>; rel=preload");
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, "hello");
}

TEST_F(UpstreamClientTest, RequestHeadersGoOutAsGivenWithoutConnectionClose) {
  ScriptedOrigin origin([](const ScriptedRequest&) { return ScriptedReply{ScriptedOrigin::Ok("x")}; });
  ASSERT_TRUE(Get(origin, "/h?q=1").result.ok());
  const auto requests = origin.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].head,
            "GET /h?q=1 HTTP/1.1\r\nHost: origin.test\r\nX-Kept: a%2Fb\r\n");
}

TEST_F(UpstreamClientTest, SequentialRequestsShareOneConnection) {
  ScriptedOrigin origin([](const ScriptedRequest& r) {
    if (r.target == "/chunked") {
      return ScriptedReply{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "3\r\nabc\r\n0\r\n\r\n"};
    }
    if (r.target == "/head") return ScriptedReply{ScriptedOrigin::Ok("")};
    if (r.target == "/empty") return ScriptedReply{"HTTP/1.1 204 No Content\r\n\r\n"};
    return ScriptedReply{ScriptedOrigin::Ok("body of " + r.target)};
  });
  EXPECT_EQ(Get(origin, "/a").body, "body of /a");
  EXPECT_EQ(Get(origin, "/chunked").body, "abc");
  EXPECT_EQ(Get(origin, "/empty").status, 204);
  // A HEAD response says Content-Length but has no body.
  ScriptedOrigin head_origin([](const ScriptedRequest&) {
    return ScriptedReply{"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"};
  });
  const Got head = Get(head_origin, "/h", "HEAD");
  EXPECT_TRUE(head.result.ok()) << head.result.message;
  EXPECT_EQ(head.body, "");
  EXPECT_TRUE(Get(head_origin, "/h", "HEAD").result.ok());
  EXPECT_EQ(Get(origin, "/b").body, "body of /b");
  EXPECT_EQ(origin.connections(), 1) << "every response was complete and persistent";
  EXPECT_EQ(origin.requests().size(), 4u);
  EXPECT_EQ(head_origin.connections(), 1);
}

TEST_F(UpstreamClientTest, ConnectionsThatCannotCarryAnotherRequestAreNotReused) {
  ScriptedOrigin origin([](const ScriptedRequest& r) {
    if (r.target == "/close") {
      return ScriptedReply{ScriptedOrigin::Ok("c", "Connection: close\r\n")};
    }
    if (r.target == "/http10") return ScriptedReply{"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx"};
    if (r.target == "/http10-keep") {
      return ScriptedReply{"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx"};
    }
    if (r.target == "/extra") return ScriptedReply{ScriptedOrigin::Ok("e") + "JUNK"};
    return ScriptedReply{ScriptedOrigin::Ok("ok")};
  });
  // Each request below finds the previous one's connection in the pool;
  // only "/next" after a response that ends its connection needs a new one.
  EXPECT_TRUE(Get(origin, "/next").result.ok());
  for (const char* target : {"/close", "/http10", "/extra"}) {
    const int before = origin.connections();
    EXPECT_TRUE(Get(origin, target).result.ok()) << target;
    EXPECT_TRUE(Get(origin, "/next").result.ok()) << target;
    EXPECT_EQ(origin.connections(), before + 1) << target << "'s connection was reused";
  }
  const int before = origin.connections();
  EXPECT_TRUE(Get(origin, "/http10-keep").result.ok());
  EXPECT_TRUE(Get(origin, "/next").result.ok());
  EXPECT_EQ(origin.connections(), before) << "HTTP/1.0 with keep-alive persists";
}

TEST_F(UpstreamClientTest, AStalePooledConnectionIsRetriedOnceOnANewOne) {
  // The origin closes its first connection when the second request comes
  // on it, without a byte of answer (as if its idle timeout fired just then).
  ScriptedOrigin origin([](const ScriptedRequest& r) {
    ScriptedReply reply{ScriptedOrigin::Ok("body of " + r.target)};
    reply.drop = r.connection == 0 && r.on_connection == 1;
    return reply;
  });
  EXPECT_EQ(Get(origin, "/first").body, "body of /first");
  UpstreamClient client(Origin(origin), &pool_, options_);
  UpstreamClient::Request request;
  request.method = "PUT";
  request.target = "/second";
  request.body = "put body";
  const Got got = Send(client, request);
  ASSERT_TRUE(got.result.ok()) << got.result.message;
  EXPECT_EQ(got.body, "body of /second");
  EXPECT_EQ(client.reused_connections(), 1);
  EXPECT_EQ(client.new_connections(), 1);
  const auto requests = origin.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].target, "/second");
  EXPECT_EQ(requests[1].connection, 0);
  EXPECT_EQ(requests[2].target, "/second") << "sent again";
  EXPECT_EQ(requests[2].connection, 1) << "on a new connection";
  EXPECT_EQ(requests[2].body, "put body");
}

TEST_F(UpstreamClientTest, ANonIdempotentRequestIsNotRetried) {
  ScriptedOrigin origin([](const ScriptedRequest& r) {
    ScriptedReply reply{ScriptedOrigin::Ok("ok")};
    reply.drop = r.method == "POST";
    return reply;
  });
  EXPECT_TRUE(Get(origin, "/first").result.ok());
  UpstreamClient client(Origin(origin), &pool_, options_);
  UpstreamClient::Request request;
  request.method = "POST";
  request.target = "/post";
  request.body = "once";
  const Got got = Send(client, request);
  EXPECT_EQ(got.result.error, UpstreamClient::Error::kRead) << got.result.message;
  EXPECT_EQ(origin.requests().size(), 2u) << "the POST went out once";
}

TEST_F(UpstreamClientTest, RequestBodiesAreFramedByLengthOrChunked) {
  ScriptedOrigin origin([](const ScriptedRequest& r) {
    return ScriptedReply{ScriptedOrigin::Ok(std::to_string(r.body.size()))};
  });
  std::string big(300000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 251);
  for (bool known_length : {true, false}) {
    auto pipe = std::make_shared<BytePipe>(64 * 1024);
    std::thread producer([&] {
      for (std::size_t at = 0; at < big.size(); at += 10000) {
        ASSERT_TRUE(pipe->Write(big.data() + at, std::min<std::size_t>(10000, big.size() - at)).ok());
      }
      pipe->Finish();
    });
    UpstreamClient client(Origin(origin), &pool_, options_);
    UpstreamClient::Request request;
    request.method = "POST";
    request.target = known_length ? "/length" : "/chunked";
    request.body_stream = pipe;
    if (known_length) request.body_length = big.size();
    const Got got = Send(client, request);
    producer.join();
    ASSERT_TRUE(got.result.ok()) << got.result.message;
    const ScriptedRequest seen = origin.requests().back();
    EXPECT_EQ(seen.has_content_length, known_length);
    EXPECT_EQ(seen.chunked, !known_length);
    EXPECT_TRUE(seen.body == big) << "body differs at the origin (" << seen.body.size() << ")";
  }
  // A body read whole, and an empty POST, go with Content-Length.
  UpstreamClient client(Origin(origin), &pool_, options_);
  UpstreamClient::Request request;
  request.method = "POST";
  request.target = "/empty";
  ASSERT_TRUE(Send(client, request).result.ok());
  EXPECT_NE(origin.requests().back().head.find("Content-Length: 0\r\n"), std::string::npos);
  EXPECT_EQ(origin.connections(), 1);
}

TEST_F(UpstreamClientTest, ABodyStreamThatBreaksOffOrStallsFailsTheExchange) {
  ScriptedOrigin origin([](const ScriptedRequest&) { return ScriptedReply{ScriptedOrigin::Ok("")}; });
  options_.read_timeout = std::chrono::milliseconds(300);
  for (bool stall : {false, true}) {
    auto pipe = std::make_shared<BytePipe>(1024);
    ASSERT_TRUE(pipe->Write("abc", 3).ok());
    if (!stall) pipe->Fail("client went away");
    UpstreamClient client(Origin(origin), &pool_, options_);
    UpstreamClient::Request request;
    request.method = "PUT";
    request.target = "/up";
    request.body_stream = pipe;
    request.body_length = 100;
    const Got got = Send(client, request);
    EXPECT_EQ(got.result.error, UpstreamClient::Error::kBodySource) << got.result.message;
    EXPECT_EQ(got.status, 0);
  }
  EXPECT_EQ(origin.requests().size(), 0u) << "no request was completed";
}

TEST_F(UpstreamClientTest, StopWakesAReadBlockedOnASilentUpstream) {
  std::atomic<bool> released{false};
  ScriptedOrigin origin([&](const ScriptedRequest&) {
    while (!released) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return ScriptedReply{"", true};
  });
  options_.read_timeout = std::chrono::milliseconds(60000);
  UpstreamClient client(Origin(origin), &pool_, options_);
  std::thread stopper([&] {
    while (origin.requests().empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    client.Stop();
  });
  const auto started = std::chrono::steady_clock::now();
  UpstreamClient::Request request;
  request.target = "/silent";
  const Got got = Send(client, request);
  stopper.join();
  released = true;
  EXPECT_EQ(got.result.error, UpstreamClient::Error::kCancelled) << got.result.message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}

// A client that takes long bodies through a pipe: what on_body and on_pipe
// were given, in order.
struct Piped {
  Got got;
  std::size_t pipe_calls = 0;
  std::size_t body_calls_after_pipe = 0;
};

Piped SendThroughPipe(UpstreamClient& client, const std::string& target,
                      bool refuse_pipe = false) {
  Piped piped;
  client.TakeBodiesThroughPipe([&](int pipe, std::size_t n) {
    ++piped.pipe_calls;
    if (refuse_pipe) return false;
    std::string bytes(n, '\0');
    for (std::size_t got = 0; got < n;) {
      const ssize_t r = ::read(pipe, bytes.data() + got, n - got);
      if (r <= 0) return false;
      got += static_cast<std::size_t>(r);
    }
    piped.got.body += bytes;
    return true;
  });
  UpstreamClient::Request request;
  request.target = target;
  piped.got.result = client.Send(
      request,
      [&](const UpstreamResponseHead& head) {
        piped.got.status = head.status;
        return true;
      },
      [&](const char* data, std::size_t n) {
        if (piped.pipe_calls > 0) ++piped.body_calls_after_pipe;
        piped.got.body.append(data, n);
        return true;
      });
  return piped;
}

std::string LongBody(std::size_t n) {
  std::string body(n, '\0');
  for (std::size_t i = 0; i < n; ++i) body[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  return body;
}

TEST_F(UpstreamClientTest, ALongBodyOfKnownLengthGoesThroughThePipeAndNoFurther) {
  const std::string body = LongBody(3 << 20);
  ScriptedOrigin origin([&](const ScriptedRequest& r) {
    if (r.target == "/small") return ScriptedReply{ScriptedOrigin::Ok("small")};
    return ScriptedReply{ScriptedOrigin::Ok(body)};
  });
  UpstreamClient client(Origin(origin), &pool_, options_);
  const Piped piped = SendThroughPipe(client, "/long");
  ASSERT_TRUE(piped.got.result.ok()) << piped.got.result.message;
  EXPECT_GE(piped.pipe_calls, 1u);
  EXPECT_EQ(piped.body_calls_after_pipe, 0u) << "the pipe takes the rest of the body";
  EXPECT_TRUE(piped.got.body == body) << "every byte, in order";
  // The splice stopped at the body's end: the connection carries the next
  // exchange, and a short body never uses the pipe.
  UpstreamClient next(Origin(origin), &pool_, options_);
  const Piped small = SendThroughPipe(next, "/small");
  EXPECT_EQ(small.got.body, "small");
  EXPECT_EQ(small.pipe_calls, 0u);
  EXPECT_EQ(origin.connections(), 1);
}

TEST_F(UpstreamClientTest, ALongBodyCutShortOrStalledInThePipeFailsTheExchange) {
  const std::string body = LongBody(3 << 20);
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                           "\r\n\r\n";
  ScriptedOrigin origin([&](const ScriptedRequest& r) {
    // /cut closes after 2 MiB; /stall sends 2 MiB and then nothing.
    return ScriptedReply{head + body.substr(0, 2 << 20), r.target == "/cut"};
  });
  options_.read_timeout = std::chrono::milliseconds(300);
  UpstreamClient cut_client(Origin(origin), &pool_, options_);
  const Piped cut = SendThroughPipe(cut_client, "/cut");
  EXPECT_EQ(cut.got.result.error, UpstreamClient::Error::kRead);
  EXPECT_EQ(cut.got.result.message, "connection closed after 2097152 of 3145728 bytes");
  EXPECT_TRUE(cut.got.body == body.substr(0, 2 << 20));
  UpstreamClient stall_client(Origin(origin), &pool_, options_);
  const Piped stall = SendThroughPipe(stall_client, "/stall");
  EXPECT_EQ(stall.got.result.error, UpstreamClient::Error::kReadTimeout)
      << stall.got.result.message;
  // A pipe handler that refuses ends the exchange; the connection is not
  // reused (its body is unread).
  UpstreamClient refused_client(Origin(origin), &pool_, options_);
  const Piped refused = SendThroughPipe(refused_client, "/cut", /*refuse_pipe=*/true);
  EXPECT_EQ(refused.got.result.error, UpstreamClient::Error::kCancelled);
  EXPECT_EQ(pool_.idle(), 0u);
}

// An https origin with a certificate for 127.0.0.1 signed by a test CA
// (written to ca_file), whose /slow answers only when released.
class TlsOriginTest : public UpstreamClientTest {
 protected:
  void SetUp() override {
    ca_key_ = ::fanout::testing::NewKey();
    ca_ = ::fanout::testing::MakeCert(ca_key_.get(), "test CA", nullptr, nullptr, true, nullptr);
    ca_file_ = dir_.path() + "/ca.pem";
    ::fanout::testing::WritePem(ca_.get(), ca_file_);
    key_ = ::fanout::testing::NewKey();
    cert_ = ::fanout::testing::MakeCert(key_.get(), "localhost", ca_.get(), ca_key_.get(), false,
                                        "IP:127.0.0.1");
    server_ = std::make_unique<httplib::SSLServer>(cert_.get(), key_.get());
    server_->Get("/fast", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("fast", "text/plain");
    });
    server_->Get("/slow", [this](const httplib::Request&, httplib::Response& res) {
      ++slow_requests_;
      while (!released_) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      res.set_content("slow", "text/plain");
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
  }
  void TearDown() override {
    released_ = true;
    server_->stop();
    thread_.join();
  }
  UpstreamOrigin Origin() const {
    UpstreamOrigin o;
    o.scheme = "https";
    o.host = "127.0.0.1";
    o.port = port_;
    o.tls.ca_file = ca_file_;
    return o;
  }
  UpstreamClient::Request GetOf(const std::string& target) const {
    UpstreamClient::Request request;
    request.target = target;
    return request;
  }

  ::fanout::testing::TempDir dir_;
  ::fanout::testing::PKey ca_key_, key_;
  ::fanout::testing::CertPtr ca_, cert_;
  std::string ca_file_;
  std::unique_ptr<httplib::SSLServer> server_;
  int port_ = 0;
  std::atomic<bool> released_{false};
  std::atomic<int> slow_requests_{0};
  std::thread thread_;
};

TEST_F(TlsOriginTest, TlsConnectionsAreReused) {
  UpstreamClient first(Origin(), &pool_, options_);
  const Got a = Send(first, GetOf("/fast"));
  ASSERT_TRUE(a.result.ok()) << a.result.message;
  EXPECT_EQ(a.body, "fast");
  EXPECT_EQ(first.new_connections(), 1);
  UpstreamClient second(Origin(), &pool_, options_);
  const Got b = Send(second, GetOf("/fast"));
  ASSERT_TRUE(b.result.ok()) << b.result.message;
  EXPECT_EQ(b.body, "fast");
  EXPECT_EQ(second.reused_connections(), 1);
  EXPECT_EQ(second.new_connections(), 0);
}

TEST_F(TlsOriginTest, AReadTimeoutEndsATlsExchange) {
  options_.read_timeout = std::chrono::milliseconds(300);
  UpstreamClient client(Origin(), &pool_, options_);
  const Got got = Send(client, GetOf("/slow"));
  EXPECT_EQ(got.result.error, UpstreamClient::Error::kReadTimeout) << got.result.message;
}

TEST_F(TlsOriginTest, StopWakesAReadBlockedUnderTls) {
  options_.read_timeout = std::chrono::milliseconds(60000);
  UpstreamClient client(Origin(), &pool_, options_);
  std::thread stopper([&] {
    while (slow_requests_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    client.Stop();
  });
  const auto started = std::chrono::steady_clock::now();
  const Got got = Send(client, GetOf("/slow"));
  stopper.join();
  EXPECT_EQ(got.result.error, UpstreamClient::Error::kCancelled) << got.result.message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}

TEST_F(TlsOriginTest, AnUnknownCaFailsTheHandshakeNamingTheReason) {
  UpstreamOrigin origin = Origin();
  origin.tls.ca_file.clear();  // the system's CAs: the test CA is not among them
  UpstreamClient client(origin, &pool_, options_);
  const Got got = Send(client, GetOf("/fast"));
  EXPECT_EQ(got.result.error, UpstreamClient::Error::kConnect);
  EXPECT_NE(got.result.message.find("certificate verify failed: unable to get local issuer"),
            std::string::npos)
      << got.result.message;
}

}  // namespace
}  // namespace fanout
