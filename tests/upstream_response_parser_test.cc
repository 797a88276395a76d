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
  EXPECT_EQ(FramingOf(Head(200, {{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}}))->kind,
            Kind::kChunked)
      << "Transfer-Encoding overrides Content-Length";
  EXPECT_EQ(FramingOf(Head(200, {{"Transfer-Encoding", "gzip, Chunked"}}))->kind, Kind::kChunked);
  EXPECT_EQ(FramingOf(Head(200, {{"Transfer-Encoding", "chunked, gzip"}}))->kind,
            Kind::kUntilClose);
  EXPECT_EQ(FramingOf(Head(200, {}))->kind, Kind::kUntilClose);
  for (int status : {100, 103, 204, 304}) {
    EXPECT_EQ(FramingOf(Head(status, {{"Content-Length", "10"}}))->kind, Kind::kNone) << status;
  }
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
  for (const char* bad : {"x\r\n", "5\r\nhelloX\r\n", "\r\n", "12345678901234567\r\n"}) {
    Decode(bad, 1, &last, &consumed);
    EXPECT_EQ(last, ChunkedDecoder::Result::kMalformed) << bad;
  }
}

}  // namespace
}  // namespace fanout
