#include "core/wakeup_batcher.h"

#include <thread>

#include <gtest/gtest.h>

#include "core/stream_file.h"
#include "tests/test_util.h"

namespace fanout {
namespace {

using ::fanout::testing::TempDir;
using ::fanout::testing::WaitFor;

std::shared_ptr<StreamFile> NewStream(const TempDir& dir, WakeupBatcher* b) {
  StreamFileOptions options;
  options.dir = dir.path();
  options.batcher = b;
  options.wake_batch_bytes = 1 << 30;
  std::shared_ptr<StreamFile> s;
  EXPECT_TRUE(StreamFile::Create(options, &s).ok());
  return s;
}

TEST(WakeupBatcherTest, ScheduledStreamIsFlushedAfterItsDelay) {
  TempDir dir;
  WakeupBatcher batcher(std::chrono::milliseconds(200));
  auto s = NewStream(dir, &batcher);
  auto r = s->OpenReader();
  std::thread reader([&] {
    char c;
    EXPECT_EQ(r->Read(&c, 1).bytes, 1u);
  });
  ASSERT_TRUE(WaitFor([&] { return s->WaitingReadersForTesting() == 1; }));
  ASSERT_TRUE(s->Append("a", 1).ok());
  reader.join();  // would hang forever if the deferred wake-up were lost
}

TEST(WakeupBatcherTest, StreamDestroyedBeforeItsFlushIsSkipped) {
  TempDir dir;
  WakeupBatcher batcher(std::chrono::milliseconds(50));
  {
    auto s = NewStream(dir, &batcher);
    batcher.Schedule(s, WakeupBatcher::Clock::now());
  }
  // Destroying the batcher delivers what is pending; a dead stream must
  // simply be skipped (ASan would flag a use after free).
}

TEST(WakeupBatcherTest, DestructorDeliversPendingWakeupsAtOnce) {
  TempDir dir;
  auto batcher = std::make_unique<WakeupBatcher>(std::chrono::hours(1));
  auto s = NewStream(dir, batcher.get());
  auto r = s->OpenReader();
  std::thread reader([&] {
    char c;
    EXPECT_EQ(r->Read(&c, 1).bytes, 1u);
  });
  ASSERT_TRUE(WaitFor([&] { return s->WaitingReadersForTesting() == 1; }));
  ASSERT_TRUE(s->Append("a", 1).ok());  // deferred by an hour
  batcher.reset();                      // ... but delivered on shutdown
  reader.join();
}

}  // namespace
}  // namespace fanout
