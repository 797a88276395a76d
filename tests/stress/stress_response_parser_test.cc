// The stress clients' response parser: every verdict of the stress test
// rests on it, so it is tested on its own, byte by byte.

#include "tests/stress/stress_response_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace fanout::stress {
namespace {

struct Parsed {
  ResponseParser::State state;
  std::string body;
  std::size_t used = 0;
  std::string error;
};

// Feeds `bytes` in pieces of `step` bytes; stops where the parser stops.
Parsed Parse(const std::string& bytes, bool head_request = false, std::size_t step = 1) {
  ResponseParser p(head_request);
  Parsed out;
  auto sink = [&](std::uint64_t offset, const char* data, std::size_t n) {
    EXPECT_EQ(offset, out.body.size());
    out.body.append(data, n);
  };
  while (out.used < bytes.size() && (p.state() == ResponseParser::State::kHead ||
                                     p.state() == ResponseParser::State::kBody)) {
    const std::size_t n = std::min(step, bytes.size() - out.used);
    const std::size_t took = p.Feed(bytes.data() + out.used, n, sink);
    out.used += took;
    if (took < n) break;
  }
  out.state = p.state();
  out.error = p.error();
  return out;
}

TEST(ResponseParserTest, ContentLengthBodyEndsWhereTheLengthSays) {
  const std::string next = "HTTP/1.1 200 OK\r\n";
  for (std::size_t step : {1, 7, 4096}) {
    const Parsed p = Parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" + next, false, step);
    EXPECT_EQ(p.state, ResponseParser::State::kComplete) << step;
    EXPECT_EQ(p.body, "hello");
    EXPECT_EQ(p.used, 43u) << "the next response's bytes are left over";
  }
}

TEST(ResponseParserTest, ChunkedBodyWithTrailersIsDecoded) {
  const Parsed p =
      Parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n"
            "X-Trailer: 1\r\n\r\n",
            false, 3);
  EXPECT_EQ(p.state, ResponseParser::State::kComplete);
  EXPECT_EQ(p.body, "abcde");
}

TEST(ResponseParserTest, ChunkedBodyCutBeforeTheLastChunkIsNotComplete) {
  const Parsed p = Parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
  EXPECT_EQ(p.state, ResponseParser::State::kBody);
  EXPECT_EQ(p.body, "abc");
}

TEST(ResponseParserTest, HeadAnd304AndNoContentHaveNoBody) {
  EXPECT_EQ(Parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true).state,
            ResponseParser::State::kComplete);
  const Parsed not_modified = Parse("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(not_modified.state, ResponseParser::State::kComplete);
  EXPECT_EQ(not_modified.used, 40u) << "what follows a 304 is the next response's";
}

TEST(ResponseParserTest, FramingThatCannotBeTrustedIsAnError) {
  for (const char* bad : {
           "HTTP/1.1 200 OK\r\n\r\nbody until close",
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
       }) {
    EXPECT_EQ(Parse(bad).state, ResponseParser::State::kError) << bad;
  }
}

TEST(ResponseParserTest, MalformedHeadsAreErrors) {
  for (const char* bad : {
           "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
           "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
           "0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
           "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
           "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n folded\r\n\r\n",
           "HTTP/1.1 100 Continue\r\n\r\n",
       }) {
    EXPECT_EQ(Parse(bad).state, ResponseParser::State::kError) << bad;
  }
}

TEST(ResponseParserTest, FieldsAreFoundInAnyCase) {
  ResponseParser p(false);
  const std::string bytes = "HTTP/1.1 206 Partial\r\ncontent-range: bytes 0-0/9\r\nX-Cache: HIT\r\n"
                            "Content-Length: 1\r\n\r\nx";
  p.Feed(bytes.data(), bytes.size(), nullptr);
  ASSERT_TRUE(p.complete());
  EXPECT_EQ(p.head().status, 206);
  EXPECT_EQ(p.head().Field("Content-Range"), "bytes 0-0/9");
  EXPECT_EQ(p.head().Field("x-cache"), "HIT");
  EXPECT_FALSE(p.head().Field("ETag").has_value());
}

}  // namespace
}  // namespace fanout::stress
