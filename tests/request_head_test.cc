// server/http1/RequestHead: the one request parser of the data plane is
// strict per RFC 9112, and says which status each broken head gets.

#include "server/http1/request_head.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace fanout {
namespace {

using State = HeadParse::State;

// Parses a copy that lives as long as the test (the head's views point
// into it).
HeadParse Parse(std::string bytes, RequestHead* head) {
  static std::vector<std::unique_ptr<std::string>> kept;
  kept.push_back(std::make_unique<std::string>(std::move(bytes)));
  return ParseRequestHead(*kept.back(), head);
}

// The status the head is refused with (0: accepted; -1: incomplete).
int StatusOf(const std::string& bytes) {
  RequestHead head;
  const HeadParse parse = ParseRequestHead(bytes, &head);
  if (parse.state == State::kIncomplete) return -1;
  return parse.state == State::kComplete ? 0 : parse.status;
}

TEST(RequestHeadTest, ParsesAPlainHeadAndLeavesWhatFollows) {
  const std::string bytes =
      "GET /a/b?x=1%20y HTTP/1.1\r\nHost: h\r\nAccept:  */* \r\nX-Empty:\r\n\r\nGET /next";
  RequestHead head;
  ASSERT_EQ(Parse(bytes, &head).state, State::kComplete);
  EXPECT_EQ(head.method, "GET");
  EXPECT_EQ(head.target, "/a/b?x=1%20y") << "the raw target, not decoded";
  EXPECT_EQ(head.form, RequestHead::TargetForm::kOrigin);
  EXPECT_EQ(head.minor_version, 1);
  ASSERT_EQ(head.header_count, 3u);
  EXPECT_EQ(head.Find("host"), "h");
  EXPECT_EQ(head.Find("ACCEPT"), "*/*") << "values without surrounding whitespace";
  EXPECT_EQ(head.Find("X-Empty"), "");
  EXPECT_FALSE(head.Find("Range"));
  EXPECT_EQ(head.host, "h");
  EXPECT_EQ(head.framing, RequestHead::Framing::kNone);
  EXPECT_FALSE(head.connection_close);
  EXPECT_EQ(head.size, bytes.find("GET /next"));
}

TEST(RequestHeadTest, ValuesKeepEveryByteAsSent) {
  RequestHead head;
  ASSERT_EQ(Parse("GET / HTTP/1.1\r\nHost: h\r\nCookie: s=a%2Bb\r\nX: caf\xe9\r\n\r\n", &head)
                .state,
            State::kComplete);
  EXPECT_EQ(head.Find("Cookie"), "s=a%2Bb") << "never percent-decoded";
  EXPECT_EQ(head.Find("X"), "caf\xe9") << "obs-text is allowed";
}

TEST(RequestHeadTest, AHeadNotWholeYetIsIncomplete) {
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: h\r\n"), -1);
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: h\r"), -1) << "a CR still waiting for its LF";
  EXPECT_EQ(StatusOf(""), -1);
}

TEST(RequestHeadTest, EmptyLinesBeforeTheRequestLineAreSkipped) {
  RequestHead head;
  const std::string bytes = "\r\n\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n";
  ASSERT_EQ(Parse(bytes, &head).state, State::kComplete);
  EXPECT_EQ(head.target, "/a");
  EXPECT_EQ(head.size, bytes.size());
}

TEST(RequestHeadTest, RequestLineRules) {
  EXPECT_EQ(StatusOf("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << "space in the target";
  EXPECT_EQ(StatusOf("GET  /a HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << "empty target";
  EXPECT_EQ(StatusOf("G(T /a HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << "method not a token";
  EXPECT_EQ(StatusOf("GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << "non-ASCII target";
  EXPECT_EQ(StatusOf("GET /a HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
  EXPECT_EQ(StatusOf("GET /a HTTP/1.2\r\nHost: h\r\n\r\n"), 505);
  EXPECT_EQ(StatusOf("GET /a HTTQ/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET /a\r\nHost: h\r\n\r\n"), 400) << "HTTP/0.9 style";
  EXPECT_EQ(StatusOf("GET /" + std::string(kMaxRequestLine, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n"),
            414);
  EXPECT_EQ(StatusOf("GET /" + std::string(kMaxRequestLine + 10, 'a')), 414)
      << "known before the line ends";
}

TEST(RequestHeadTest, FieldLineRules) {
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost : h\r\n\r\n"), 400) << "space before colon";
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\nHost: h\r\n\r\n"), 400) << "bare LF";
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: h\n\n"), 400) << "bare LF, incomplete otherwise";
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"), 400) << "bare CR";
  EXPECT_EQ(StatusOf(std::string("GET /a HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 36)), 400)
      << "NUL";
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: h\r\nX: a\x01" "b\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n"), 400) << "DEL";
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: h\r\nX: a\tb\r\n\r\n"), 0) << "HTAB is fine";
  std::string many = "GET /a HTTP/1.1\r\nHost: h\r\n";
  for (std::size_t i = 0; i < kMaxFields; ++i) many += "X: y\r\n";
  EXPECT_EQ(StatusOf(many + "\r\n"), 431);
}

TEST(RequestHeadTest, HostRules) {
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\n\r\n"), 400) << "no Host in HTTP/1.1";
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400) << "two";
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), 0);
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: h:80\r\n\r\n"), 0);
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: h:8x\r\n\r\n"), 400) << "a port is digits";
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: [::1\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost: [::g]\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET /a HTTP/1.1\r\nHost:\r\n\r\n"), 0) << "empty is allowed (RFC 9112 §3.2)";
  EXPECT_EQ(StatusOf("GET /a HTTP/1.0\r\n\r\n"), 0) << "HTTP/1.0 needs none";
  EXPECT_EQ(StatusOf("GET /a HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
}

TEST(RequestHeadTest, ContentLengthRules) {
  RequestHead head;
  ASSERT_EQ(Parse("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", &head).state,
            State::kComplete);
  EXPECT_EQ(head.framing, RequestHead::Framing::kLength);
  EXPECT_EQ(head.content_length, 5u);
  EXPECT_TRUE(head.has_body());
  EXPECT_EQ(StatusOf("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n"), 0)
      << "a list of identical values";
  EXPECT_EQ(StatusOf("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            0);
  for (const char* bad : {"5, 45", "+5", "0x5", "-1", "", "5 5", "1e3", "99999999999999999999"}) {
    EXPECT_EQ(StatusOf(std::string("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: ") + bad +
                       "\r\n\r\n"),
              400)
        << "'" << bad << "'";
  }
  EXPECT_EQ(StatusOf("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            400);
}

TEST(RequestHeadTest, TransferEncodingRules) {
  RequestHead head;
  ASSERT_EQ(Parse("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n", &head).state,
            State::kComplete);
  EXPECT_EQ(head.framing, RequestHead::Framing::kChunked);
  EXPECT_EQ(StatusOf("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n"),
            501);
  EXPECT_EQ(StatusOf("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501)
      << "fanoutd decodes no other coding";
  EXPECT_EQ(StatusOf("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n"), 501);
  EXPECT_EQ(StatusOf("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
            400);
  EXPECT_EQ(StatusOf("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n"),
            400);
  EXPECT_EQ(StatusOf("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400)
      << "no chunked in HTTP/1.0 (RFC 9112 §6.1)";
}

TEST(RequestHeadTest, ContentLengthWithTransferEncodingIsRefusedEitherOrder) {
  EXPECT_EQ(StatusOf("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n"),
            400);
  EXPECT_EQ(StatusOf("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                     "Content-Length: 5\r\n\r\n"),
            400);
}

TEST(RequestHeadTest, ConnectionAndExpect) {
  RequestHead head;
  ASSERT_EQ(Parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n", &head).state,
            State::kComplete);
  EXPECT_TRUE(head.connection_close);
  ASSERT_EQ(Parse("GET / HTTP/1.0\r\n\r\n", &head).state, State::kComplete);
  EXPECT_TRUE(head.connection_close) << "HTTP/1.0 closes unless it asks otherwise";
  ASSERT_EQ(Parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &head).state,
            State::kComplete);
  EXPECT_FALSE(head.connection_close);
  ASSERT_EQ(Parse("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
                  &head)
                .state,
            State::kComplete);
  EXPECT_TRUE(head.expect_continue);
  EXPECT_EQ(StatusOf("PUT / HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\n\r\n"), 417);
}

TEST(RequestHeadTest, TargetForms) {
  RequestHead head;
  ASSERT_EQ(Parse("GET http://example.org:8080/p/q?x=1 HTTP/1.1\r\nHost: other\r\n\r\n", &head)
                .state,
            State::kComplete);
  EXPECT_EQ(head.form, RequestHead::TargetForm::kAbsolute);
  EXPECT_EQ(head.target, "/p/q?x=1") << "routed by its path";
  EXPECT_EQ(head.host, "example.org:8080") << "the authority wins over Host (RFC 9112 §3.2.2)";
  EXPECT_EQ(head.scheme, "http");
  ASSERT_EQ(Parse("GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n", &head).state, State::kComplete);
  EXPECT_EQ(head.target, "/");
  EXPECT_EQ(head.scheme, "https") << "in lower case, for the proxy's route";
  ASSERT_EQ(Parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &head).state, State::kComplete);
  EXPECT_EQ(head.form, RequestHead::TargetForm::kAsterisk);
  ASSERT_EQ(Parse("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", &head).state, State::kComplete);
  EXPECT_EQ(head.form, RequestHead::TargetForm::kAuthority);
  EXPECT_EQ(StatusOf("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET ftp://h/a HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET a/b HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET http://u@h/a HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << "userinfo";
  EXPECT_EQ(StatusOf("GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << "no host";
}

}  // namespace
}  // namespace fanout
