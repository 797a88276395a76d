// The HTTP/1.1 rules of fanoutd's own data-plane layer, against the real
// binary: request framing (bodies on any method, Content-Length and
// Transfer-Encoding), Host, target forms, error answers that close the
// connection, responses without a body, 100-continue, HTTP/1.0
// keep-alive, and methods no library knows. Each smuggling case sends a
// request where a lenient parser would find one, and checks that it never
// runs.

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bench/origin/origin_server.h"
#include "tests/fanoutd_fixture.h"
#include "tests/scripted_origin.h"

namespace fanout {
namespace {

using ::fanout::testing::DeadPort;
using ::fanout::testing::FanoutdTest;
using ::fanout::testing::RawConnection;
using ::fanout::testing::ScriptedOrigin;
using ::fanout::testing::ScriptedReply;
using ::fanout::testing::ScriptedRequest;
using ::fanout::testing::WaitFor;

// A scripted origin's handler that answers every request with the bytes
// `answer` returns for it.
template <typename Answer>
ScriptedOrigin::Handler Answering(Answer answer) {
  return [answer](const ScriptedRequest& r) { return ScriptedReply{answer(r)}; };
}

class Http1Test : public FanoutdTest {
 protected:
  // Sends `bytes` on a new connection; everything fanoutd sent back until
  // it closed the connection (or 30 s passed).
  std::string Exchange(const std::string& bytes) {
    RawConnection c(fanoutd_.port());
    EXPECT_TRUE(c.connected());
    EXPECT_TRUE(c.Send(bytes));
    return c.ReadUntil([](const std::string&) { return false; });
  }

  static int CountOf(const std::string& haystack, const std::string& needle) {
    int n = 0;
    for (auto at = haystack.find(needle); at != std::string::npos;
         at = haystack.find(needle, at + 1)) {
      ++n;
    }
    return n;
  }

  // A request that, if it ever ran, the origin would count.
  static constexpr const char* kSmuggled = "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n";
};

// A scripted origin of raw bytes: it shows every request fanoutd sent it, where a
// library origin would itself read a body as the next request.
TEST_F(Http1Test, ABodyOnGetHeadOrOptionsIsReadNeverTakenForTheNextRequest) {
  ScriptedOrigin origin(Answering([](const ScriptedRequest&) {
    return std::string("HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 2\r\n\r\nok");
  }));
  StartFanoutd({"--upstream", "http://127.0.0.1:" + std::to_string(origin.port())});
  for (const std::string method : {"GET", "HEAD", "OPTIONS"}) {
    const std::string body = kSmuggled;
    const std::string response = Exchange(
        method + " /g HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n" + body + "GET /after HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(CountOf(response, "HTTP/1.1 200 OK\r\n"), 2) << method << ": " << response;
  }
  int options_with_body = 0;
  for (const auto& request : origin.requests()) {
    EXPECT_EQ(request.head.find("/smuggled"), std::string::npos)
        << "a body never runs as a request: " << request.head;
    if (request.head.rfind("OPTIONS /g ", 0) == 0) options_with_body += request.body == kSmuggled;
  }
  EXPECT_EQ(options_with_body, 1) << "the OPTIONS body is passed on, as a body";
  EXPECT_EQ(origin.requests().size(), 6u) << "three requests and three /after";
}

TEST_F(Http1Test, ContentLengthWithTransferEncodingIs400AndClosesTheConnection) {
  StartFanoutd();
  const std::string response = Exchange(
      "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n" + std::string(kSmuggled));
  EXPECT_EQ(response.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(CountOf(response, "HTTP/1.1 "), 1) << "nothing after the refusal runs";
  EXPECT_EQ(origin_.TotalCount(), 0);
}

TEST_F(Http1Test, FramingErrorsGetTheirStatusAndNothingAfterThemRuns) {
  StartFanoutd();
  struct Case {
    std::string request;
    std::string status_line;
  };
  const std::string post = "POST /up HTTP/1.1\r\nHost: h\r\n";
  const std::vector<Case> cases = {
      {post + "Content-Length: 5, 45\r\n\r\nhello", "HTTP/1.1 400 Bad Request"},
      {post + "Content-Length: +5\r\n\r\nhello", "HTTP/1.1 400 Bad Request"},
      {post + "Content-Length: 0x5\r\n\r\nhello", "HTTP/1.1 400 Bad Request"},
      {post + "Content-Length: -1\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {post + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
       "HTTP/1.1 501 Not Implemented"},
      {post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 501 Not Implemented"},
      {post + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
       "HTTP/1.1 400 Bad Request"},
      {post + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
       "HTTP/1.1 400 Bad Request"},
      {post + "Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n",
       "HTTP/1.1 400 Bad Request"},  // chunk data longer than its size
      {"GET /x HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request"},  // no Host
      {"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"GET /x HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {std::string("GET /x HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 36), "HTTP/1.1 400 Bad Request"},
      {"GET /x HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n", "HTTP/1.1 400 Bad Request"},
  };
  for (const auto& c : cases) {
    const std::string response = Exchange(c.request + kSmuggled);
    EXPECT_EQ(response.substr(0, response.find("\r\n")), c.status_line) << c.request;
    EXPECT_NE(response.find("Connection: close\r\n"), std::string::npos) << c.request;
    EXPECT_EQ(response.find("HTTP/1.1", 5), std::string::npos)
        << "closed after the error: " << c.request;
  }
  // Garbage between pipelined requests: the first is answered, the
  // garbage refused, and the connection closed.
  const std::string garbage = Exchange(
      "GET /g.bin?size=3 HTTP/1.1\r\nHost: h\r\n\r\n\x01garbage\r\n\r\n" + std::string(kSmuggled));
  EXPECT_EQ(garbage.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << garbage;
  EXPECT_EQ(CountOf(garbage, "HTTP/1.1 400 Bad Request\r\n"), 1) << garbage;
  EXPECT_EQ(CountOf(garbage, "HTTP/1.1 "), 2) << garbage;
  EXPECT_EQ(origin_.Count("/smuggled"), 0);
  EXPECT_EQ(origin_.Count("/up"), 0) << "no broken request reaches the upstream";
}

TEST_F(Http1Test, AnAbsoluteFormTargetIsRoutedByItsPath) {
  StartFanoutd();
  const std::string response = Exchange(
      "GET http://elsewhere.example:81/abs.bin?size=100 HTTP/1.1\r\nHost: ignored\r\n"
      "Connection: close\r\n\r\n");
  EXPECT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
  EXPECT_NE(response.find(OriginServer::OriginBody("/abs.bin", 100)), std::string::npos);
  EXPECT_EQ(origin_.Count("/abs.bin?size=100"), 1) << "the upstream got the path, not the URL";
  const auto headers = origin_.LastHeaders("/abs.bin?size=100");
  EXPECT_EQ(headers.find("Host")->second, "127.0.0.1:" + std::to_string(origin_port_))
      << "the route's host, never the client's authority";
}

TEST_F(Http1Test, ConnectIs405AndOptionsStarIsAnsweredByFanoutd) {
  StartFanoutd();
  const std::string connect = Exchange("CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n");
  EXPECT_EQ(connect.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u) << connect;
  EXPECT_NE(connect.find("CONNECT is not allowed"), std::string::npos);
  EXPECT_NE(connect.find("Allow: "), std::string::npos);
  const std::string options = Exchange("OPTIONS * HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(options.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << options;
  EXPECT_NE(options.find("Allow: GET, HEAD"), std::string::npos);
  EXPECT_EQ(origin_.TotalCount(), 0);
}

TEST_F(Http1Test, NoContentAndNotModifiedCarryNoBodyAndNoFraming) {
  StartFanoutd();
  const std::string response = Exchange(
      "GET /nc.bin?size=100&status=204 HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /after.bin?size=7 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(response.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u) << response;
  const std::string head = response.substr(0, response.find("\r\n\r\n") + 4);
  EXPECT_EQ(head.find("Transfer-Encoding"), std::string::npos) << head;
  EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
  EXPECT_EQ(response.compare(head.size(), 17, "HTTP/1.1 200 OK\r\n"), 0)
      << "the next response follows the 204's head at once: " << response.substr(head.size(), 300);
}

// Found by the stress test: a HEAD answered with fanoutd's own error got
// the error's text as a body, which a keep-alive client then read as the
// next response.
TEST_F(Http1Test, AHeadAnsweredWithAnErrorCarriesNoBody) {
  StartFanoutd({"--upstream", "http://127.0.0.1:" + std::to_string(DeadPort())});
  const std::string response = Exchange(
      "HEAD /down.bin HTTP/1.1\r\nHost: h\r\n\r\n"
      "HEAD /down.bin HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(response.rfind("HTTP/1.1 502 Bad Gateway\r\n", 0), 0u) << response;
  const std::size_t first_end = response.find("\r\n\r\n") + 4;
  EXPECT_EQ(response.compare(first_end, 26, "HTTP/1.1 502 Bad Gateway\r\n"), 0)
      << "the next response follows the head at once: " << response.substr(first_end, 60);
  EXPECT_NE(response.find("Content-Length: "), std::string::npos)
      << "the length a GET's answer would have";
  EXPECT_EQ(response.find("fanoutd: upstream"), std::string::npos) << "no body";
}

TEST_F(Http1Test, ExpectContinueIsAnsweredWhenTheBodyIsWanted) {
  StartFanoutd();
  RawConnection c(fanoutd_.port());
  ASSERT_TRUE(c.Send("PUT /put.bin?size=3 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                     "Expect: 100-continue\r\nConnection: close\r\n\r\n"));
  const std::string interim = c.ReadUntil([](const std::string& got) {
    return got.find("\r\n\r\n") != std::string::npos;
  });
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(c.Send("hello"));
  const std::string response = c.ReadUntil([](const std::string&) { return false; });
  EXPECT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("X-Origin-Body-Bytes: 5\r\n"), std::string::npos) << response;
  // Refused without its body: no 100 Continue is sent, and the body never
  // runs as a request.
  const std::string refused = Exchange(
      "PUT /nowhere HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999\r\n"
      "Expect: 100-continue\r\n\r\n");
  EXPECT_EQ(refused.rfind("HTTP/1.1 413 ", 0), 0u) << refused;
  EXPECT_EQ(refused.find("100 Continue"), std::string::npos);
}

TEST_F(Http1Test, Http10ClientsAreKeptOpenOnlyWhenTheyAskForIt) {
  StartFanoutd();
  const std::string closed = Exchange(
      "GET /ten.bin?size=10 HTTP/1.0\r\n\r\nGET /ten.bin?size=10 HTTP/1.0\r\n\r\n");
  EXPECT_EQ(CountOf(closed, "HTTP/1.1 200 OK"), 1) << "1.0 without keep-alive: one answer";
  EXPECT_NE(closed.find("Connection: close\r\n"), std::string::npos);
  const std::string kept = Exchange(
      "GET /ten.bin?size=10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
      "GET /ten.bin?size=10 HTTP/1.0\r\n\r\n");
  EXPECT_EQ(CountOf(kept, "HTTP/1.1 200 OK"), 2) << kept;
  EXPECT_NE(kept.find("Connection: keep-alive\r\n"), std::string::npos);
  EXPECT_EQ(kept.find("Transfer-Encoding"), std::string::npos) << "no chunked to a 1.0 client";
}

TEST_F(Http1Test, ABodyOfUnknownLengthReachesAnHttp10ClientUnframedAndTheCloseEndsIt) {
  StartFanoutd();
  // Held half-way: the length is not known while the answer starts.
  const std::string target = "/u10.bin?size=50000&chunked=1&hold_at=20000";
  RawConnection c(fanoutd_.port());
  ASSERT_TRUE(c.Send("GET " + target + " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  const std::string head = c.ReadUntil([](const std::string& got) {
    return got.find("\r\n\r\n") != std::string::npos;
  });
  origin_.Release("/u10.bin");
  const std::string response = head + c.ReadUntil([](const std::string&) { return false; });
  ASSERT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response.substr(0, 300);
  const std::size_t body_at = response.find("\r\n\r\n") + 4;
  const std::string fields = response.substr(0, body_at);
  EXPECT_EQ(fields.find("Transfer-Encoding"), std::string::npos) << fields;
  EXPECT_EQ(fields.find("Content-Length"), std::string::npos) << fields;
  EXPECT_NE(fields.find("Connection: close\r\n"), std::string::npos) << fields;
  EXPECT_TRUE(response.substr(body_at) == OriginServer::OriginBody("/u10.bin", 50000))
      << "the body as it is, ended by the close";
}

TEST_F(Http1Test, ChunkedUploadsWithTrailersReachTheUpstreamWhole) {
  StartFanoutd();
  const std::string response = Exchange(
      "POST /c.bin?size=2 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
  EXPECT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("X-Origin-Body-Bytes: 11\r\n"), std::string::npos) << response;
  EXPECT_NE(response.find("X-Origin-Body-Fnv: " +
                          std::to_string(OriginServer::Fnv1a("hello world")) + "\r\n"),
            std::string::npos);
}

TEST_F(Http1Test, AnExtensionMethodIsPassedThroughWithItsBody) {
  ScriptedOrigin origin(Answering([](const ScriptedRequest&) {
    return std::string("HTTP/1.1 207 Multi-Status\r\nContent-Type: application/xml\r\n"
                       "Content-Length: 7\r\n\r\n<m:ok/>");
  }));
  StartFanoutd({"--upstream", "http://127.0.0.1:" + std::to_string(origin.port())});
  const std::string response = Exchange(
      "PROPFIND /dav/x HTTP/1.1\r\nHost: h\r\nDepth: 1\r\nContent-Length: 9\r\n"
      "Connection: close\r\n\r\n<propf/>\n");
  EXPECT_EQ(response.rfind("HTTP/1.1 207 Multi-Status\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("X-Cache: BYPASS\r\n"), std::string::npos);
  EXPECT_NE(response.find("\r\n\r\n<m:ok/>"), std::string::npos);
  const auto requests = origin.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].head.rfind("PROPFIND /dav/x HTTP/1.1\r\n", 0), 0u) << requests[0].head;
  EXPECT_NE(requests[0].head.find("Depth: 1\r\n"), std::string::npos);
  EXPECT_EQ(requests[0].body, "<propf/>\n");
  // Without a body too.
  const std::string bare = Exchange("M-SEARCH /ssdp HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(bare.rfind("HTTP/1.1 207 ", 0), 0u) << bare;
  ASSERT_EQ(origin.requests().size(), 2u);
  EXPECT_EQ(origin.requests()[1].head.rfind("M-SEARCH /ssdp HTTP/1.1\r\n", 0), 0u);
}

// RFC 9111 §4.4: a method whose safety is unknown invalidates its target,
// as unsafe ones do; a safe one (PROPFIND is read-only) does not.
TEST_F(Http1Test, AnExtensionMethodOfUnknownSafetyInvalidatesItsTarget) {
  ScriptedOrigin origin(Answering([](const ScriptedRequest&) {
    return ScriptedOrigin::Ok("stored");
  }));
  StartFanoutd({"--upstream", "http://127.0.0.1:" + std::to_string(origin.port())});
  auto get = [&] {
    const std::string r = Exchange("GET /inv HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    const auto at = r.find("X-Cache: ");
    return at == std::string::npos ? std::string() : r.substr(at + 9, r.find("\r\n", at) - at - 9);
  };
  EXPECT_EQ(get(), "MISS");
  ASSERT_TRUE(WaitFor([&] { return get() == "HIT"; }));
  Exchange("PROPFIND /inv HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(get(), "HIT") << "a safe method leaves the entry";
  Exchange("M-SEARCH /inv HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(get(), "MISS") << "a method of unknown safety invalidates it";
}

TEST_F(Http1Test, InterimResponsesReachTheClientThatCausedTheFetchAndAreNeverStored) {
  ScriptedOrigin origin(Answering([](const ScriptedRequest& r) {
    const bool post = r.head.rfind("POST", 0) == 0;
    return std::string(post ? "HTTP/1.1 102 Processing\r\n\r\n" : "") +
           "HTTP/1.1 100 Continue\r\n\r\n"
           "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
           "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok";
  }));
  StartFanoutd({"--upstream", "http://127.0.0.1:" + std::to_string(origin.port())});
  const std::string miss = Exchange("GET /hints HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(miss.rfind("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                       "HTTP/1.1 200 OK\r\n",
                       0),
            0u)
      << "the hints first, then the response; no upstream 100 Continue: " << miss;
  WaitUntilHit("/hints");
  const std::string hit = Exchange("GET /hints HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(hit.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << "an interim response is never stored";
  EXPECT_EQ(hit.find("Link:"), std::string::npos) << hit;
  EXPECT_NE(hit.find("X-Cache: HIT"), std::string::npos);
  const std::string post = Exchange(
      "POST /work HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
  EXPECT_EQ(post.rfind("HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\n", 0), 0u)
      << post;
  EXPECT_NE(post.find("HTTP/1.1 200 OK\r\n"), std::string::npos);
  const std::string old_client = Exchange("POST /work HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi");
  EXPECT_EQ(old_client.rfind("HTTP/1.1 200 OK\r\n", 0), 0u)
      << "no interim response to an HTTP/1.0 client: " << old_client;
}

TEST_F(Http1Test, ResponseHeaderValuesAreRelayedByteForByte) {
  ScriptedOrigin origin(Answering([](const ScriptedRequest&) {
    return std::string("HTTP/1.1 200 OK\r\nLocation: /a%2Fb?c=%41\r\nLink: <https://x/%7E>; rel=x\r\n"
                       "Content-Disposition: attachment; filename=\"caf\xe9.txt\"\r\n"
                       "Cache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok");
  }));
  StartFanoutd({"--upstream", "http://127.0.0.1:" + std::to_string(origin.port())});
  for (int i = 0; i < 2; ++i) {  // the miss, then the hit
    const std::string response = Exchange("GET /bytes HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    EXPECT_NE(response.find("\r\nLocation: /a%2Fb?c=%41\r\n"), std::string::npos) << response;
    EXPECT_NE(response.find("\r\nLink: <https://x/%7E>; rel=x\r\n"), std::string::npos);
    EXPECT_NE(response.find("filename=\"caf\xe9.txt\"\r\n"), std::string::npos);
  }
}

}  // namespace
}  // namespace fanout
