// Faults around the real fanoutd, each a named test: the upstream cannot be
// found, refuses TLS, or misbehaves mid-body; the cache disk fills up,
// turns read-only or loses its directories. For each: what the client that
// started the fetch (MISS) and every client that joined it (JOIN) receive,
// that nothing damaged is stored, one log line naming the URL and the
// cause, and that the next request is served.

#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bench/origin/origin_server.h"
#include "tests/fanoutd_fixture.h"

namespace fanout {
namespace {

using ::fanout::testing::FanoutdTest;
using ::fanout::testing::Fetched;
using ::fanout::testing::WaitFor;
using namespace std::chrono_literals;

class FaultTest : public FanoutdTest {
 protected:
  void TearDown() override {
    fanoutd_.Stop();
    if (mounted_) ::umount2((dir_.path() + "/cache").c_str(), MNT_DETACH);
  }

  std::string RouteConfig(const std::string& upstream, const std::string& extra = "") {
    return WriteConfig("{" + extra + R"("upstream": {"connect_timeout": "2s", "read_timeout": "2s"},
      "routes": [{"prefix": "/bad", "upstream": ")" + upstream + R"("},
                 {"prefix": "/", "upstream": "http://127.0.0.1:)" +
                       std::to_string(origin_port_) + R"("}]})");
  }

  // Runs `n` clients for target at once; the first to arrive starts the
  // fetch, the others join it (or, for a fetch that fails at once, meet
  // the same failure).
  std::vector<Fetched> Crowd(const std::string& target, int n) {
    return ManyClients(target, n, 0ms);
  }

  // Lines of the log that name `text`.
  int LogLinesWith(const std::string& text) {
    const std::string log = fanoutd_.log();
    int n = 0;
    for (std::size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++n;
    return n;
  }

  // A small file system of its own under the cache directory; false where
  // mounting is impossible (not root).
  bool MountCacheFileSystem(const std::string& size) {
    const std::string dir = dir_.path() + "/cache";
    std::filesystem::create_directories(dir);
    mounted_ = ::mount("fanout-test", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
    return mounted_;
  }

  bool RemountReadOnly() {
    const std::string dir = dir_.path() + "/cache";
    return ::mount("fanout-test", dir.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, nullptr) == 0;
  }

  bool mounted_ = false;
};

TEST_F(FaultTest, AnUpstreamWhoseNameDoesNotResolveIs502ForEveryClient) {
  StartFanoutd({"--config", RouteConfig("http://no-such-host.invalid")});
  for (const Fetched& f : Crowd("/bad/x.bin", 5)) {
    EXPECT_EQ(f.status, 502);
    EXPECT_NE(f.body.find("no-such-host.invalid"), std::string::npos) << f.body;
  }
  // One line per fetch (clients arriving after a failure start another).
  const int fetches = LogLinesWith("fetch start GET http://no-such-host.invalid:80/x.bin");
  EXPECT_GE(fetches, 1);
  EXPECT_EQ(LogLinesWith("fetch failed http://no-such-host.invalid:80/x.bin"), fetches);
  EXPECT_EQ(LogLinesWith("cannot resolve no-such-host.invalid"), fetches) << fanoutd_.log();
  EXPECT_EQ(Get("/bad/x.bin").status, 502) << "a failure is never stored: tried again";
  EXPECT_EQ(Get("/ok.bin?size=1000").status, 200) << "other routes are served";
}

TEST_F(FaultTest, AnUpstreamThatFailsTheTlsHandshakeIs502ForEveryClient) {
  // A plain-HTTP server where TLS is expected: the handshake fails.
  StartFanoutd({"--config", RouteConfig("https://127.0.0.1:" + std::to_string(origin_port_))});
  for (const Fetched& f : Crowd("/bad/t.bin", 5)) {
    EXPECT_EQ(f.status, 502);
    EXPECT_NE(f.body.find("upstream failed"), std::string::npos) << f.body;
  }
  EXPECT_GE(LogLinesWith("fetch failed https://127.0.0.1:" + std::to_string(origin_port_) +
                         "/t.bin"),
            1)
      << fanoutd_.log();
  EXPECT_EQ(Get("/ok.bin?size=1000").status, 200);
}

TEST_F(FaultTest, ACacheDiskThatFillsUpMidFetchCutsNoClientAndStoresNothing) {
  if (!MountCacheFileSystem("8m")) GTEST_SKIP() << "cannot mount a tmpfs for the cache (not root)";
  StartFanoutd();
  Store("/small.bin?size=100000");  // stored before the disk fills
  // 20 MB cannot fit in 8 MiB: a MISS and three JOINs, held half-way so
  // they all join the one fetch.
  const std::string target = "/big.bin?size=20000000&hold_at=4000000";
  std::vector<Fetched> results;
  const int first_bytes_before = first_bytes_seen_;
  std::thread clients([&] { results = ManyClients(target, 4, 10ms); });
  ASSERT_TRUE(WaitFor([&] { return first_bytes_seen_ - first_bytes_before == 4; }, 30s));
  origin_.Release("/big.bin");
  clients.join();
  const std::string expected = OriginServer::OriginBody("/big.bin", 20000000);
  int misses = 0;
  for (const Fetched& f : results) {
    EXPECT_EQ(f.status, 200);
    EXPECT_TRUE(f.transfer_ok) << f.x_cache << " client was cut off";
    EXPECT_TRUE(f.body == expected) << f.x_cache << ": " << f.body.size() << " bytes";
    misses += f.x_cache == "MISS";
  }
  EXPECT_EQ(misses, 1);
  // Logged by the fetch right after the write the disk refused, which the
  // clients may outrun: waited for.
  const std::string full = "No space left on device): http://127.0.0.1:" +
                           std::to_string(origin_port_) + "/big.bin";
  EXPECT_TRUE(WaitFor([&] { return LogLinesWith(full) >= 1; })) << fanoutd_.log();
  EXPECT_EQ(LogLinesWith(full), 1);
  const Fetched again = Get("/big.bin?size=20000000");
  EXPECT_EQ(again.x_cache, "MISS") << "nothing of it was stored";
  EXPECT_TRUE(again.body == expected);
  const Fetched small = Get("/small.bin?size=100000");
  EXPECT_EQ(small.x_cache, "HIT") << "stored entries are untouched";
  EXPECT_TRUE(small.body == OriginServer::OriginBody("/small.bin", 100000));
}

TEST_F(FaultTest, ACacheDiskThatTurnsReadOnlyStillServesEveryClient) {
  if (!MountCacheFileSystem("64m")) GTEST_SKIP() << "cannot mount a tmpfs for the cache (not root)";
  StartFanoutd();
  Store("/before.bin?size=300000");
  // A file system with files open for writing cannot be remounted
  // read-only; a disk that fails does it to a running daemon all the same.
  // Here the daemon restarts on it.
  fanoutd_.Stop();
  ASSERT_TRUE(RemountReadOnly());
  StartFanoutd();
  for (const Fetched& f : Crowd("/after.bin?size=3000000", 5)) {
    EXPECT_EQ(f.status, 200);
    EXPECT_TRUE(f.transfer_ok);
    EXPECT_TRUE(f.body == OriginServer::OriginBody("/after.bin", 3000000));
  }
  EXPECT_TRUE(WaitFor([&] {
    return LogLinesWith("Read-only file system): http://127.0.0.1:" +
                        std::to_string(origin_port_) + "/after.bin") >= 1;
  })) << fanoutd_.log();
  const Fetched before = Get("/before.bin?size=300000");
  EXPECT_EQ(before.x_cache, "HIT") << "stored entries are still served";
  EXPECT_TRUE(before.body == OriginServer::OriginBody("/before.bin", 300000));
}

// The daemon may still be renaming or deleting files in the directory (the
// client has its body before the entry is committed): a file that vanishes
// under remove_all is no error, and the removal is tried again.
void RemoveWhileTheDaemonWrites(const std::string& path) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::error_code error;
    std::filesystem::remove_all(path, error);
    if (!error && !std::filesystem::exists(path)) return;
  }
  FAIL() << "could not remove " << path;
}

TEST_F(FaultTest, CacheDirectoriesDeletedUnderTheDaemonAreMadeAgain) {
  StartFanoutd();
  Store("/gone.bin?size=200000");
  RemoveWhileTheDaemonWrites(dir_.path() + "/cache/tmp");
  RemoveWhileTheDaemonWrites(dir_.path() + "/cache/entries");
  // The stored entry's files are gone: fetched again, never served short.
  const Fetched gone = Get("/gone.bin?size=200000");
  EXPECT_EQ(gone.status, 200);
  EXPECT_TRUE(gone.body == OriginServer::OriginBody("/gone.bin", 200000)) << gone.x_cache;
  // New entries are stored again.
  Store("/new.bin?size=200000");
  EXPECT_EQ(Get("/new.bin?size=200000").x_cache, "HIT");
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/cache/tmp"));
}

}  // namespace
}  // namespace fanout

namespace fanout {
namespace {

using ::fanout::testing::RawConnection;

// Found by the stress test: framing that does not match the body.
TEST_F(FaultTest, AHeadOfAnUnknownLengthNeverClaimsAContentLength) {
  StartFanoutd();
  // Held half-way: the length is not known while the HEAD is answered.
  const std::string target = "/u.bin?size=100000&chunked=1&hold_at=50000";
  RawConnection c(fanoutd_.port());
  ASSERT_TRUE(c.Send("HEAD " + target + " HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
  const std::string miss = c.ReadUntil([](const std::string&) { return false; });
  EXPECT_NE(miss.find("X-Cache: MISS"), std::string::npos) << miss;
  EXPECT_EQ(miss.find("Content-Length:"), std::string::npos) << "the length is not known yet";
  EXPECT_NE(miss.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << miss;
  origin_.Release("/u.bin");
  WaitUntilHit(target);
  RawConnection again(fanoutd_.port());
  ASSERT_TRUE(again.Send("HEAD " + target + " HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
  const std::string hit = again.ReadUntil([](const std::string&) { return false; });
  EXPECT_NE(hit.find("Content-Length: 100000\r\n"), std::string::npos) << "stored: known" << hit;
}

TEST_F(FaultTest, ARelayed304IsFollowedByTheNextResponseAndNothingElse) {
  StartFanoutd();
  const std::string target = "/ns.bin?size=100&cc=no-store";
  const Fetched first = Get(target);
  std::string etag;
  for (const auto& [name, value] : first.headers) {
    if (name == "ETag") etag = value;
  }
  ASSERT_FALSE(etag.empty());
  RawConnection c(fanoutd_.port());
  ASSERT_TRUE(c.Send("GET " + target + " HTTP/1.1\r\nHost: h\r\nIf-None-Match: " + etag +
                     "\r\n\r\nGET /next.bin?size=10 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
  const std::string got = c.ReadUntil([](const std::string&) { return false; });
  ASSERT_EQ(got.rfind("HTTP/1.1 304 Not Modified\r\n", 0), 0u) << got;
  const std::size_t first_end = got.find("\r\n\r\n") + 4;
  EXPECT_EQ(got.compare(first_end, 17, "HTTP/1.1 200 OK\r\n"), 0)
      << "the next response follows the 304's head at once: " << got.substr(first_end, 40);
}

}  // namespace
}  // namespace fanout
