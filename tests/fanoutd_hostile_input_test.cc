// Hostile input at the edges of the real fanoutd: bad bytes, oversized and
// malformed request heads, path traversal, clients that send their heads
// a byte at a time or hold every connection. Each is answered (or refused)
// with a clear status, never a crash, and the daemon keeps serving.

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bench/origin/origin_server.h"
#include "tests/fanoutd_fixture.h"

namespace fanout {
namespace {

using ::fanout::testing::FanoutdTest;
using ::fanout::testing::RawConnection;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

class HostileInputTest : public FanoutdTest {
 protected:
  // Sends `request` on a new connection and returns everything fanoutd
  // sent back until it closed the connection (or 30 s passed).
  std::string Exchange(const std::string& request) {
    RawConnection c(fanoutd_.port());
    EXPECT_TRUE(c.connected());
    EXPECT_TRUE(c.Send(request));
    return c.ReadUntil([](const std::string&) { return false; });
  }

  static std::string StatusLine(const std::string& response) {
    return response.substr(0, response.find("\r\n"));
  }

  // The daemon still answers a plain request.
  void ExpectStillServing() {
    const auto fetched = Get("/alive.bin?size=1000");
    EXPECT_EQ(fetched.status, 200);
    EXPECT_TRUE(fetched.body == OriginServer::OriginBody(root_base_ + "/alive.bin", 1000));
  }

  // The upstream base path of the root route ("" unless Config() set it).
  std::string root_base_;

  std::string Config(const std::string& extra) {
    root_base_ = "/other";
    return WriteConfig("{" + extra + R"("routes": [
      {"prefix": "/pub", "upstream": "http://127.0.0.1:)" + std::to_string(origin_port_) +
                       R"(/public"},
      {"prefix": "/", "upstream": "http://127.0.0.1:)" + std::to_string(origin_port_) +
                       R"(/other"}]})");
  }
};

TEST_F(HostileInputTest, NonAsciiAndControlBytesInTheTargetAre400AndCloseTheConnection) {
  StartFanoutd();
  for (const std::string& target : std::vector<std::string>{
           "/a\xff", "/caf\xe9", std::string("/a\0b", 4), "/a\x01", "/a\x7f"}) {
    // A second request is pipelined behind: it must not run.
    const std::string response =
        Exchange("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(StatusLine(response), "HTTP/1.1 400 Bad Request") << response;
    EXPECT_EQ(response.find("HTTP/1.1", 5), std::string::npos)
        << "the bytes after a bad request are not run as one";
  }
  EXPECT_EQ(origin_.Count("/next"), 0);
  ExpectStillServing();
}

TEST_F(HostileInputTest, ControlCharactersInHeaderValuesAre400AndHighBytesAreServed) {
  StartFanoutd();
  for (const std::string& value :
       std::vector<std::string>{std::string("a\0b", 3), "a\x01", "a\x1b[31m", "a\rb"}) {
    const std::string response =
        Exchange("GET /h.bin?size=100 HTTP/1.1\r\nHost: h\r\nX-Odd: " + value + "\r\n\r\n");
    EXPECT_EQ(StatusLine(response), "HTTP/1.1 400 Bad Request") << response;
  }
  EXPECT_EQ(origin_.TotalCount(), 0) << "nothing refused reaches the upstream";
  // obs-text (bytes 0x80-0xFF) is allowed in field values: served.
  const std::string response = Exchange(
      "GET /h.bin?size=100 HTTP/1.1\r\nHost: h\r\nX-Name: caf\xe9\xff\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(StatusLine(response), "HTTP/1.1 200 OK") << response;
  ExpectStillServing();
}

TEST_F(HostileInputTest, OversizedAndMalformedHeadsGetTheirStatusAndAClosedConnection) {
  StartFanoutd();
  struct Case {
    std::string head;
    std::string status_line;
  };
  std::string many_fields;
  for (int i = 0; i < 150; ++i) many_fields += "X-F" + std::to_string(i) + ": v\r\n";
  const std::vector<Case> cases = {
      {"GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 414 URI Too Long"},
      {"GET /x HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(70000, 'b') + "\r\n\r\n",
       "HTTP/1.1 431 Request Header Fields Too Large"},
      {"GET /x HTTP/1.1\r\nHost: h\r\n" + many_fields + "\r\n",
       "HTTP/1.1 431 Request Header Fields Too Large"},
      {"GET /x HTTP/2.0\r\nHost: h\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported"},
      {"GET /x HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"GET /x HTTP/1.1\r\nHost : h\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"GET /x HTTP/1.1\nHost: h\n\n", "HTTP/1.1 400 Bad Request"},
      {"GET  /x HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "HTTP/1.1 400 Bad Request"},
  };
  for (const auto& c : cases) {
    const std::string response = Exchange(c.head + "GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(StatusLine(response), c.status_line) << c.head.substr(0, 60);
    EXPECT_NE(response.find("Connection: close"), std::string::npos);
    EXPECT_EQ(response.find("HTTP/1.1", 5), std::string::npos) << "closed after the refusal";
  }
  EXPECT_EQ(origin_.TotalCount(), 0);
  ExpectStillServing();
}

TEST_F(HostileInputTest, DotSegmentsNeverLeaveTheRoutesBasePath) {
  StartFanoutd({"--config", Config("")});
  // Each reaches the upstream as the normal form of its path, which no
  // longer starts with /pub: it belongs to the root route (/other).
  for (const std::string& target : std::vector<std::string>{"/pub/../private/x", "/pub/%2e%2e/private/x",
                                   "/pub/.%2E/private/x", "/pub/./../private/x"}) {
    const auto fetched = Get(target);
    EXPECT_EQ(fetched.status, 200) << target;
  }
  EXPECT_EQ(origin_.Count("/public/../private/x"), 0);
  EXPECT_EQ(origin_.Count("/other/private/x"), 1) << "one normal form, one entry, one fetch";
  for (const std::string& target : std::vector<std::string>{"/pub/..%2fprivate/x", "/pub/..%2Fprivate/x", "/pub/..%5cx",
                                   "/pub/%2e%2e%2fprivate/x"}) {
    EXPECT_EQ(StatusLine(Exchange("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n")),
              "HTTP/1.1 400 Bad Request")
        << target;
  }
  EXPECT_EQ(origin_.TotalCount(), 1);
  // Plain paths under the route still map under its base path.
  EXPECT_EQ(Get("/pub/a/b.bin").status, 200);
  EXPECT_EQ(origin_.Count("/public/a/b.bin"), 1);
}

TEST_F(HostileInputTest, AHeadSentAByteAtATimeIsCutOffAt408) {
  StartFanoutd({"--config", Config(R"("request_head_timeout": "1s", )")});
  RawConnection slow(fanoutd_.port());
  ASSERT_TRUE(slow.connected());
  const std::string head = "GET /slow.bin HTTP/1.1\r\nHost: h\r\nX-Padding: " + std::string(40, 'p');
  const auto started = Clock::now();
  std::string response;
  std::thread reader([&] { response = slow.ReadUntil([](const std::string&) { return false; }); });
  for (char c : head) {
    if (!slow.Send(std::string(1, c))) break;  // closed by fanoutd
    std::this_thread::sleep_for(100ms);        // the client's pace, the behaviour under test
  }
  reader.join();
  EXPECT_EQ(StatusLine(response), "HTTP/1.1 408 Request Timeout") << response;
  EXPECT_LT(Clock::now() - started, 4s) << "cut off near request_head_timeout, not later";
  EXPECT_EQ(origin_.TotalCount(), 0);
  ExpectStillServing();
}

TEST_F(HostileInputTest, SlowHeadsHoldingEverySlotGiveWayToRealClients) {
  StartFanoutd({"--config", Config(R"("max_connections": 16, "request_head_timeout": "60s", )")});
  // More slow clients than slots, each having sent one byte of its head.
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 40; ++i) {
    slow.push_back(std::make_unique<RawConnection>(fanoutd_.port(), 0, "127.0.0.2"));
    ASSERT_TRUE(slow.back()->connected());
    ASSERT_TRUE(slow.back()->Send("G"));
  }
  // Past the time a real client needs to send a head, they are fair game.
  std::this_thread::sleep_for(700ms);
  int ok = 0;
  for (int i = 0; i < 20; ++i) {
    const auto fetched = Get("/real" + std::to_string(i) + ".bin?size=1000");
    ok += fetched.status == 200;
  }
  EXPECT_EQ(ok, 20) << "every real request is served while slow heads hold the slots";
  EXPECT_NE(fanoutd_.log().find("still sending its request head"), std::string::npos);
}

TEST_F(HostileInputTest, OneAddressCannotHoldMoreThanItsShareOfConnections) {
  StartFanoutd({"--config", Config(R"("max_connections_per_client": 4, )")});
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<RawConnection>(fanoutd_.port(), 0, "127.0.0.3"));
    ASSERT_TRUE(held.back()->Send("GET /h" + std::to_string(i) +
                                  ".bin?size=100 HTTP/1.1\r\nHost: h\r\n\r\n"));
    // Each answered and kept open (keep-alive): still holding its slot.
    const std::string got = held.back()->ReadUntil(
        [](const std::string& r) { return r.find("\r\n\r\n") != std::string::npos; });
    ASSERT_EQ(StatusLine(got), "HTTP/1.1 200 OK");
  }
  RawConnection fifth(fanoutd_.port(), 0, "127.0.0.3");
  ASSERT_TRUE(fifth.Send("GET /h9.bin?size=100 HTTP/1.1\r\nHost: h\r\n\r\n"));
  const std::string refused = fifth.ReadUntil([](const std::string&) { return false; });
  EXPECT_EQ(StatusLine(refused), "HTTP/1.1 503 Service Unavailable") << refused;
  EXPECT_NE(refused.find("max_connections_per_client"), std::string::npos);
  ExpectStillServing();  // another address (127.0.0.1) is not affected
  held.pop_back();       // a slot comes back when its connection ends
  EXPECT_TRUE(::fanout::testing::WaitFor([&] {
    RawConnection again(fanoutd_.port(), 0, "127.0.0.3");
    again.Send("GET /h9.bin?size=100 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    return StatusLine(again.ReadUntil([](const std::string&) { return false; })) ==
           "HTTP/1.1 200 OK";
  }));
}

}  // namespace
}  // namespace fanout

namespace fanout {
namespace {

// Bytes 0x80-0xFF from the network (a Latin-1 file name in a response
// header, a Vary-selected request header) are stored with the entry byte
// for byte, survive a restart, and never stop the daemon.
TEST_F(HostileInputTest, NonUtf8BytesInStoredHeadersAreKeptExactlyAcrossARestart) {
  StartFanoutd();
  const std::string typed =
      "/cd.bin?size=1000&cc=max-age%3D600&type=text%2Fplain%3B%20name%3D%22caf%E9.txt%22";
  const std::string varied = "/v.bin?size=1000&cc=max-age%3D600&vary=X-Lang";
  auto get = [&](const std::string& target, const std::string& extra) {
    return Exchange("GET " + target + " HTTP/1.1\r\nHost: h\r\n" + extra +
                    "Connection: close\r\n\r\n");
  };
  for (int run = 0; run < 2; ++run) {
    const std::string a = get(typed, "");
    EXPECT_EQ(StatusLine(a), "HTTP/1.1 200 OK") << a;
    EXPECT_NE(a.find("Content-Type: text/plain; name=\"caf\xe9.txt\"\r\n"), std::string::npos) << a;
    const std::string b = get(varied, "X-Lang: caf\xe9\xff\r\n");
    EXPECT_EQ(StatusLine(b), "HTTP/1.1 200 OK") << b;
    EXPECT_NE(b.find(OriginServer::OriginBody("/v.bin|caf\xe9\xff", 1000)), std::string::npos)
        << "the variant selected by the raw bytes";
    if (run == 0) {
      WaitUntilHit(typed);
      ASSERT_TRUE(::fanout::testing::WaitFor([&] {
        return get(varied, "X-Lang: caf\xe9\xff\r\n").find("X-Cache: HIT") != std::string::npos;
      }));
      ASSERT_EQ(fanoutd_.Stop(), 0) << fanoutd_.log();
      StartFanoutd();
    } else {
      EXPECT_NE(a.find("X-Cache: HIT"), std::string::npos) << "stored and reloaded: " << a;
      EXPECT_NE(b.find("X-Cache: HIT"), std::string::npos) << "stored and reloaded: " << b;
    }
  }
  EXPECT_EQ(fanoutd_.log().find("discarding damaged"), std::string::npos) << fanoutd_.log();
  EXPECT_EQ(origin_.TotalCount(), 2) << "each fetched once, before the restart";
}

}  // namespace
}  // namespace fanout

namespace fanout {
namespace {

TEST_F(HostileInputTest, TheAdminInterfaceTakesOddBytesAndTraversalInItsParameters) {
  StartFanoutd();
  // An entry whose key holds raw bytes (a Vary-selected variant).
  const std::string varied = "/v.bin?size=100&cc=max-age%3D600&vary=X-Lang";
  Exchange("GET " + varied + " HTTP/1.1\r\nHost: h\r\nX-Lang: \xe9\xff\r\nConnection: close\r\n\r\n");
  Store("/plain.bin?size=100");
  auto admin = Admin();
  auto entries = admin.Get("/entries");
  ASSERT_TRUE(entries);
  EXPECT_EQ(entries->status, 200);
  EXPECT_TRUE(nlohmann::json::accept(entries->body)) << entries->body;
  for (const std::string& url : std::vector<std::string>{
           "%FF%FE", "%00", "/..%2F..%2Fetc%2Fpasswd", "/../../etc/passwd", "/a%00b",
        "http://127.0.0.1:1/%FF", std::string(20000, 'a'), "/plain.bin%3Fsize%3D100%FF"}) {
    const std::string shown = url.substr(0, 40);
    auto res = admin.Post(("/purge?url=" + url).c_str());
    ASSERT_TRUE(res) << shown;
    if (res->status == 414) continue;  // httplib's own limit on the admin's targets
    EXPECT_TRUE(res->status == 404 || res->status == 200 || res->status == 400) << shown;
    EXPECT_TRUE(nlohmann::json::accept(res->body)) << shown << ": " << res->body.substr(0, 200);
  }
  EXPECT_EQ(Get("/plain.bin?size=100").x_cache, "HIT") << "nothing purged by accident";
  // A traversal spelling of a stored path purges that path: one normal form.
  auto res = admin.Post("/purge?url=/x/../plain.bin%3Fsize%3D100");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(Get("/plain.bin?size=100").x_cache, "MISS");
  ExpectStillServing();
}

}  // namespace
}  // namespace fanout
