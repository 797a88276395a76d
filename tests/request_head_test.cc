// server/RequestHead: the narrow parser of the direct hit path accepts plain
// HTTP/1.1 heads and turns down everything it is not sure about.

#include "server/request_head.h"

#include <httplib.h>

#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "core/header_text.h"
#include "server/http_headers.h"

namespace fanout {
namespace {

// The first field named `name` (any case), or nullopt.
std::optional<std::string_view> Find(const RequestHead& head, std::string_view name) {
  for (std::size_t i = 0; i < head.header_count; ++i) {
    if (EqualsIgnoreCase(head.headers[i].first, name)) {
      return head.headers[i].second;
    }
  }
  return std::nullopt;
}

TEST(RequestHeadTest, ParsesAPlainHeadAndLeavesWhatFollows) {
  const std::string bytes =
      "GET /a/b?x=1%20y HTTP/1.1\r\nHost: h\r\nAccept:  */* \r\nX-Empty:\r\n\r\nGET /next";
  const auto head = ParseRequestHead(bytes);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->method, "GET");
  EXPECT_EQ(head->target, "/a/b?x=1%20y") << "the raw target, not decoded";
  ASSERT_EQ(head->header_count, 3u);
  EXPECT_EQ(Find(*head, "host"), "h");
  EXPECT_EQ(Find(*head, "ACCEPT"), "*/*") << "values without surrounding whitespace";
  EXPECT_EQ(Find(*head, "X-Empty"), "");
  EXPECT_FALSE(Find(*head, "Range"));
  EXPECT_EQ(head->size, bytes.find("GET /next"));
}

TEST(RequestHeadTest, TurnsDownWhatItIsNotSureAbout) {
  for (const char* bytes : {
           "GET /a HTTP/1.1\r\nHost: h\r\n",                 // incomplete
           "GET /a HTTP/1.0\r\nHost: h\r\n\r\n",             // another version
           "GET http://h/a HTTP/1.1\r\nHost: h\r\n\r\n",     // absolute form
           "GET * HTTP/1.1\r\n\r\n",                          // asterisk form
           "GET /a b HTTP/1.1\r\n\r\n",                       // space in target
           "GET  /a HTTP/1.1\r\n\r\n",                        // empty target
           "G(T /a HTTP/1.1\r\n\r\n",                         // not a token
           "GET /a HTTP/1.1\r\nHost : h\r\n\r\n",            // space before colon
           "GET /a HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",  // obs-fold
           "GET /a HTTP/1.1\r\nNoColon\r\n\r\n",
           "GET /a HTTP/1.1\nHost: h\r\n\r\n",               // bare LF
           "GET /a HTTP/1.1\r\nX: a\rb\r\n\r\n",             // bare CR in a value
           "GET /a HTTP/1.1\r\nX: a\x01" "b\r\n\r\n",        // control byte
       }) {
    EXPECT_FALSE(ParseRequestHead(bytes)) << bytes;
  }
  std::string many = "GET /a HTTP/1.1\r\n";
  for (std::size_t i = 0; i <= RequestHead::kMaxHeaders; ++i) many += "X: y\r\n";
  EXPECT_FALSE(ParseRequestHead(many + "\r\n")) << "more fields than it holds";
}

TEST(RawHeaderFieldsTest, KeepsValuesAsSentForAnyRequestLine) {
  const auto fields = RawHeaderFields(
      "POST http://h/x HTTP/1.0\r\nCookie:  s=a%2Bb \r\nno colon\r\nX-A: %41\r\n\r\nbody");
  ASSERT_TRUE(fields);
  ASSERT_EQ(fields->size(), 2u);
  EXPECT_EQ((*fields)[0], (std::pair<std::string, std::string>{"Cookie", "s=a%2Bb"}));
  EXPECT_EQ((*fields)[1], (std::pair<std::string, std::string>{"X-A", "%41"}));
  EXPECT_FALSE(RawHeaderFields("GET / HTTP/1.1\r\nA: b\r\n")) << "incomplete";
  EXPECT_FALSE(RawHeaderFields("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n")) << "folded";
}

TEST(RawHeaderFieldsTest, DecodedValuesAreRestoredOnlyWhenTheFieldsLineUp) {
  httplib::Request req;
  // What httplib 0.11.4 makes of "Cookie: s=a%2Bb", "x-a: %41", "X-A: 2".
  req.headers = {{"Cookie", "s=a+b"}, {"x-a", "A"}, {"X-A", "2"}, {"REMOTE_ADDR", "127.0.0.1"}};
  const std::vector<std::pair<std::string, std::string>> raw = {
      {"Cookie", "s=a%2Bb"}, {"x-a", "%41"}, {"X-A", "2"}};
  ASSERT_TRUE(RestoreRawHeaderValues(req, raw));
  EXPECT_EQ(req.get_header_value("Cookie"), "s=a%2Bb");
  EXPECT_EQ(req.get_header_value("X-A", 0), "%41");
  EXPECT_EQ(req.get_header_value("X-A", 1), "2");
  EXPECT_EQ(req.get_header_value("REMOTE_ADDR"), "127.0.0.1") << "httplib's own fields stay";
  httplib::Request other;
  other.headers = {{"Cookie", "s=a+b"}, {"Other", "1"}};
  EXPECT_FALSE(RestoreRawHeaderValues(other, raw)) << "fields that do not line up";
  EXPECT_EQ(other.get_header_value("Cookie"), "s=a+b") << "left as it was";
}

}  // namespace
}  // namespace fanout
