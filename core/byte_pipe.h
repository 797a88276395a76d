// BytePipe: a bounded, in-memory hand-off of a byte stream from one
// producer thread to one consumer thread.
//
// fanoutd uses it to stream a pass-through request body: the thread that
// reads the client's socket writes into the pipe while the fetch thread
// reads from it and sends the bytes upstream, so a large upload is never
// held whole in memory (at most `capacity` bytes are buffered).
//
// The producer ends the stream exactly once: Finish() (the consumer reads
// kEndOfStream after the last byte) or Fail(why) (the consumer reads
// kStreamFailed, so a cut-off body is never sent on as if complete). The
// consumer may give up at any time with CloseReader(): blocked and later
// writes then return kCancelled instead of waiting forever for room.
//
// Thread-safety: Write/Finish/Fail from the producer thread, Read and
// CloseReader from the consumer thread; all methods are safe to call
// concurrently with each other.

#ifndef FANOUT_CORE_BYTE_PIPE_H_
#define FANOUT_CORE_BYTE_PIPE_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"

namespace fanout {

class BytePipe {
 public:
  using Deadline = std::chrono::steady_clock::time_point;

  explicit BytePipe(std::size_t capacity);

  BytePipe(const BytePipe&) = delete;
  BytePipe& operator=(const BytePipe&) = delete;

  // Copies all n bytes in, waiting for room as needed. kCancelled if the
  // consumer closed; kInvalidArgument after Finish() or Fail().
  Status Write(const char* data, std::size_t n);
  void Finish();
  void Fail(std::string why);

  struct ReadResult {
    Status status;           // kOk with bytes > 0, or why there are none
    std::size_t bytes = 0;
  };
  // Copies up to max bytes out (max == 0 returns at once), waiting until some are buffered, the
  // stream ends (kEndOfStream), fails (kStreamFailed) or the deadline passes
  // (kDeadlineExceeded).
  ReadResult Read(char* out, std::size_t max, Deadline deadline);
  // The consumer will read no more; wakes a waiting producer.
  void CloseReader();

  // Total bytes written so far (for logs and tests).
  std::size_t bytes_written() const;
  // True while the consumer is blocked in Read (tests use it to order events).
  bool ReaderWaitingForTesting() const;

 private:
  enum class End { kOpen, kFinished, kFailed };

  mutable std::mutex mu_;
  std::condition_variable readable_;  // bytes buffered, or the stream ended
  std::condition_variable writable_;  // room freed, or the reader closed
  // Guarded by mu_: a ring buffer of size_ bytes starting at head_.
  std::vector<char> ring_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  std::size_t total_written_ = 0;
  End end_ = End::kOpen;
  std::string failure_;
  bool reader_closed_ = false;
  bool reader_waiting_ = false;
};

}  // namespace fanout

#endif  // FANOUT_CORE_BYTE_PIPE_H_
