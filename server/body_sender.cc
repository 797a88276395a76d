#include "server/body_sender.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "server/cpu_slice.h"

namespace fanout {
namespace {

using Clock = std::chrono::steady_clock;

// How often the loop looks for clients past the write timeout.
constexpr auto kSweepEvery = std::chrono::milliseconds(250);

// epoll's tag for the loop's own eventfd (connections count from 1).
constexpr std::uint64_t kWakeTag = 0;

void SetBlocking(int fd, bool blocking) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return;
  ::fcntl(fd, F_SETFL, blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK);
}

void CloseConnection(int fd) {
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
}

}  // namespace

// One event-loop thread and the connections it sends to.
class BodySender::Loop {
 public:
  Loop(const Options& options, Counters* counters)
      : options_(options), counters_(counters) {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeTag;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    thread_ = std::thread([this] { Run(); });
  }

  ~Loop() {
    Stop();
    ::close(wake_fd_);
    ::close(epoll_fd_);
  }

  // Any thread. False once stopping (the job stays with the caller).
  bool Add(std::unique_ptr<Job>& job) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    WakeUnlessPending();
    inbox_.push_back(std::move(job));
    held_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // Connections given to this loop and not yet let go (any thread).
  std::size_t held() const { return held_.load(std::memory_order_relaxed); }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      Wake();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  // One connection's body in progress.
  struct Connection final : StreamFile::Watcher {
    Loop* loop = nullptr;
    std::uint64_t tag = 0;
    std::unique_ptr<Job> job;
    std::uint64_t sent = 0;           // body bytes the client took
    StreamReader::Extent extent;      // bytes in hand, not yet all sent
    std::size_t extent_sent = 0;
    bool has_extent = false;
    // Parked at the frontier, as far as the loop knows: a late notice of
    // an earlier registration can clear it while c is registered again.
    bool watching = false;
    std::optional<Clock::time_point> blocked_since;  // socket full since
    Clock::time_point started;        // adopted at
    // Sent to with sendfile until judged fast (Options), then from the
    // mapping; judged once.
    bool slow_client = true;
    bool judged = false;
    Clock::time_point idle_until;     // a park: closed if nothing comes by then

    bool park() const { return static_cast<bool>(job->on_readable); }

    // On the stream's writer or batcher thread (see StreamFile::Watcher).
    void StreamMoved() override { loop->Moved(tag); }
  };

  void Wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t w = ::write(wake_fd_, &one, sizeof(one));
  }

  // Under mu_, before adding news: a loop that has news waiting will take
  // it all at once, so only the first piece needs a wake-up (a stream with
  // 50 parked readers would otherwise cost its writer 50 system calls).
  void WakeUnlessPending() {
    if (inbox_.empty() && moved_.empty()) Wake();
  }

  void Moved(std::uint64_t tag) {
    std::lock_guard<std::mutex> lock(mu_);
    WakeUnlessPending();
    moved_.push_back(tag);
  }

  void Run() {
    // sendfile(2) takes no MSG_NOSIGNAL: a client gone away must be an
    // EPIPE here, not a SIGPIPE that ends the process.
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
    std::vector<epoll_event> events(256);
    auto last_sweep = Clock::now();
    std::vector<std::unique_ptr<Job>> inbox;
    std::vector<std::uint64_t> moved, runnable;
    for (;;) {
      // A loop sending bodies runs long slices: switched less often, and
      // threads answering requests run first. One holding only parked
      // connections answers hits itself: it runs as soon as it wakes (see
      // cpu_slice.h; no system call unless this changes).
      if (bodies_ > 0) {
        UseBulkCpuSlice();
      } else {
        UseInteractiveCpuSlice();
      }
      const int timeout_ms = runnable_.empty() ? static_cast<int>(kSweepEvery.count()) : 0;
      const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                                 timeout_ms);
      for (int i = 0; i < n; ++i) {
        const std::uint64_t tag = events[static_cast<std::size_t>(i)].data.u64;
        if (tag == kWakeTag) {
          std::uint64_t count;
          [[maybe_unused]] const ssize_t r = ::read(wake_fd_, &count, sizeof(count));
          continue;
        }
        Connection* c = Find(tag);
        if (c == nullptr) continue;
        const std::uint32_t what = events[static_cast<std::size_t>(i)].events;
        if (c->park()) {
          HandBack(*c);  // bytes, a close or an error: the owner reads which
        } else if ((what & (EPOLLERR | EPOLLHUP)) != 0) {
          End(*c, Status::IOError("client went away"));
        } else if (!c->watching) {
          Pump(*c);
        }
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) break;
        inbox.swap(inbox_);
        moved.swap(moved_);
      }
      for (auto& job : inbox) Adopt(std::move(job));
      inbox.clear();
      for (std::uint64_t tag : moved) {
        Connection* c = Find(tag);
        if (c == nullptr || !c->watching) continue;
        c->watching = false;
        Pump(*c);
      }
      moved.clear();
      runnable.swap(runnable_);
      for (std::uint64_t tag : runnable) {
        if (Connection* c = Find(tag)) Pump(*c);
      }
      runnable.clear();
      const auto now = Clock::now();
      if (now - last_sweep >= kSweepEvery) {
        last_sweep = now;
        EndStalled(now);
      }
    }
    // Stopping: every job still here ends now; jobs never adopted too.
    std::vector<std::uint64_t> tags;
    for (const auto& [tag, c] : connections_) tags.push_back(tag);
    for (std::uint64_t tag : tags) End(*Find(tag), Status::Cancelled());
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& job : inbox_) {
      counters_->Remove(static_cast<bool>(job->on_readable));
      if (job->on_end) job->on_end(Status::Cancelled(), 0);
      CloseConnection(job->fd);
    }
    inbox_.clear();
  }

  Connection* Find(std::uint64_t tag) {
    auto it = connections_.find(tag);
    return it == connections_.end() ? nullptr : it->second.get();
  }

  void Adopt(std::unique_ptr<Job> job) {
    auto c = std::make_unique<Connection>();
    c->loop = this;
    c->tag = next_tag_++;
    c->job = std::move(job);
    c->started = Clock::now();
    epoll_event ev{};
    if (c->park()) {
      // Level-triggered: bytes that came before the registration count.
      ev.events = EPOLLIN | EPOLLRDHUP;
      c->idle_until = Clock::now() + c->job->idle_timeout;
    } else {
      SetBlocking(c->job->fd, false);
      ev.events = EPOLLOUT | EPOLLET;
    }
    ev.data.u64 = c->tag;
    Connection& ref = *c;
    if (!ref.park()) ++bodies_;
    connections_.emplace(c->tag, std::move(c));
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, ref.job->fd, &ev) != 0) {
      End(ref, Status::FromErrno("epoll_ctl", errno));
      return;
    }
    if (!ref.park()) Pump(ref);
  }

  // Sends what the socket takes, up to one turn's bytes; then waits for
  // the socket (EPOLLOUT), the stream (Watch) or the next turn.
  void Pump(Connection& c) {
    if (!c.judged) JudgeClient(c, Clock::now());
    Job& job = *c.job;
    std::size_t budget = options_.turn_bytes;
    for (;;) {
      if (!c.has_extent) {
        if (c.sent == job.length) {
          Finish(c);
          return;
        }
        // A deadline in the past: never blocks, says kDeadlineExceeded at
        // the frontier.
        // At most kMaxSendExtent: bytes a stream may release once its
        // readers passed them must be sent by then (StreamFile::ReleasePassedBytes).
        StreamReader::Extent extent = job.reader->NextExtent(
            static_cast<std::size_t>(
                std::min<std::uint64_t>(job.length - c.sent, StreamFile::kMaxSendExtent)),
            Deadline{});
        if (extent.status.code() == Status::Code::kDeadlineExceeded) {
          if (job.reader->Watch(&c)) {
            c.watching = true;
            return;
          }
          continue;  // the stream moved on meanwhile
        }
        if (!extent.status.ok()) {
          End(c, extent.status);
          return;
        }
        c.extent = extent;
        c.extent_sent = 0;
        c.has_extent = true;
      }
      const std::size_t want = std::min(c.extent.length - c.extent_sent, budget);
      ssize_t n;
      if (c.extent.data != nullptr && (!c.slow_client || c.extent.fd < 0)) {
        n = ::send(job.fd, c.extent.data + c.extent_sent, want, MSG_NOSIGNAL);
      } else {
        // A client not found fast, or a stream file that could not be
        // mapped: the kernel sends from the file.
        off_t offset = static_cast<off_t>(c.extent.offset + c.extent_sent);
        n = ::sendfile(job.fd, c.extent.fd, &offset, want);
        if (n == 0) {
          End(c, Status::Corruption("stream file shorter than its frontier"));
          return;
        }
        if (n > 0) counters_->sendfile_bytes.fetch_add(static_cast<std::uint64_t>(n),
                                                      std::memory_order_relaxed);
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          if (!c.blocked_since) c.blocked_since = Clock::now();
          return;  // EPOLLOUT comes when the client has taken some
        }
        End(c, errno == EFAULT ? Status::Corruption("stream file shorter than its frontier")
                               : Status::IOError(std::string("client went away: ") +
                                                 std::strerror(errno)));
        return;
      }
      c.blocked_since.reset();
      const auto sent = static_cast<std::size_t>(n);
      c.extent_sent += sent;
      c.sent += sent;
      if (c.extent_sent == c.extent.length) c.has_extent = false;
      budget -= std::min(budget, sent);
      if (budget == 0) {
        runnable_.push_back(c.tag);  // the others' turn first
        return;
      }
    }
  }

  // Once, at the first turn after judge_client_after: whether the client
  // has taken its bytes fast enough (a reader at the frontier, as fast as
  // the fetch) to be sent to from the mapping for the rest of its body.
  void JudgeClient(Connection& c, Clock::time_point now) {
    const auto elapsed = now - c.started;
    if (elapsed < options_.judge_client_after) return;
    const double seconds = std::chrono::duration<double>(elapsed).count();
    c.slow_client = static_cast<double>(c.sent) < options_.fast_client_bytes_per_second * seconds;
    c.judged = true;
  }

  // A parked connection has news: its owner answers it here and it stays
  // parked (a keep-alive hit costs no epoll_ctl and no wake-up of another
  // thread), or its owner takes it back.
  void HandBack(Connection& c) {
    if (c.job->on_readable(c.job->fd)) {
      c.idle_until = Clock::now() + c.job->idle_timeout;
      return;
    }
    std::unique_ptr<Job> job = Forget(c);
    counters_->Remove(true);
    if (job->resume) job->resume(job->fd);
  }

  // The whole body was sent.
  void Finish(Connection& c) {
    std::unique_ptr<Job> job = Forget(c);
    counters_->Remove(false);  // before anyone is told
    if (job->on_end) job->on_end(Status::Ok(), job->length);
    if (job->resume) {
      SetBlocking(job->fd, true);
      job->resume(job->fd);
    } else {
      CloseConnection(job->fd);
    }
  }

  void End(Connection& c, const Status& how) {
    const std::uint64_t sent = c.sent;
    const bool park = c.park();
    std::unique_ptr<Job> job = Forget(c);
    counters_->Remove(park);
    if (job->on_end) job->on_end(how, sent);
    CloseConnection(job->fd);
  }

  // Removes c from the loop and from its stream's watchers; returns its job.
  std::unique_ptr<Job> Forget(Connection& c) {
    // Whatever `watching` says: a notice that raced a registration (told
    // while Watch was still checking) leaves `watching` false with c still
    // registered, and c is freed below.
    if (c.job->reader) c.job->reader->Unwatch(&c);
    if (!c.park()) --bodies_;
    held_.fetch_sub(1, std::memory_order_relaxed);
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.job->fd, nullptr);
    std::unique_ptr<Job> job = std::move(c.job);
    connections_.erase(c.tag);  // destroys c
    return job;
  }

  void EndStalled(Clock::time_point now) {
    std::vector<std::uint64_t> stalled;
    for (const auto& [tag, c] : connections_) {
      if ((c->blocked_since && now - *c->blocked_since >= options_.write_timeout) ||
          (c->park() && now >= c->idle_until)) {
        stalled.push_back(tag);
      }
    }
    for (std::uint64_t tag : stalled) {
      End(*Find(tag), Status::DeadlineExceeded());
    }
  }

  const Options options_;
  Counters* const counters_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;

  std::mutex mu_;  // guards inbox_, moved_, stopping_
  std::vector<std::unique_ptr<Job>> inbox_;
  std::vector<std::uint64_t> moved_;  // connections whose stream moved on
  bool stopping_ = false;

  // Loop thread only.
  std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections_;
  std::vector<std::uint64_t> runnable_;  // turns to give without waiting
  std::size_t bodies_ = 0;               // connections_ that are not parks
  std::atomic<std::size_t> held_{0};     // Add()ed and not yet Forget()-ten
  std::uint64_t next_tag_ = kWakeTag + 1;

  std::thread thread_;  // last: starts once the rest is built
};

BodySender::BodySender(Options options) {
  const std::size_t threads = std::max<std::size_t>(1, options.threads);
  for (std::size_t i = 0; i < threads; ++i) {
    loops_.push_back(std::make_unique<Loop>(options, &counters_));
  }
}

BodySender::~BodySender() { Stop(); }

bool BodySender::Submit(std::unique_ptr<Job>& job) {
  // The loop holding the fewest connections: a connection stays in its
  // loop while it is kept alive, and loops given equal shares at random
  // end up unequal (one queues requests the other could answer).
  Loop* least = loops_.front().get();
  for (const auto& loop : loops_) {
    if (loop->held() < least->held()) least = loop.get();
  }
  Loop& loop = *least;
  const bool park = static_cast<bool>(job->on_readable);
  counters_.Add(park);
  if (loop.Add(job)) {
    if (!park) counters_.bodies_taken.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  counters_.Remove(park);
  return false;
}

void BodySender::Stop() {
  for (auto& loop : loops_) loop->Stop();
}

}  // namespace fanout
