#include "core/stream_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <random>

#include "core/wakeup_batcher.h"

namespace fanout {
namespace {

// A name no other stream file has had: a random per-process prefix plus a
// counter. O_EXCL guarantees it is new even across processes.
std::string UniqueStreamName() {
  static const std::uint64_t process_salt = [] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }();
  static std::atomic<std::uint64_t> counter{0};
  char name[64];
  std::snprintf(name, sizeof(name), "stream-%016" PRIx64 "-%06" PRIu64 ".part",
                process_salt, counter.fetch_add(1, std::memory_order_relaxed));
  return name;
}

std::string ParentDir(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open directory " + dir, errno);
  Status st;
  if (::fsync(fd) != 0) st = Status::FromErrno("fsync directory " + dir, errno);
  ::close(fd);
  return st;
}

}  // namespace

Status StreamFile::Create(const StreamFileOptions& options,
                          std::shared_ptr<StreamFile>* out) {
  const std::string dir = options.dir.empty() ? "." : options.dir;
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::string path = dir + "/" + UniqueStreamName();
    const int fd =
        ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      return Status::FromErrno("create stream file " + path, errno);
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return Status::FromErrno("fstat stream file " + path, err);
    }
    out->reset(new StreamFile(options, fd, std::move(path), st.st_dev,
                              st.st_ino));
    return Status::Ok();
  }
  return Status::IOError("could not find a free stream file name in " + dir);
}

StreamFile::StreamFile(const StreamFileOptions& options, int fd,
                       std::string path, dev_t dev, ino_t ino)
    : fd_(fd),
      dev_(dev),
      ino_(ino),
      batcher_(options.batcher),
      wake_batch_bytes_(options.wake_batch_bytes),
      path_(std::move(path)),
      last_wake_(std::chrono::steady_clock::now()) {}

StreamFile::~StreamFile() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Never leave an uncommitted (possibly partial) stream file behind.
    if (!committed_ && !removed_ && PathIsOursLocked()) ::unlink(path_.c_str());
  }
  ::close(fd_);
}

bool StreamFile::PathIsOursLocked() const {
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) return false;
  return st.st_dev == dev_ && st.st_ino == ino_;
}

// ---------------------------------------------------------------- writer

Status StreamFile::Append(const void* data, std::size_t n) {
  // Only the writer moves the frontier, so it can read it without the lock.
  const std::uint64_t offset = frontier_.load(std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ != State::kWriting) {
      return Status::InvalidArgument("append after the end of the stream");
    }
    if (expected_length_ && offset + n > *expected_length_) {
      FailLocked("stream grew past its announced length of " +
                 std::to_string(*expected_length_) + " bytes");
      return Status::StreamFailed(failure_);
    }
  }
  const char* p = static_cast<const char*>(data);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t w = ::pwrite(fd_, p + done, n - done,
                               static_cast<off_t>(offset + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const Status st = Status::FromErrno("write stream file " + path(),
                                          w < 0 ? errno : EIO);
      std::lock_guard<std::mutex> lock(mu_);
      FailLocked(st.message());
      return st;
    }
    done += static_cast<std::size_t>(w);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kWriting) {
    // Fail() was called while the bytes were being written.
    return Status::StreamFailed(failure_);
  }
  frontier_.store(offset + n, std::memory_order_release);
  MaybeWakeReadersLocked();
  return Status::Ok();
}

Status StreamFile::SetExpectedLength(std::uint64_t length) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kWriting) {
    return Status::InvalidArgument("length announced after the end of stream");
  }
  if (expected_length_) {
    if (*expected_length_ == length) return Status::Ok();
    return Status::InvalidArgument("length already announced as " +
                                   std::to_string(*expected_length_));
  }
  if (frontier_.load(std::memory_order_relaxed) > length) {
    return Status::InvalidArgument("more than " + std::to_string(length) +
                                   " bytes already written");
  }
  expected_length_ = length;
  return Status::Ok();
}

Status StreamFile::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kFinished) return Status::Ok();
  if (state_ == State::kFailed) return Status::StreamFailed(failure_);
  const std::uint64_t written = frontier_.load(std::memory_order_relaxed);
  if (expected_length_ && written != *expected_length_) {
    FailLocked("stream ended after " + std::to_string(written) +
               " of its announced " + std::to_string(*expected_length_) +
               " bytes");
    return Status::StreamFailed(failure_);
  }
  state_ = State::kFinished;
  WakeReadersLocked();
  return Status::Ok();
}

void StreamFile::Fail(std::string reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kWriting) return;
  FailLocked(std::move(reason));
}

void StreamFile::FailLocked(std::string reason) {
  state_ = State::kFailed;
  failure_ = reason.empty() ? "stream failed" : std::move(reason);
  failed_.store(true, std::memory_order_release);
  WakeReadersLocked();
}

Status StreamFile::Commit(const std::string& path) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ != State::kFinished) {
      return Status::InvalidArgument("commit of an unfinished stream");
    }
    if (removed_) return Status::InvalidArgument("commit of a removed stream");
  }
  if (::fdatasync(fd_) != 0) {
    return Status::FromErrno("fdatasync stream file " + this->path(), errno);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (::rename(path_.c_str(), path.c_str()) != 0) {
    return Status::FromErrno("rename " + path_ + " to " + path, errno);
  }
  path_ = path;
  committed_ = true;
  return SyncDir(ParentDir(path));
}

Status StreamFile::Remove() {
  std::lock_guard<std::mutex> lock(mu_);
  if (removed_) return Status::Ok();
  removed_ = true;
  if (!PathIsOursLocked()) return Status::Ok();
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno("unlink " + path_, errno);
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- wake-ups

void StreamFile::WakeReadersLocked() {
  woken_frontier_ = frontier_.load(std::memory_order_relaxed);
  last_wake_ = std::chrono::steady_clock::now();
  ++wakeups_;
  frontier_advanced_.notify_all();
}

void StreamFile::MaybeWakeReadersLocked() {
  if (waiters_ == 0) return;
  const std::uint64_t pending =
      frontier_.load(std::memory_order_relaxed) - woken_frontier_;
  if (batcher_ == nullptr || pending >= wake_batch_bytes_ ||
      std::chrono::steady_clock::now() - last_wake_ >= batcher_->max_delay()) {
    WakeReadersLocked();
    return;
  }
  if (!wake_scheduled_) {
    wake_scheduled_ = true;
    batcher_->Schedule(weak_from_this(), last_wake_ + batcher_->max_delay());
  }
}

void StreamFile::FlushWakeups() {
  std::lock_guard<std::mutex> lock(mu_);
  wake_scheduled_ = false;
  if (waiters_ > 0 &&
      frontier_.load(std::memory_order_relaxed) > woken_frontier_) {
    WakeReadersLocked();
  }
}

void StreamFile::CancelWaiters() {
  // Taking the lock orders this wake-up after a waiter's last check of its
  // cancelled flag, so it cannot be lost.
  std::lock_guard<std::mutex> lock(mu_);
  frontier_advanced_.notify_all();
}

// ---------------------------------------------------------------- readers

std::unique_ptr<StreamReader> StreamFile::OpenReader() {
  open_readers_.fetch_add(1, std::memory_order_relaxed);
  return std::unique_ptr<StreamReader>(new StreamReader(shared_from_this()));
}

StreamFile::State StreamFile::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

std::string StreamFile::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

std::optional<std::uint64_t> StreamFile::expected_length() const {
  std::lock_guard<std::mutex> lock(mu_);
  return expected_length_;
}

int StreamFile::WaitingReadersForTesting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiters_;
}

std::uint64_t StreamFile::WakeupsForTesting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return wakeups_;
}

std::string StreamFile::path() const {
  std::lock_guard<std::mutex> lock(mu_);
  return path_;
}

template <typename Ready>
Status StreamFile::WaitLocked(std::unique_lock<std::mutex>& lock,
                              const Ready& ready,
                              const std::atomic<bool>& cancelled,
                              Deadline deadline) {
  for (;;) {
    if (cancelled.load(std::memory_order_acquire)) return Status::Cancelled();
    if (state_ == State::kFailed) return Status::StreamFailed(failure_);
    if (ready()) return Status::Ok();
    if (state_ == State::kFinished) return Status::EndOfStream();
    ++waiters_;
    if (deadline == kNoDeadline) {
      frontier_advanced_.wait(lock);
    } else if (frontier_advanced_.wait_until(lock, deadline) ==
               std::cv_status::timeout) {
      --waiters_;
      // One last look: the bytes may have arrived just as time ran out.
      if (cancelled.load(std::memory_order_acquire)) return Status::Cancelled();
      if (state_ == State::kFailed) return Status::StreamFailed(failure_);
      if (ready()) return Status::Ok();
      if (state_ == State::kFinished) return Status::EndOfStream();
      return Status::DeadlineExceeded();
    }
    --waiters_;
  }
}

Status StreamFile::ReadFile(std::uint64_t offset, void* buf,
                            std::size_t n) const {
  char* p = static_cast<char*>(buf);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r =
        ::pread(fd_, p + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno("read stream file " + path(), errno);
    if (r == 0) {
      return Status::IOError("stream file " + path() +
                             " is shorter than its frontier (" +
                             std::to_string(frontier()) + " bytes)");
    }
    done += static_cast<std::size_t>(r);
  }
  return Status::Ok();
}

StreamReader::StreamReader(std::shared_ptr<StreamFile> stream)
    : stream_(std::move(stream)) {}

StreamReader::~StreamReader() { Close(); }

void StreamReader::Cancel() {
  if (cancelled_.exchange(true, std::memory_order_acq_rel)) return;
  stream_->CancelWaiters();
}

void StreamReader::Close() {
  Cancel();
  if (!closed_.exchange(true, std::memory_order_acq_rel)) {
    stream_->ReaderClosed();
  }
}

StreamReader::Result StreamReader::Read(void* buf, std::size_t len,
                                        Deadline deadline) {
  if (len == 0) return {0, Status::Ok()};
  StreamFile& s = *stream_;
  std::uint64_t frontier = s.frontier();
  // Fast path: bytes are already there; no lock, no wait.
  if (frontier <= position_ || s.failed_.load(std::memory_order_acquire) ||
      cancelled_.load(std::memory_order_acquire)) {
    std::unique_lock<std::mutex> lock(s.mu_);
    const Status st = s.WaitLocked(
        lock, [&] { return s.frontier_.load(std::memory_order_relaxed) > position_; },
        cancelled_, deadline);
    if (!st.ok()) return {0, st};
    frontier = s.frontier();
  }
  const std::size_t n =
      static_cast<std::size_t>(std::min<std::uint64_t>(len, frontier - position_));
  Status st = s.ReadFile(position_, buf, n);
  if (!st.ok()) return {0, st};
  position_ += n;
  return {n, Status::Ok()};
}

StreamReader::Result StreamReader::ReadAt(std::uint64_t offset, void* buf,
                                          std::size_t len,
                                          Deadline deadline) const {
  if (len == 0) return {0, Status::Ok()};
  if (offset > UINT64_MAX - len) {
    return {0, Status::InvalidArgument("read_at past the largest offset")};
  }
  StreamFile& s = *stream_;
  const std::uint64_t end = offset + len;
  std::size_t n = len;
  Status result;
  if (s.frontier() < end || s.failed_.load(std::memory_order_acquire) ||
      cancelled_.load(std::memory_order_acquire)) {
    std::unique_lock<std::mutex> lock(s.mu_);
    result = s.WaitLocked(
        lock, [&] { return s.frontier_.load(std::memory_order_relaxed) >= end; },
        cancelled_, deadline);
    if (result.code() == Status::Code::kEndOfStream) {
      const std::uint64_t frontier = s.frontier();
      n = frontier > offset ? static_cast<std::size_t>(frontier - offset) : 0;
    } else if (!result.ok()) {
      return {0, result};
    }
  }
  if (n > 0) {
    Status st = s.ReadFile(offset, buf, n);
    if (!st.ok()) return {0, st};
  }
  return {n, result};
}

}  // namespace fanout
