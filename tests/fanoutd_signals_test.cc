// Signals, against the real binary: SIGTERM drains (no new connections,
// /readyz says so, a download under way finishes whole, then exit 0); a
// second SIGTERM stops at once; SIGHUP and SIGUSR1 do not stop it.

#include <signal.h>

#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/fanoutd_fixture.h"

namespace fanout {
namespace {

using ::fanout::testing::Fetched;
using ::fanout::testing::FanoutdTest;
using ::fanout::testing::RawConnection;
using ::fanout::testing::WaitFor;
using namespace std::chrono_literals;

class SignalsTest : public FanoutdTest {
 protected:
  // The grace in the config file and on the command line (the fixture
  // passes a short one of its own otherwise, and a flag wins).
  void StartWithGrace(const std::string& grace) {
    StartFanoutd({"--config",
                  WriteConfig("{\"routes\": [{\"prefix\": \"/\", \"upstream\": \"http://127.0.0.1:" +
                              std::to_string(origin_port_) + "\"}], \"shutdown_grace\": \"" +
                              grace + "\"}"),
                  "--shutdown-grace", grace});
  }
  bool Refused() { return !RawConnection(fanoutd_.port()).connected(); }
};

TEST_F(SignalsTest, SigtermDrainsADownloadUnderWayThenExitsZero) {
  StartWithGrace("20s");
  const std::string path = "/drain.bin";
  const std::string target = path + "?size=3000000&hold_at=1000000&cc=max-age%3D600";
  Fetched download;
  std::thread client([&] { download = Get(target); });
  ASSERT_TRUE(WaitFor([&] { return origin_.Holding(path) == 1; }));
  int code = -2;
  std::thread stopper([&] { code = fanoutd_.Stop(); });  // SIGTERM, then waits for the exit
  EXPECT_TRUE(WaitFor([&] { return Refused(); })) << "no new connection while draining";
  auto ready = Admin().Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_NE(ready->body.find("draining"), std::string::npos) << ready->body;
  origin_.Release(path);
  client.join();
  stopper.join();
  EXPECT_EQ(download.status, 200);
  EXPECT_TRUE(download.transfer_ok) << "the download under way finished";
  EXPECT_TRUE(download.body == OriginServer::OriginBody(path, 3000000));
  EXPECT_EQ(code, 0) << fanoutd_.log();
  EXPECT_NE(fanoutd_.log().find("draining"), std::string::npos);
}

TEST_F(SignalsTest, ASecondSigtermStopsAtOnceAndTheCutDownloadIsVisiblyIncomplete) {
  StartWithGrace("60s");
  const std::string path = "/cut.bin";
  Fetched download;
  std::thread client([&] { download = Get(path + "?size=3000000&hold_at=1000000"); });
  ASSERT_TRUE(WaitFor([&] { return origin_.Holding(path) == 1; }));
  const pid_t pid = fanoutd_.pid();
  int code = -2;
  const auto start = std::chrono::steady_clock::now();
  std::thread stopper([&] { code = fanoutd_.Stop(); });
  ASSERT_TRUE(WaitFor([&] { return Refused(); }));
  ::kill(pid, SIGTERM);
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 20s) << "not the 60 s grace";
  client.join();
  origin_.Release(path);
  EXPECT_EQ(code, 0);
  EXPECT_FALSE(download.transfer_ok) << "cut, and visibly so";
  EXPECT_LT(download.body.size(), 3000000u);
}

TEST_F(SignalsTest, SighupAndSigusr1DoNotStopIt) {
  StartFanoutd();
  ASSERT_EQ(::kill(fanoutd_.pid(), SIGHUP), 0);
  ASSERT_EQ(::kill(fanoutd_.pid(), SIGUSR1), 0);
  ASSERT_TRUE(WaitFor([&] { return fanoutd_.log().find("SIGUSR1") != std::string::npos; }));
  EXPECT_EQ(Get("/still.bin?size=100").status, 200);
  EXPECT_EQ(fanoutd_.Stop(), 0);
}

}  // namespace
}  // namespace fanout
