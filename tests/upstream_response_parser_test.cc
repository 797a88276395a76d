// server/upstream_response_parser: response heads, body framing and the
// chunked coding as fanoutd's own upstream client reads them.

#include "server/upstream_response_parser.h"

#include <string>

#include <gtest/gtest.h>

namespace fanout {
namespace {

using State = ParsedResponseHead::State;

std::string Value(const UpstreamResponseHead& head, const std::string& name) {
  for (const auto& [n, v] : head.headers) {
    if (n == name) return v;
  }
  return "<none>";
}

TEST(UpstreamResponseParserTest, HeadValuesAreKeptExactly) {
  const std::string bytes =
      "HTTP/1.1 301 Moved Permanently\r\nLocation: /a%2Fb?x=1%20y\r\n"
      "Link: </s%20t.css>; rel=preload\r\nX-Folded: one\r\n  two\r\n\r\nBODY";
  const auto parsed = ParseResponseHead(bytes);
  ASSERT_EQ(parsed.state, State::kComplete) << parsed.problem;
  EXPECT_EQ(parsed.head.status, 301);
  EXPECT_EQ(parsed.head.reason, "Moved Permanently");
  EXPECT_EQ(Value(parsed.head, "Location"), "/a%2Fb?x=1%20y") << "never percent-decoded";
  EXPECT_EQ(Value(parsed.head, "Link"), "</s%20t.css>; rel=preload");
  EXPECT_EQ(Value(parsed.head, "X-Folded"), "one two") << "obs-fold becomes a space";
  EXPECT_EQ(bytes.substr(parsed.size), "BODY");
}

TEST(UpstreamResponseParserTest, IncompleteBareLfAndMalformedHeads) {
  EXPECT_EQ(ParseResponseHead("HTTP/1.1 200 OK\r\nA: b\r\n").state, State::kIncomplete);
  EXPECT_EQ(ParseResponseHead("HTTP/1.1 200 OK\r\n\r").state, State::kIncomplete);
  const auto lf = ParseResponseHead("HTTP/1.0 204\nA: b\n\nrest");
  ASSERT_EQ(lf.state, State::kComplete);
  EXPECT_EQ(lf.head.status, 204);
  EXPECT_EQ(Value(lf.head, "A"), "b");
  EXPECT_EQ(lf.size, std::string("HTTP/1.0 204\nA: b\n\n").size());
  for (const char* bad : {"HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n",
                          "HTTP/1.1 2000 OK\r\n\r\n", "ICY 200 OK\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
                          "HTTP/1.1 200 OK\r\n folded first\r\n\r\n"}) {
    EXPECT_EQ(ParseResponseHead(bad).state, State::kMalformed) << bad;
  }
  EXPECT_EQ(ParseResponseHead(std::string(70000, 'x')).state, State::kMalformed)
      << "a head without end is refused past 64 KiB";
}

UpstreamResponseHead Head(int status, std::vector<std::pair<std::string, std::string>> h) {
  UpstreamResponseHead head;
  head.status = status;
  head.headers = std::move(h);
  return head;
}

TEST(UpstreamResponseParserTest, BodyFramingFollowsRfc9112) {
  using Kind = BodyFraming::Kind;
  EXPECT_EQ(FramingOf(Head(200, {{"Content-Length", "42"}}))->kind, Kind::kLength);
  EXPECT_EQ(FramingOf(Head(200, {{"Content-Length", "42"}}))->length, 42u);
  EXPECT_EQ(FramingOf(Head(200, {{"Content-Length", "7, 7"}}))->length, 7u);
  EXPECT_FALSE(FramingOf(Head(200, {{"Content-Length", "7, 8"}})));
  EXPECT_FALSE(FramingOf(Head(200, {{"Content-Length", "7"}, {"Content-Length", "8"}})));
  EXPECT_FALSE(FramingOf(Head(200, {{"Content-Length", "-1"}})));
  EXPECT_FALSE(FramingOf(Head(200, {{"Content-Length", ""}})));
  EXPECT_EQ(FramingOf(Head(200, {{"Transfer-Encoding", "gzip, Chunked"}}))->kind, Kind::kChunked);
  EXPECT_EQ(FramingOf(Head(200, {}))->kind, Kind::kUntilClose);
  for (int status : {100, 103, 204, 304}) {
    EXPECT_EQ(FramingOf(Head(status, {{"Content-Length", "10"}}))->kind, Kind::kNone) << status;
  }
}

TEST(UpstreamResponseParserTest, AResponseToHeadHasNoBodyWhateverItsHeadersSay) {
  using Kind = BodyFraming::Kind;
  EXPECT_EQ(FramingOf(Head(200, {{"Content-Length", "42"}}), "HEAD")->kind, Kind::kNone);
  EXPECT_EQ(FramingOf(Head(200, {{"Transfer-Encoding", "chunked"}}), "HEAD")->kind, Kind::kNone);
  EXPECT_EQ(FramingOf(Head(200, {}), "HEAD")->kind, Kind::kNone);
  EXPECT_EQ(FramingOf(Head(200, {{"Content-Length", "42"}}), "POST")->kind, Kind::kLength);
}

TEST(UpstreamResponseParserTest, ContentLengthBesideTransferEncodingIsMalformed) {
  std::string problem;
  EXPECT_FALSE(FramingOf(Head(200, {{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}}),
                         "GET", &problem));
  EXPECT_NE(problem.find("Transfer-Encoding and Content-Length"), std::string::npos) << problem;
  EXPECT_FALSE(FramingOf(Head(200, {{"Content-Length", "5"}, {"Transfer-Encoding", "gzip"}})));
}

TEST(UpstreamResponseParserTest, ContentLengthIsOneDecimalNumberOrAListOfIdenticalOnes) {
  EXPECT_EQ(FramingOf(Head(200, {{"Content-Length", "5, 5,5"}}))->length, 5u);
  EXPECT_EQ(FramingOf(Head(200, {{"Content-Length", "0"}}))->length, 0u);
  EXPECT_EQ(FramingOf(Head(200, {{"Content-Length", "007"}}))->length, 7u);
  for (const char* bad : {"5, 45", "+5", "0x5", "-1", "", " ", "5,", ",5", "5 5", "5.0",
                          "99999999999999999999", "1e3"}) {
    std::string problem;
    EXPECT_FALSE(FramingOf(Head(200, {{"Content-Length", bad}}), "GET", &problem))
        << "'" << bad << "'";
    EXPECT_NE(problem.find("Content-Length"), std::string::npos) << bad;
  }
}

TEST(UpstreamResponseParserTest, ChunkedMustBeTheLastCodingAndAppearOnce) {
  using Kind = BodyFraming::Kind;
  EXPECT_EQ(FramingOf(Head(200, {{"Transfer-Encoding", "CHUNKED"}}))->kind, Kind::kChunked);
  EXPECT_EQ(FramingOf(Head(200, {{"Transfer-Encoding", "gzip"}, {"Transfer-Encoding", "chunked"}}))
                ->kind,
            Kind::kChunked)
      << "codings of several fields form one list";
  for (const char* bad : {"chunked, gzip", "chunked, chunked", "chunked,chunked"}) {
    EXPECT_FALSE(FramingOf(Head(200, {{"Transfer-Encoding", bad}}))) << bad;
  }
  EXPECT_FALSE(
      FramingOf(Head(200, {{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}})));
  EXPECT_FALSE(
      FramingOf(Head(200, {{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "gzip"}})));
  // A last coding other than chunked: the body runs until the close.
  EXPECT_EQ(FramingOf(Head(200, {{"Transfer-Encoding", "gzip"}}))->kind, Kind::kUntilClose);
  EXPECT_EQ(FramingOf(Head(200, {{"Transfer-Encoding", "chunkedx"}}))->kind, Kind::kUntilClose);
}

TEST(UpstreamResponseParserTest, ControlBytesInFieldValuesAreMalformed) {
  for (const std::string& bad :
       {std::string("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"),
        std::string("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", 27),
        std::string("HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n"),
        std::string("HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n"),
        std::string("HTTP/1.1 200 O\x02K\r\n\r\n"),
        std::string("HTTP/1.1 200 OK\r\nX: a\r\n \x0b" "b\r\n\r\n")}) {
    EXPECT_EQ(ParseResponseHead(bad).state, State::kMalformed) << bad;
  }
  // HTAB and obs-text are field content.
  const auto ok = ParseResponseHead("HTTP/1.1 200 OK\r\nX: a\tb \xe9\r\n\r\n");
  ASSERT_EQ(ok.state, State::kComplete) << ok.problem;
  EXPECT_EQ(Value(ok.head, "X"), "a\tb \xe9");
}

TEST(UpstreamResponseParserTest, ConnectionReuseFollowsVersionAndConnectionOptions) {
  auto parsed = [](const char* text) { return ParseResponseHead(text).head; };
  EXPECT_TRUE(ResponseAllowsReuse(parsed("HTTP/1.1 200 OK\r\n\r\n")));
  EXPECT_FALSE(ResponseAllowsReuse(parsed("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")));
  EXPECT_FALSE(
      ResponseAllowsReuse(parsed("HTTP/1.1 200 OK\r\nConnection: x-foo, Close\r\n\r\n")));
  EXPECT_FALSE(ResponseAllowsReuse(parsed("HTTP/1.0 200 OK\r\n\r\n")));
  EXPECT_TRUE(
      ResponseAllowsReuse(parsed("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n")));
  EXPECT_FALSE(ResponseAllowsReuse(parsed("HTTP/1.1 101 Switching Protocols\r\n\r\n")));
  // A 204 that announces a body may send it: the connection is not reused.
  EXPECT_TRUE(ResponseAllowsReuse(parsed("HTTP/1.1 204 No Content\r\n\r\n")));
  EXPECT_TRUE(ResponseAllowsReuse(parsed("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")));
  EXPECT_FALSE(ResponseAllowsReuse(parsed("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n")));
  EXPECT_FALSE(ResponseAllowsReuse(
      parsed("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n")));
  EXPECT_TRUE(ResponseAllowsReuse(parsed("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n")))
      << "a 304's length describes the stored body";
}

// Feeds `encoded` to a decoder in slices of `step` bytes.
std::string Decode(const std::string& encoded, std::size_t step, ChunkedDecoder::Result* last,
                   std::size_t* total_consumed) {
  ChunkedDecoder decoder;
  std::string out;
  *total_consumed = 0;
  for (std::size_t at = 0; at < encoded.size(); at += step) {
    std::vector<std::string_view> pieces;
    std::size_t used = 0;
    *last = decoder.Feed(std::string_view(encoded).substr(at, step), &pieces, &used);
    for (auto p : pieces) out.append(p);
    *total_consumed += used;
    if (*last != ChunkedDecoder::Result::kMore) break;
  }
  return out;
}

TEST(UpstreamResponseParserTest, ChunkedBodiesDecodeInAnySlices) {
  const std::string encoded =
      "5;name=value\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\nNEXT";
  for (std::size_t step : {1u, 2u, 3u, 7u, 1000u}) {
    ChunkedDecoder::Result last;
    std::size_t consumed = 0;
    EXPECT_EQ(Decode(encoded, step, &last, &consumed), "helloabcdefghijklmnopqrstuvwxyz")
        << step;
    EXPECT_EQ(last, ChunkedDecoder::Result::kDone) << step;
    EXPECT_EQ(consumed, encoded.size() - 4) << "stops before what follows the body";
  }
  ChunkedDecoder::Result last;
  std::size_t consumed = 0;
  Decode("5\r\nhel", 2, &last, &consumed);
  EXPECT_EQ(last, ChunkedDecoder::Result::kMore) << "cut inside a chunk: not done";
  for (const char* bad : {"x\r\n", "5\r\nhelloX\r\n", "\r\n", "12345678901234567\r\n",
                          "8000000000000000\r\n", "FFFFFFFFFFFFFFFF\r\n",
                          "10000000000000000000\r\n", "-5\r\n", "0x5\r\n", ";ext\r\n",
                          "5 5\r\n"}) {
    Decode(bad, 1, &last, &consumed);
    EXPECT_EQ(last, ChunkedDecoder::Result::kMalformed) << bad;
  }
  // Every line of the coding ends with CRLF: a bare LF, or a CR or NUL
  // inside a line, is malformed, wherever it is.
  for (const char* bad : {"5\nhello\r\n0\r\n\r\n", "5\r\nhello\n0\r\n\r\n",
                          "5\r\nhello\r\n0\n\r\n", "5\r\nhello\r\n0\r\n\n",
                          "5\r\r\nhello\r\n0\r\n\r\n", "5;a\rb\r\nhello\r\n0\r\n\r\n",
                          "5\r\nhello\r\n0\r\nX: a\n\r\n"}) {
    for (std::size_t step : {1u, 1000u}) {
      Decode(bad, step, &last, &consumed);
      EXPECT_EQ(last, ChunkedDecoder::Result::kMalformed) << bad << " in slices of " << step;
    }
  }
  Decode(std::string("5;a\0b\r\nhello\r\n0\r\n\r\n", 19), 1, &last, &consumed);
  EXPECT_EQ(last, ChunkedDecoder::Result::kMalformed) << "NUL in a chunk extension";
  // Leading zeros are hex digits like any other; the largest size is 2^63-1.
  Decode("0005\r\nhello\r\n0\r\n\r\n", 3, &last, &consumed);
  EXPECT_EQ(last, ChunkedDecoder::Result::kDone);
  Decode("7FFFFFFFFFFFFFFF\r\nab", 1, &last, &consumed);
  EXPECT_EQ(last, ChunkedDecoder::Result::kMore);
}

}  // namespace
}  // namespace fanout
