// One fanoutd per port and per cache directory, against the real binary: a
// second one started on a taken port, admin port or cache directory exits
// at once with an error naming what is taken and why, and the first goes
// on serving, its files untouched.

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "tests/fanoutd_fixture.h"

namespace fanout {
namespace {

using ::fanout::testing::FanoutdTest;
using ::fanout::testing::RunFanoutdToExit;

class InstancesTest : public FanoutdTest {
 protected:
  // A second fanoutd, run to its exit.
  ::fanout::testing::ExitResult Second(const std::string& listen, const std::string& admin,
                                       const std::string& cache_dir) {
    return RunFanoutdToExit({"--listen", listen, "--admin-listen", admin, "--cache-dir",
                             cache_dir, "--upstream",
                             "http://127.0.0.1:" + std::to_string(origin_port_)},
                            dir_.path());
  }
  std::string Own(const char* name) { return dir_.path() + "/" + name; }
};

TEST_F(InstancesTest, ASecondFanoutdOnATakenPortOrCacheDirectoryExitsNamingIt) {
  StartFanoutd();
  const std::string target = "/inst.bin?size=1000&cc=max-age%3D600";
  ASSERT_EQ(Get(target).x_cache, "MISS");
  const std::string port = std::to_string(fanoutd_.port());
  const std::string admin = std::to_string(fanoutd_.admin_port());

  auto on_port = Second("127.0.0.1:" + port, "", Own("cache-b"));
  EXPECT_EQ(on_port.exit_code, 1) << on_port.output;
  EXPECT_NE(on_port.output.find("cannot listen on 127.0.0.1:" + port + ": Address already in use"),
            std::string::npos)
      << on_port.output;

  auto on_admin = Second("127.0.0.1:0", "127.0.0.1:" + admin, Own("cache-c"));
  EXPECT_EQ(on_admin.exit_code, 1) << on_admin.output;
  EXPECT_NE(on_admin.output.find("cannot listen on 127.0.0.1:" + admin +
                                 " for the admin interface (admin_listen): Address already in use"),
            std::string::npos)
      << on_admin.output;

  auto on_cache = Second("127.0.0.1:0", "", dir_.path() + "/cache");
  EXPECT_EQ(on_cache.exit_code, 1) << on_cache.output;
  EXPECT_NE(on_cache.output.find("is in use by another fanoutd (pid " +
                                 std::to_string(fanoutd_.pid()) + ")"),
            std::string::npos)
      << on_cache.output;

  // The first one is untouched: still serving, its entry still there.
  EXPECT_EQ(Get(target).x_cache, "HIT");
  EXPECT_EQ(origin_.Count(target), 1);
}

TEST_F(InstancesTest, TheCacheDirectoryIsFreeAgainOnceItsFanoutdIsGoneEvenByKill9) {
  StartFanoutd();
  ASSERT_EQ(::kill(fanoutd_.pid(), SIGKILL), 0);
  int status = 0;
  ::waitpid(fanoutd_.pid(), &status, 0);
  StartFanoutd();
  EXPECT_EQ(Get("/after.bin?size=100").status, 200);
}

}  // namespace
}  // namespace fanout
