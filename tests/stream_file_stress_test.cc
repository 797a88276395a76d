// Randomized stress: one writer with varying chunk sizes, many readers
// started at random points of the write, some reading sequentially with
// random buffer sizes, some with read_at at random offsets and lengths.
// Every byte every reader gets is checked. Meant to run under TSan too.

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/stream_file.h"
#include "core/wakeup_batcher.h"
#include "tests/test_util.h"

namespace fanout {
namespace {

using ::fanout::testing::Pattern;
using ::fanout::testing::PatternByte;
using ::fanout::testing::TempDir;
using Code = Status::Code;

struct StressParams {
  std::uint32_t seed;
  bool use_batcher;
  bool fail_at_end;
};

class StreamFileStressTest : public ::testing::TestWithParam<StressParams> {};

// Reads sequentially with random buffer sizes and random seeks; returns the
// number of mismatched bytes.
std::uint64_t SequentialReader(StreamReader& r, std::uint32_t seed,
                               std::uint64_t total, bool expect_failure) {
  std::mt19937 rng(seed);
  std::vector<char> buf(70000);
  std::uint64_t bad = 0;
  if (rng() % 4 == 0) r.Seek(rng() % total);  // start mid-stream, like a range
  for (;;) {
    const std::size_t len = 1 + rng() % buf.size();
    const std::uint64_t at = r.position();
    auto res = r.Read(buf.data(), len);
    if (!res.status.ok()) {
      EXPECT_EQ(res.status.code(),
                expect_failure ? Code::kStreamFailed : Code::kEndOfStream);
      if (!expect_failure) {
        EXPECT_EQ(at, total);
      }
      return bad;
    }
    EXPECT_LE(res.bytes, len);
    for (std::size_t i = 0; i < res.bytes; ++i) {
      bad += buf[i] != PatternByte(at + i);
    }
  }
}

std::uint64_t RandomAccessReader(StreamReader& r, std::uint32_t seed,
                                 std::uint64_t total, bool expect_failure) {
  std::mt19937 rng(seed);
  std::vector<char> buf(100000);
  std::uint64_t bad = 0;
  for (int i = 0; i < 40; ++i) {
    const std::uint64_t off = rng() % (total + 1000);
    const std::size_t len = 1 + rng() % buf.size();
    auto res = r.ReadAt(off, buf.data(), len);
    if (res.status.code() == Code::kStreamFailed) {
      EXPECT_TRUE(expect_failure);
      return bad;
    }
    const std::uint64_t want =
        off >= total ? 0 : std::min<std::uint64_t>(len, total - off);
    EXPECT_EQ(res.bytes, want) << "read_at(" << off << ", " << len << ")";
    EXPECT_EQ(res.status.code(),
              want == len ? Code::kOk : Code::kEndOfStream);
    for (std::size_t j = 0; j < res.bytes; ++j) {
      bad += buf[j] != PatternByte(off + j);
    }
  }
  return bad;
}

TEST_P(StreamFileStressTest, EveryReaderSeesEveryByteWhereverItStarts) {
  const StressParams p = GetParam();
  TempDir dir;
  WakeupBatcher batcher(std::chrono::microseconds(500));
  StreamFileOptions options;
  options.dir = dir.path();
  options.batcher = p.use_batcher ? &batcher : nullptr;
  options.wake_batch_bytes = 64 * 1024;
  std::shared_ptr<StreamFile> stream;
  ASSERT_TRUE(StreamFile::Create(options, &stream).ok());

  std::mt19937 rng(p.seed);
  constexpr std::uint64_t kTotal = 3 * 1024 * 1024;
  constexpr int kReaders = 24;
  // Chunk boundaries at which a new reader starts.
  std::vector<std::uint64_t> starts;
  for (int i = 0; i < kReaders; ++i) starts.push_back(rng() % kTotal);
  std::sort(starts.begin(), starts.end());

  std::atomic<std::uint64_t> bad{0};
  std::vector<std::thread> threads;
  auto launch = [&](int index) {
    auto reader = stream->OpenReader();
    const std::uint32_t seed = p.seed * 1000 + index;
    threads.emplace_back([&, index, seed, r = std::move(reader)] {
      const std::uint64_t b =
          index % 3 == 0
              ? RandomAccessReader(*r, seed, kTotal, p.fail_at_end)
              : SequentialReader(*r, seed, kTotal, p.fail_at_end);
      bad += b;
    });
  };

  std::uint64_t written = 0;
  std::size_t next_start = 0;
  while (written < kTotal) {
    while (next_start < starts.size() && starts[next_start] <= written) {
      launch(static_cast<int>(next_start++));
    }
    // Chunk sizes from 1 byte to 128 KiB, skewed small like network reads.
    std::size_t chunk = 1 + rng() % (rng() % 4 == 0 ? 131072 : 4096);
    chunk = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, kTotal - written));
    const std::string bytes = Pattern(written, chunk);
    ASSERT_TRUE(stream->Append(bytes.data(), bytes.size()).ok());
    written += chunk;
  }
  while (next_start < starts.size()) launch(static_cast<int>(next_start++));
  if (p.fail_at_end) {
    stream->Fail("upstream broke");
  } else {
    ASSERT_TRUE(stream->Finish().ok());
  }
  launch(kReaders);  // one more after the end
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Seeds, StreamFileStressTest,
    ::testing::Values(StressParams{1, true, false}, StressParams{2, false, false},
                      StressParams{3, true, true}, StressParams{4, true, false},
                      StressParams{5, false, true}, StressParams{6, true, false}),
    [](const ::testing::TestParamInfo<StressParams>& info) {
      return "Seed" + std::to_string(info.param.seed) +
             (info.param.use_batcher ? "Batched" : "Unbatched") +
             (info.param.fail_at_end ? "Failing" : "Finishing");
    });

}  // namespace
}  // namespace fanout
