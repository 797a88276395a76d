// Integration tests of the direct hit path (server/direct_hit.h): plain hits
// of fresh entries are answered without cpp-httplib (large bodies: see
// fanoutd_body_sender_test.cc), with the same
// answer the full path gives; every other request is left to the full path.
// Which path answered is read from the admin interface's /stats.

#include <filesystem>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/fanoutd_fixture.h"

namespace fanout {
namespace {

using ::fanout::testing::Fetched;
using ::fanout::testing::RawConnection;
using ::fanout::testing::WaitFor;

class DirectHitTest : public ::fanout::testing::FanoutdTest {
 protected:
  int DirectHits() { return Stats()["direct_hits"].get<int>(); }

  // Headers as name → values, without the ones that legitimately differ
  // between two answers a moment apart.
  static std::multimap<std::string, std::string> Comparable(const httplib::Headers& h) {
    std::multimap<std::string, std::string> out;
    for (const auto& [name, value] : h) {
      if (name != "Age") out.emplace(name, value);
    }
    return out;
  }
};

TEST_F(DirectHitTest, APlainHitIsAnsweredDirectlyWithTheFullPathsHeaders) {
  StartFanoutd();
  const std::string target = "/d.bin?size=4096&cc=max-age%3D600";
  Store(target);
  const int before = DirectHits();
  const int hits_before = Stats()["hit"].get<int>();
  Fetched direct = Get(target);
  EXPECT_EQ(DirectHits(), before + 1);
  // A validator that does not match: the full path, answering a 200 hit.
  Fetched full = Get(target, {{"If-None-Match", "\"other\""}});
  EXPECT_EQ(DirectHits(), before + 1) << "a conditional request takes the full path";
  EXPECT_EQ(direct.status, 200);
  EXPECT_EQ(full.status, 200);
  EXPECT_EQ(direct.x_cache, "HIT");
  EXPECT_EQ(full.x_cache, "HIT");
  EXPECT_EQ(direct.body, OriginServer::OriginBody("/d.bin", 4096));
  EXPECT_EQ(direct.body, full.body);
  EXPECT_EQ(Comparable(direct.headers), Comparable(full.headers));
  EXPECT_EQ(direct.headers.count("Age"), 1u);
  EXPECT_LE(std::stoi(direct.headers.find("Age")->second), 2);
  // Both closed the connection the client asked to close (httplib's client
  // says Connection: close).
  EXPECT_EQ(direct.headers.find("Connection")->second, "close");
  EXPECT_EQ(origin_.Count(target), 1);
  // One access line for each of the two hits: the direct path logs too
  // (each written as its response ends, maybe after the client has it).
  const std::string line = "\"GET " + target + "\" 200 HIT 4096 bytes";
  auto lines = [&] {
    const std::string log = fanoutd_.log();
    std::size_t n = 0;
    for (auto at = log.find(line); at != std::string::npos; at = log.find(line, at + 1)) ++n;
    return n;
  };
  EXPECT_TRUE(WaitFor([&] { return lines() >= 2; }, std::chrono::seconds(10))) << fanoutd_.log();
  EXPECT_EQ(lines(), 2u) << fanoutd_.log();
  EXPECT_EQ(Stats()["hit"].get<int>(), hits_before + 2) << "hits count once each, either path";
}

TEST_F(DirectHitTest, KeepAliveAndPipelinedRequestsAreAnsweredInOrder) {
  StartFanoutd();
  const std::string a = "/ka.bin?size=3000&cc=max-age%3D600";
  const std::string b = "/kb.bin?size=5000&cc=max-age%3D600";
  Store(a);
  Store(b);
  const int before = DirectHits();
  RawConnection conn(fanoutd_.port());
  ASSERT_TRUE(conn.connected());
  // Direct, full (a Range), direct, direct and close: in one segment.
  ASSERT_TRUE(conn.Send("GET " + a + " HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n" +
                        "GET " + b + " HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n" +
                        "GET " + b + " HTTP/1.1\r\nHost: x\r\n\r\n" +
                        "GET " + a + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const std::string got = conn.ReadUntil([](const std::string&) { return false; });
  const std::string body_a = OriginServer::OriginBody("/ka.bin", 3000);
  const std::string body_b = OriginServer::OriginBody("/kb.bin", 5000);
  const std::string expected_bodies[] = {body_a, body_b.substr(0, 10), body_b, body_a};
  const int expected_status[] = {200, 206, 200, 200};
  std::size_t at = 0;
  for (int i = 0; i < 4; ++i) {
    const std::size_t head_end = got.find("\r\n\r\n", at);
    ASSERT_NE(head_end, std::string::npos) << "response " << i << " missing";
    const std::string head = got.substr(at, head_end - at);
    EXPECT_EQ(head.rfind("HTTP/1.1 " + std::to_string(expected_status[i]), 0), 0u) << head;
    const std::size_t cl = head.find("Content-Length: ");
    ASSERT_NE(cl, std::string::npos) << head;
    const std::size_t length = std::stoul(head.substr(cl + 16));
    EXPECT_EQ(got.substr(head_end + 4, length), expected_bodies[i]) << "response " << i;
    at = head_end + 4 + length;
  }
  EXPECT_EQ(at, got.size()) << "nothing after the last response: the connection closed";
  EXPECT_EQ(DirectHits(), before + 3);
}

TEST_F(DirectHitTest, EveryOtherRequestTakesTheFullPathAndGetsItsOwnAnswer) {
  StartFanoutd();
  const std::string small = "/s.bin?size=2000&cc=max-age%3D600";
  // Requests that revalidate get entries of their own: a hit on an entry
  // whose refresh is still being stored would be a JOIN.
  const std::string small2 = "/s2.bin?size=2000&cc=max-age%3D600";
  const std::string small3 = "/s3.bin?size=2000&cc=max-age%3D600";
  const std::string stale = "/st.bin?size=2000&cc=max-age%3D0";
  const std::string varies = "/v.bin?size=2000&cc=max-age%3D600&vary=Accept-Language";
  const std::string not_found = "/nf.bin?size=2000&status=404&cc=max-age%3D600";
  for (const auto& t : {small, small2, small3, varies, not_found}) Store(t);
  Get(stale);
  ASSERT_TRUE(WaitFor([&] { return Get(stale).x_cache == "REVALIDATE"; }));
  ASSERT_TRUE(WaitFor([&] { return Joins(stale) == -1; })) << "its refresh is stored";
  const int before = DirectHits();
  struct Case {
    std::string target;
    httplib::Headers headers;
    std::string method;
    int status;
    std::string x_cache;
  };
  const std::vector<Case> cases = {
      {small, {{"Range", "bytes=0-1"}}, "GET", 206, "HIT"},
      {small, {{"If-None-Match", "*"}}, "GET", 304, "HIT"},
      {small3, {{"Cache-Control", "no-cache"}}, "GET", 200, "REVALIDATE"},
      {small2, {{"Pragma", "no-cache"}}, "GET", 200, "REVALIDATE"},
      {small, {{"Cookie", "a=b"}}, "GET", 200, "BYPASS"},
      {small, {{"Authorization", "Bearer x"}}, "GET", 200, "MISS"},
      {small, {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}}, "GET", 200, "HIT"},
      {small, {}, "HEAD", 200, "HIT"},
      {stale, {}, "GET", 200, "REVALIDATE"},
      {varies, {}, "GET", 200, "HIT"},
      {not_found, {}, "GET", 404, "HIT"},
      {"/nothing-here?size=10", {}, "GET", 200, "MISS"},
  };
  for (const Case& c : cases) {
    Fetched f = Get(c.target, c.headers, SIZE_MAX, c.method);
    EXPECT_EQ(f.status, c.status) << c.target << " " << c.method;
    EXPECT_EQ(f.x_cache, c.x_cache) << c.target << " " << c.method;
  }
  EXPECT_EQ(DirectHits(), before) << "none of these is a plain hit";
  // HTTP/1.0 and an absolute-form target: the full path too.
  for (const std::string& request :
       {"GET " + small + " HTTP/1.0\r\n\r\n",
        "GET http://x" + small + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"}) {
    RawConnection conn(fanoutd_.port());
    ASSERT_TRUE(conn.Send(request));
    const std::string got = conn.ReadUntil([](const std::string&) { return false; });
    EXPECT_EQ(got.rfind("HTTP/1.1 ", 0), 0u) << got.substr(0, 200);
  }
  EXPECT_EQ(DirectHits(), before);
  EXPECT_EQ(Get(small).x_cache, "HIT");
  EXPECT_EQ(DirectHits(), before + 1) << "and the plain request still goes direct";
}

TEST_F(DirectHitTest, ADamagedSmallEntryIsDroppedAndFetchedAgainNeverServedShort) {
  StartFanoutd();
  const std::string target = "/dmg.bin?size=8000&cc=max-age%3D600";
  Store(target);
  EXPECT_EQ(Get(target).x_cache, "HIT");  // the entry is open now
  // The body file gets its final name once made durable, just after the
  // entry becomes a hit.
  std::string body_file;
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.path() + "/cache")) {
      if (e.is_regular_file() && e.path().extension() == ".body") body_file = e.path();
    }
    return !body_file.empty();
  }));
  std::filesystem::resize_file(body_file, 1000);
  Fetched f = Get(target);
  EXPECT_EQ(f.status, 200);
  EXPECT_TRUE(f.transfer_ok);
  EXPECT_EQ(f.x_cache, "MISS") << "dropped, then fetched anew";
  EXPECT_EQ(f.body, OriginServer::OriginBody("/dmg.bin", 8000));
  EXPECT_EQ(origin_.Count(target), 2);
  EXPECT_NE(fanoutd_.log().find("dropping damaged cache entry"), std::string::npos);
}

}  // namespace
}  // namespace fanout
