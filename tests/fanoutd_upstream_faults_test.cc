// An upstream that misbehaves mid-response, each way a named test against
// the real fanoutd (the origin: tests/stress/stress_origin.h, on raw
// sockets, told which fault to commit). For each: what the client that
// started the fetch and every client that joined it receive (a body whole
// and right, or visibly cut — never short or wrong while looking
// complete), that nothing damaged is stored, one log line naming the URL
// and the cause, and that the next request is served once the origin
// behaves.

#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bench/origin/origin_server.h"
#include "tests/fanoutd_fixture.h"
#include "tests/stress/stress_origin.h"

namespace fanout {
namespace {

using ::fanout::stress::Fault;
using ::fanout::stress::OriginObject;
using ::fanout::stress::StressOrigin;
using ::fanout::testing::FanoutdTest;
using ::fanout::testing::Fetched;
using namespace std::chrono_literals;

class UpstreamFaultTest : public FanoutdTest {
 protected:
  void SetUp() override {
    StressOrigin::Options options;
    options.stall_limit = 30s;  // fanoutd gives up first (read_timeout)
    faulty_ = std::make_unique<StressOrigin>(options);
    faulty_port_ = faulty_->Start();
    ASSERT_GT(faulty_port_, 0);
    // No resume: each test shows what a fault does to a fetch that cannot
    // be resumed (resuming is tested in fanoutd_resume_test.cc, and with
    // random faults by the stress test).
    const std::string config = WriteConfig(R"({
      "upstream": {"connect_timeout": "2s", "read_timeout": "1s", "resume_attempts": 0},
      "max_cache_size": "64MiB",
      "routes": [{"prefix": "/", "upstream": "http://127.0.0.1:)" +
                                           std::to_string(faulty_port_) + R"("}]})");
    StartFanoutd({"--config", config});
  }
  void TearDown() override {
    fanoutd_.Stop();
    faulty_->Stop();
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(faulty_port_) + path;
  }

  // Five clients at once for path, whose origin commits `fault`; checks
  // every byte each received and returns what they got.
  std::vector<Fetched> CrowdMeetsFault(const std::string& path, OriginObject object, Fault fault) {
    object.forced_fault = fault;
    faulty_->Define(path, object);
    std::vector<Fetched> results = ManyClients(path, 5, 2ms);
    for (const Fetched& f : results) {
      if (f.status != 200) continue;
      EXPECT_TRUE(OriginServer::MatchesOrigin(path, 0, f.body.data(), f.body.size()))
          << f.x_cache << " client got wrong bytes";
      if (f.transfer_ok) {
        EXPECT_EQ(f.body.size(), object.size) << f.x_cache << " client: short, looking complete";
      }
    }
    return results;
  }

  // The origin behaves again: the next request is a MISS (nothing was
  // stored) and gets the whole body.
  void ExpectNextRequestServedWhole(const std::string& path, OriginObject object) {
    object.forced_fault.reset();
    faulty_->Define(path, object);
    const Fetched next = Get(path);
    EXPECT_EQ(next.status, 200);
    EXPECT_EQ(next.x_cache, "MISS") << "nothing of the faulty response was stored";
    EXPECT_TRUE(next.transfer_ok);
    EXPECT_EQ(next.body.size(), object.size);
    EXPECT_TRUE(OriginServer::MatchesOrigin(path, 0, next.body.data(), next.body.size()));
  }

  // Log lines "fetch failed <url> ..." holding `cause`; every fetch of path
  // must have one.
  void ExpectEachFetchLoggedWith(const std::string& path, const std::string& cause) {
    const std::string log = fanoutd_.log();
    const std::regex failed("fetch failed " + Url(path) + "[^\\n]*");
    int lines = 0;
    for (std::sregex_iterator it(log.begin(), log.end(), failed), end; it != end; ++it) {
      ++lines;
      EXPECT_NE(it->str().find(cause), std::string::npos) << it->str();
    }
    EXPECT_GE(lines, 1) << log;
    EXPECT_EQ(lines, faulty_->CountsFor(path).faults) << "one line per faulty fetch";
  }

  static int CutOff(const std::vector<Fetched>& results) {
    int cut = 0;
    for (const Fetched& f : results) cut += f.status == 200 && !f.transfer_ok;
    return cut;
  }
  // What each client got, for a failure message.
  std::string Described(const std::vector<Fetched>& results) const {
    std::string out = "clients:";
    for (const Fetched& f : results) {
      out += " [" + std::to_string(f.status) + " " + f.x_cache + " " +
             std::to_string(f.body.size()) + " bytes" + (f.transfer_ok ? " whole" : " cut") + "]";
    }
    return out + "\nfanoutd log:\n" + fanoutd_.log();
  }

  std::unique_ptr<StressOrigin> faulty_;
  int faulty_port_ = 0;
};

OriginObject Object(std::uint64_t size, bool chunked) {
  OriginObject object;
  object.size = size;
  object.chunked = chunked;
  return object;
}

const OriginObject kKnownLength = Object(8000000, false);
const OriginObject kChunked = Object(8000000, true);

TEST_F(UpstreamFaultTest, AResetMidBodyCutsEveryClientVisiblyAndStoresNothing) {
  const auto results = CrowdMeetsFault("/reset.bin", kKnownLength, Fault::kResetMidBody);
  EXPECT_EQ(CutOff(results), 5) << "MISS and JOINs alike";
  ExpectEachFetchLoggedWith("/reset.bin", "Connection reset by peer");
  ExpectNextRequestServedWhole("/reset.bin", kKnownLength);
}

TEST_F(UpstreamFaultTest, AStallMidBodyPastTheReadTimeoutCutsEveryClientVisibly) {
  const auto results = CrowdMeetsFault("/stall.bin", kKnownLength, Fault::kStallMidBody);
  EXPECT_EQ(CutOff(results), 5) << Described(results);
  ExpectEachFetchLoggedWith("/stall.bin", "read timed out");
  ExpectNextRequestServedWhole("/stall.bin", kKnownLength);
}

TEST_F(UpstreamFaultTest, FewerBytesThanContentLengthCutEveryClientVisibly) {
  const auto results = CrowdMeetsFault("/short.bin", kKnownLength, Fault::kLengthTooLong);
  EXPECT_EQ(CutOff(results), 5) << Described(results);
  ExpectEachFetchLoggedWith("/short.bin", "connection closed after 8000000 of 8001000 bytes");
  ExpectNextRequestServedWhole("/short.bin", kKnownLength);
}

TEST_F(UpstreamFaultTest, AChunkedBodyCutBeforeItsLastChunkCutsEveryClientVisibly) {
  const auto results = CrowdMeetsFault("/chunkcut.bin", kChunked, Fault::kChunkedCut);
  EXPECT_EQ(CutOff(results), 5) << Described(results);
  ExpectEachFetchLoggedWith("/chunkcut.bin", "connection closed inside the chunked body");
  ExpectNextRequestServedWhole("/chunkcut.bin", kChunked);
}

TEST_F(UpstreamFaultTest, BytesPastContentLengthAreNeverServed) {
  // The body ends where its length says; what follows is no part of it.
  const auto results = CrowdMeetsFault("/extra.bin", kKnownLength, Fault::kExtraBytes);
  for (const Fetched& f : results) {
    EXPECT_EQ(f.status, 200);
    EXPECT_TRUE(f.transfer_ok);
    EXPECT_EQ(f.body.size(), kKnownLength.size) << "not a byte more";
  }
  WaitUntilHit("/extra.bin");
  const Fetched hit = Get("/extra.bin");
  EXPECT_EQ(hit.body.size(), kKnownLength.size);
  EXPECT_TRUE(OriginServer::MatchesOrigin("/extra.bin", 0, hit.body.data(), hit.body.size()));
}

TEST_F(UpstreamFaultTest, EndlessHeadersAreABadGatewayForEveryClient) {
  const auto results = CrowdMeetsFault("/endless-head.bin", kKnownLength, Fault::kEndlessHead);
  for (const Fetched& f : results) {
    EXPECT_EQ(f.status, 502) << f.body;
    EXPECT_NE(f.body.find("larger than"), std::string::npos) << f.body;
  }
  const std::string log = fanoutd_.log();
  EXPECT_NE(log.find("fetch failed " + Url("/endless-head.bin") + " before response headers"),
            std::string::npos)
      << log;
  ExpectNextRequestServedWhole("/endless-head.bin", kKnownLength);
}

TEST_F(UpstreamFaultTest, AnEndlessBodyOfUnknownLengthIsNotKeptAndStopsWithItsLastClient) {
  OriginObject endless = Object(1 << 20, true);
  endless.forced_fault = Fault::kEndlessBody;
  faulty_->Define("/endless.bin", endless);
  // A client takes 80 MB (more than max_cache_size) and leaves.
  const Fetched f = Get("/endless.bin", {}, 80u << 20);
  EXPECT_EQ(f.status, 200);
  EXPECT_GE(f.body.size(), 80u << 20);
  EXPECT_TRUE(OriginServer::MatchesOrigin("/endless.bin", 0, f.body.data(), f.body.size()));
  ASSERT_TRUE(::fanout::testing::WaitFor([&] {
    return fanoutd_.log().find("fetch stopped " + Url("/endless.bin")) != std::string::npos;
  }, 30s)) << fanoutd_.log();
  EXPECT_NE(fanoutd_.log().find("not storing " + Url("/endless.bin") +
                                ": more than max_object_size"),
            std::string::npos);
  ExpectNextRequestServedWhole("/endless.bin", Object(1 << 20, true));
}

}  // namespace
}  // namespace fanout
