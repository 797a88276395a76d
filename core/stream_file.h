// StreamFile: a file on disk that one writer appends to while any number of
// independent readers read it, each from its own position.
//
// Life of a stream file:
//   Create() makes a new file with a unique name in a directory (a stream
//   created again for the same cache key never touches an older one's file).
//   The writer Append()s bytes; the frontier is the count of bytes written.
//   The writer ends the stream exactly once, in one of two ways:
//     Finish()  - readers get kEndOfStream after the last byte;
//     Fail(why) - every blocked and every later read returns kStreamFailed
//                 with `why`, so a truncated stream is never mistaken for a
//                 complete one.
//   A finished stream may be Commit()ted: renamed to its final path. A stream
//   that is destroyed without being committed deletes its file, so a partial
//   object is never left behind as if it were an entry.
//   Remove() unlinks the file at once, never waiting for readers: open
//   readers keep reading the bytes they could see (POSIX keeps the inode).
//
// Readers (StreamReader, from OpenReader()) read the file itself through one
// shared descriptor (the page cache), so a reader costs a few dozen bytes.
// A reader at the frontier sleeps until more bytes arrive or the stream ends.
// Wake-ups are batched: when a WakeupBatcher is given, waiting readers are
// woken once per `wake_batch_bytes` appended or per the batcher's max_delay,
// whichever comes first. Because one wake-up costs every waiter a context
// switch, wake-ups are also spaced 10 us per waiter apart, so a byte waits
// at most max(max_delay, 10 us x waiters): 1 ms up to 100 waiters, 10 ms
// with 1,000. Waiting readers never take the stream's lock.
//
// Thread-safety: writer methods (Append, SetExpectedLength, Finish, Commit)
// must be called by one thread at a time (the writer). Everything else,
// Fail() included (a shutting-down daemon may fail a stream), may be called
// from any thread. Hold a StreamFile by shared_ptr;
// readers keep it alive.

#ifndef FANOUT_CORE_STREAM_FILE_H_
#define FANOUT_CORE_STREAM_FILE_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace fanout {

class MemoryBudget;
class StreamReader;
class WakeupBatcher;

using Deadline = std::chrono::steady_clock::time_point;
inline constexpr Deadline kNoDeadline = Deadline::max();

struct StreamFileOptions {
  // Directory the stream file is created in. Must exist and be writable.
  std::string dir;

  // Delivers deferred wake-ups. Null: every append wakes waiting readers at
  // once. Must outlive the stream file.
  // Default: null.
  WakeupBatcher* batcher = nullptr;

  // With a batcher, waiting readers are woken as soon as this many bytes
  // arrived since the last wake-up, without waiting for max_delay.
  // Default: 256 KiB (a reader's whole buffer's worth for most clients).
  std::size_t wake_batch_bytes = 256 * 1024;

  // When the disk refuses bytes for lack of space (ENOSPC, EDQUOT,
  // EFBIG), the stream keeps them in memory drawn from this budget, so its
  // readers still get every byte; such a stream can never be committed.
  // Null, or the budget spent: the stream fails instead. Must outlive the
  // stream file. Default: null.
  MemoryBudget* spill_budget = nullptr;
};

class StreamFile : public std::enable_shared_from_this<StreamFile> {
 public:
  enum class State {
    kWriting,   // the writer may still append
    kFinished,  // ended normally; the frontier is the final length
    kFailed,    // ended with an error; no read succeeds any more
  };

  // Creates a new, empty stream file with a unique name in options.dir
  // (made again if it was deleted). If the directory refuses a new file
  // (full, read-only, not writable) and options.spill_budget is set, the
  // stream lives in memory alone (spilled() from byte 0; never committed).
  // Returns kIOError if no stream can be made.
  static Status Create(const StreamFileOptions& options,
                       std::shared_ptr<StreamFile>* out);

  // Opens a body committed earlier (by this or an earlier run) as a
  // finished stream of its current length. Returns kNotFound if there is no
  // such file, kCorruption if its length is not `expected_length` (a
  // truncated or damaged body is never served), kIOError otherwise.
  static Status OpenCommitted(const StreamFileOptions& options, const std::string& path,
                              std::uint64_t expected_length,
                              std::shared_ptr<StreamFile>* out);

  // Whether `name` (a file name, no directory) is one Create() makes:
  // "stream-<16 hex>-<counter>.part". How a cache tells its own leftovers
  // from files it must not touch.
  static bool IsStreamFileName(std::string_view name);

  ~StreamFile();
  StreamFile(const StreamFile&) = delete;
  StreamFile& operator=(const StreamFile&) = delete;

  // ---- Writer side (one thread at a time). ----

  // Appends n bytes at the frontier and makes them visible to readers.
  // Errors: kInvalidArgument if the stream already ended (nothing written);
  // kStreamFailed if the bytes would pass the expected length, kIOError if
  // the disk refuses (and, for a full disk, the spill budget is spent): in
  // both cases the stream is now failed. A full disk with budget left is no
  // error: the bytes are held in memory (see spilled()).
  Status Append(const void* data, std::size_t n);
  // Append for `n` bytes waiting in the pipe `pipe` (its read end): they
  // go into the file inside the kernel (splice(2)), or, once the disk is
  // full, are read into memory as Append's would be. Takes all `n` from
  // the pipe unless it fails.
  Status AppendFromPipe(int pipe, std::size_t n);

  // Announces the total length, so readers know it before the end. A stream
  // that grows past it or finishes short of it fails. Errors:
  // kInvalidArgument if a different length was set already, the stream
  // ended, or more bytes than `length` were already written.
  Status SetExpectedLength(std::uint64_t length);

  // Asks the file system for the space of the first `length` bytes up
  // front, without changing the file's size: one allocation instead of a
  // block reservation for every page written (on ext4, a third of the cost
  // of writing a large body). Best effort: a file system that cannot
  // (unsupported, full) is left as it was, and the writes find out
  // themselves. Callers reserve only what they mean to keep: the space is
  // taken at once.
  void Reserve(std::uint64_t length);

  // Ends the stream normally. Returns OK, or kStreamFailed if the frontier
  // differs from the expected length (the stream is then failed) or the
  // stream had already failed. Finishing a finished stream is harmless.
  Status Finish();

  // Ends the stream with an error that every reader will see. A no-op if
  // the stream already ended.
  void Fail(std::string reason);

  // Makes the file durable and renames it to `path` (on the same file
  // system), replacing any file there. REQUIRES: the stream finished.
  // Errors: kInvalidArgument if not finished or removed; kIOError, also
  // for a stream whose bytes did not all fit on the disk (spilled()).
  Status Commit(const std::string& path);

  // Makes the bytes written so far durable (fdatasync), so that a record
  // of them (partial_body.h) may be written. Writer only. kIOError if the
  // disk refuses, or if the stream has no file (spilled to memory).
  Status Sync();
  // The file stays when the stream is destroyed uncommitted: a partial
  // body a later run may resume. Any thread.
  void KeepFile();

  // Unlinks the file now if it still carries this stream's bytes (it is
  // never a file a newer stream committed to the same path). Never blocks
  // on readers; open readers keep reading. Idempotent.
  Status Remove();

  // ---- Any thread. ----

  // Told, once per registration (StreamReader::Watch), that the stream
  // moved on: bytes arrived, or it ended or failed. A notice may also come
  // for nothing (a reader was cancelled); the receiver checks again.
  class Watcher {
   public:
    // Runs on the writer's or the batcher's thread with the stream's watch
    // lock held: it must only note the news and return, calling nothing
    // on this stream.
    virtual void StreamMoved() = 0;

   protected:
    ~Watcher() = default;
  };

  // A new reader positioned at offset 0. Works in every state; a reader
  // of a failed stream only ever returns the failure.
  std::unique_ptr<StreamReader> OpenReader();

  // Waits, without being a reader, until the byte at `offset` is written
  // (OK), the stream finishes before it (kEndOfStream), fails
  // (kStreamFailed) or the deadline passes (kDeadlineExceeded).
  Status WaitForByte(std::uint64_t offset, Deadline deadline);

  // Delivers wake-ups deferred by batching. Called by WakeupBatcher.
  void FlushWakeups();

  std::uint64_t frontier() const {
    return frontier_.load(std::memory_order_acquire);
  }
  State state() const;
  // The failure reason; empty unless state() == kFailed.
  std::string failure() const;
  std::optional<std::uint64_t> expected_length() const;
  std::string path() const;
  // Set once the disk refused the stream's bytes for lack of space: where
  // the file ends (the rest is in memory), and the system's reason.
  struct Spill {
    std::uint64_t disk_bytes = 0;
    std::string why;
  };
  std::optional<Spill> spilled() const;
  bool has_spilled() const { return spill_from_.load(std::memory_order_acquire) != UINT64_MAX; }
  // Readers currently open on this stream.
  std::size_t open_readers() const;

  // ---- For a writer that must not run far ahead of its readers (a
  // response streamed to its clients but not kept). ----

  // The smallest position of the open readers (nullopt if none), and how
  // many are open.
  struct ReaderProgress {
    std::optional<std::uint64_t> slowest;
    std::size_t readers = 0;
  };
  ReaderProgress Progress() const;
  // Waits until a reader moves on or closes, the stream fails, or the
  // deadline passes. Writer.
  void WaitForReaderProgress(Deadline deadline);
  // Gives back the space of the bytes every open reader has passed, less
  // `slack` (what a sender may still be sending from an extent it took:
  // see kMaxSendExtent), rounded down to kReleaseUnit and never past the
  // frontier: disk bytes go back to the file system (a hole), bytes held in
  // memory (spilled()) to their budget. Computed under the readers' lock,
  // so a reader opened meanwhile is either counted or finds its bytes gone:
  // a read below the released bytes fails (kStreamFailed: a visible cut,
  // never the zeros of the hole). REQUIRES: no reader still to be opened
  // needs them (the caller knows its requests). Returns the released
  // offset. Errors are ignored (a file system that cannot punch holes
  // keeps the bytes). Writer.
  static constexpr std::uint64_t kReleaseUnit = 1 << 20;
  std::uint64_t ReleasePassedBytes(std::uint64_t slack);
  // Most bytes a sender should take in one NextExtent when the stream may
  // release what its readers passed (the position moves past an extent
  // when it is handed out, before its bytes are sent).
  static constexpr std::size_t kMaxSendExtent = 1 << 20;

  // Readers asleep at the frontier right now, and how many times waiting
  // readers were woken, so tests can synchronise on them and count batching.
  int WaitingReadersForTesting() const;
  std::uint64_t WakeupsForTesting() const;

 private:
  friend class StreamReader;

  StreamFile(const StreamFileOptions& options, int fd, std::string path,
             dev_t dev, ino_t ino);

  // Waits, without taking mu_, until `ready()` holds or the stream ends or
  // `cancelled` is set or the deadline passes.
  template <typename Ready>
  Status Wait(const Ready& ready, const std::atomic<bool>& cancelled, Deadline deadline);
  // Ends every waiter's sleep (they re-check their conditions).
  void WakeWaiters();
  // Declared before a scope's lock: when the scope ends (the lock released
  // first), wakes the waiters if a wake-up was decided inside it.
  class DeferredWake {
   public:
    explicit DeferredWake(StreamFile& stream);
    ~DeferredWake();

   private:
    StreamFile& stream_;
    const std::uint32_t seq_;
  };

  // The file mapped read-only, `known length` bytes long, made on first use
  // once the length is known; null before that or if mmap fails.
  const char* Mapping();

  // Reads exactly n bytes at offset (all below the frontier), from the
  // file and, past spill_from_, from memory. kIOError if the file is
  // shorter than the frontier says (truncated by someone else) or the read
  // fails.
  Status ReadFile(std::uint64_t offset, void* buf, std::size_t n) const;
  // Gives the memory of spilled chunks wholly below offset back to the
  // budget (their offsets stay, so later chunks are still found).
  void FreeSpilledBelow(std::uint64_t offset);
  // kStreamFailed if `offset` lies below the bytes given back.
  Status ReleasedCheck(std::uint64_t offset) const;
  // Append's body: writes n bytes at the frontier with write_some(done,
  // file offset) (a pwrite or a splice: bytes written, or -1 and errno);
  // if the disk refuses some, take_rest(done, buffer) gives the rest to
  // keep in memory (nullopt: it could not).
  template <typename WriteSome, typename TakeRest>
  Status AppendWith(std::size_t n, const WriteSome& write_some, const TakeRest& take_rest);
  // Holds bytes the disk refused in memory. False if the budget is spent.
  // Writer, under mu_.
  bool SpillLocked(std::uint64_t offset, const char* data, std::size_t n);
  // The in-memory bytes at offset (>= spill_from_, below the frontier): a
  // pointer and how many bytes follow it in one piece.
  std::pair<const char*, std::size_t> SpilledAt(std::uint64_t offset) const;

  void FailLocked(std::string reason);
  void WakeReadersLocked();
  void MaybeWakeReadersLocked();
  // True if the file at path_ is still this stream's inode.
  bool PathIsOursLocked() const;
  void ReaderClosed(const StreamReader* reader);
  // A reader's position moved on: wakes a writer waiting for that.
  void NoteReaderProgress();
  void CancelWaiters();
  // Registers w unless bytes lie past `position` or the stream ended
  // (then returns false, w not registered). See StreamReader::Watch.
  bool AddWatcher(Watcher* w, std::uint64_t position, const std::atomic<bool>& cancelled);
  void RemoveWatcher(Watcher* w);
  // Tells every registered watcher and forgets them (one notice each).
  void TellWatchers();

  const int fd_;
  const dev_t dev_;
  const ino_t ino_;
  WakeupBatcher* const batcher_;
  const std::size_t wake_batch_bytes_;

  // Frontier published for readers' lock-free fast path; written by the
  // writer under mu_ after the bytes are in the file.
  alignas(64) std::atomic<std::uint64_t> frontier_{0};
  // Set once the stream failed / finished, read lock-free by readers.
  std::atomic<bool> failed_{false};
  std::atomic<bool> finished_{false};
  // Bumped on every wake-up; waiting readers sleep on it (a futex word).
  // On its own cache line: readers write waiters_ on every wait, and that
  // must not bounce the line the writer publishes the frontier on.
  alignas(64) std::atomic<std::uint32_t> wake_seq_{0};
  // Readers inside Wait() plus registered watchers; the writer wakes only
  // if there are any.
  std::atomic<int> waiters_{0};
  std::atomic<int> watcher_count_{0};  // watchers_.size(), read without the lock
  // Guards watchers_; held while they are told, so that once
  // RemoveWatcher returns its watcher is not being told either.
  std::mutex watch_mu_;
  std::vector<Watcher*> watchers_;  // guarded by watch_mu_
  // Guards readers_ (and progress_moved_'s waits); taken when a reader
  // opens or closes, never on a read.
  mutable std::mutex readers_mu_;
  std::vector<const StreamReader*> readers_;  // guarded by readers_mu_
  std::condition_variable progress_moved_;    // a reader moved on or closed
  std::atomic<bool> progress_wanted_{false};  // a writer waits on progress_moved_
  // Bytes below this were given back (ReleasePassedBytes); written by the
  // writer, read by readers before they read.
  std::atomic<std::uint64_t> released_{0};
  // Where the file ends when the disk refused bytes (UINT64_MAX: it never
  // did). Written once by the writer before the frontier passes it.
  std::atomic<std::uint64_t> spill_from_{UINT64_MAX};
  MemoryBudget* const spill_budget_;
  // Guards the spilled bytes: chunks only ever added, never moved or freed
  // before the stream, so pointers into them stay valid for readers.
  mutable std::mutex spill_mu_;
  std::deque<std::string> spill_chunks_;         // guarded by spill_mu_
  std::vector<std::uint64_t> spill_offsets_;     // guarded by spill_mu_; chunk starts
  std::uint64_t spill_bytes_ = 0;                // guarded by spill_mu_; budget taken
  std::size_t spill_freed_chunks_ = 0;           // guarded by spill_mu_; released ones
  std::string spill_why_;                        // guarded by mu_
  // The mapping Mapping() made (null until then), and its length.
  std::atomic<const char*> mapping_{nullptr};
  std::size_t mapping_length_ = 0;  // written once, under mu_, before mapping_

  // Guards the writer-side state below; readers take it only to read the
  // failure message or the path.
  alignas(64) mutable std::mutex mu_;
  State state_ = State::kWriting;                   // guarded by mu_
  std::string failure_;                             // guarded by mu_
  std::optional<std::uint64_t> expected_length_;    // guarded by mu_
  std::string path_;                                // guarded by mu_
  bool committed_ = false;                          // guarded by mu_
  bool removed_ = false;                            // guarded by mu_
  bool keep_file_ = false;                          // guarded by mu_
  std::uint64_t woken_frontier_ = 0;                // guarded by mu_
  bool wake_scheduled_ = false;                     // guarded by mu_
  std::chrono::steady_clock::time_point last_wake_; // guarded by mu_
  std::uint64_t wakeups_ = 0;                       // guarded by mu_
};

// StreamReader: one client's independent cursor on a StreamFile.
//
// Read/Seek/position belong to the thread that owns the reader; ReadAt may
// be called from several threads at once; Cancel and Close from any thread.
class StreamReader {
 public:
  struct Result {
    std::size_t bytes = 0;  // bytes placed in the buffer
    Status status;          // OK, or why no (more) bytes were read
  };

  ~StreamReader();
  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;

  // Reads up to len bytes at the reader's position and advances it.
  // Returns as soon as at least one byte is available: {n>0, OK}.
  // Otherwise blocks at the frontier until bytes arrive or:
  //   {0, kEndOfStream}      the stream finished and position >= its length;
  //   {0, kStreamFailed}     the stream failed (also for every later read);
  //   {0, kCancelled}        Cancel() or Close() was called;
  //   {0, kDeadlineExceeded} the deadline passed;
  //   {0, kIOError}          the file could not be read (e.g. truncated).
  // A zero-length read returns {0, OK} at once.
  Result Read(void* buf, std::size_t len, Deadline deadline = kNoDeadline);

  // Like Read, for a sender that needs no copy of its own (a send from the
  // mapping, or sendfile): instead of copying, says
  // where the next bytes are — the stream file's descriptor, an offset and
  // a length of 1..max bytes, all below the frontier — and advances the
  // position past them. The descriptor stays open while the reader is.
  // A sender that finds fewer bytes in the file than promised must treat
  // it as kIOError (the file was truncated under the stream).
  // When the stream's length is known (announced or final), `data` also
  // points at the same bytes in a read-only mapping of the file shared by
  // all its readers (valid while the reader is open), so they can be sent
  // from memory with one copy; null otherwise. Bytes the disk refused
  // (spilled()) come with `data` pointing at them in memory and fd -1. A send from a mapping of a
  // file truncated under the stream fails with EFAULT (the kernel copies,
  // so no SIGBUS reaches the process).
  struct Extent {
    int fd = -1;
    std::uint64_t offset = 0;
    std::size_t length = 0;
    Status status;  // as for Read
    const char* data = nullptr;
  };
  Extent NextExtent(std::size_t max, Deadline deadline = kNoDeadline);

  // Reads exactly len bytes at offset, without moving the position: blocks
  // until all of them were written. Returns {len, OK}, or, if the stream
  // finished first, {the bytes up to its end, kEndOfStream} (a short count
  // always comes with kEndOfStream). Other errors as for Read.
  Result ReadAt(std::uint64_t offset, void* buf, std::size_t len,
                Deadline deadline = kNoDeadline) const;

  // Positions the next Read at offset (which may lie beyond the frontier).
  void Seek(std::uint64_t offset) { Advance(offset); }
  std::uint64_t position() const { return position_.load(std::memory_order_relaxed); }

  // Wakes a blocked Read/ReadAt with kCancelled; later reads return
  // kCancelled too. Any thread; idempotent.
  void Cancel();
  // Cancels and releases the reader's registration. Idempotent.
  void Close();

  // For a sender that must not block (an event loop): registers w to be
  // told once (Watcher::StreamMoved) when bytes lie past the position or
  // the stream ends or fails, woken in the same batches as blocked readers.
  // Returns false, registering nothing, if that is so already (read on).
  // A watcher is registered at most once: watching again while still
  // registered keeps the one registration (and its one notice). Owner
  // thread; Unwatch before destroying w or the reader — always, even after
  // a notice, since a notice may belong to an earlier registration.
  bool Watch(StreamFile::Watcher* w);
  // Withdraws w's registration, if any. Once it returns, w is neither
  // being told nor will be. Owner thread.
  void Unwatch(StreamFile::Watcher* w);

  const std::shared_ptr<StreamFile>& stream() const { return stream_; }

 private:
  friend class StreamFile;
  explicit StreamReader(std::shared_ptr<StreamFile> stream);
  // Waits until bytes lie beyond the position; returns the frontier seen.
  Status WaitPastPosition(Deadline deadline, std::uint64_t* frontier);
  // Moves the position (and tells a writer waiting on readers' progress).
  void Advance(std::uint64_t position) {
    position_.store(position, std::memory_order_relaxed);
    stream_->NoteReaderProgress();
  }

  const std::shared_ptr<StreamFile> stream_;
  // Written by the owner thread only; read by the writer (Progress()).
  std::atomic<std::uint64_t> position_{0};
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> closed_{false};
};

}  // namespace fanout

#endif  // FANOUT_CORE_STREAM_FILE_H_
