// Integration tests: the real fanoutd binary in front of a real origin
// (OriginServer, in this process), driven by real HTTP clients.

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bench/origin/origin_server.h"
#include "tests/fanoutd_fixture.h"
#include "tests/fanoutd_process.h"
#include "tests/test_util.h"

namespace fanout {
namespace {

using ::fanout::testing::DeadPort;
using ::fanout::testing::FanoutdProcess;
using ::fanout::testing::FanoutdTest;
using ::fanout::testing::Fetched;
using ::fanout::testing::RawConnection;
using ::fanout::testing::TempDir;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

TEST_F(FanoutdTest, FiftyConcurrentClientsCauseOneUpstreamFetch) {
  StartFanoutd();
  CheckFanOut("/big.bin", "size=4000000", 4000000);
}

TEST_F(FanoutdTest, FiftyConcurrentClientsShareAChunkedFetch) {
  StartFanoutd();
  CheckFanOut("/chunked.bin", "size=4000000&chunked=1", 4000000);
}

TEST_F(FanoutdTest, ClientLeavingMidStreamDoesNotDisturbOthersOrTheEntry) {
  StartFanoutd();
  // Held half-way until all five clients are streaming.
  const std::string target = "/leave.bin?size=2000000&hold_at=1000000";
  const std::string expected = OriginServer::OriginBody("/leave.bin", 2000000);
  std::vector<Fetched> results(5);
  std::vector<std::thread> threads;
  for (int i = 0; i < 5; ++i) {
    threads.emplace_back([&, i] {
      // Client 0 hangs up after 100 kB.
      results[i] = Get(target, {}, i == 0 ? 100000 : SIZE_MAX);
    });
  }
  EXPECT_TRUE(::fanout::testing::WaitFor([&] { return first_bytes_seen_ == 5; }));
  origin_.Release("/leave.bin");
  for (auto& t : threads) t.join();
  EXPECT_FALSE(results[0].transfer_ok);
  for (int i = 1; i < 5; ++i) {
    EXPECT_TRUE(results[i].transfer_ok);
    EXPECT_TRUE(results[i].body == expected);
  }
  WaitUntilHit(target);
  Fetched later = Get(target);
  EXPECT_EQ(later.x_cache, "HIT");
  EXPECT_TRUE(later.body == expected);
  EXPECT_EQ(origin_.Count(target), 1);
}

TEST_F(FanoutdTest, UnreachableUpstreamIs502AndNothingIsKept) {
  const int dead_port = DeadPort();
  StartFanoutd({"--upstream", "http://127.0.0.1:" + std::to_string(dead_port)});
  for (int i = 0; i < 2; ++i) {
    Fetched f = Get("/x");
    EXPECT_EQ(f.status, 502);
    EXPECT_NE(f.body.find("127.0.0.1:" + std::to_string(dead_port)), std::string::npos)
        << f.body;
  }
}

TEST_F(FanoutdTest, UpstreamSilentBeforeHeadersIs504) {
  const std::string config = WriteConfig(R"({
    "routes": [{"prefix": "/", "upstream": "http://127.0.0.1:)" +
                                         std::to_string(origin_port_) + R"("}],
    "upstream": {"read_timeout": "500ms"}})");
  StartFanoutd({"--config", config});
  Fetched f = Get("/slow?delay_ms=3000&size=10");
  EXPECT_EQ(f.status, 504);
  EXPECT_NE(f.body.find("timed out"), std::string::npos) << f.body;
}

TEST_F(FanoutdTest, ErrorStatusesAreKeptOnlyAsRfc9111Allows) {
  StartFanoutd();
  // 500 without explicit freshness: never stored. 404 without a validator
  // or freshness: nothing to reuse it by, not stored.
  for (const std::string target : {"/err?status=500&size=100",
                                   "/err?status=404&size=100&no_lm=1&no_etag=1"}) {
    Fetched a = Get(target);
    Fetched b = Get(target);
    EXPECT_EQ(a.status, std::stoi(target.substr(target.find('=') + 1)));
    EXPECT_EQ(b.status, a.status);
    EXPECT_EQ(a.x_cache, "MISS");
    EXPECT_EQ(b.x_cache, "MISS") << target << " must not become an entry";
    EXPECT_EQ(a.body, OriginServer::OriginBody("/err", 100));
    EXPECT_EQ(origin_.Count(target), 2);
  }
  // A 404 with Last-Modified is heuristically cacheable (RFC 9110 §15.1).
  const std::string target = "/gone?status=404&size=100";
  EXPECT_EQ(Get(target).x_cache, "MISS");
  WaitUntilHit(target);
  Fetched hit = Get(target);
  EXPECT_EQ(hit.status, 404);
  EXPECT_EQ(hit.body, OriginServer::OriginBody("/gone", 100));
  EXPECT_EQ(origin_.Count(target), 1);
}

TEST_F(FanoutdTest, UpstreamBreakingMidBodyFailsEveryJoinedClientAndKeepsNothing) {
  StartFanoutd();
  // The origin holds each body at 500 kB until all eight clients are
  // streaming, then hangs up at 1 MB of 2 MB. Without a validator (but
  // cacheable, so that all eight share the fetch) the rest cannot be asked
  // for: resuming is fanoutd_resume_test.cc's.
  for (const std::string path : {"/broken", "/broken-chunked"}) {
    const std::string target = path +
                               "?size=2000000&hold_at=500000&drop_at=1000000"
                               "&no_etag=1&no_lm=1&cc=max-age%3D600" +
                               (path == "/broken" ? "" : "&chunked=1");
    const int streaming_before = first_bytes_seen_;
    std::vector<Fetched> results;
    std::thread clients([&] { results = ManyClients(target, 8, 10ms); });
    EXPECT_TRUE(::fanout::testing::WaitFor(
        [&] { return first_bytes_seen_ - streaming_before == 8; }));
    origin_.Release(path);
    clients.join();
    EXPECT_EQ(origin_.Count(target), 1) << fanoutd_.log();
    for (const auto& r : results) {
      EXPECT_FALSE(r.transfer_ok) << "a truncated body was served as complete";
      EXPECT_LE(r.body.size(), 1000000u);
    }
    // curl, too, must see a transfer error, not a clean end.
    const std::string cmd = "curl -s -o /dev/null '" + Url(target) + "'";
    const int rc = std::system(cmd.c_str());
    EXPECT_NE(rc, 0) << "curl saw a complete transfer";
    EXPECT_EQ(origin_.Count(target), 2) << "nothing kept: the next request fetches again";
  }
}

TEST_F(FanoutdTest, OtherMethodsPassThroughUncachedWithTheirBodies) {
  StartFanoutd();
  httplib::Client client("127.0.0.1", fanoutd_.port());
  for (int i = 0; i < 2; ++i) {
    auto res = client.Post("/form?size=10", std::string(5000, 'p'), "text/plain");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("X-Cache"), "BYPASS");
    EXPECT_EQ(res->get_header_value("X-Origin-Method"), "POST");
    EXPECT_EQ(res->get_header_value("X-Origin-Body-Bytes"), "5000");
  }
  EXPECT_EQ(origin_.Count("/form?size=10"), 2);
  for (const char* method : {"PUT", "DELETE", "PATCH", "OPTIONS"}) {
    Fetched f = Get("/m?size=10", {}, SIZE_MAX, method);
    EXPECT_EQ(f.status, 200);
    EXPECT_EQ(f.x_cache, "BYPASS");
  }
  EXPECT_EQ(origin_.Count("/m?size=10"), 4);
}

// Sends `size` bytes of Pattern as a request body, `chunk` at a time; after
// `pause_after` bytes it calls `at_pause` once (which may wait).
httplib::ContentProviderWithoutLength PatternBody(std::size_t size, std::size_t pause_after,
                                                  std::function<void()> at_pause) {
  return [=](size_t offset, httplib::DataSink& sink) {
    if (offset == pause_after && at_pause) at_pause();
    if (offset >= size) {
      sink.done();
      return true;
    }
    const std::string chunk = ::fanout::testing::Pattern(offset, std::min<std::size_t>(size - offset, 256 * 1024));
    return sink.write(chunk.data(), chunk.size());
  };
}

TEST_F(FanoutdTest, UploadBodiesAreStreamedUpstreamNotBuffered) {
  StartFanoutd();
  constexpr std::size_t kSize = 32 << 20;
  const std::uint64_t expected_fnv = OriginServer::Fnv1a(::fanout::testing::Pattern(0, kSize));
  // Half-way through the upload the client stops sending until the origin
  // has received part of the body: a proxy that buffered the whole body
  // before forwarding would never let that happen.
  for (bool chunked : {true, false}) {
    SCOPED_TRACE(chunked ? "chunked upload" : "upload with Content-Length");
    const std::uint64_t before = origin_.BodyBytesReceived();
    bool origin_saw_bytes_mid_upload = false;
    auto pause = [&] {
      origin_saw_bytes_mid_upload = ::fanout::testing::WaitFor(
          [&] { return origin_.BodyBytesReceived() - before >= (1 << 20); });
    };
    httplib::Client client("127.0.0.1", fanoutd_.port());
    client.set_read_timeout(60, 0);
    client.set_write_timeout(60, 0);
    auto provider = PatternBody(kSize, kSize / 2, pause);
    httplib::Result res =
        chunked ? client.Put("/upload?size=10", provider, "application/octet-stream")
                : client.Put("/upload?size=10", kSize,
                             [provider](size_t offset, size_t, httplib::DataSink& sink) {
                               return provider(offset, sink);
                             },
                             "application/octet-stream");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_TRUE(origin_saw_bytes_mid_upload);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("X-Cache"), "BYPASS");
    EXPECT_EQ(res->get_header_value("X-Origin-Method"), "PUT");
    EXPECT_EQ(res->get_header_value("X-Origin-Body-Bytes"), std::to_string(kSize));
    EXPECT_EQ(res->get_header_value("X-Origin-Body-Fnv"), std::to_string(expected_fnv));
  }
  EXPECT_EQ(origin_.Count("/upload?size=10"), 2);
}

TEST_F(FanoutdTest, MultipartUploadsAreRelayedByteForByte) {
  StartFanoutd();
  const std::string type = "multipart/form-data; boundary=XyZ";
  const std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.bin\"\r\n\r\n" +
      ::fanout::testing::Pattern(0, 100000) + "\r\n--XyZ--\r\n";
  httplib::Client client("127.0.0.1", fanoutd_.port());
  auto res = client.Post("/form?size=10", body, type.c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("X-Origin-Content-Type"), type);
  EXPECT_EQ(res->get_header_value("X-Origin-Body-Bytes"), std::to_string(body.size()));
  EXPECT_EQ(res->get_header_value("X-Origin-Body-Fnv"), std::to_string(OriginServer::Fnv1a(body)));
}

TEST_F(FanoutdTest, OversizedUploadIs413AndTheUpstreamGetsNoCompleteRequest) {
  const std::string config = WriteConfig(R"({
    "routes": [{"prefix": "/", "upstream": "http://127.0.0.1:)" +
                                         std::to_string(origin_port_) + R"("}],
    "max_request_body": "1MiB"})");
  StartFanoutd({"--config", config});
  httplib::Client client("127.0.0.1", fanoutd_.port());
  auto res = client.Post("/big?size=10", std::string(2 << 20, 'b'), "application/octet-stream");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_NE(res->body.find("max_request_body"), std::string::npos) << res->body;
  // The origin never answers an incomplete request, so no 200 was relayed;
  // a body within the limit still goes through.
  auto small = client.Post("/big?size=10", std::string(1000, 'b'), "application/octet-stream");
  ASSERT_TRUE(small);
  EXPECT_EQ(small->status, 200);
  EXPECT_EQ(small->get_header_value("X-Origin-Body-Bytes"), "1000");
  EXPECT_EQ(origin_.Count("/big?size=10"), 1) << "only the small request reached the origin whole";
}

TEST_F(FanoutdTest, UploadToUnreachableUpstreamIs502) {
  StartFanoutd({"--upstream", "http://127.0.0.1:" + std::to_string(DeadPort())});
  httplib::Client client("127.0.0.1", fanoutd_.port());
  auto res = client.Post("/up", std::string(4 << 20, 'u'), "application/octet-stream");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 502);
  EXPECT_EQ(res->get_header_value("X-Cache"), "BYPASS");
}

TEST_F(FanoutdTest, RequestsWithCookiesOrCredentialsAreFetchedAloneAndNotShared) {
  StartFanoutd();
  const std::string target = "/private?size=1000";
  Fetched with_cookie = Get(target, {{"Cookie", "a=b"}});
  EXPECT_EQ(with_cookie.x_cache, "BYPASS");
  EXPECT_EQ(with_cookie.body, OriginServer::OriginBody("/private", 1000));
  EXPECT_EQ(origin_.LastHeaders(target).count("Cookie"), 1u) << "cookies are forwarded";
  // Credentials: a fetch of its own; the answer (not marked public) is
  // neither shared nor stored.
  Fetched with_credentials = Get(target, {{"Authorization", "Bearer x"}});
  EXPECT_EQ(with_credentials.x_cache, "MISS");
  EXPECT_EQ(with_credentials.body, OriginServer::OriginBody("/private", 1000));
  EXPECT_EQ(origin_.LastHeaders(target).count("Authorization"), 1u) << "credentials are forwarded";
  Fetched anonymous = Get(target);
  EXPECT_EQ(anonymous.x_cache, "MISS") << "a private response was shared";
  EXPECT_EQ(origin_.Count(target), 3);
}

TEST_F(FanoutdTest, PrivateResponsesAreNotSharedWithJoinersNorKept) {
  StartFanoutd();
  for (const std::string query : {"set_cookie=1", "cc=private", "cc=no-store"}) {
    // The origin answers once released: all five requests attach to the
    // first fetch while it waits for its head.
    const std::string path = "/p-" + std::to_string(origin_.TotalCount());  // a fresh path
    const std::string target = path + "?size=1000&hold_at=0&" + query;
    std::vector<Fetched> results;
    std::thread clients([&] { results = ManyClients(target, 5, 10ms); });
    EXPECT_TRUE(::fanout::testing::WaitFor([&] { return Joins(target) == 4; }));
    origin_.Release(path);
    clients.join();
    int misses = 0, bypasses = 0;
    for (const auto& r : results) {
      EXPECT_EQ(r.body, OriginServer::OriginBody(path, 1000));
      misses += r.x_cache == "MISS";
      bypasses += r.x_cache == "BYPASS";
    }
    EXPECT_EQ(misses, 1) << query;
    EXPECT_EQ(bypasses, 4) << query << ": joiners must go upstream on their own";
    EXPECT_EQ(origin_.Count(target), 5);
    EXPECT_EQ(Get(target).x_cache, "MISS") << "not kept";
  }
}

TEST_F(FanoutdTest, UnroutedPathsGet404AndNeverReachAnUpstream) {
  const std::string config = WriteConfig(R"({"routes": [
    {"prefix": "/mirror", "upstream": "http://127.0.0.1:)" +
                                         std::to_string(origin_port_) + R"(/base"}]})");
  StartFanoutd({"--config", config});
  Fetched f = Get("/elsewhere/x");
  EXPECT_EQ(f.status, 404);
  EXPECT_NE(f.body.find("no route"), std::string::npos);
  EXPECT_EQ(Get("/mirrorx").status, 404) << "prefixes match whole segments";
  EXPECT_EQ(origin_.TotalCount(), 0);
  Fetched routed = Get("/mirror/a.bin?size=10");
  EXPECT_EQ(routed.status, 200);
  EXPECT_EQ(origin_.Count("/base/a.bin?size=10"), 1) << "prefix replaced by upstream path";
}

TEST_F(FanoutdTest, HeadOnMissAnswersHeadersAndFillsTheCache) {
  StartFanoutd();
  const std::string target = "/head.bin?size=50000";
  httplib::Client client("127.0.0.1", fanoutd_.port());
  auto head = client.Head(target.c_str());
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->get_header_value("Content-Length"), "50000");
  EXPECT_TRUE(head->body.empty());
  // The fetch the HEAD started fills the entry for everyone.
  ASSERT_TRUE(::fanout::testing::WaitFor([&] { return Get(target).x_cache == "HIT"; }));
  EXPECT_EQ(origin_.Count(target), 1);
}

TEST_F(FanoutdTest, EndToEndHeadersAreRelayedAndHitsCarryAge) {
  StartFanoutd();
  const std::string target = "/h.bin?size=1000&cc=max-age%3D60";
  Fetched miss = Get(target);
  WaitUntilHit(target);
  Fetched hit = Get(target);
  for (const auto* f : {&miss, &hit}) {
    EXPECT_EQ(f->headers.find("ETag")->second.empty(), false);
    EXPECT_EQ(f->headers.count("Last-Modified"), 1u);
    EXPECT_EQ(f->headers.find("Content-Type")->second, "application/octet-stream");
    EXPECT_EQ(f->headers.find("Cache-Control")->second, "max-age=60");
    EXPECT_EQ(f->headers.find("Content-Length")->second, "1000");
  }
  EXPECT_EQ(hit.headers.count("Age"), 1u) << "a hit says how long it was cached";
}

TEST_F(FanoutdTest, QueryStringsAreSeparateEntries) {
  StartFanoutd();
  EXPECT_EQ(Get("/q?size=10&v=1").x_cache, "MISS");
  EXPECT_EQ(Get("/q?size=10&v=2").x_cache, "MISS");
  WaitUntilHit("/q?size=10&v=1");
  EXPECT_EQ(origin_.Count("/q?size=10&v=1"), 1);
  EXPECT_EQ(origin_.Count("/q?size=10&v=2"), 1);
}

TEST_F(FanoutdTest, EntryFilesAreNamedByKeyHashNeverByRequestPath) {
  StartFanoutd();
  Get("/%2F%2Fetc%2Fpasswd?size=10");
  Get("/plain-name.bin?size=10");
  WaitUntilHit("/%2F%2Fetc%2Fpasswd?size=10");
  WaitUntilHit("/plain-name.bin?size=10");
  auto files = [&] {
    std::vector<std::string> names;
    for (const auto& e :
         std::filesystem::recursive_directory_iterator(dir_.path() + "/cache/entries")) {
      if (e.is_regular_file()) names.push_back(e.path().filename().string());
    }
    return names;
  };
  // Hits are served while the body is made durable; wait for the commit:
  // per entry <sha256 hex>.meta and <sha256 hex>.<unique>.body.
  auto ends = [](const std::string& s, const std::string& suffix) {
    return s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  ASSERT_TRUE(::fanout::testing::WaitFor([&] {
    auto names = files();
    return names.size() == 4 &&
           std::count_if(names.begin(), names.end(), [&](auto& n) { return ends(n, ".meta"); }) == 2;
  }));
  int metas = 0;
  for (const std::string& name : files()) {
    EXPECT_EQ(name.find("plain-name"), std::string::npos);
    EXPECT_EQ(name.find("passwd"), std::string::npos);
    ASSERT_GT(name.size(), 64u);
    EXPECT_EQ(name.find_first_not_of("0123456789abcdef"), 64u) << name;
    if (name.substr(64) == ".meta") ++metas;
    else EXPECT_EQ(name.substr(name.size() - 5), ".body") << name;
  }
  EXPECT_EQ(metas, 2);
}

// A raw loopback connection to fanoutd, for what httplib's client hides.
std::size_t Count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

TEST_F(FanoutdTest, PipelinedRequestsOnOneConnectionAreAllAnswered) {
  StartFanoutd();
  Get("/p1?size=3000");
  Get("/p2?size=50000");
  WaitUntilHit("/p1?size=3000");
  WaitUntilHit("/p2?size=50000");
  RawConnection conn(fanoutd_.port());
  ASSERT_TRUE(conn.connected());
  // Three requests in one segment: bytes read ahead for the first must
  // still be there for the second and third.
  ASSERT_TRUE(conn.Send("GET /p1?size=3000 HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /p2?size=50000 HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /p1?size=3000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const std::string got = conn.ReadUntil([](const std::string&) { return false; });
  EXPECT_EQ(Count(got, "HTTP/1.1 200 OK\r\n"), 3u);
  EXPECT_EQ(Count(got, "X-Cache: HIT\r\n"), 3u);
  const std::string p1 = OriginServer::OriginBody("/p1", 3000);
  const std::string p2 = OriginServer::OriginBody("/p2", 50000);
  const auto first = got.find("\r\n\r\n") + 4;
  EXPECT_EQ(got.compare(first, p1.size(), p1), 0);
  EXPECT_NE(got.find(p2), std::string::npos);
  EXPECT_EQ(got.size() - got.rfind("\r\n\r\n") - 4, p1.size());
}

TEST_F(FanoutdTest, ExpectContinueUploadGetsItsInterimResponse) {
  StartFanoutd();
  RawConnection conn(fanoutd_.port());
  ASSERT_TRUE(conn.connected());
  const std::string body(100000, 'e');
  ASSERT_TRUE(conn.Send("POST /up?size=10 HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                        std::to_string(body.size()) +
                        "\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"));
  // The client sends no body until it sees 100 Continue, as curl does.
  const std::string interim = conn.ReadUntil(
      [](const std::string& g) { return g.find("\r\n\r\n") != std::string::npos; });
  ASSERT_EQ(interim.rfind("HTTP/1.1 100 Continue", 0), 0u) << interim;
  ASSERT_TRUE(conn.Send(body));
  const std::string answer = conn.ReadUntil([](const std::string&) { return false; });
  EXPECT_NE(answer.find("HTTP/1.1 200 OK"), std::string::npos) << answer;
  EXPECT_NE(answer.find("X-Origin-Body-Bytes: 100000"), std::string::npos) << answer;
}

TEST_F(FanoutdTest, TruncatedEntryFileIsNeverServedAsComplete) {
  StartFanoutd();
  const std::string target = "/cut.bin?size=3000000";
  const std::string body = OriginServer::OriginBody("/cut.bin", 3000000);
  ASSERT_TRUE(Get(target).transfer_ok);
  WaitUntilHit(target);
  auto body_file = [&] {
    std::string found;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.path() + "/cache")) {
      if (e.is_regular_file() && e.path().extension() == ".body") found = e.path();
    }
    return found;
  };
  ASSERT_TRUE(::fanout::testing::WaitFor([&] { return !body_file().empty(); }));

  // Someone cuts the file while a client is reading it: the entry is open,
  // the next hit is sent from it and finds too few bytes; the client must
  // see a broken transfer.
  {
    RawConnection reading(fanoutd_.port(), 16 * 1024);
    ASSERT_TRUE(reading.Send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_GE(reading.ReadUntil([](const std::string& s) { return s.size() >= 10000; }).size(),
              10000u);
    std::filesystem::resize_file(body_file(), 1000000);
    Fetched f = Get(target);
    EXPECT_EQ(f.x_cache, "HIT");
    EXPECT_FALSE(f.transfer_ok);
    EXPECT_LT(f.body.size(), 3000000u);
  }
  // The damaged entry is dropped (found by the failed send, or when it is
  // opened again): the next request fetches anew and is served whole.
  Fetched again;
  ASSERT_TRUE(::fanout::testing::WaitFor([&] {
    again = Get(target);
    return again.x_cache == "MISS";
  }));
  EXPECT_TRUE(again.transfer_ok);
  EXPECT_TRUE(again.body == body);
  EXPECT_NE(fanoutd_.log().find("damaged cache entry"), std::string::npos);
}

TEST_F(FanoutdTest, AStalledClientCannotQueueMegabytesInTheKernel) {
  StartFanoutd();
  const std::string target = "/stall.bin?size=50000000";
  ASSERT_TRUE(Get(target).transfer_ok);
  WaitUntilHit(target);
  // A client that asks for 50 MB and reads nothing.
  RawConnection conn(fanoutd_.port(), 64 * 1024);
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.Send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  // fanoutd's end of it: Send-Q (bytes waiting) and skmem's tb (the send
  // buffer), from ss. Autotuned, tb grows to tcp_wmem's 4 MiB; fanoutd fixes
  // it so 1,000 stalled clients cannot push the host into TCP memory pressure.
  auto server_side = [&] {
    return ::fanout::testing::RunCommand("ss -tmnH state established 'sport = :" +
                                         std::to_string(fanoutd_.port()) + "'");
  };
  ASSERT_TRUE(::fanout::testing::WaitFor([&] {
    std::istringstream fields(server_side());
    long recv_q = 0, send_q = 0;
    fields >> recv_q >> send_q;
    return send_q >= 256 * 1024;
  }));
  const std::string out = server_side();
  const auto tb = out.find(",tb");
  ASSERT_NE(tb, std::string::npos) << out;
  EXPECT_LE(std::stol(out.substr(tb + 3)), 1 << 20) << out;
}

// se.slice of every thread of process pid, from /proc/pid/task/*/sched.
std::vector<long> ThreadSlices(pid_t pid) {
  std::vector<long> slices;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::ifstream sched(task.path() / "sched");
    for (std::string line; std::getline(sched, line);) {
      if (line.rfind("se.slice", 0) == 0) {
        slices.push_back(std::stol(line.substr(line.find(':') + 1)));
      }
    }
  }
  return slices;
}

// True if this kernel takes a thread's requested slice (EEVDF, Linux 6.12+).
bool KernelTakesSliceRequests() {
  bool taken = false;
  std::thread([&] {
    struct {
      std::uint32_t size, policy;
      std::uint64_t flags;
      std::int32_t nice;
      std::uint32_t priority;
      std::uint64_t runtime, deadline, period;
    } attr{};
    if (::syscall(SYS_sched_getattr, 0, &attr, sizeof attr, 0) != 0) return;
    attr.size = sizeof attr;
    attr.runtime = 200'000;
    if (::syscall(SYS_sched_setattr, 0, &attr, 0) != 0) return;
    std::ifstream sched("/proc/thread-self/sched");
    for (std::string line; std::getline(sched, line);) {
      if (line.rfind("se.slice", 0) == 0) {
        taken = std::stol(line.substr(line.find(':') + 1)) == 200'000;
      }
    }
  }).join();
  return taken;
}

TEST_F(FanoutdTest, BulkSendersTakeLongCpuSlicesAndRequestThreadsShortOnes) {
  if (!KernelTakesSliceRequests()) GTEST_SKIP() << "kernel ignores per-thread slices";
  StartFanoutd();
  const std::string target = "/slices.bin?size=50000000";
  ASSERT_TRUE(Get(target).transfer_ok);
  WaitUntilHit(target);
  // A client that reads 4 MB of the 50 and stops: the body sender's
  // threads send it (and every other large body).
  RawConnection conn(fanoutd_.port(), 64 * 1024);
  ASSERT_TRUE(conn.Send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string got = conn.ReadUntil([](const std::string& s) { return s.size() >= 4000000; });
  ASSERT_GE(got.size(), 4000000u);
  // Meanwhile a whole download on another worker, which must go back to
  // short slices when its body is done.
  ASSERT_EQ(Get(target).body.size(), 50000000u);
  const long loops = std::max(1u, std::thread::hardware_concurrency());
  // 10 ms for a body sender's loop thread while it holds a body (the
  // stalled client's, at least); 0.1 ms for the accepting thread and the
  // workers that handed the bodies off.
  std::vector<long> slices = ThreadSlices(fanoutd_.pid());
  const long bulk = std::count(slices.begin(), slices.end(), 10'000'000L);
  EXPECT_GE(bulk, 1);
  EXPECT_LE(bulk, loops);
  EXPECT_GE(std::count(slices.begin(), slices.end(), 100'000L), 2);
  // Once no body is left, the loops hold only parked connections and
  // answer hits themselves: short slices again (each looks at least every
  // 250 ms).
  conn.Close();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    slices = ThreadSlices(fanoutd_.pid());
    if (std::count(slices.begin(), slices.end(), 10'000'000L) == 0 ||
        std::chrono::steady_clock::now() > deadline) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(std::count(slices.begin(), slices.end(), 10'000'000L), 0);
  EXPECT_GE(std::count(slices.begin(), slices.end(), 100'000L), 2 + loops);
}

TEST_F(FanoutdTest, ListenBacklogIsRaisedAboveHttplibsFive) {
  StartFanoutd();
  // ss shows a listening socket's backlog in Send-Q.
  const std::string out = ::fanout::testing::RunCommand(
      "ss -ltnH 'sport = :" + std::to_string(fanoutd_.port()) + "'");
  std::istringstream fields(out);
  std::string state, recv_q, send_q;
  fields >> state >> recv_q >> send_q;
  ASSERT_EQ(state, "LISTEN") << out;
  EXPECT_GE(std::stoi(send_q), 128) << out;
}

TEST_F(FanoutdTest, ResponsesAreRelayedWithTheUpstreamsEncodingNeverRecompressed) {
  StartFanoutd();
  // A chunked text response to a client that accepts gzip: httplib would
  // gzip it on its own; fanoutd must relay the upstream's bytes.
  const std::string target = "/page.txt?chunked=1&type=text/plain&size=20000";
  Fetched f = Get(target, {{"Accept-Encoding", "gzip, br"}});
  EXPECT_EQ(f.status, 200);
  EXPECT_FALSE(f.headers.count("Content-Encoding")) << "fanoutd compressed the body itself";
  EXPECT_TRUE(f.body == OriginServer::OriginBody("/page.txt", 20000));
  // Fetched alone (a cookie), the client's Accept-Encoding goes upstream and
  // the origin's own gzip is relayed once, not encoded a second time.
  httplib::Client client("127.0.0.1", fanoutd_.port());
  auto res = client.Get("/alone.txt?chunked=1&type=text/plain&size=20000",
                        {{"Cookie", "a=b"}, {"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("X-Cache"), "BYPASS");
  EXPECT_EQ(origin_.LastHeaders("/alone.txt?chunked=1&type=text/plain&size=20000")
                .count("Accept-Encoding"), 1u);
  EXPECT_EQ(res->get_header_value_count("Content-Encoding"), 1u);
  EXPECT_TRUE(res->body == OriginServer::OriginBody("/alone.txt", 20000));  // decoded once
}

TEST_F(FanoutdTest, FullConnectionPoolAnswers503InsteadOfHanging) {
  const std::string config = WriteConfig(R"({"max_connections": 2, "routes": [
    {"prefix": "/", "upstream": "http://127.0.0.1:)" + std::to_string(origin_port_) + R"("}]})");
  StartFanoutd({"--config", config});
  // Two slow downloads hold both connections.
  std::vector<std::thread> holders;
  std::atomic<int> streaming{0};
  for (int i = 0; i < 2; ++i) {
    holders.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", fanoutd_.port());
      c.Get(("/hold" + std::to_string(i) + "?size=300000&hold_at=100000").c_str(),
            [&](const char*, size_t) {
              static thread_local bool counted = false;
              if (!counted) streaming++, counted = true;
              return true;
            });
    });
  }
  ASSERT_TRUE(::fanout::testing::WaitFor([&] { return streaming.load() == 2; }));
  Fetched third = Get("/third?size=10");
  EXPECT_EQ(third.status, 503);
  EXPECT_NE(third.body.find("max_connections"), std::string::npos);
  origin_.Release("/hold0");
  origin_.Release("/hold1");
  for (auto& t : holders) t.join();
  // A worker is free once it has seen its client close, just after the
  // client's last byte.
  EXPECT_TRUE(::fanout::testing::WaitFor([&] { return Get("/third?size=10").status == 200; }))
      << "served again once connections free up";
}

TEST_F(FanoutdTest, ConnectionsThatSendNothingTakeNoWorker) {
  const std::string config = WriteConfig(R"({"max_connections": 1, "routes": [
    {"prefix": "/", "upstream": "http://127.0.0.1:)" + std::to_string(origin_port_) + R"("}]})");
  StartFanoutd({"--config", config});
  // Accepting waits for a connection's first bytes (TCP_DEFER_ACCEPT): a
  // client that connects and says nothing does not hold the only worker,
  // so the next one is served, not told 503.
  RawConnection silent(fanoutd_.port());
  ASSERT_TRUE(silent.connected());
  Fetched f = Get("/after-silent?size=10");
  EXPECT_EQ(f.status, 200);
  EXPECT_TRUE(f.transfer_ok);
}

TEST_F(FanoutdTest, EmptyBodiesAreAnsweredAndKept) {
  StartFanoutd();
  // An empty 200 (kept) and an empty redirect (relayed): both must end,
  // on a miss, a hit (direct or not) and a HEAD.
  const std::string empty = "/empty.txt?size=0&cc=max-age%3D600";
  const std::string moved = "/moved?size=0&status=301&location=%2Fnew";
  for (const std::string& target : {empty, moved}) {
    Fetched f = Get(target);
    EXPECT_TRUE(f.transfer_ok) << target;
    EXPECT_TRUE(f.body.empty()) << target;
    EXPECT_EQ(f.headers.find("Content-Length")->second, "0") << target;
  }
  EXPECT_EQ(Get(moved).status, 301);
  WaitUntilHit(empty);
  Fetched hit = Get(empty);
  EXPECT_EQ(hit.x_cache, "HIT");
  EXPECT_TRUE(hit.transfer_ok);
  EXPECT_TRUE(hit.body.empty());
  Fetched full_path_hit = Get(empty, {{"If-None-Match", "\"other\""}});
  EXPECT_EQ(full_path_hit.x_cache, "HIT");
  EXPECT_TRUE(full_path_hit.transfer_ok);
  Fetched head = Get(empty, {}, SIZE_MAX, "HEAD");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(origin_.Count(empty), 1);
}

TEST_F(FanoutdTest, StopsCleanlyOnSigterm) {
  StartFanoutd();
  EXPECT_EQ(Get("/s?size=10").status, 200);
  EXPECT_EQ(fanoutd_.Stop(), 0);
  EXPECT_NE(fanoutd_.log().find("fanoutd stopped"), std::string::npos);
}

}  // namespace
}  // namespace fanout
