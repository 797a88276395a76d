// Responses fanoutd does not keep (no-store, private, cookies' own
// fetches): their fetch follows their clients instead of filling the disk
// or the network for nobody.

#include <sys/stat.h>

#include <filesystem>
#include <regex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "bench/origin/origin_server.h"
#include "tests/fanoutd_fixture.h"

namespace fanout {
namespace {

using ::fanout::testing::FanoutdTest;
using ::fanout::testing::RawConnection;
using ::fanout::testing::WaitFor;
using namespace std::chrono_literals;

class UncachedTest : public FanoutdTest {
 protected:
  // The one stream file in cache/tmp (a fetch in flight), or "".
  std::string StreamFileInFlight() {
    for (const auto& f : std::filesystem::directory_iterator(dir_.path() + "/cache/tmp")) {
      return f.path();
    }
    return "";
  }

  // Bytes written by the fetch that stopped, from its log line; -1 if none.
  long long StoppedAfter(const std::string& path) {
    const std::regex stopped("fetch stopped \\S*" + path + "\\S* after ([0-9]+) bytes: ([^\\n]*)");
    std::smatch m;
    const std::string log = fanoutd_.log();
    if (!std::regex_search(log, m, stopped)) return -1;
    stopped_why_ = m[2];
    return std::stoll(m[1]);
  }
  std::string stopped_why_;
};

TEST_F(UncachedTest, AFetchNobodyKeepsStopsWhenItsOnlyClientLeaves) {
  StartFanoutd();
  constexpr long long kSize = 2000000000;  // the origin would send 2 GB
  for (const std::string query : {"cc=no-store", "set_cookie=1"}) {
    const std::string path = "/gone-" + query.substr(0, 2) + ".bin";
    RawConnection client(fanoutd_.port());
    ASSERT_TRUE(client.Send("GET " + path + "?size=" + std::to_string(kSize) + "&" + query +
                            " HTTP/1.1\r\nHost: h\r\n\r\n"));
    const std::string got =
        client.ReadUntil([](const std::string& r) { return r.size() > 1000000; });
    ASSERT_GT(got.size(), 1000000u);
    client.Close();
    ASSERT_TRUE(WaitFor([&] { return StoppedAfter(path) >= 0; }, 60s)) << fanoutd_.log();
    EXPECT_LT(StoppedAfter(path), kSize) << "the fetch did not run to its end for nobody";
    EXPECT_NE(stopped_why_.find("no client"), std::string::npos) << stopped_why_;
  }
  // Kept responses go on without their client: the cache is filled.
  RawConnection client(fanoutd_.port());
  ASSERT_TRUE(client.Send("GET /kept.bin?size=20000000 HTTP/1.1\r\nHost: h\r\n\r\n"));
  client.ReadUntil([](const std::string& r) { return r.size() > 100000; });
  client.Close();
  WaitUntilHit("/kept.bin?size=20000000");
}

TEST_F(UncachedTest, AnUncachedResponseTakesNoMoreDiskThanItsBufferAheadOfItsClient) {
  const std::string config = WriteConfig(R"({"max_uncached_buffer": "4MiB", "routes": [
    {"prefix": "/", "upstream": "http://127.0.0.1:)" + std::to_string(origin_port_) + R"("}]})");
  StartFanoutd({"--config", config});
  constexpr std::uint64_t kSize = 64 << 20;
  const std::string path = "/paced.bin";
  RawConnection client(fanoutd_.port(), 64 * 1024);
  ASSERT_TRUE(client.Send("GET " + path + "?size=" + std::to_string(kSize) +
                          "&cc=no-store HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::string got = client.ReadUntil([](const std::string& r) { return r.size() > (2 << 20); });
  // The client stops reading (its behaviour under test); an unpaced fetch
  // of an unthrottled origin would have the whole 64 MiB by now.
  std::this_thread::sleep_for(1500ms);
  const std::string file = StreamFileInFlight();
  ASSERT_FALSE(file.empty());
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  // Ahead of the client: the buffer, one extent in a sender's hands, and
  // what the sockets between them hold (a few MiB at most).
  EXPECT_LT(static_cast<std::uint64_t>(st.st_size), got.size() + (16u << 20))
      << "the fetch ran ahead of its client";
  // Reading on: the rest arrives whole, and bytes the client passed were
  // given back to the file system.
  std::uint64_t most_allocated = 0;
  std::string rest = client.ReadUntil([&](const std::string& r) {
    if (got.size() + r.size() > (40u << 20) && most_allocated == 0) {
      struct stat now {};
      if (::stat(file.c_str(), &now) == 0) most_allocated = static_cast<std::uint64_t>(now.st_blocks) * 512;
    }
    return got.size() + r.size() >= kSize + 200;  // the head's bytes too
  });
  got += rest;
  const std::size_t body_at = got.find("\r\n\r\n") + 4;
  ASSERT_GE(got.size() - body_at, kSize);
  EXPECT_TRUE(OriginServer::MatchesOrigin(path, 0, got.data() + body_at, kSize));
  ASSERT_GT(most_allocated, 0u);
  EXPECT_LT(most_allocated, 24u << 20) << "bytes every client passed are freed";
}

}  // namespace
}  // namespace fanout
