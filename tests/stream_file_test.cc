#include "core/stream_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/memory_budget.h"
#include "core/wakeup_batcher.h"
#include "tests/test_util.h"

namespace fanout {
namespace {

using ::fanout::testing::Pattern;
using ::fanout::testing::TempDir;
using ::fanout::testing::WaitFor;
using Code = Status::Code;
using namespace std::chrono_literals;

class StreamFileTest : public ::testing::Test {
 protected:
  std::shared_ptr<StreamFile> NewStream(WakeupBatcher* batcher = nullptr,
                                        std::size_t batch = 256 * 1024) {
    StreamFileOptions options;
    options.dir = dir_.path();
    options.batcher = batcher;
    options.wake_batch_bytes = batch;
    std::shared_ptr<StreamFile> stream;
    Status st = StreamFile::Create(options, &stream);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return stream;
  }

  static void AppendPattern(StreamFile& s, std::uint64_t offset, std::size_t n) {
    const std::string bytes = Pattern(offset, n);
    Status st = s.Append(bytes.data(), bytes.size());
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // Reads a reader to its end; returns the bytes and the final status.
  static std::pair<std::string, Status> ReadAll(StreamReader& r,
                                                std::size_t buf_size = 7) {
    std::string out;
    std::vector<char> buf(buf_size);
    for (;;) {
      auto res = r.Read(buf.data(), buf.size());
      if (!res.status.ok()) return {out, res.status};
      EXPECT_GT(res.bytes, 0u);
      out.append(buf.data(), res.bytes);
    }
  }

  static std::string FileContents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  TempDir dir_;
};

TEST_F(StreamFileTest, ReadersOpenedBeforeDuringAndAfterWritingSeeIdenticalBytes) {
  auto s = NewStream();
  auto before = s->OpenReader();
  AppendPattern(*s, 0, 1000);
  auto during = s->OpenReader();
  AppendPattern(*s, 1000, 5000);
  ASSERT_TRUE(s->Finish().ok());
  auto after = s->OpenReader();

  const std::string expected = Pattern(0, 6000);
  for (StreamReader* r : {before.get(), during.get(), after.get()}) {
    auto [bytes, st] = ReadAll(*r);
    EXPECT_EQ(st.code(), Code::kEndOfStream);
    EXPECT_EQ(bytes, expected);
  }
}

TEST_F(StreamFileTest, ReserveTakesTheSpaceUpFrontWithoutChangingWhatReadersSee) {
  auto stream = NewStream();
  AppendPattern(*stream, 0, 1000);
  constexpr std::uint64_t kLength = 8 << 20;
  ASSERT_TRUE(stream->SetExpectedLength(kLength).ok());
  stream->Reserve(kLength);
  struct stat st {};
  ASSERT_EQ(::stat(stream->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 1000) << "the size is still the frontier";
  // ext4, xfs, btrfs and tmpfs all reserve (the tests' directories are on
  // one of them).
  EXPECT_GE(static_cast<std::uint64_t>(st.st_blocks) * 512, kLength) << "no space reserved";
  auto reader = stream->OpenReader();
  AppendPattern(*stream, 1000, kLength - 1000);
  ASSERT_TRUE(stream->Finish().ok());
  const auto [bytes, status] = ReadAll(*reader, 1 << 16);
  EXPECT_EQ(status.code(), Code::kEndOfStream);
  EXPECT_TRUE(bytes == Pattern(0, kLength)) << "the reserved range reads as written";
  ASSERT_EQ(::stat(stream->path().c_str(), &st), 0);
  EXPECT_EQ(static_cast<std::uint64_t>(st.st_size), kLength);
}

// Feeds `total` bytes of Pattern through a pipe to AppendFromPipe, in
// pieces the pipe holds whole; the pipe must be empty after each.
void AppendThroughPipe(StreamFile& s, std::uint64_t total) {
  int pipe[2];
  ASSERT_EQ(::pipe2(pipe, O_NONBLOCK), 0);
  for (std::uint64_t at = 0; at < total;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(60000, total - at));
    const std::string bytes = Pattern(at, n);
    ASSERT_EQ(::write(pipe[1], bytes.data(), n), static_cast<ssize_t>(n));
    const Status st = s.AppendFromPipe(pipe[0], n);
    ASSERT_TRUE(st.ok()) << st.ToString();
    char left;
    EXPECT_EQ(::read(pipe[0], &left, 1), -1) << "bytes left in the pipe at " << at;
    at += n;
  }
  ::close(pipe[0]);
  ::close(pipe[1]);
}

TEST_F(StreamFileTest, AppendFromPipeWritesThePipesBytesAtTheFrontier) {
  auto stream = NewStream();
  auto reader = stream->OpenReader();
  AppendThroughPipe(*stream, 1 << 20);
  EXPECT_EQ(stream->frontier(), 1u << 20);
  AppendPattern(*stream, 1 << 20, 1000);  // Append and the pipe mix
  ASSERT_TRUE(stream->Finish().ok());
  const auto [bytes, status] = ReadAll(*reader, 1 << 16);
  EXPECT_EQ(status.code(), Code::kEndOfStream);
  EXPECT_TRUE(bytes == Pattern(0, (1 << 20) + 1000));
  EXPECT_TRUE(FileContents(stream->path()) == bytes);
}

TEST_F(StreamFileTest, ReadersHaveIndependentPositions) {
  auto s = NewStream();
  AppendPattern(*s, 0, 100);
  auto a = s->OpenReader();
  auto b = s->OpenReader();
  char buf[30];
  ASSERT_EQ(a->Read(buf, 30).bytes, 30u);
  EXPECT_EQ(a->position(), 30u);
  EXPECT_EQ(b->position(), 0u);
  auto res = b->Read(buf, 10);
  ASSERT_EQ(res.bytes, 10u);
  EXPECT_EQ(std::string(buf, 10), Pattern(0, 10));
}

TEST_F(StreamFileTest, ReadReturnsAvailableBytesWithoutWaitingForFullBuffer) {
  auto s = NewStream();
  AppendPattern(*s, 0, 10);
  auto r = s->OpenReader();
  char buf[100];
  auto res = r->Read(buf, sizeof(buf));
  ASSERT_TRUE(res.status.ok());
  EXPECT_EQ(res.bytes, 10u);
  EXPECT_EQ(std::string(buf, 10), Pattern(0, 10));
}

TEST_F(StreamFileTest, ReadBlocksAtFrontierUntilBytesArrive) {
  auto s = NewStream();
  auto r = s->OpenReader();
  std::string got;
  std::thread reader([&] {
    char buf[16];
    auto res = r->Read(buf, sizeof(buf));
    EXPECT_TRUE(res.status.ok()) << res.status.ToString();
    got.assign(buf, res.bytes);
  });
  ASSERT_TRUE(WaitFor([&] { return s->WaitingReadersForTesting() == 1; }));
  AppendPattern(*s, 0, 5);
  reader.join();
  EXPECT_EQ(got, Pattern(0, 5));
}

TEST_F(StreamFileTest, ReadWithDeadlineAtFrontierReturnsDeadlineExceeded) {
  auto s = NewStream();
  AppendPattern(*s, 0, 5);
  auto r = s->OpenReader();
  char buf[16];
  ASSERT_EQ(r->Read(buf, 16).bytes, 5u);
  auto res = r->Read(buf, 16, std::chrono::steady_clock::now() + 20ms);
  EXPECT_EQ(res.status.code(), Code::kDeadlineExceeded);
  EXPECT_EQ(res.bytes, 0u);
  // The reader is still usable afterwards.
  AppendPattern(*s, 5, 3);
  res = r->Read(buf, 16);
  EXPECT_EQ(res.bytes, 3u);
}

TEST_F(StreamFileTest, ZeroLengthReadReturnsAtOnceEvenAtFrontier) {
  auto s = NewStream();
  auto r = s->OpenReader();
  char buf[1];
  auto res = r->Read(buf, 0);  // at the frontier of an open stream
  EXPECT_TRUE(res.status.ok());
  EXPECT_EQ(res.bytes, 0u);
  res = r->ReadAt(1000, buf, 0);
  EXPECT_TRUE(res.status.ok());
  EXPECT_EQ(res.bytes, 0u);
}

TEST_F(StreamFileTest, SeekPositionsSequentialReadAnywhere) {
  auto s = NewStream();
  AppendPattern(*s, 0, 1000);
  auto r = s->OpenReader();
  r->Seek(900);
  char buf[200];
  auto res = r->Read(buf, sizeof(buf));
  ASSERT_EQ(res.bytes, 100u);
  EXPECT_EQ(std::string(buf, 100), Pattern(900, 100));
  // Seeking beyond the frontier waits there for the bytes.
  r->Seek(1500);
  std::thread writer([&] { AppendPattern(*s, 1000, 1000); });
  res = r->Read(buf, 10);
  writer.join();
  ASSERT_EQ(res.bytes, 10u);
  EXPECT_EQ(std::string(buf, 10), Pattern(1500, 10));
}

TEST_F(StreamFileTest, ReadAtInsideFrontierFillsBuffer) {
  auto s = NewStream();
  AppendPattern(*s, 0, 1000);
  auto r = s->OpenReader();
  char buf[100];
  auto res = r->ReadAt(450, buf, 100);
  ASSERT_TRUE(res.status.ok());
  ASSERT_EQ(res.bytes, 100u);
  EXPECT_EQ(std::string(buf, 100), Pattern(450, 100));
  EXPECT_EQ(r->position(), 0u) << "ReadAt must not move the position";
}

TEST_F(StreamFileTest, ReadAtSpanningFrontierWaitsForWholeRange) {
  auto s = NewStream();
  AppendPattern(*s, 0, 100);
  auto r = s->OpenReader();
  char buf[100];
  // Ends exactly at the frontier: served at once.
  auto res = r->ReadAt(50, buf, 50);
  ASSERT_EQ(res.bytes, 50u);
  // Crosses the frontier: not a short count, but a wait for the rest.
  res = r->ReadAt(50, buf, 100, std::chrono::steady_clock::now() + 20ms);
  EXPECT_EQ(res.status.code(), Code::kDeadlineExceeded);
  std::thread reader([&] {
    auto full = r->ReadAt(50, buf, 100);
    EXPECT_TRUE(full.status.ok()) << full.status.ToString();
    EXPECT_EQ(full.bytes, 100u);
  });
  ASSERT_TRUE(WaitFor([&] { return s->WaitingReadersForTesting() == 1; }));
  AppendPattern(*s, 100, 30);  // not enough yet
  AppendPattern(*s, 130, 30);
  reader.join();
  EXPECT_EQ(std::string(buf, 100), Pattern(50, 100));
}

TEST_F(StreamFileTest, ReadAtBeyondFrontierBlocksUntilWritten) {
  auto s = NewStream();
  auto r = s->OpenReader();
  char buf[10];
  std::thread reader([&] {
    auto res = r->ReadAt(5000, buf, 10);
    EXPECT_TRUE(res.status.ok());
    EXPECT_EQ(res.bytes, 10u);
  });
  ASSERT_TRUE(WaitFor([&] { return s->WaitingReadersForTesting() == 1; }));
  for (int i = 0; i < 6; ++i) AppendPattern(*s, i * 1000, 1000);
  reader.join();
  EXPECT_EQ(std::string(buf, 10), Pattern(5000, 10));
}

TEST_F(StreamFileTest, ReadAtPastEndOfFinishedStreamReturnsShortCountWithEnd) {
  auto s = NewStream();
  AppendPattern(*s, 0, 100);
  ASSERT_TRUE(s->Finish().ok());
  auto r = s->OpenReader();
  char buf[50];
  auto res = r->ReadAt(80, buf, 50);
  EXPECT_EQ(res.status.code(), Code::kEndOfStream);
  ASSERT_EQ(res.bytes, 20u);
  EXPECT_EQ(std::string(buf, 20), Pattern(80, 20));
  res = r->ReadAt(100, buf, 50);
  EXPECT_EQ(res.status.code(), Code::kEndOfStream);
  EXPECT_EQ(res.bytes, 0u);
  res = r->ReadAt(5000, buf, 50);
  EXPECT_EQ(res.status.code(), Code::kEndOfStream);
  EXPECT_EQ(res.bytes, 0u);
  res = r->ReadAt(50, buf, 50);  // ends exactly at the end: a full read
  EXPECT_TRUE(res.status.ok());
  EXPECT_EQ(res.bytes, 50u);
}

TEST_F(StreamFileTest, BlockedReadAtIsAnsweredWithShortCountWhenStreamFinishes) {
  auto s = NewStream();
  AppendPattern(*s, 0, 10);
  auto r = s->OpenReader();
  char buf[100];
  StreamReader::Result res;
  std::thread reader([&] { res = r->ReadAt(0, buf, 100); });
  ASSERT_TRUE(WaitFor([&] { return s->WaitingReadersForTesting() == 1; }));
  ASSERT_TRUE(s->Finish().ok());
  reader.join();
  EXPECT_EQ(res.status.code(), Code::kEndOfStream);
  EXPECT_EQ(res.bytes, 10u);
}

TEST_F(StreamFileTest, FinishedStreamReturnsEndOfStreamRepeatedly) {
  auto s = NewStream();
  AppendPattern(*s, 0, 10);
  auto r = s->OpenReader();
  std::thread reader([&] {
    auto [bytes, st] = ReadAll(*r);
    EXPECT_EQ(bytes, Pattern(0, 10));
    EXPECT_EQ(st.code(), Code::kEndOfStream);
  });
  ASSERT_TRUE(WaitFor([&] { return s->WaitingReadersForTesting() == 1; }));
  ASSERT_TRUE(s->Finish().ok());
  reader.join();
  char buf[4];
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r->Read(buf, 4).status.code(), Code::kEndOfStream);
  }
  EXPECT_EQ(s->state(), StreamFile::State::kFinished);
}

TEST_F(StreamFileTest, FailedStreamFailsBlockedAndLaterReadsWithItsReason) {
  auto s = NewStream();
  AppendPattern(*s, 0, 10);
  auto blocked = s->OpenReader();
  auto blocked_at = s->OpenReader();
  Status blocked_status, blocked_at_status;
  std::thread t1([&] {
    auto [bytes, st] = ReadAll(*blocked);
    EXPECT_EQ(bytes, Pattern(0, 10));
    blocked_status = st;
  });
  std::thread t2([&] {
    char buf[64];
    blocked_at_status = blocked_at->ReadAt(0, buf, 64).status;
  });
  ASSERT_TRUE(WaitFor([&] { return s->WaitingReadersForTesting() == 2; }));
  s->Fail("upstream reset the connection");
  t1.join();
  t2.join();
  EXPECT_EQ(blocked_status.code(), Code::kStreamFailed);
  EXPECT_EQ(blocked_status.message(), "upstream reset the connection");
  EXPECT_EQ(blocked_at_status.code(), Code::kStreamFailed);

  // A reader opened later never sees the truncated bytes as a stream.
  auto later = s->OpenReader();
  char buf[4];
  auto res = later->Read(buf, 4);
  EXPECT_EQ(res.status.code(), Code::kStreamFailed);
  EXPECT_EQ(res.bytes, 0u);
  EXPECT_EQ(later->ReadAt(0, buf, 4).status.code(), Code::kStreamFailed);
  EXPECT_EQ(s->state(), StreamFile::State::kFailed);
  EXPECT_EQ(s->failure(), "upstream reset the connection");
}

TEST_F(StreamFileTest, FailAfterFinishDoesNotHarmCompleteReaders) {
  auto s = NewStream();
  AppendPattern(*s, 0, 10);
  ASSERT_TRUE(s->Finish().ok());
  s->Fail("too late");
  auto r = s->OpenReader();
  auto [bytes, st] = ReadAll(*r);
  EXPECT_EQ(st.code(), Code::kEndOfStream);
  EXPECT_EQ(bytes, Pattern(0, 10));
}

TEST_F(StreamFileTest, CancelWakesBlockedReaderWithCancelled) {
  auto s = NewStream();
  auto r = s->OpenReader();
  auto other = s->OpenReader();
  Status got;
  std::thread reader([&] {
    char buf[4];
    got = r->Read(buf, 4).status;
  });
  ASSERT_TRUE(WaitFor([&] { return s->WaitingReadersForTesting() == 1; }));
  r->Cancel();
  reader.join();
  EXPECT_EQ(got.code(), Code::kCancelled);
  char buf[4];
  EXPECT_EQ(r->Read(buf, 4).status.code(), Code::kCancelled);
  r->Cancel();  // twice is harmless
  // Other readers and the writer are untouched.
  AppendPattern(*s, 0, 4);
  EXPECT_EQ(other->Read(buf, 4).bytes, 4u);
}

TEST_F(StreamFileTest, CancelWakesBlockedReadAt) {
  auto s = NewStream();
  auto r = s->OpenReader();
  Status got;
  std::thread reader([&] {
    char buf[4];
    got = r->ReadAt(100, buf, 4).status;
  });
  ASSERT_TRUE(WaitFor([&] { return s->WaitingReadersForTesting() == 1; }));
  r->Cancel();
  reader.join();
  EXPECT_EQ(got.code(), Code::kCancelled);
}

TEST_F(StreamFileTest, ClosingReaderTwiceIsHarmlessAndCountsOnce) {
  auto s = NewStream();
  auto a = s->OpenReader();
  auto b = s->OpenReader();
  EXPECT_EQ(s->open_readers(), 2u);
  a->Close();
  a->Close();
  EXPECT_EQ(s->open_readers(), 1u);
  char buf[1];
  EXPECT_EQ(a->Read(buf, 1).status.code(), Code::kCancelled);
  a.reset();  // destructor after Close
  EXPECT_EQ(s->open_readers(), 1u);
  b.reset();
  EXPECT_EQ(s->open_readers(), 0u);
}

TEST_F(StreamFileTest, WriterEndsAreIdempotentAndWritesAfterEndAreRefused) {
  auto s = NewStream();
  AppendPattern(*s, 0, 10);
  ASSERT_TRUE(s->Finish().ok());
  EXPECT_TRUE(s->Finish().ok()) << "finishing twice is harmless";
  Status st = s->Append("x", 1);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_EQ(s->frontier(), 10u);

  auto f = NewStream();
  f->Fail("broken");
  f->Fail("again");
  EXPECT_EQ(f->failure(), "broken");
  EXPECT_EQ(f->Append("x", 1).code(), Code::kInvalidArgument);
  EXPECT_EQ(f->Finish().code(), Code::kStreamFailed);
}

TEST_F(StreamFileTest, ExpectedLengthIsVisibleToReadersBeforeTheEnd) {
  auto s = NewStream();
  ASSERT_TRUE(s->SetExpectedLength(100).ok());
  EXPECT_TRUE(s->SetExpectedLength(100).ok());
  EXPECT_EQ(s->SetExpectedLength(99).code(), Code::kInvalidArgument);
  auto r = s->OpenReader();
  EXPECT_EQ(r->stream()->expected_length(), std::optional<std::uint64_t>(100));
  AppendPattern(*s, 0, 100);
  EXPECT_TRUE(s->Finish().ok());
}

TEST_F(StreamFileTest, StreamGrowingPastExpectedLengthFails) {
  auto s = NewStream();
  ASSERT_TRUE(s->SetExpectedLength(10).ok());
  auto r = s->OpenReader();
  AppendPattern(*s, 0, 8);
  Status st = s->Append("abcd", 4);
  EXPECT_EQ(st.code(), Code::kStreamFailed);
  EXPECT_EQ(s->state(), StreamFile::State::kFailed);
  auto [bytes, rst] = ReadAll(*r);
  EXPECT_EQ(rst.code(), Code::kStreamFailed);
}

TEST_F(StreamFileTest, StreamFinishingShortOfExpectedLengthFails) {
  auto s = NewStream();
  ASSERT_TRUE(s->SetExpectedLength(10).ok());
  auto r = s->OpenReader();
  AppendPattern(*s, 0, 8);
  Status st = s->Finish();
  EXPECT_EQ(st.code(), Code::kStreamFailed);
  EXPECT_NE(st.message().find("8 of its announced 10"), std::string::npos)
      << st.message();
  auto [bytes, rst] = ReadAll(*r);
  EXPECT_EQ(rst.code(), Code::kStreamFailed) << "a short stream is not complete";
}

TEST_F(StreamFileTest, ExpectedLengthBelowWrittenBytesIsRefused) {
  auto s = NewStream();
  AppendPattern(*s, 0, 20);
  EXPECT_EQ(s->SetExpectedLength(10).code(), Code::kInvalidArgument);
  EXPECT_FALSE(s->expected_length().has_value());
}

TEST_F(StreamFileTest, EachStreamGetsItsOwnUniqueFile) {
  auto a = NewStream();
  auto b = NewStream();
  EXPECT_NE(a->path(), b->path());
  EXPECT_TRUE(std::filesystem::exists(a->path()));
  EXPECT_TRUE(std::filesystem::exists(b->path()));
}

TEST_F(StreamFileTest, RemoveWhileReadingKeepsReadersGoingAndDoesNotBlock) {
  auto s = NewStream();
  AppendPattern(*s, 0, 100);
  auto r = s->OpenReader();
  char buf[50];
  ASSERT_EQ(r->Read(buf, 50).bytes, 50u);
  const std::string path = s->path();
  ASSERT_TRUE(s->Remove().ok());  // returns although a reader is open
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(s->Remove().ok()) << "removing twice is harmless";
  // The writer may still finish; the reader reads on to the end.
  AppendPattern(*s, 100, 50);
  ASSERT_TRUE(s->Finish().ok());
  auto [rest, st] = ReadAll(*r);
  EXPECT_EQ(st.code(), Code::kEndOfStream);
  EXPECT_EQ(rest, Pattern(50, 100));
}

TEST_F(StreamFileTest, CommitRenamesFinishedStreamIntoPlace) {
  auto s = NewStream();
  AppendPattern(*s, 0, 100);
  const std::string final_path = dir_.path() + "/entry.body";
  EXPECT_EQ(s->Commit(final_path).code(), Code::kInvalidArgument)
      << "an unfinished stream cannot be committed";
  auto r = s->OpenReader();
  ASSERT_TRUE(s->Finish().ok());
  const std::string temp_path = s->path();
  ASSERT_TRUE(s->Commit(final_path).ok());
  EXPECT_EQ(s->path(), final_path);
  EXPECT_FALSE(std::filesystem::exists(temp_path));
  auto [bytes, st] = ReadAll(*r);
  EXPECT_EQ(bytes, Pattern(0, 100));
  r.reset();
  s.reset();
  EXPECT_EQ(FileContents(final_path), Pattern(0, 100))
      << "a committed stream outlives its StreamFile";
}

TEST_F(StreamFileTest, UncommittedStreamDeletesItsFileWhenDestroyed) {
  auto finished = NewStream();
  AppendPattern(*finished, 0, 10);
  ASSERT_TRUE(finished->Finish().ok());
  auto failed = NewStream();
  AppendPattern(*failed, 0, 10);
  failed->Fail("x");
  const std::string p1 = finished->path(), p2 = failed->path();
  finished.reset();
  failed.reset();
  EXPECT_FALSE(std::filesystem::exists(p1));
  EXPECT_FALSE(std::filesystem::exists(p2));
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path()));
}

TEST_F(StreamFileTest, NewStreamForSameKeyNeverTouchesOlderReadersFile) {
  const std::string final_path = dir_.path() + "/key.body";
  auto old_stream = NewStream();
  AppendPattern(*old_stream, 0, 100);
  ASSERT_TRUE(old_stream->Finish().ok());
  ASSERT_TRUE(old_stream->Commit(final_path).ok());
  auto old_reader = old_stream->OpenReader();

  auto new_stream = NewStream();
  const std::string fresh = "the new version";
  ASSERT_TRUE(new_stream->Append(fresh.data(), fresh.size()).ok());
  ASSERT_TRUE(new_stream->Finish().ok());
  ASSERT_TRUE(new_stream->Commit(final_path).ok());

  // Removing the old stream must not delete the new stream's file.
  ASSERT_TRUE(old_stream->Remove().ok());
  EXPECT_EQ(FileContents(final_path), fresh);
  auto [bytes, st] = ReadAll(*old_reader);
  EXPECT_EQ(bytes, Pattern(0, 100)) << "old reader still sees the old bytes";
  old_reader.reset();
  old_stream.reset();
  EXPECT_EQ(FileContents(final_path), fresh);
}

TEST_F(StreamFileTest, BackingFileShorterThanFrontierIsAnIOErrorNotAWait) {
  auto s = NewStream();
  AppendPattern(*s, 0, 100);
  ASSERT_TRUE(s->Finish().ok());
  ASSERT_EQ(::truncate(s->path().c_str(), 40), 0);
  auto r = s->OpenReader();
  char buf[100];
  r->Seek(50);
  auto res = r->Read(buf, 10);
  EXPECT_EQ(res.status.code(), Code::kIOError);
  EXPECT_NE(res.status.message().find("shorter than its frontier"),
            std::string::npos);
  EXPECT_EQ(r->ReadAt(30, buf, 20).status.code(), Code::kIOError);
}

TEST_F(StreamFileTest, CreateInMissingDirectoryIsAnIOError) {
  StreamFileOptions options;
  options.dir = dir_.path() + "/does/not/exist";
  std::shared_ptr<StreamFile> s;
  Status st = StreamFile::Create(options, &s);
  EXPECT_EQ(st.code(), Code::kIOError);
  EXPECT_NE(st.message().find("does/not/exist"), std::string::npos);
  EXPECT_EQ(s, nullptr) << "no half-made stream on error";
}

TEST_F(StreamFileTest, TenThousandReadersCostLittleAndAllReadEverything) {
  static_assert(sizeof(StreamReader) <= 48, "per-reader state must stay small");
  auto s = NewStream();
  std::vector<std::unique_ptr<StreamReader>> readers;
  for (int i = 0; i < 10000; ++i) readers.push_back(s->OpenReader());
  EXPECT_EQ(s->open_readers(), 10000u);
  AppendPattern(*s, 0, 4096);
  ASSERT_TRUE(s->Finish().ok());
  const std::string expected = Pattern(0, 4096);
  for (auto& r : readers) {
    auto [bytes, st] = ReadAll(*r, 4096);
    ASSERT_EQ(bytes, expected);
  }
  readers.clear();
  EXPECT_EQ(s->open_readers(), 0u);
}

TEST_F(StreamFileTest, WithoutBatcherEveryAppendWakesWaitingReaders) {
  auto s = NewStream();
  auto r = s->OpenReader();
  std::atomic<int> read{0};
  std::thread reader([&] {
    char buf[1];
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(r->Read(buf, 1).bytes, 1u);
      read.fetch_add(1);
    }
  });
  for (int i = 0; i < 3; ++i) {
    // Asleep again after taking the previous byte (not still counted as
    // waiting from the wake-up before, which would let it skip a wait).
    ASSERT_TRUE(WaitFor([&] { return read.load() == i && s->WaitingReadersForTesting() == 1; }));
    AppendPattern(*s, i, 1);
  }
  reader.join();
  EXPECT_GE(s->WakeupsForTesting(), 3u);
}

TEST_F(StreamFileTest, BatcherWakesReadersOncePerBatchNotPerAppend) {
  // A delay so long it never fires in this test: only the byte threshold
  // can wake the readers.
  WakeupBatcher batcher(std::chrono::hours(1));
  auto s = NewStream(&batcher, /*batch=*/4096);
  constexpr int kReaders = 10;
  std::vector<std::unique_ptr<StreamReader>> readers;
  for (int i = 0; i < kReaders; ++i) readers.push_back(s->OpenReader());
  std::vector<std::thread> threads;
  std::vector<std::size_t> got(kReaders);
  for (int i = 0; i < kReaders; ++i) {
    threads.emplace_back([&, i] {
      char buf[8192];
      got[i] = readers[i]->Read(buf, sizeof(buf)).bytes;
    });
  }
  ASSERT_TRUE(WaitFor([&] { return s->WaitingReadersForTesting() == kReaders; }));
  const std::uint64_t before = s->WakeupsForTesting();
  for (int i = 0; i < 4095; ++i) AppendPattern(*s, i, 1);
  EXPECT_EQ(s->WakeupsForTesting(), before)
      << "4095 one-byte appends below the batch size must not wake anyone";
  AppendPattern(*s, 4095, 1);
  for (auto& t : threads) t.join();
  EXPECT_EQ(s->WakeupsForTesting(), before + 1);
  for (int i = 0; i < kReaders; ++i) EXPECT_GE(got[i], 4096u);
}

TEST_F(StreamFileTest, BatcherDeliversDeferredBytesWhenWriterGoesQuiet) {
  WakeupBatcher batcher(std::chrono::milliseconds(50));
  auto s = NewStream(&batcher, /*batch=*/1 << 20);
  auto r = s->OpenReader();
  std::string got;
  std::thread reader([&] {
    char buf[64];
    while (got.size() < 2) {
      auto res = r->Read(buf, sizeof(buf));
      ASSERT_TRUE(res.status.ok());
      got.append(buf, res.bytes);
    }
  });
  for (int i = 0; i < 2; ++i) {
    // Wait until the reader has taken byte i-1 and sleeps again.
    ASSERT_TRUE(WaitFor([&] {
      return s->WaitingReadersForTesting() == 1 &&
             s->WakeupsForTesting() == static_cast<std::uint64_t>(i);
    }));
    // Far below the batch size; the writer then stops writing. The byte
    // must still reach the reader (from the batcher), with no deadline.
    AppendPattern(*s, i, 1);
  }
  reader.join();
  EXPECT_EQ(got, Pattern(0, 2));
}

TEST_F(StreamFileTest, ReaderKeepsStreamAliveAfterWriterLetsGo) {
  auto s = NewStream();
  AppendPattern(*s, 0, 10);
  ASSERT_TRUE(s->Finish().ok());
  auto r = s->OpenReader();
  s.reset();
  auto [bytes, st] = ReadAll(*r);
  EXPECT_EQ(bytes, Pattern(0, 10));
  EXPECT_EQ(st.code(), Code::kEndOfStream);
}

}  // namespace
}  // namespace fanout

namespace fanout {
namespace {

class StreamExtentTest : public StreamFileTest {};

// What a zero-copy sender would send for an extent: the file's bytes there.
std::string ExtentBytes(const StreamReader::Extent& e) {
  std::string out(e.length, '\0');
  const ssize_t n = ::pread(e.fd, out.data(), e.length, static_cast<off_t>(e.offset));
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

TEST_F(StreamExtentTest, ExtentsCoverTheStreamExactlyWhileItIsWritten) {
  auto s = NewStream();
  auto r = s->OpenReader();
  std::string got;
  Status end;
  std::thread sender([&] {
    for (;;) {
      auto e = r->NextExtent(1000, std::chrono::steady_clock::now() + 30s);
      if (!e.status.ok()) {
        end = e.status;
        return;
      }
      EXPECT_GT(e.length, 0u);
      EXPECT_LE(e.length, 1000u);
      EXPECT_EQ(e.offset, got.size());
      got += ExtentBytes(e);
    }
  });
  for (std::uint64_t off = 0; off < 100000; off += 777) {
    AppendPattern(*s, off, std::min<std::uint64_t>(777, 100000 - off));
  }
  ASSERT_TRUE(s->Finish().ok());
  sender.join();
  EXPECT_EQ(end.code(), Code::kEndOfStream);
  EXPECT_TRUE(got == Pattern(0, 100000));
  EXPECT_EQ(r->position(), 100000u);
}

TEST_F(StreamExtentTest, ExtentWaitsAtTheFrontierAndReportsFailure) {
  auto s = NewStream();
  auto r = s->OpenReader();
  AppendPattern(*s, 0, 10);
  auto e = r->NextExtent(64);
  ASSERT_TRUE(e.status.ok());
  EXPECT_EQ(e.length, 10u);
  // At the frontier: a deadline passes, then a failure wakes the waiter.
  EXPECT_EQ(r->NextExtent(64, std::chrono::steady_clock::now() + 10ms).status.code(),
            Code::kDeadlineExceeded);
  Status st;
  std::thread waiter([&] { st = r->NextExtent(64).status; });
  ASSERT_TRUE(WaitFor([&] { return s->WaitingReadersForTesting() == 1; }));
  s->Fail("upstream hung up");
  waiter.join();
  EXPECT_EQ(st.code(), Code::kStreamFailed);
  EXPECT_EQ(r->NextExtent(64).status.code(), Code::kStreamFailed);
}

TEST_F(StreamExtentTest, ExtentsPointIntoTheSharedMappingOnceTheLengthIsKnown) {
  auto s = NewStream();
  auto r1 = s->OpenReader();
  auto r2 = s->OpenReader();
  AppendPattern(*s, 0, 5000);
  // Length unknown while writing: no mapping, only (fd, offset, length).
  auto e = r1->NextExtent(1000);
  ASSERT_TRUE(e.status.ok());
  EXPECT_EQ(e.data, nullptr);
  ASSERT_TRUE(s->SetExpectedLength(300000).ok());
  // Known length: the bytes are also in memory, the same for every reader.
  e = r1->NextExtent(100000);
  ASSERT_TRUE(e.status.ok());
  ASSERT_NE(e.data, nullptr);
  EXPECT_EQ(std::string(e.data, e.length), Pattern(1000, 4000));
  auto e2 = r2->NextExtent(10);
  ASSERT_NE(e2.data, nullptr);
  EXPECT_EQ(e2.data, e.data - 1000) << "one mapping, shared by all readers";
  // Bytes written later are visible through the same mapping.
  AppendPattern(*s, 5000, 295000);
  ASSERT_TRUE(s->Finish().ok());
  std::string rest;
  for (;;) {
    auto x = r1->NextExtent(65536);
    if (!x.status.ok()) {
      EXPECT_EQ(x.status.code(), Code::kEndOfStream);
      break;
    }
    ASSERT_NE(x.data, nullptr);
    rest.append(x.data, x.length);
  }
  EXPECT_TRUE(rest == Pattern(5000, 295000));
}

// A watcher that counts its notices (the event-loop side of a reader).
class CountingWatcher final : public StreamFile::Watcher {
 public:
  void StreamMoved() override { told.fetch_add(1); }
  std::atomic<int> told{0};
};

TEST_F(StreamFileTest, WatchIsRefusedWhenBytesLiePastThePosition) {
  auto s = NewStream();
  AppendPattern(*s, 0, 10);
  auto r = s->OpenReader();
  CountingWatcher w;
  EXPECT_FALSE(r->Watch(&w)) << "bytes are there: read on";
  r->Seek(10);
  EXPECT_TRUE(r->Watch(&w)) << "at the frontier: wait";
  EXPECT_EQ(s->WaitingReadersForTesting(), 1);
  r->Unwatch(&w);
  EXPECT_EQ(s->WaitingReadersForTesting(), 0);
  ASSERT_TRUE(s->Finish().ok());
  EXPECT_EQ(w.told.load(), 0) << "withdrawn before the news";
  EXPECT_FALSE(r->Watch(&w)) << "the stream ended: read on (to its end)";
}

TEST_F(StreamFileTest, WatcherIsToldOnceWhenBytesArrive) {
  auto s = NewStream();
  auto r = s->OpenReader();
  CountingWatcher w;
  ASSERT_TRUE(r->Watch(&w));
  AppendPattern(*s, 0, 100);
  EXPECT_EQ(w.told.load(), 1);
  AppendPattern(*s, 100, 100);
  EXPECT_EQ(w.told.load(), 1) << "one notice per registration";
  auto extent = r->NextExtent(1000, Deadline{});
  ASSERT_TRUE(extent.status.ok());
  EXPECT_EQ(extent.length, 200u);
  extent = r->NextExtent(1000, Deadline{});
  EXPECT_EQ(extent.status.code(), Code::kDeadlineExceeded) << "a past deadline never blocks";
  ASSERT_TRUE(r->Watch(&w));
  ASSERT_TRUE(s->Finish().ok());
  EXPECT_EQ(w.told.load(), 2) << "the end is news";
  EXPECT_EQ(r->NextExtent(1000, Deadline{}).status.code(), Code::kEndOfStream);
}

// An event loop may call Watch again for a watcher still registered (a
// notice it took for this registration belonged to an earlier one): it must
// stay one registration, or the watcher is told twice and a later Unwatch
// leaves a registration behind for a freed watcher (a crash under fan-out).
TEST_F(StreamFileTest, WatchingAgainWhileRegisteredKeepsOneRegistration) {
  auto s = NewStream();
  auto r = s->OpenReader();
  CountingWatcher w;
  ASSERT_TRUE(r->Watch(&w));
  ASSERT_TRUE(r->Watch(&w)) << "still at the frontier: still waiting";
  EXPECT_EQ(s->WaitingReadersForTesting(), 1);
  AppendPattern(*s, 0, 100);
  EXPECT_EQ(w.told.load(), 1) << "one notice, however often Watch was called";
  EXPECT_EQ(s->WaitingReadersForTesting(), 0);
}

TEST_F(StreamFileTest, UnwatchAfterRepeatedWatchLeavesNothingToTell) {
  auto s = NewStream();
  auto r = s->OpenReader();
  CountingWatcher w;
  ASSERT_TRUE(r->Watch(&w));
  ASSERT_TRUE(r->Watch(&w));
  r->Unwatch(&w);
  EXPECT_EQ(s->WaitingReadersForTesting(), 0);
  AppendPattern(*s, 0, 100);
  ASSERT_TRUE(s->Finish().ok());
  EXPECT_EQ(w.told.load(), 0) << "withdrawn: never told again";
}

TEST_F(StreamFileTest, WatcherIsToldOfFailure) {
  auto s = NewStream();
  auto r = s->OpenReader();
  CountingWatcher w;
  ASSERT_TRUE(r->Watch(&w));
  s->Fail("upstream went away");
  EXPECT_EQ(w.told.load(), 1);
  EXPECT_EQ(r->NextExtent(10, Deadline{}).status.code(), Code::kStreamFailed);
}

TEST_F(StreamFileTest, WatchersAreToldInTheBatchesOfBlockedReaders) {
  WakeupBatcher batcher(std::chrono::hours(1));
  auto s = NewStream(&batcher, 4096);
  auto r = s->OpenReader();
  CountingWatcher w;
  ASSERT_TRUE(r->Watch(&w));
  for (int i = 0; i < 4095; ++i) AppendPattern(*s, static_cast<std::uint64_t>(i), 1);
  EXPECT_EQ(w.told.load(), 0) << "below the batch: no notice yet";
  AppendPattern(*s, 4095, 1);
  EXPECT_EQ(w.told.load(), 1);
}

// An event loop's reader against a writer thread: every byte arrives, in
// order, and the reader never blocks.
TEST_F(StreamFileTest, WatchingReaderGetsEveryByteWithoutBlocking) {
  WakeupBatcher batcher(std::chrono::milliseconds(1));
  auto s = NewStream(&batcher, 64 * 1024);
  constexpr std::size_t kTotal = 8 << 20;
  std::thread writer([&] {
    for (std::size_t off = 0; off < kTotal; off += 4096) AppendPattern(*s, off, 4096);
    ASSERT_TRUE(s->Finish().ok());
  });
  struct Wakeable final : StreamFile::Watcher {
    std::mutex mu;
    std::condition_variable cv;
    bool moved = false;  // guarded by mu
    void StreamMoved() override {
      std::lock_guard<std::mutex> lock(mu);
      moved = true;
      cv.notify_one();
    }
  } w;
  auto r = s->OpenReader();
  std::string got;
  for (;;) {
    auto extent = r->NextExtent(1 << 20, Deadline{});
    if (extent.status.code() == Code::kEndOfStream) break;
    if (extent.status.code() == Code::kDeadlineExceeded) {
      if (!r->Watch(&w)) continue;
      std::unique_lock<std::mutex> lock(w.mu);
      w.cv.wait(lock, [&] { return w.moved; });
      w.moved = false;
      continue;
    }
    ASSERT_TRUE(extent.status.ok()) << extent.status.ToString();
    std::string bytes(extent.length, '\0');
    ASSERT_TRUE(r->ReadAt(extent.offset, bytes.data(), extent.length).status.ok());
    got += bytes;
  }
  writer.join();
  EXPECT_EQ(got.size(), kTotal);
  EXPECT_TRUE(got == Pattern(0, kTotal));
}

}  // namespace
}  // namespace fanout

namespace fanout {
namespace {

TEST_F(StreamFileTest, ProgressReportsTheSlowestOpenReader) {
  auto s = NewStream();
  EXPECT_FALSE(s->Progress().slowest) << "no reader";
  AppendPattern(*s, 0, 100);
  auto slow = s->OpenReader();
  auto fast = s->OpenReader();
  char buf[100];
  ASSERT_TRUE(slow->Read(buf, 10).status.ok());
  ASSERT_TRUE(fast->Read(buf, 60).status.ok());
  auto progress = s->Progress();
  EXPECT_EQ(progress.readers, 2u);
  ASSERT_TRUE(progress.slowest);
  EXPECT_EQ(*progress.slowest, 10u);
  slow->Close();
  progress = s->Progress();
  EXPECT_EQ(progress.readers, 1u);
  EXPECT_EQ(*progress.slowest, 60u);
  fast.reset();
  EXPECT_FALSE(s->Progress().slowest);
}

TEST_F(StreamFileTest, AWriterWaitingForReadersWakesWhenOneMovesOn) {
  auto s = NewStream();
  AppendPattern(*s, 0, 100);
  auto r = s->OpenReader();
  std::atomic<bool> woke{false};
  std::thread writer([&] {
    s->WaitForReaderProgress(std::chrono::steady_clock::now() + std::chrono::minutes(1));
    woke = true;
  });
  char buf[10];
  // Reads until the waiting writer has seen one (each read is progress).
  ASSERT_TRUE(::fanout::testing::WaitFor([&] {
    r->Seek(0);
    (void)r->Read(buf, sizeof buf);
    return woke.load();
  }));
  writer.join();
}

TEST_F(StreamFileTest, ReleasedBytesGiveBackTheirDiskAndTheRestStaysReadable) {
  auto s = NewStream();
  constexpr std::size_t kSize = 8 << 20;
  AppendPattern(*s, 0, kSize);
  struct stat before {};
  ASSERT_EQ(::stat(s->path().c_str(), &before), 0);
  auto reader = s->OpenReader();
  reader->Seek(6 * StreamFile::kReleaseUnit + 1000);
  EXPECT_EQ(s->ReleasePassedBytes(/*slack=*/500), 6 * StreamFile::kReleaseUnit)
      << "what every reader passed, less the slack, in whole units";
  struct stat after {};
  ASSERT_EQ(::stat(s->path().c_str(), &after), 0);
  EXPECT_EQ(after.st_size, before.st_size) << "the length stays";
  EXPECT_LE(after.st_blocks * 512, before.st_blocks * 512 - 6 * StreamFile::kReleaseUnit)
      << "six whole units given back";
  auto r = s->OpenReader();
  r->Seek(6 * StreamFile::kReleaseUnit);
  std::string rest(kSize - 6 * StreamFile::kReleaseUnit, '\0');
  ASSERT_TRUE(r->ReadAt(6 * StreamFile::kReleaseUnit, rest.data(), rest.size()).status.ok());
  EXPECT_TRUE(rest == Pattern(6 * StreamFile::kReleaseUnit, rest.size()));
}

}  // namespace
}  // namespace fanout

namespace fanout {
namespace {

// While alive, files this process writes may not grow past `bytes`: writes
// beyond fail with EFBIG, as a full disk fails them with ENOSPC.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() { ::setrlimit(RLIMIT_FSIZE, &saved_); }

 private:
  rlimit saved_{};
};

class StreamFileDiskFullTest : public StreamFileTest {
 protected:
  std::shared_ptr<StreamFile> NewSpillingStream(MemoryBudget* budget) {
    StreamFileOptions options;
    options.dir = dir_.path();
    options.spill_budget = budget;
    std::shared_ptr<StreamFile> stream;
    EXPECT_TRUE(StreamFile::Create(options, &stream).ok());
    return stream;
  }
};

TEST_F(StreamFileDiskFullTest, BytesFromAPipeTheDiskRefusesAreTakenIntoMemory) {
  MemoryBudget budget(8 << 20);
  auto s = NewSpillingStream(&budget);
  auto reader = s->OpenReader();
  {
    FileSizeLimit limit(1 << 20);
    AppendThroughPipe(*s, 3 << 20);
  }
  ASSERT_TRUE(s->Finish().ok());
  const auto spill = s->spilled();
  ASSERT_TRUE(spill);
  EXPECT_EQ(spill->disk_bytes, 1u << 20);
  EXPECT_EQ(budget.used(), 2u << 20);
  const auto [bytes, status] = ReadAll(*reader, 65536);
  EXPECT_EQ(status.code(), Code::kEndOfStream);
  EXPECT_TRUE(bytes == Pattern(0, 3 << 20));
}

TEST_F(StreamFileDiskFullTest, BytesTheDiskRefusesReachEveryReaderFromMemory) {
  MemoryBudget budget(8 << 20);
  auto s = NewSpillingStream(&budget);
  ASSERT_TRUE(s->SetExpectedLength(3 << 20).ok());
  auto early = s->OpenReader();
  {
    FileSizeLimit limit(1 << 20);
    for (std::uint64_t at = 0; at < (3u << 20); at += 100000) {
      AppendPattern(*s, at, std::min<std::uint64_t>(100000, (3u << 20) - at));
    }
  }
  ASSERT_TRUE(s->Finish().ok()) << "a full disk is no failure while memory is left";
  const auto spill = s->spilled();
  ASSERT_TRUE(spill);
  EXPECT_EQ(spill->disk_bytes, 1u << 20);
  EXPECT_NE(spill->why.find("File too large"), std::string::npos) << spill->why;
  EXPECT_EQ(budget.used(), 2u << 20);
  // Read copies, extents (mapped, then in memory) and positioned reads.
  auto [copied, end] = ReadAll(*early, 65536);
  EXPECT_EQ(end.code(), Code::kEndOfStream);
  EXPECT_TRUE(copied == Pattern(0, 3 << 20));
  auto late = s->OpenReader();
  std::string sent;
  for (;;) {
    auto x = late->NextExtent(1 << 20, Deadline{});
    if (!x.status.ok()) break;
    ASSERT_NE(x.data, nullptr) << "known length: mapped, or in memory past the disk's end";
    sent.append(x.data, x.length);
  }
  EXPECT_TRUE(sent == Pattern(0, 3 << 20));
  std::string across(200000, '\0');
  ASSERT_TRUE(late->ReadAt((1 << 20) - 100000, across.data(), across.size()).status.ok());
  EXPECT_TRUE(across == Pattern((1 << 20) - 100000, 200000)) << "across the disk's end";
  // Never an entry: the file does not hold the whole body.
  const Status commit = s->Commit(dir_.path() + "/kept.body");
  EXPECT_EQ(commit.code(), Code::kIOError);
  EXPECT_NE(commit.message().find("disk filled up"), std::string::npos) << commit.message();
  // Every reader is at the end: what they all passed gives its memory back.
  late->Seek(3 << 20);
  EXPECT_EQ(s->ReleasePassedBytes(0), 3u << 20);
  EXPECT_EQ(budget.used(), 0u) << "released chunks are freed before the stream goes";
  early.reset();
  late.reset();
  s.reset();
  EXPECT_EQ(budget.used(), 0u) << "memory given back with the stream";
}

TEST_F(StreamFileDiskFullTest, ADiskFullStreamFailsOnceItsMemoryIsSpent) {
  MemoryBudget budget(1 << 20);
  auto s = NewSpillingStream(&budget);
  auto r = s->OpenReader();
  Status last;
  {
    FileSizeLimit limit(1 << 20);
    for (std::uint64_t at = 0; at < (4u << 20) && last.ok(); at += 100000) {
      const std::string bytes = Pattern(at, 100000);
      last = s->Append(bytes.data(), bytes.size());
    }
  }
  EXPECT_EQ(last.code(), Code::kIOError);
  EXPECT_EQ(s->state(), StreamFile::State::kFailed);
  EXPECT_NE(s->failure().find("no memory is left"), std::string::npos) << s->failure();
  auto [bytes, end] = ReadAll(*r, 65536);
  EXPECT_EQ(end.code(), Code::kStreamFailed) << "visibly incomplete, never a clean end";
}

TEST_F(StreamFileDiskFullTest, WithoutABudgetAFullDiskFailsTheStream) {
  auto s = NewStream();
  Status last;
  {
    FileSizeLimit limit(1 << 20);
    for (std::uint64_t at = 0; at < (2u << 20) && last.ok(); at += 100000) {
      const std::string bytes = Pattern(at, 100000);
      last = s->Append(bytes.data(), bytes.size());
    }
  }
  EXPECT_EQ(last.code(), Code::kIOError);
  EXPECT_EQ(s->state(), StreamFile::State::kFailed);
}

}  // namespace
}  // namespace fanout

namespace fanout {
namespace {

TEST_F(StreamFileDiskFullTest, ADeletedDirectoryIsMadeAgain) {
  const std::string dir = dir_.path() + "/tmp";
  StreamFileOptions options;
  options.dir = dir;
  std::shared_ptr<StreamFile> s;
  ASSERT_TRUE(StreamFile::Create(options, &s).ok());
  EXPECT_FALSE(s->has_spilled()) << "a file, in the directory made again";
  EXPECT_EQ(s->path().rfind(dir + "/stream-", 0), 0u) << s->path();
}

TEST_F(StreamFileDiskFullTest, WhereNoFileCanBeMadeTheStreamLivesInMemory) {
  MemoryBudget budget(1 << 20);
  StreamFileOptions options;
  options.dir = dir_.path() + "/gone/tmp";  // cannot be made: its parent is gone
  options.spill_budget = &budget;
  std::shared_ptr<StreamFile> s;
  ASSERT_TRUE(StreamFile::Create(options, &s).ok());
  ASSERT_TRUE(s->spilled());
  EXPECT_EQ(s->spilled()->disk_bytes, 0u);
  auto r = s->OpenReader();
  AppendPattern(*s, 0, 300000);
  ASSERT_TRUE(s->Finish().ok());
  auto [bytes, end] = ReadAll(*r, 65536);
  EXPECT_EQ(end.code(), Code::kEndOfStream);
  EXPECT_TRUE(bytes == Pattern(0, 300000));
  EXPECT_FALSE(s->Commit(dir_.path() + "/x.body").ok());
  options.spill_budget = nullptr;
  EXPECT_FALSE(StreamFile::Create(options, &s).ok()) << "no budget: an error, as before";
}

}  // namespace
}  // namespace fanout

namespace fanout {
namespace {

TEST_F(StreamFileTest, NothingIsReleasedPastTheSlowestReaderOrTheFrontier) {
  auto s = NewStream();
  AppendPattern(*s, 0, 3 << 20);
  EXPECT_EQ(s->ReleasePassedBytes(0), 0u) << "no reader: nothing known to be passed";
  auto slow = s->OpenReader();
  auto ahead = s->OpenReader();
  ahead->Seek(100 << 20);  // a range far past the frontier
  slow->Seek(1 << 20);
  EXPECT_EQ(s->ReleasePassedBytes(0), 1u << 20) << "the slowest reader";
  slow.reset();
  EXPECT_EQ(s->ReleasePassedBytes(0), 3u << 20) << "never past the frontier";
}

TEST_F(StreamFileTest, ReadsBelowReleasedBytesFailVisiblyNeverAsZeros) {
  auto s = NewStream();
  AppendPattern(*s, 0, 4 << 20);
  auto passed = s->OpenReader();
  passed->Seek(2 * StreamFile::kReleaseUnit);
  ASSERT_EQ(s->ReleasePassedBytes(0), 2 * StreamFile::kReleaseUnit);
  auto late = s->OpenReader();  // opened after: its first bytes are gone
  char buf[100];
  const auto read = late->Read(buf, sizeof buf);
  EXPECT_EQ(read.status.code(), Code::kStreamFailed) << "a cut, not the hole's zeros";
  EXPECT_EQ(late->NextExtent(100, Deadline{}).status.code(), Code::kStreamFailed);
  EXPECT_EQ(late->ReadAt(100, buf, sizeof buf).status.code(), Code::kStreamFailed);
  late->Seek(2 * StreamFile::kReleaseUnit);
  ASSERT_TRUE(late->Read(buf, sizeof buf).status.ok()) << "above them all is readable";
  EXPECT_EQ(std::string(buf, sizeof buf), Pattern(2 * StreamFile::kReleaseUnit, sizeof buf));
}

TEST_F(StreamFileTest, WaitForByteNeedsNoReaderAndSaysHowTheWaitEnded) {
  auto s = NewStream();
  AppendPattern(*s, 0, 100);
  EXPECT_TRUE(s->WaitForByte(99, kNoDeadline).ok());
  EXPECT_EQ(s->WaitForByte(100, std::chrono::steady_clock::now()).code(),
            Code::kDeadlineExceeded);
  EXPECT_EQ(s->Progress().readers, 0u) << "waiting is not reading";
  std::thread writer([&] { AppendPattern(*s, 100, 100); });
  EXPECT_TRUE(s->WaitForByte(150, std::chrono::steady_clock::now() + 30s).ok());
  writer.join();
  ASSERT_TRUE(s->Finish().ok());
  EXPECT_EQ(s->WaitForByte(500, kNoDeadline).code(), Code::kEndOfStream);
}

}  // namespace
}  // namespace fanout
