#include "core/byte_pipe.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "tests/test_util.h"

namespace fanout {
namespace {

using testing::Pattern;
using Clock = std::chrono::steady_clock;

// Reads everything until the pipe ends; returns the bytes and the final status.
std::pair<std::string, Status> Drain(BytePipe& pipe, std::size_t chunk) {
  std::string got;
  std::vector<char> buf(chunk);
  for (;;) {
    auto r = pipe.Read(buf.data(), buf.size(), Clock::now() + std::chrono::seconds(30));
    if (!r.status.ok()) return {got, r.status};
    got.append(buf.data(), r.bytes);
  }
}

TEST(BytePipeTest, CarriesEveryByteInOrderThroughASmallRing) {
  // 4 MiB through a 1000-byte ring with odd chunk sizes on both sides, so
  // the ring wraps at every possible offset.
  const std::string body = Pattern(0, 4 << 20);
  BytePipe pipe(1000);
  std::thread producer([&] {
    std::mt19937 rng(7);
    std::size_t off = 0;
    while (off < body.size()) {
      const std::size_t n = std::min<std::size_t>(body.size() - off, 1 + rng() % 3000);
      ASSERT_TRUE(pipe.Write(body.data() + off, n).ok());
      off += n;
    }
    pipe.Finish();
  });
  auto [got, end] = Drain(pipe, 777);
  producer.join();
  EXPECT_EQ(end.code(), Status::Code::kEndOfStream);
  ASSERT_EQ(got.size(), body.size());
  EXPECT_TRUE(got == body);
  EXPECT_EQ(pipe.bytes_written(), body.size());
}

TEST(BytePipeTest, FailureReachesTheReaderInsteadOfAnEnd) {
  BytePipe pipe(64);
  ASSERT_TRUE(pipe.Write("abc", 3).ok());
  pipe.Fail("client went away");
  char buf[8];
  auto r = pipe.Read(buf, sizeof buf, Clock::now() + std::chrono::seconds(5));
  EXPECT_EQ(r.status.code(), Status::Code::kStreamFailed);
  EXPECT_EQ(r.status.message(), "client went away");
  // Finish after Fail changes nothing.
  pipe.Finish();
  r = pipe.Read(buf, sizeof buf, Clock::now() + std::chrono::seconds(5));
  EXPECT_EQ(r.status.code(), Status::Code::kStreamFailed);
}

TEST(BytePipeTest, FailureWakesABlockedReader) {
  BytePipe pipe(64);
  BytePipe::ReadResult r;
  std::thread reader([&] {
    char buf[8];
    r = pipe.Read(buf, sizeof buf, Clock::now() + std::chrono::seconds(30));
  });
  ASSERT_TRUE(testing::WaitFor([&] { return pipe.ReaderWaitingForTesting(); }));
  pipe.Fail("upload cut");
  reader.join();
  EXPECT_EQ(r.status.code(), Status::Code::kStreamFailed);
  EXPECT_EQ(r.status.message(), "upload cut");
}

TEST(BytePipeTest, ClosedReaderReleasesABlockedWriter) {
  BytePipe pipe(16);
  std::atomic<bool> returned{false};
  Status st;
  std::thread producer([&] {
    const std::string big = Pattern(0, 1 << 20);
    st = pipe.Write(big.data(), big.size());  // blocks: the ring holds 16 bytes
    returned = true;
  });
  ASSERT_TRUE(testing::WaitFor([&] { return pipe.bytes_written() == 16; }));
  EXPECT_FALSE(returned.load());
  pipe.CloseReader();
  producer.join();
  EXPECT_EQ(st.code(), Status::Code::kCancelled);
  EXPECT_EQ(pipe.Write("x", 1).code(), Status::Code::kCancelled);
}

TEST(BytePipeTest, ReadHonoursItsDeadline) {
  BytePipe pipe(16);
  char buf[4];
  auto r = pipe.Read(buf, sizeof buf, Clock::now() + std::chrono::milliseconds(20));
  EXPECT_EQ(r.status.code(), Status::Code::kDeadlineExceeded);
  EXPECT_EQ(pipe.Read(buf, 0, Clock::now()).status.code(), Status::Code::kOk);
}

TEST(BytePipeTest, EmptyFinishedPipeEndsAtOnce) {
  BytePipe pipe(16);
  pipe.Finish();
  char buf[4];
  EXPECT_EQ(pipe.Read(buf, sizeof buf, Clock::time_point::max()).status.code(),
            Status::Code::kEndOfStream);
  EXPECT_EQ(pipe.Write("x", 1).code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace fanout
