// Unit tests of the connection pool (server/connection_pool.h): workers are
// started as work needs them, and those a burst started leave once idle.

#include "server/connection_pool.h"

#include <atomic>
#include <condition_variable>
#include <mutex>

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace fanout {
namespace {

using ::fanout::testing::WaitFor;
using namespace std::chrono_literals;

TEST(ConnectionPoolTest, WorkersABurstStartedLeaveWhenIdleDownToTheOnesKept) {
  ConnectionPool pool(/*workers=*/32, /*max_overflow=*/0, /*handed_off=*/nullptr,
                      /*idle_exit=*/200ms, /*keep_workers=*/2);
  std::mutex mu;
  std::condition_variable released;
  bool release = false;  // guarded by mu
  std::atomic<int> running{0};
  for (int i = 0; i < 20; ++i) {
    pool.enqueue([&] {
      running++;
      std::unique_lock<std::mutex> lock(mu);
      released.wait(lock, [&] { return release; });
    });
  }
  ASSERT_TRUE(WaitFor([&] { return running.load() == 20; }));
  EXPECT_EQ(pool.started_workers(), 20u) << "one worker per task at once";
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  released.notify_all();
  // Idle for 200 ms, 18 of them leave; 2 stay for the next connections.
  ASSERT_TRUE(WaitFor([&] { return pool.started_workers() == 2u; }));
  EXPECT_EQ(pool.busy_workers(), 0u);
  std::atomic<int> ran{0};
  for (int i = 0; i < 5; ++i) pool.enqueue([&] { ran++; });
  EXPECT_TRUE(WaitFor([&] { return ran.load() == 5; })) << "and the pool still works";
  pool.shutdown();
}

}  // namespace
}  // namespace fanout
