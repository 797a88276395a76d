// Unit tests of the body sender (server/body_sender.h) over socket pairs:
// every byte of a stream still being written reaches every connection, a
// connection comes back (resume) or is closed as its job says, and each way
// a job can end early is reported once, with the connection closed; a
// parked connection is handed back when bytes come, closed when idle.
// Runs with the core tests, under ThreadSanitizer too.

#include "server/body_sender.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/wakeup_batcher.h"
#include "tests/test_util.h"

namespace fanout {
namespace {

using ::fanout::testing::Pattern;
using ::fanout::testing::TempDir;
using ::fanout::testing::WaitFor;
using Code = Status::Code;
using namespace std::chrono_literals;

// How each job ended, by the job's id; waitable.
class Endings {
 public:
  struct Ending {
    Status how;
    std::uint64_t sent = 0;
    bool resumed = false;
  };

  std::function<void(const Status&, std::uint64_t)> OnEnd(int id) {
    return [this, id](const Status& how, std::uint64_t sent) {
      std::lock_guard<std::mutex> lock(mu_);
      EXPECT_EQ(endings_.count(id), 0u) << "a job ends once";
      endings_[id] = Ending{how, sent, false};
      changed_.notify_all();
    };
  }
  // on_end comes first, then resume.
  std::function<void(int)> Resume(int id) {
    return [this, id](int fd) {
      std::lock_guard<std::mutex> lock(mu_);
      EXPECT_EQ(endings_.count(id), 1u) << "told how it ended first";
      endings_[id].resumed = true;
      ::close(fd);  // the owner's connection now; this test has no use for it
      changed_.notify_all();
    };
  }
  // Waits (at most 30 s) until n jobs ended and `resumed` of them were
  // handed back; returns them.
  std::map<int, Ending> WaitFor(std::size_t n, std::size_t resumed = 0) {
    std::unique_lock<std::mutex> lock(mu_);
    auto done = [&] {
      std::size_t back = 0;
      for (const auto& [id, e] : endings_) back += e.resumed ? 1 : 0;
      return endings_.size() >= n && back >= resumed;
    };
    EXPECT_TRUE(changed_.wait_for(lock, 30s, done))
        << endings_.size() << " of " << n << " jobs ended";
    return endings_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::map<int, Ending> endings_;  // guarded by mu_
};

class BodySenderTest : public ::testing::Test {
 protected:
  std::shared_ptr<StreamFile> NewStream(WakeupBatcher* batcher = nullptr) {
    StreamFileOptions options;
    options.dir = dir_.path();
    options.batcher = batcher;
    std::shared_ptr<StreamFile> stream;
    EXPECT_TRUE(StreamFile::Create(options, &stream).ok());
    return stream;
  }

  static void Write(StreamFile& s, std::uint64_t offset, std::size_t n) {
    const std::string bytes = Pattern(offset, n);
    ASSERT_TRUE(s.Append(bytes.data(), bytes.size()).ok());
  }

  // A connected pair: [0] for the sender, [1] the client's end.
  static std::pair<int, int> Pair(int buffer = 0) {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    // A sender that never sends fails the test instead of hanging it.
    timeval tv{30, 0};
    ::setsockopt(fds[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (buffer > 0) {
      ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
      ::setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    }
    return {fds[0], fds[1]};
  }

  // Reads the client's end until the sender closes it or `limit` bytes came.
  static std::string ReadAll(int fd, std::size_t limit = SIZE_MAX) {
    std::string got;
    char buf[65536];
    while (got.size() < limit) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }

  // A job with id `fd` (the fds of a test's live pairs are distinct).
  std::unique_ptr<BodySender::Job> NewJob(const std::shared_ptr<StreamFile>& stream, int fd,
                                          std::uint64_t offset, std::uint64_t length,
                                          bool resume) {
    auto job = std::make_unique<BodySender::Job>();
    job->fd = fd;
    job->reader = std::shared_ptr<StreamReader>(stream->OpenReader());
    job->reader->Seek(offset);
    job->length = length;
    job->on_end = endings_.OnEnd(fd);
    if (resume) job->resume = endings_.Resume(fd);
    return job;
  }

  // n jobs of `length` bytes from offset 0 on new pairs, submitted to
  // `sender` (kept on resume); returns the client ends.
  std::vector<int> SubmitMany(BodySender& sender, const std::shared_ptr<StreamFile>& stream,
                              int n, std::uint64_t length) {
    std::vector<int> client_ends;
    for (int i = 0; i < n; ++i) {
      const auto [server_end, client_end] = Pair();
      client_ends.push_back(client_end);
      auto job = NewJob(stream, server_end, 0, length, /*resume=*/true);
      EXPECT_TRUE(sender.Submit(job));
    }
    return client_ends;
  }

  TempDir dir_;
  Endings endings_;
};

TEST_F(BodySenderTest, EveryConnectionGetsEveryByteOfAStreamBeingWritten) {
  WakeupBatcher batcher(std::chrono::milliseconds(1));
  auto stream = NewStream(&batcher);
  constexpr std::size_t kTotal = 4 << 20;
  ASSERT_TRUE(stream->SetExpectedLength(kTotal).ok());
  BodySender::Options options;
  options.threads = 2;
  options.turn_bytes = 64 * 1024;  // many turns
  BodySender sender(options);

  constexpr int kClients = 16;
  std::vector<int> server_ends, client_ends;
  std::vector<std::string> got(kClients);
  std::vector<std::thread> clients;
  std::thread writer;
  for (int i = 0; i < kClients; ++i) {
    const auto [server_end, client_end] = Pair(32 * 1024);
    server_ends.push_back(server_end);
    client_ends.push_back(client_end);
    // Half ask for the whole body, half for a range; half are handed back
    // at the end (keep-alive), half closed.
    const std::uint64_t offset = i % 2 == 0 ? 0 : 1000 * static_cast<std::uint64_t>(i);
    auto job = NewJob(stream, server_end, offset, kTotal - offset, i % 4 < 2);
    ASSERT_TRUE(sender.Submit(job));
    ASSERT_EQ(job, nullptr);
    clients.emplace_back([&, i, fd = client_end, offset] {
      got[static_cast<std::size_t>(i)] = ReadAll(fd, kTotal - offset);
      EXPECT_TRUE(got[static_cast<std::size_t>(i)] == Pattern(offset, kTotal - offset))
          << "client " << i;
    });
    // The writer starts once some jobs wait at the frontier (offset 0).
    if (i == kClients / 2) {
      writer = std::thread([&] {
        for (std::size_t off = 0; off < kTotal; off += 64 * 1024) Write(*stream, off, 64 * 1024);
        ASSERT_TRUE(stream->Finish().ok());
      });
    }
  }
  for (auto& t : clients) t.join();
  writer.join();
  const auto endings = endings_.WaitFor(kClients, kClients / 2);
  for (const auto& [fd, ending] : endings) {
    EXPECT_TRUE(ending.how.ok()) << ending.how.ToString();
  }
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(endings.at(server_ends[static_cast<std::size_t>(i)]).resumed, i % 4 < 2)
        << "client " << i;
  }
  EXPECT_EQ(sender.active(), 0u);
  EXPECT_EQ(sender.submitted(), static_cast<std::uint64_t>(kClients));
  for (int fd : client_ends) ::close(fd);
}

TEST_F(BodySenderTest, AClientThatTakesNothingIsEndedAfterTheWriteTimeout) {
  auto stream = NewStream();
  Write(*stream, 0, 4 << 20);
  ASSERT_TRUE(stream->Finish().ok());
  BodySender::Options options;
  options.write_timeout = 300ms;
  BodySender sender(options);
  const auto [server_end, client_end] = Pair(16 * 1024);
  auto job = NewJob(stream, server_end, 0, 4 << 20, /*resume=*/true);
  ASSERT_TRUE(sender.Submit(job));
  const auto ending = endings_.WaitFor(1).at(server_end);
  EXPECT_EQ(ending.how.code(), Code::kDeadlineExceeded);
  EXPECT_FALSE(ending.resumed);
  EXPECT_LT(ending.sent, 4u << 20);
  const std::string got = ReadAll(client_end);
  EXPECT_EQ(got.size(), ending.sent) << "then closed";
  EXPECT_TRUE(got == Pattern(0, got.size()));
  ::close(client_end);
}

TEST_F(BodySenderTest, AFailedStreamEndsItsParkedJobsAndClosesTheirConnections) {
  auto stream = NewStream();
  Write(*stream, 0, 1000);
  BodySender sender(BodySender::Options{});
  const std::vector<int> client_ends = SubmitMany(sender, stream, 4, 5000);
  // Every job sends the 1,000 bytes there are, then parks at the frontier.
  for (int fd : client_ends) EXPECT_TRUE(ReadAll(fd, 1000) == Pattern(0, 1000));
  stream->Fail("upstream went away");
  for (const auto& [fd, ending] : endings_.WaitFor(4)) {
    EXPECT_EQ(ending.how.code(), Code::kStreamFailed);
    EXPECT_EQ(ending.sent, 1000u);
    EXPECT_FALSE(ending.resumed);
  }
  for (int fd : client_ends) {
    EXPECT_EQ(ReadAll(fd), "") << "closed, never a whole body";
    ::close(fd);
  }
}

TEST_F(BodySenderTest, AStreamEndingShortOfTheBodyEndsItsJob) {
  auto stream = NewStream();
  Write(*stream, 0, 1000);
  ASSERT_TRUE(stream->Finish().ok());
  BodySender sender(BodySender::Options{});
  const auto [server_end, client_end] = Pair();
  auto job = NewJob(stream, server_end, 0, 2000, /*resume=*/true);
  ASSERT_TRUE(sender.Submit(job));
  const auto ending = endings_.WaitFor(1).at(server_end);
  EXPECT_EQ(ending.how.code(), Code::kEndOfStream);
  EXPECT_EQ(ending.sent, 1000u);
  EXPECT_EQ(ReadAll(client_end).size(), 1000u);
  ::close(client_end);
}

TEST_F(BodySenderTest, AClientThatGoesAwayEndsItsJobWithAnIOError) {
  auto stream = NewStream();
  Write(*stream, 0, 4 << 20);
  ASSERT_TRUE(stream->Finish().ok());
  BodySender sender(BodySender::Options{});
  const auto [server_end, client_end] = Pair(16 * 1024);
  auto job = NewJob(stream, server_end, 0, 4 << 20, /*resume=*/true);
  ASSERT_TRUE(sender.Submit(job));
  EXPECT_GE(ReadAll(client_end, 100).size(), 100u);
  ::close(client_end);
  const auto ending = endings_.WaitFor(1).at(server_end);
  EXPECT_EQ(ending.how.code(), Code::kIOError);
  EXPECT_FALSE(ending.resumed);
}

TEST_F(BodySenderTest, AFileCutUnderItsMappingEndsTheJobAsCorruption) {
  auto stream = NewStream();
  Write(*stream, 0, 4 << 20);
  ASSERT_TRUE(stream->Finish().ok());
  // Mapped before the cut: the reader's first extent points into it.
  auto probe = stream->OpenReader();
  ASSERT_NE(probe->NextExtent(1).data, nullptr);
  std::filesystem::resize_file(stream->path(), 1 << 20);
  BodySender sender(BodySender::Options{});
  const auto [server_end, client_end] = Pair();
  auto job = NewJob(stream, server_end, 0, 4 << 20, /*resume=*/true);
  ASSERT_TRUE(sender.Submit(job));
  std::thread client([fd = client_end] { ReadAll(fd); });
  const auto ending = endings_.WaitFor(1).at(server_end);
  client.join();
  EXPECT_EQ(ending.how.code(), Code::kCorruption) << ending.how.ToString();
  EXPECT_LT(ending.sent, 4u << 20);
  ::close(client_end);
}

TEST_F(BodySenderTest, StopEndsEveryJobAsCancelledAndRefusesNewOnes) {
  auto stream = NewStream();
  Write(*stream, 0, 10);
  BodySender sender(BodySender::Options{});
  const std::vector<int> client_ends = SubmitMany(sender, stream, 6, 1000);
  for (int fd : client_ends) EXPECT_EQ(ReadAll(fd, 10).size(), 10u);
  sender.Stop();
  const auto endings = endings_.WaitFor(6);
  for (const auto& [fd, ending] : endings) EXPECT_EQ(ending.how.code(), Code::kCancelled);
  for (int fd : client_ends) {
    EXPECT_EQ(ReadAll(fd), "");
    ::close(fd);
  }
  const auto [server_end, client_end] = Pair();
  auto refused = NewJob(stream, server_end, 0, 10, false);
  EXPECT_FALSE(sender.Submit(refused));
  EXPECT_NE(refused, nullptr) << "left with the caller";
  ::close(server_end);
  ::close(client_end);
}

TEST_F(BodySenderTest, ANewConnectionGoesToTheLoopHoldingTheFewest) {
  BodySender::Options options;
  options.threads = 2;
  BodySender sender(options);
  std::mutex mu;
  std::condition_variable woke;
  std::map<int, std::thread::id> loop_of;  // by server end; guarded by mu
  // Parks `fd`; on its first bytes, notes the loop's thread and stays
  // parked if `stay`.
  auto park = [&](int fd, bool stay) {
    auto job = std::make_unique<BodySender::Job>();
    job->fd = fd;
    job->idle_timeout = 30s;
    job->on_end = endings_.OnEnd(fd);
    job->on_readable = [&, fd, stay](int) {
      char buf[8];
      (void)::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      std::lock_guard<std::mutex> lock(mu);
      loop_of[fd] = std::this_thread::get_id();
      woke.notify_all();
      return stay;
    };
    return sender.Submit(job);
  };
  auto loop_of_after_bytes = [&](int server_end, int client_end) {
    EXPECT_EQ(::write(client_end, "x", 1), 1);
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(woke.wait_for(lock, 30s, [&] { return loop_of.count(server_end) > 0; }));
    return loop_of[server_end];
  };
  const auto [a_server, a_client] = Pair();
  const auto [b_server, b_client] = Pair();
  const auto [c_server, c_client] = Pair();
  ASSERT_TRUE(park(a_server, /*stay=*/true));
  ASSERT_TRUE(park(b_server, /*stay=*/false));
  const std::thread::id a_loop = loop_of_after_bytes(a_server, a_client);
  const std::thread::id b_loop = loop_of_after_bytes(b_server, b_client);
  EXPECT_NE(a_loop, b_loop) << "one each";
  // b was taken back (its loop lets go of it just after on_readable): its
  // loop holds none, a's holds a. c goes where b was (taking turns would
  // have put it beside a).
  ASSERT_TRUE(WaitFor([&] { return sender.parked() == 1; }, 30s));
  ASSERT_TRUE(park(c_server, /*stay=*/true));
  EXPECT_EQ(loop_of_after_bytes(c_server, c_client), b_loop);
  sender.Stop();
  for (int fd : {a_client, b_server, b_client, c_client}) ::close(fd);
}

TEST_F(BodySenderTest, ASlowClientIsSentToWithSendfileEveryByteInOrder) {
  auto stream = NewStream();
  constexpr std::size_t kTotal = 1 << 20;
  Write(*stream, 0, kTotal);
  ASSERT_TRUE(stream->Finish().ok());
  BodySender sender(BodySender::Options{});
  const auto [server_end, client_end] = Pair(16 * 1024);
  auto job = NewJob(stream, server_end, 0, kTotal, /*resume=*/false);
  ASSERT_TRUE(sender.Submit(job));
  // About 2 MB/s, far below the fast-client rate: never moved to the
  // mapping.
  std::string got;
  char buf[8192];
  while (got.size() < kTotal) {
    const ssize_t n = ::read(client_end, buf, sizeof buf);
    ASSERT_GT(n, 0) << "after " << got.size() << " bytes";
    got.append(buf, static_cast<std::size_t>(n));
    std::this_thread::sleep_for(4ms);
  }
  EXPECT_TRUE(got == Pattern(0, kTotal)) << "every byte, in order";
  EXPECT_EQ(endings_.WaitFor(1).at(server_end).how.code(), Code::kOk);
  EXPECT_EQ(sender.sent_with_sendfile(), kTotal);
  ::close(client_end);
}

TEST_F(BodySenderTest, AFastClientIsSentToFromTheMappingOnceJudged) {
  auto stream = NewStream();
  constexpr std::size_t kTotal = 16 << 20;
  Write(*stream, 0, kTotal);
  ASSERT_TRUE(stream->Finish().ok());
  BodySender::Options options;
  // Any reader that keeps up beats 1 MB/s, sanitizers included.
  options.fast_client_bytes_per_second = 1e6;
  options.judge_client_after = 1ms;  // 16 MB on a socket pair can take 20 ms
  BodySender sender(options);
  const auto [server_end, client_end] = Pair(64 * 1024);
  auto job = NewJob(stream, server_end, 0, kTotal, /*resume=*/false);
  ASSERT_TRUE(sender.Submit(job));
  std::string got = ReadAll(client_end, kTotal);
  EXPECT_TRUE(got == Pattern(0, kTotal)) << "every byte, in order";
  EXPECT_EQ(endings_.WaitFor(1).at(server_end).how.code(), Code::kOk);
  EXPECT_GT(sender.sent_with_sendfile(), 0u) << "the first bytes, before the judgement";
  EXPECT_LT(sender.sent_with_sendfile(), kTotal) << "the rest from the mapping";
  ::close(client_end);
}

TEST_F(BodySenderTest, AParkedConnectionIsHandedBackWhenBytesComeAndClosedWhenIdle) {
  BodySender sender(BodySender::Options{});
  std::mutex mu;
  std::condition_variable woke;
  int readable_fd = -1;  // guarded by mu
  auto park = [&](int fd, std::chrono::milliseconds idle) {
    auto job = std::make_unique<BodySender::Job>();
    job->fd = fd;
    job->idle_timeout = idle;
    job->on_end = endings_.OnEnd(fd);
    job->on_readable = [&](int ready) {
      std::lock_guard<std::mutex> lock(mu);
      readable_fd = ready;
      woke.notify_all();
      return false;  // taken back
    };
    return sender.Submit(job);
  };
  const auto [a_server, a_client] = Pair();
  const auto [b_server, b_client] = Pair();
  ASSERT_TRUE(park(a_server, 30s));
  ASSERT_TRUE(park(b_server, 200ms));
  EXPECT_EQ(sender.parked(), 2u);
  EXPECT_EQ(sender.active(), 0u) << "parks are not bodies";
  // Bytes for a: handed back, still open, the bytes unread.
  ASSERT_EQ(::write(a_client, "GET", 3), 3);
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(woke.wait_for(lock, 30s, [&] { return readable_fd != -1; }));
    EXPECT_EQ(readable_fd, a_server);
  }
  char buf[8];
  EXPECT_EQ(::recv(a_server, buf, sizeof buf, MSG_DONTWAIT), 3);
  // b says nothing: closed after its idle timeout.
  const auto ending = endings_.WaitFor(1).at(b_server);
  EXPECT_EQ(ending.how.code(), Code::kDeadlineExceeded);
  EXPECT_EQ(ReadAll(b_client), "");
  EXPECT_EQ(sender.parked(), 0u);
  // Parked again, then the sender stops: closed, told kCancelled.
  ASSERT_TRUE(park(a_server, 30s));
  sender.Stop();
  EXPECT_EQ(endings_.WaitFor(2).at(a_server).how.code(), Code::kCancelled);
  EXPECT_EQ(ReadAll(a_client), "");
  ::close(a_client);
  ::close(b_client);
}

TEST_F(BodySenderTest, AParkedConnectionThatAnswersOnTheLoopStaysParkedUntilItIsTakenBack) {
  BodySender sender(BodySender::Options{});
  const auto [server_end, client_end] = Pair();
  std::mutex mu;
  std::condition_variable woke;
  std::vector<std::string> requests;  // guarded by mu
  bool resumed = false;               // guarded by mu
  auto job = std::make_unique<BodySender::Job>();
  job->fd = server_end;
  job->idle_timeout = 30s;
  job->on_end = endings_.OnEnd(server_end);
  // Answers "ping" here and stays parked; anything else is taken back.
  job->on_readable = [&, fd = server_end](int ready) {
    EXPECT_EQ(ready, fd);
    char buf[16];
    const ssize_t n = ::recv(ready, buf, sizeof buf, MSG_DONTWAIT);
    const std::string got(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    std::lock_guard<std::mutex> lock(mu);
    requests.push_back(got);
    woke.notify_all();
    if (got != "ping") return false;
    return ::send(ready, "pong", 4, MSG_NOSIGNAL) == 4;
  };
  job->resume = [&](int) {
    std::lock_guard<std::mutex> lock(mu);
    resumed = true;
    woke.notify_all();
  };
  ASSERT_TRUE(sender.Submit(job));
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(::write(client_end, "ping", 4), 4);
    char buf[4];
    ASSERT_EQ(::recv(client_end, buf, sizeof buf, MSG_WAITALL), 4);
    EXPECT_EQ(std::string(buf, 4), "pong");
    EXPECT_EQ(sender.parked(), 1u) << "still parked after answer " << i + 1;
  }
  ASSERT_EQ(::write(client_end, "quit", 4), 4);
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(woke.wait_for(lock, 30s, [&] { return resumed; }));
    EXPECT_EQ(requests, (std::vector<std::string>{"ping", "ping", "ping", "quit"}));
  }
  EXPECT_EQ(sender.parked(), 0u);
  // Taken back: the connection is the owner's, open, and the loop no longer
  // reads it.
  ASSERT_EQ(::write(client_end, "more", 4), 4);
  char buf[8];
  ASSERT_EQ(::recv(server_end, buf, sizeof buf, 0), 4);
  EXPECT_EQ(std::string(buf, 4), "more");
  ::close(server_end);
  ::close(client_end);
}

}  // namespace
}  // namespace fanout
