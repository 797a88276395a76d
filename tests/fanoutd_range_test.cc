// Integration tests of Range requests (issue 6): on complete entries, on
// entries still being fetched (length known or not), misses that carry a
// Range, If-Range, and many concurrent ranges of one fetch.

#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/fanoutd_fixture.h"

namespace fanout {
namespace {

using ::fanout::testing::Fetched;
using ::fanout::testing::WaitFor;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

class RangeTest : public ::fanout::testing::FanoutdTest {
 protected:
  static std::string Header(const Fetched& f, const std::string& name) {
    auto it = f.headers.find(name);
    return it == f.headers.end() ? "" : it->second;
  }
  Fetched Range(const std::string& target, const std::string& range,
                httplib::Headers extra = {}) {
    extra.emplace("Range", range);
    return Get(target, extra);
  }
};

TEST_F(RangeTest, FormsOfASingleRangeOnACompleteEntry) {
  StartFanoutd();
  const std::string target = "/r.bin?size=100000";
  const std::string body = OriginServer::OriginBody("/r.bin", 100000);
  Fetched whole = Get(target);
  EXPECT_EQ(Header(whole, "Accept-Ranges"), "bytes");
  WaitUntilHit(target);
  struct Case {
    std::string range, content_range;
    std::size_t first, length;
  };
  for (const Case& c : std::vector<Case>{
           {"bytes=0-0", "bytes 0-0/100000", 0, 1},
           {"bytes=0-999", "bytes 0-999/100000", 0, 1000},
           {"bytes=50000-50099", "bytes 50000-50099/100000", 50000, 100},
           {"bytes=99999-99999", "bytes 99999-99999/100000", 99999, 1},
           {"bytes=99000-", "bytes 99000-99999/100000", 99000, 1000},
           {"bytes=-10", "bytes 99990-99999/100000", 99990, 10},
           {"bytes=99990-200000", "bytes 99990-99999/100000", 99990, 10}}) {
    Fetched f = Range(target, c.range);
    EXPECT_EQ(f.status, 206) << c.range;
    EXPECT_EQ(Header(f, "Content-Range"), c.content_range) << c.range;
    EXPECT_EQ(f.body, body.substr(c.first, c.length)) << c.range;
    EXPECT_EQ(f.x_cache, "HIT");
  }
  Fetched beyond = Range(target, "bytes=100000-");
  EXPECT_EQ(beyond.status, 416);
  EXPECT_EQ(Header(beyond, "Content-Range"), "bytes */100000");
  // Invalid syntax is ignored: the whole body, 200.
  for (const char* ignored : {"bytes=5-1", "lines=0-1", "bytes=x"}) {
    Fetched f = Range(target, ignored);
    EXPECT_EQ(f.status, 200) << ignored;
    EXPECT_TRUE(f.body == body) << ignored;
  }
  // Several ranges: the whole body (documented), not multipart/byteranges.
  Fetched several = Range(target, "bytes=0-1,10-11");
  EXPECT_EQ(several.status, 200);
  EXPECT_TRUE(several.body == body);
  EXPECT_EQ(origin_.Count(target), 1);
}

TEST_F(RangeTest, IfRangeServesTheRangeOnlyWhenTheValidatorMatches) {
  StartFanoutd();
  const std::string target = "/ifr.bin?size=10000";
  const std::string body = OriginServer::OriginBody("/ifr.bin", 10000);
  Fetched whole = Get(target);
  WaitUntilHit(target);
  const std::string etag = Header(whole, "ETag");
  const std::string last_modified = Header(whole, "Last-Modified");
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(Range(target, "bytes=0-9", {{"If-Range", etag}}).status, 206);
  EXPECT_EQ(Range(target, "bytes=0-9", {{"If-Range", last_modified}}).status, 206);
  for (const std::string& other : {std::string("\"other\""), "W/" + etag,
                                   std::string("Tue, 03 Nov 2026 10:00:00 GMT")}) {
    Fetched f = Range(target, "bytes=0-9", {{"If-Range", other}});
    EXPECT_EQ(f.status, 200) << other;
    EXPECT_TRUE(f.body == body) << other;
  }
}

TEST_F(RangeTest, AMissWithARangeStartsTheOneFullFetchAndGetsItsRange) {
  StartFanoutd();
  const std::string target = "/miss.bin?size=1000000";
  const std::string body = OriginServer::OriginBody("/miss.bin", 1000000);
  Fetched f = Range(target, "bytes=500000-500099");
  EXPECT_EQ(f.status, 206);
  EXPECT_EQ(f.x_cache, "MISS");
  EXPECT_EQ(f.body, body.substr(500000, 100));
  EXPECT_EQ(origin_.LastHeaders(target).count("Range"), 0u) << "Range is not forwarded";
  WaitUntilHit(target);
  Fetched whole = Get(target);
  EXPECT_TRUE(whole.body == body) << "the entry holds the whole body";
  EXPECT_EQ(origin_.Count(target), 1);
}

TEST_F(RangeTest, TwentyClientsAskDifferentRangesOfAnEntryStillBeingFetched) {
  StartFanoutd();
  // The origin holds the 4 MB body at 1 MB until every range is answered.
  const std::string target = "/inflight.bin?size=4000000&hold_at=1000000";
  const std::string body = OriginServer::OriginBody("/inflight.bin", 4000000);
  const int heads_before = heads_seen_;
  Fetched whole;
  std::thread miss([&] { whole = Get(target); });
  ASSERT_TRUE(WaitFor([&] { return origin_.Count(target) == 1; }));
  std::vector<Fetched> results(20);
  std::vector<std::thread> clients;
  for (int i = 0; i < 20; ++i) {
    clients.emplace_back([&, i] {
      // Spread over the whole object, most beyond what is written yet.
      const std::size_t first = static_cast<std::size_t>(i) * 199000;
      results[i] = Range(target, "bytes=" + std::to_string(first) + "-" +
                                     std::to_string(first + 9999));
    });
  }
  // Answered at once (the length is known), not when their bytes come: all
  // 21 heads arrive while the fetch is held at 1 MB.
  EXPECT_TRUE(WaitFor([&] { return heads_seen_ - heads_before == 21; }));
  const auto released = Clock::now();
  origin_.Release("/inflight.bin");
  for (auto& c : clients) c.join();
  miss.join();
  EXPECT_TRUE(whole.body == body);
  for (int i = 0; i < 20; ++i) {
    const std::size_t first = static_cast<std::size_t>(i) * 199000;
    EXPECT_LT(results[i].head_at, released) << i;
    EXPECT_EQ(results[i].status, 206) << i;
    EXPECT_EQ(results[i].x_cache, "JOIN") << i;
    EXPECT_EQ(Header(results[i], "Content-Range"),
              "bytes " + std::to_string(first) + "-" + std::to_string(first + 9999) + "/4000000");
    EXPECT_TRUE(results[i].body == body.substr(first, 10000)) << i;
  }
  EXPECT_EQ(origin_.Count(target), 1);
}

TEST_F(RangeTest, LastByteAndBeyondTheEndOfAnEntryInFlight) {
  StartFanoutd();
  const std::string target = "/edge.bin?size=2000000&hold_at=1000000";
  const std::string body = OriginServer::OriginBody("/edge.bin", 2000000);
  Fetched whole;
  std::thread miss([&] { whole = Get(target); });
  ASSERT_TRUE(WaitFor([&] { return origin_.Holding("/edge.bin") == 1; }));
  // While the fetch is held at 1 MB: the first byte is there, and a range
  // past the known length is refused without waiting.
  Fetched first = Range(target, "bytes=0-0");
  Fetched beyond = Range(target, "bytes=2000000-");
  EXPECT_EQ(origin_.Holding("/edge.bin"), 1) << "answered while the fetch was held";
  // The last byte is not written yet: this one waits for it.
  Fetched last;
  std::thread last_client([&] { last = Range(target, "bytes=-1"); });
  ASSERT_TRUE(WaitFor([&] { return heads_seen_ == 4; }));
  const auto released = Clock::now();
  origin_.Release("/edge.bin");
  last_client.join();
  miss.join();
  EXPECT_TRUE(whole.body == body);
  EXPECT_EQ(first.status, 206);
  EXPECT_EQ(first.body, body.substr(0, 1));
  EXPECT_EQ(beyond.status, 416) << "known to be beyond the end before the bytes are there";
  EXPECT_EQ(Header(beyond, "Content-Range"), "bytes */2000000");
  EXPECT_EQ(last.status, 206);
  EXPECT_EQ(Header(last, "Content-Range"), "bytes 1999999-1999999/2000000");
  EXPECT_EQ(last.body, body.substr(1999999));
  EXPECT_GT(last.first_byte, released) << "the last byte came only once it was fetched";
  EXPECT_EQ(origin_.Count(target), 1);
}

TEST_F(RangeTest, RangesOfAChunkedFetchWaitForTheBytesOrTheLengthTheyNeed) {
  StartFanoutd();
  // No Content-Length: 2 MB, held at 1 MB.
  const std::string target = "/chunked.bin?size=2000000&chunked=1&hold_at=1000000";
  const std::string body = OriginServer::OriginBody("/chunked.bin", 2000000);
  std::thread miss([&] { EXPECT_TRUE(Get(target).body == body); });
  ASSERT_TRUE(WaitFor([&] { return origin_.Count(target) == 1; }));
  // Inside what is written: served at once, total unknown.
  Fetched inside = Range(target, "bytes=100-199");
  EXPECT_EQ(inside.status, 206);
  EXPECT_EQ(Header(inside, "Content-Range"), "bytes 100-199/*");
  EXPECT_EQ(inside.body, body.substr(100, 100));
  // Needs the end: answered once the length is known, after the release.
  Fetched suffix;
  std::thread suffix_client([&] { suffix = Range(target, "bytes=-100"); });
  ASSERT_TRUE(WaitFor([&] { return origin_.Holding("/chunked.bin") == 1; }));
  const auto released = Clock::now();
  origin_.Release("/chunked.bin");
  suffix_client.join();
  miss.join();
  EXPECT_EQ(suffix.status, 206);
  EXPECT_GT(suffix.head_at, released) << "the suffix needed the length";
  EXPECT_EQ(Header(suffix, "Content-Range"), "bytes 1999900-1999999/2000000");
  EXPECT_EQ(suffix.body, body.substr(1999900));
  Fetched beyond = Range(target, "bytes=3000000-");
  EXPECT_EQ(beyond.status, 416);
  EXPECT_EQ(Header(beyond, "Content-Range"), "bytes */2000000");
  EXPECT_EQ(origin_.Count(target), 1);
}

TEST_F(RangeTest, HeadAnswersTheHeadersAGetWould) {
  StartFanoutd();
  const std::string target = "/head.bin?size=3000000&hold_at=1000000";
  std::thread miss([&] { Get(target); });
  ASSERT_TRUE(WaitFor([&] { return origin_.Holding("/head.bin") == 1; }));
  httplib::Client client("127.0.0.1", fanoutd_.port());
  auto in_flight = client.Head(target.c_str());
  ASSERT_TRUE(in_flight);
  EXPECT_EQ(in_flight->status, 200);
  EXPECT_EQ(in_flight->get_header_value("Content-Length"), "3000000");
  EXPECT_EQ(in_flight->get_header_value("Accept-Ranges"), "bytes");
  EXPECT_TRUE(in_flight->body.empty());
  EXPECT_EQ(in_flight->get_header_value("X-Cache"), "JOIN");
  origin_.Release("/head.bin");
  miss.join();
  WaitUntilHit(target);
  auto complete = client.Head(target.c_str());
  ASSERT_TRUE(complete);
  EXPECT_EQ(complete->get_header_value("Content-Length"), "3000000");
  EXPECT_EQ(complete->get_header_value("X-Cache"), "HIT");
  EXPECT_EQ(origin_.Count(target), 1);
}

}  // namespace
}  // namespace fanout
