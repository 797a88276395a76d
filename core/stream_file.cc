#include "core/stream_file.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <random>

#include "core/durable_file.h"
#include "core/memory_budget.h"
#include "core/wakeup_batcher.h"

namespace fanout {
namespace {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "futex words must be plain 32-bit atomics");

// Sleeps while *word == expected, until woken or the deadline passes. May
// return early (spurious wake-up, signal): callers re-check their condition.
void FutexWait(std::atomic<std::uint32_t>* word, std::uint32_t expected, Deadline deadline) {
  timespec timeout{};
  timespec* timeout_ptr = nullptr;
  if (deadline != kNoDeadline) {
    const auto left = std::max(deadline - std::chrono::steady_clock::now(),
                               std::chrono::steady_clock::duration::zero());
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timeout.tv_sec = static_cast<time_t>(ns / 1000000000);
    timeout.tv_nsec = static_cast<long>(ns % 1000000000);
    timeout_ptr = &timeout;
  }
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected,
            timeout_ptr, nullptr, 0);
}

// See MaybeWakeReadersLocked.
constexpr auto kWakeCostPerWaiter = std::chrono::microseconds(10);
constexpr int kInlineWakeMaxWaiters = 64;

void FutexWakeAll(std::atomic<std::uint32_t>* word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT_MAX,
            nullptr, nullptr, 0);
}

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

// Errors that mean the disk has no room for the bytes (not that it broke).
bool IsDiskFull(int err) { return err == ENOSPC || err == EDQUOT || err == EFBIG; }

// Errors that mean no stream file can be made here now, where the bytes
// could still be served from memory.
bool IsDiskRefusal(int err) {
  return IsDiskFull(err) || err == EROFS || err == EACCES || err == EPERM || err == ENOENT;
}

bool IsHex(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

bool IsDecimal(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace

bool StreamFile::IsStreamFileName(std::string_view name) {
  constexpr std::string_view kPrefix = "stream-", kSuffix = ".part";
  if (name.size() < kPrefix.size() + 16 + 2 + kSuffix.size() ||
      name.substr(0, kPrefix.size()) != kPrefix ||
      name.substr(name.size() - kSuffix.size()) != kSuffix) {
    return false;
  }
  const std::string_view unique =
      name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  return unique.size() > 17 && unique[16] == '-' && IsHex(unique.substr(0, 16)) &&
         IsDecimal(unique.substr(17));
}

Status StreamFile::Create(const StreamFileOptions& options,
                          std::shared_ptr<StreamFile>* out) {
  const std::string dir = options.dir.empty() ? "." : options.dir;
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::string path = dir + "/" + UniqueStreamName();
    const int fd =
        ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      const int err = errno;
      if (err == EEXIST) continue;
      // The directory was deleted under the daemon: make it again, once.
      if (err == ENOENT && attempt == 0 && ::mkdir(dir.c_str(), 0755) == 0) continue;
      const Status st = Status::FromErrno("create stream file " + path, err);
      if (IsDiskRefusal(err) && options.spill_budget != nullptr) {
        // No file to be had (full, read-only, not ours to write): a stream
        // in memory alone serves its readers all the same, and is never kept.
        std::shared_ptr<StreamFile> stream(new StreamFile(options, -1, "", 0, 0));
        stream->spill_why_ = st.message();
        stream->spill_from_.store(0, std::memory_order_release);
        *out = std::move(stream);
        return Status::Ok();
      }
      return st;
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

Status StreamFile::OpenCommitted(const StreamFileOptions& options, const std::string& path,
                                 std::uint64_t expected_length,
                                 std::shared_ptr<StreamFile>* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("no body file " + path);
    return Status::FromErrno("open " + path, errno);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::FromErrno("fstat " + path, err);
  }
  if (static_cast<std::uint64_t>(st.st_size) != expected_length) {
    ::close(fd);
    return Status::Corruption(path + " holds " + std::to_string(st.st_size) +
                              " bytes, its entry says " + std::to_string(expected_length));
  }
  std::shared_ptr<StreamFile> stream(new StreamFile(options, fd, path, st.st_dev, st.st_ino));
  {
    std::lock_guard<std::mutex> lock(stream->mu_);
    stream->state_ = State::kFinished;
    stream->expected_length_ = expected_length;
    stream->committed_ = true;
    stream->frontier_.store(expected_length, std::memory_order_release);
    stream->finished_.store(true, std::memory_order_release);
  }
  *out = std::move(stream);
  return Status::Ok();
}

StreamFile::StreamFile(const StreamFileOptions& options, int fd,
                       std::string path, dev_t dev, ino_t ino)
    : fd_(fd),
      dev_(dev),
      ino_(ino),
      batcher_(options.batcher),
      wake_batch_bytes_(options.wake_batch_bytes),
      spill_budget_(options.spill_budget),
      path_(std::move(path)),
      last_wake_(std::chrono::steady_clock::now()) {}

StreamFile::~StreamFile() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Never leave an uncommitted (possibly partial) stream file behind.
    if (!committed_ && !removed_ && !keep_file_ && PathIsOursLocked()) ::unlink(path_.c_str());
  }
  if (const char* map = mapping_.load()) ::munmap(const_cast<char*>(map), mapping_length_);
  if (fd_ >= 0) ::close(fd_);
  if (spill_budget_ != nullptr) spill_budget_->Give(spill_bytes_);
}

const char* StreamFile::Mapping() {
  if (const char* map = mapping_.load(std::memory_order_acquire)) return map;
  std::lock_guard<std::mutex> lock(mu_);
  if (const char* map = mapping_.load(std::memory_order_relaxed)) return map;
  std::uint64_t length = 0;
  if (expected_length_) {
    length = *expected_length_;
  } else if (state_ == State::kFinished) {
    length = frontier_.load(std::memory_order_relaxed);
  }
  if (length == 0 || state_ == State::kFailed || fd_ < 0) return nullptr;
  // Mapping past the current end of a file still being written is allowed;
  // only bytes below the frontier (already in the file) are ever used.
  void* map = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd_, 0);
  if (map == MAP_FAILED) return nullptr;
  mapping_length_ = length;
  mapping_.store(static_cast<const char*>(map), std::memory_order_release);
  return static_cast<const char*>(map);
}

bool StreamFile::PathIsOursLocked() const {
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) return false;
  return st.st_dev == dev_ && st.st_ino == ino_;
}

// ---------------------------------------------------------------- writer

Status StreamFile::Append(const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  return AppendWith(
      n,
      [&](std::size_t done, std::uint64_t at) {
        return ::pwrite(fd_, p + done, n - done, static_cast<off_t>(at));
      },
      [&](std::size_t done, std::string*) { return std::string_view(p + done, n - done); });
}

Status StreamFile::AppendFromPipe(int pipe, std::size_t n) {
  return AppendWith(
      n,
      [&](std::size_t done, std::uint64_t at) {
        auto offset = static_cast<loff_t>(at);
        return ::splice(pipe, nullptr, fd_, &offset, n - done, SPLICE_F_MOVE);
      },
      [&](std::size_t done, std::string* rest) -> std::optional<std::string_view> {
        // The file took no more: what is left is taken out of the pipe.
        rest->resize(n - done);
        std::size_t got = 0;
        while (got < rest->size()) {
          const ssize_t r = ::read(pipe, rest->data() + got, rest->size() - got);
          if (r < 0 && errno == EINTR) continue;
          if (r <= 0) return std::nullopt;
          got += static_cast<std::size_t>(r);
        }
        return std::string_view(*rest);
      });
}

template <typename WriteSome, typename TakeRest>
Status StreamFile::AppendWith(std::size_t n, const WriteSome& write_some,
                              const TakeRest& take_rest) {
  DeferredWake wake(*this);
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
  std::size_t done = 0;
  // Once the disk was full, the rest of the stream stays in memory: bytes
  // written after a gap would not make the file any more whole.
  while (done < n && spill_from_.load(std::memory_order_relaxed) == UINT64_MAX) {
    const ssize_t w = write_some(done, offset + done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = w < 0 ? errno : EIO;
      std::lock_guard<std::mutex> lock(mu_);
      const Status st = Status::FromErrno("write stream file " + path_, err);
      if (IsDiskFull(err) && spill_budget_ != nullptr) {
        spill_why_ = st.message();
        spill_from_.store(offset + done, std::memory_order_release);
        break;
      }
      FailLocked(st.message());
      return st;
    }
    done += static_cast<std::size_t>(w);
  }
  std::string rest_buffer;
  std::optional<std::string_view> rest;
  if (done < n) rest = take_rest(done, &rest_buffer);
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kWriting) {
    // Fail() was called while the bytes were being written.
    return Status::StreamFailed(failure_);
  }
  if (done < n && !rest) {
    FailLocked("the body's bytes could not be taken from the pipe");
    return Status::IOError(failure_);
  }
  if (done < n && !SpillLocked(offset + done, rest->data(), rest->size())) {
    FailLocked(spill_why_ + "; no memory is left to hold the rest (" +
               std::to_string(spill_budget_->total()) + " bytes for all full-disk streams)");
    return Status::IOError(failure_);
  }
  // seq_cst, paired with Wait(): either a registering waiter sees these
  // bytes, or MaybeWakeReadersLocked sees the waiter.
  frontier_.store(offset + n, std::memory_order_seq_cst);
  MaybeWakeReadersLocked();
  return Status::Ok();
}

bool StreamFile::SpillLocked(std::uint64_t offset, const char* data, std::size_t n) {
  if (spill_budget_ == nullptr || !spill_budget_->Take(n)) return false;
  std::lock_guard<std::mutex> lock(spill_mu_);
  spill_offsets_.push_back(offset);
  spill_chunks_.emplace_back(data, n);
  spill_bytes_ += n;
  return true;
}

std::pair<const char*, std::size_t> StreamFile::SpilledAt(std::uint64_t offset) const {
  std::lock_guard<std::mutex> lock(spill_mu_);
  const auto next = std::upper_bound(spill_offsets_.begin(), spill_offsets_.end(), offset);
  const std::size_t i = static_cast<std::size_t>(next - spill_offsets_.begin()) - 1;
  const std::string& chunk = spill_chunks_[i];
  const std::size_t within = static_cast<std::size_t>(offset - spill_offsets_[i]);
  return {chunk.data() + within, chunk.size() - within};
}

std::optional<StreamFile::Spill> StreamFile::spilled() const {
  std::lock_guard<std::mutex> lock(mu_);
  const std::uint64_t from = spill_from_.load(std::memory_order_acquire);
  if (from == UINT64_MAX) return std::nullopt;
  return Spill{from, spill_why_};
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

void StreamFile::Reserve(std::uint64_t length) {
  // Only the writer writes the file and moves the frontier.
  const std::uint64_t from = frontier_.load(std::memory_order_relaxed);
  if (fd_ < 0 || has_spilled() || length <= from) return;
  (void)::fallocate(fd_, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(from),
                    static_cast<off_t>(length - from));
}

Status StreamFile::Finish() {
  DeferredWake wake(*this);
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
  finished_.store(true, std::memory_order_seq_cst);
  WakeReadersLocked();
  return Status::Ok();
}

void StreamFile::Fail(std::string reason) {
  DeferredWake wake(*this);
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kWriting) return;
  FailLocked(std::move(reason));
}

void StreamFile::FailLocked(std::string reason) {
  state_ = State::kFailed;
  failure_ = reason.empty() ? "stream failed" : std::move(reason);
  failed_.store(true, std::memory_order_seq_cst);
  WakeReadersLocked();
}

Status StreamFile::Commit(const std::string& path) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ != State::kFinished) {
      return Status::InvalidArgument("commit of an unfinished stream");
    }
    if (removed_) return Status::InvalidArgument("commit of a removed stream");
    if (const std::uint64_t from = spill_from_.load(std::memory_order_acquire);
        from != UINT64_MAX) {
      return Status::IOError("the cache disk filled up after " + std::to_string(from) +
                             " bytes: " + spill_why_);
    }
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

Status StreamFile::Sync() {
  if (fd_ < 0 || has_spilled()) return Status::IOError("the stream is not all on disk");
  if (::fdatasync(fd_) != 0) return Status::FromErrno("fdatasync stream file " + path(), errno);
  return Status::Ok();
}

void StreamFile::KeepFile() {
  std::lock_guard<std::mutex> lock(mu_);
  keep_file_ = true;
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
  // The futex wake itself is issued by a DeferredWake once mu_ is released:
  // waking 1,000 threads takes long, and the writer must not wait for mu_.
  wake_seq_.fetch_add(1, std::memory_order_seq_cst);
}

void StreamFile::WakeWaiters() {
  wake_seq_.fetch_add(1, std::memory_order_seq_cst);
  if (waiters_.load(std::memory_order_seq_cst) > 0) FutexWakeAll(&wake_seq_);
  if (watcher_count_.load(std::memory_order_seq_cst) > 0) TellWatchers();
}

StreamFile::DeferredWake::DeferredWake(StreamFile& stream)
    : stream_(stream), seq_(stream.wake_seq_.load(std::memory_order_seq_cst)) {}

StreamFile::DeferredWake::~DeferredWake() {
  if (stream_.wake_seq_.load(std::memory_order_seq_cst) != seq_ &&
      stream_.waiters_.load(std::memory_order_seq_cst) > 0) {
    FutexWakeAll(&stream_.wake_seq_);
    if (stream_.watcher_count_.load(std::memory_order_seq_cst) > 0) stream_.TellWatchers();
  }
}

bool StreamFile::AddWatcher(Watcher* w, std::uint64_t position,
                            const std::atomic<bool>& cancelled) {
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    // At most one registration per watcher: a watcher registered twice
    // would be told twice, and could be freed between the two notices.
    if (std::find(watchers_.begin(), watchers_.end(), w) == watchers_.end()) {
      watchers_.push_back(w);
      watcher_count_.fetch_add(1, std::memory_order_seq_cst);
      waiters_.fetch_add(1, std::memory_order_seq_cst);
    }
  }
  // As in Wait(): registered first, checked after, so either this sees the
  // writer's news or the writer sees the registration.
  if (frontier_.load(std::memory_order_seq_cst) > position ||
      finished_.load(std::memory_order_seq_cst) || failed_.load(std::memory_order_seq_cst) ||
      cancelled.load(std::memory_order_seq_cst)) {
    RemoveWatcher(w);
    return false;
  }
  return true;
}

void StreamFile::RemoveWatcher(Watcher* w) {
  std::lock_guard<std::mutex> lock(watch_mu_);
  for (auto it = watchers_.begin(); it != watchers_.end(); ++it) {
    if (*it != w) continue;
    watchers_.erase(it);
    watcher_count_.fetch_sub(1, std::memory_order_seq_cst);
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
    return;
  }
}

void StreamFile::TellWatchers() {
  std::lock_guard<std::mutex> lock(watch_mu_);
  const int told = static_cast<int>(watchers_.size());
  watcher_count_.fetch_sub(told, std::memory_order_seq_cst);
  waiters_.fetch_sub(told, std::memory_order_seq_cst);
  for (Watcher* w : watchers_) w->StreamMoved();
  watchers_.clear();
}

void StreamFile::MaybeWakeReadersLocked() {
  const int waiters = waiters_.load(std::memory_order_seq_cst);
  if (waiters == 0) return;
  const std::uint64_t pending =
      frontier_.load(std::memory_order_relaxed) - woken_frontier_;
  if (batcher_ == nullptr) {
    WakeReadersLocked();
    return;
  }
  // A wake-up costs every waiter a context switch (a few microseconds of
  // CPU each), so wake-ups are spaced at least kWakeCostPerWaiter per
  // waiter apart: with 1,000 readers at the frontier the writer still gets
  // most of the CPU, and no byte waits longer than that gap.
  const auto now = std::chrono::steady_clock::now();
  const auto min_gap = kWakeCostPerWaiter * waiters;
  const auto since = now - last_wake_;
  const bool due =
      since >= min_gap && (pending >= wake_batch_bytes_ || since >= batcher_->max_delay());
  if (due && waiters < kInlineWakeMaxWaiters) {
    WakeReadersLocked();
    return;
  }
  // Many waiters: the batcher's thread pays for waking them, not the writer.
  if (!wake_scheduled_) {
    wake_scheduled_ = true;
    const auto delay = std::max<std::chrono::steady_clock::duration>(batcher_->max_delay(), min_gap);
    batcher_->Schedule(weak_from_this(), due ? now : last_wake_ + delay);
  }
}

void StreamFile::FlushWakeups() {
  DeferredWake wake(*this);
  std::lock_guard<std::mutex> lock(mu_);
  wake_scheduled_ = false;
  if (waiters_.load(std::memory_order_seq_cst) > 0 &&
      frontier_.load(std::memory_order_relaxed) > woken_frontier_) {
    WakeReadersLocked();
  }
}

void StreamFile::CancelWaiters() {
  // Bumping the sequence makes a waiter that checked its cancelled flag
  // just before return from (or not enter) its sleep, so it cannot be lost.
  WakeWaiters();
}

// ---------------------------------------------------------------- readers

std::unique_ptr<StreamReader> StreamFile::OpenReader() {
  std::unique_ptr<StreamReader> reader(new StreamReader(shared_from_this()));
  std::lock_guard<std::mutex> lock(readers_mu_);
  readers_.push_back(reader.get());
  return reader;
}

void StreamFile::ReaderClosed(const StreamReader* reader) {
  std::lock_guard<std::mutex> lock(readers_mu_);
  const auto it = std::find(readers_.begin(), readers_.end(), reader);
  if (it != readers_.end()) {
    *it = readers_.back();
    readers_.pop_back();
  }
  if (progress_wanted_.load(std::memory_order_relaxed)) progress_moved_.notify_all();
}

void StreamFile::NoteReaderProgress() {
  // One relaxed load per read when no writer waits: the common case.
  if (!progress_wanted_.load(std::memory_order_relaxed)) return;
  std::lock_guard<std::mutex> lock(readers_mu_);
  progress_moved_.notify_all();
}

std::size_t StreamFile::open_readers() const {
  std::lock_guard<std::mutex> lock(readers_mu_);
  return readers_.size();
}

StreamFile::ReaderProgress StreamFile::Progress() const {
  ReaderProgress progress;
  std::lock_guard<std::mutex> lock(readers_mu_);
  progress.readers = readers_.size();
  for (const StreamReader* reader : readers_) {
    const std::uint64_t position = reader->position();
    if (!progress.slowest || position < *progress.slowest) progress.slowest = position;
  }
  return progress;
}

void StreamFile::WaitForReaderProgress(Deadline deadline) {
  std::unique_lock<std::mutex> lock(readers_mu_);
  // Set under the lock: a reader that moves on after this sees it, and
  // takes the lock to notify, so its notice cannot fall between the flag
  // and the wait.
  progress_wanted_.store(true, std::memory_order_seq_cst);
  if (!failed_.load(std::memory_order_acquire)) progress_moved_.wait_until(lock, deadline);
  progress_wanted_.store(false, std::memory_order_relaxed);
}

std::uint64_t StreamFile::ReleasePassedBytes(std::uint64_t slack) {
  const std::uint64_t from = released_.load(std::memory_order_relaxed);
  std::uint64_t end = from;
  {
    std::lock_guard<std::mutex> lock(readers_mu_);
    if (readers_.empty()) return from;
    std::uint64_t slowest = frontier_.load(std::memory_order_acquire);
    for (const StreamReader* reader : readers_) slowest = std::min(slowest, reader->position());
    if (slowest <= slack) return from;
    end = std::max(from, (slowest - slack) / kReleaseUnit * kReleaseUnit);
    if (end == from) return from;
    // Published under the lock: a reader registered after this checks it
    // before it reads (ReleasedCheck) and fails instead of reading zeros.
    released_.store(end, std::memory_order_seq_cst);
  }
  // Errors (a file system without hole punching) only cost the disk space.
  if (fd_ >= 0) {
    const std::uint64_t disk_end = std::min(end, spill_from_.load(std::memory_order_acquire));
    if (disk_end > from) {
      (void)::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        static_cast<off_t>(from), static_cast<off_t>(disk_end - from));
    }
  }
  FreeSpilledBelow(end);
  return end;
}

void StreamFile::FreeSpilledBelow(std::uint64_t offset) {
  std::uint64_t freed = 0;
  {
    std::lock_guard<std::mutex> lock(spill_mu_);
    while (spill_freed_chunks_ < spill_chunks_.size() &&
           spill_offsets_[spill_freed_chunks_] + spill_chunks_[spill_freed_chunks_].size() <=
               offset) {
      std::string& chunk = spill_chunks_[spill_freed_chunks_++];
      freed += chunk.size();
      std::string().swap(chunk);
    }
    spill_bytes_ -= freed;
  }
  if (freed > 0) spill_budget_->Give(freed);
}

Status StreamFile::WaitForByte(std::uint64_t offset, Deadline deadline) {
  const std::atomic<bool> never_cancelled{false};
  return Wait([&] { return frontier_.load(std::memory_order_seq_cst) > offset; },
              never_cancelled, deadline);
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
  return waiters_.load(std::memory_order_seq_cst);
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
Status StreamFile::Wait(const Ready& ready, const std::atomic<bool>& cancelled,
                        Deadline deadline) {
  // Readers never take mu_ to wait: 1,000 readers woken at once would
  // otherwise queue on it, and the writer behind them. Instead each waiter
  // registers, reads the wake-up sequence, checks, and sleeps on the
  // sequence word; any change to it (a wake-up) ends the sleep.
  for (;;) {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    const std::uint32_t seq = wake_seq_.load(std::memory_order_seq_cst);
    Status st;
    bool decided = true;
    if (cancelled.load(std::memory_order_seq_cst)) {
      st = Status::Cancelled();
    } else if (failed_.load(std::memory_order_seq_cst)) {
      st = Status::StreamFailed(failure());
    } else if (ready()) {
      st = Status::Ok();
    } else if (finished_.load(std::memory_order_seq_cst)) {
      st = ready() ? Status::Ok() : Status::EndOfStream();
    } else if (std::chrono::steady_clock::now() >= deadline) {
      st = Status::DeadlineExceeded();
    } else {
      decided = false;
      FutexWait(&wake_seq_, seq, deadline);
    }
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
    if (decided) return st;
  }
}

Status StreamFile::ReleasedCheck(std::uint64_t offset) const {
  const std::uint64_t released = released_.load(std::memory_order_seq_cst);
  if (offset >= released) return Status::Ok();
  return Status::StreamFailed("bytes below " + std::to_string(released) +
                              " of the stream were already given back");
}

Status StreamFile::ReadFile(std::uint64_t offset, void* buf,
                            std::size_t n) const {
  if (Status st = ReleasedCheck(offset); !st.ok()) return st;
  char* p = static_cast<char*>(buf);
  const std::uint64_t spill_from = spill_from_.load(std::memory_order_acquire);
  const std::size_t on_disk =
      offset < spill_from ? static_cast<std::size_t>(std::min<std::uint64_t>(n, spill_from - offset))
                          : 0;
  std::size_t done = 0;
  while (done < on_disk) {
    const ssize_t r =
        ::pread(fd_, p + done, on_disk - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno("read stream file " + path(), errno);
    if (r == 0) {
      return Status::IOError("stream file " + path() +
                             " is shorter than its frontier (" +
                             std::to_string(frontier()) + " bytes)");
    }
    done += static_cast<std::size_t>(r);
  }
  while (done < n) {
    const auto [bytes, length] = SpilledAt(offset + done);
    const std::size_t take = std::min(length, n - done);
    std::memcpy(p + done, bytes, take);
    done += take;
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
    stream_->ReaderClosed(this);
  }
}

Status StreamReader::WaitPastPosition(Deadline deadline, std::uint64_t* frontier) {
  StreamFile& s = *stream_;
  const std::uint64_t position = this->position();
  *frontier = s.frontier();
  // Fast path: bytes are already there; no lock, no wait.
  if (*frontier > position && !s.failed_.load(std::memory_order_acquire) &&
      !cancelled_.load(std::memory_order_acquire)) {
    return Status::Ok();
  }
  const Status st = s.Wait(
      [&] { return s.frontier_.load(std::memory_order_seq_cst) > position; }, cancelled_,
      deadline);
  *frontier = s.frontier();
  return st;
}

StreamReader::Result StreamReader::Read(void* buf, std::size_t len,
                                        Deadline deadline) {
  if (len == 0) return {0, Status::Ok()};
  std::uint64_t frontier = 0;
  Status st = WaitPastPosition(deadline, &frontier);
  if (!st.ok()) return {0, st};
  const std::uint64_t position = this->position();
  const std::size_t n =
      static_cast<std::size_t>(std::min<std::uint64_t>(len, frontier - position));
  st = stream_->ReadFile(position, buf, n);
  if (!st.ok()) return {0, st};
  Advance(position + n);
  return {n, Status::Ok()};
}

bool StreamReader::Watch(StreamFile::Watcher* w) {
  return stream_->AddWatcher(w, position(), cancelled_);
}

void StreamReader::Unwatch(StreamFile::Watcher* w) { stream_->RemoveWatcher(w); }

StreamReader::Extent StreamReader::NextExtent(std::size_t max, Deadline deadline) {
  const std::uint64_t position = this->position();
  if (max == 0) return {stream_->fd_, position, 0, Status::Ok(), nullptr};
  std::uint64_t frontier = 0;
  const Status st = WaitPastPosition(deadline, &frontier);
  if (!st.ok()) return {-1, position, 0, st, nullptr};
  if (Status released = stream_->ReleasedCheck(position); !released.ok()) {
    return {-1, position, 0, released, nullptr};
  }
  std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(max, frontier - position));
  Extent extent{stream_->fd_, position, n, Status::Ok(), nullptr};
  const std::uint64_t spill_from = stream_->spill_from_.load(std::memory_order_acquire);
  if (position >= spill_from) {
    // Bytes the disk refused: in memory, one chunk at a time.
    const auto [bytes, length] = stream_->SpilledAt(position);
    extent.fd = -1;
    extent.length = std::min(n, length);
    extent.data = bytes;
  } else {
    extent.length = static_cast<std::size_t>(std::min<std::uint64_t>(n, spill_from - position));
    if (const char* map = stream_->Mapping()) extent.data = map + position;
  }
  Advance(position + extent.length);
  return extent;
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
    result = s.Wait([&] { return s.frontier_.load(std::memory_order_seq_cst) >= end; },
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
