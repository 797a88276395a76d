// Entry: one cached URL — the stream file its body is written to, and the
// response head the fetch publishes once the upstream answered.
//
// The fetch (one thread) publishes the head exactly once, or reports that
// the upstream failed before sending one; requests that joined wait for
// either with WaitForHead(). After the fetch the entry is complete (a hit)
// or dropped from the cache. A revalidating fetch that learns the stored
// body is still good (304) adopts that body before publishing the head, so
// everyone waiting gets the stored bytes with the refreshed head. Every
// method is safe from any thread; hold an Entry by shared_ptr (readers keep
// it and its stream alive).

#ifndef FANOUT_CORE_ENTRY_H_
#define FANOUT_CORE_ENTRY_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/response_head.h"
#include "core/stream_file.h"

namespace fanout {

class Entry {
 public:
  // Why a fetch produced no head.
  enum class UpstreamError {
    kUnreachable,  // connecting or sending failed (a gateway error, 502)
    kTimedOut,     // no response head in time (a gateway timeout, 504)
  };

  struct HeadOutcome {
    // Set when the upstream answered.
    std::shared_ptr<const ResponseHead> head;
    // Whether the response may be served to requests other than the one
    // that caused the fetch (no Set-Cookie, not private or no-store).
    bool shareable = false;
    // Vary: the selecting header values of the request the fetch sent; a
    // request with other values must not be served this response.
    HeaderList vary;
    // Set when it did not.
    std::optional<UpstreamError> error;
    std::string error_message;
  };

  Entry(std::string key, std::shared_ptr<StreamFile> stream);

  const std::string& key() const { return key_; }
  // The body. Fixed once the head is published.
  std::shared_ptr<StreamFile> stream() const;

  // ---- The fetch. ----
  // Serves `body` (a complete stream) instead of this entry's own stream.
  // Only before PublishHead.
  void AdoptBody(std::shared_ptr<StreamFile> body);
  // Publishes the head; wakes every waiter. Ignored after the first call.
  void PublishHead(ResponseHead head, bool shareable, HeaderList vary = {});
  // Reports that no head will come; wakes every waiter. Also fails the
  // stream so nobody waits on it.
  void FailBeforeHead(UpstreamError error, std::string message);
  // The body was written completely and kept: the entry is now a hit.
  void MarkComplete();

  // ---- Requests. ----
  // Waits for the head or the failure. nullopt if the deadline passed.
  std::optional<HeadOutcome> WaitForHead(Deadline deadline) const;
  // The published head; null before it is published or if none came.
  std::shared_ptr<const ResponseHead> head() const;
  // Whether FailBeforeHead was called: no head will ever come.
  bool failed_before_head() const;
  // The published selecting values (empty without Vary or before the head).
  HeaderList vary() const;
  bool complete() const { return complete_.load(std::memory_order_acquire); }
  // Held by a request from the moment it picks this entry (before its
  // fetch can start or be joined) until its response ends, so that the
  // fetch of a response nobody keeps can stop once nobody is left to read
  // it. Any thread.
  class Interest {
   public:
    explicit Interest(std::shared_ptr<Entry> entry);
    ~Interest();
    Interest(const Interest&) = delete;
    Interest& operator=(const Interest&) = delete;
    // The request has opened its reader of the entry's stream (call after
    // OpenReader). Idempotent.
    void MarkReading();

   private:
    const std::shared_ptr<Entry> entry_;
    std::atomic<bool> reading_{false};
  };
  static std::shared_ptr<Interest> Attach(std::shared_ptr<Entry> entry) {
    return std::make_shared<Interest>(std::move(entry));
  }
  // Requests holding an Interest now, and how many of them have their
  // reader open (MarkReading): while the two differ, some request may
  // still open a reader at byte 0.
  int interested() const { return interested_.load(std::memory_order_acquire); }
  int reading() const { return reading_.load(std::memory_order_acquire); }

  // Requests that attached to this fetch while it was in flight (the Cache
  // counts them; for the admin interface).
  void CountJoin() { joins_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t joins() const { return joins_.load(std::memory_order_relaxed); }

 private:
  const std::string key_;
  std::atomic<bool> complete_{false};
  std::atomic<std::uint64_t> joins_{0};
  std::atomic<int> interested_{0};
  std::atomic<int> reading_{0};

  mutable std::mutex mu_;
  std::shared_ptr<StreamFile> stream_;          // guarded by mu_
  mutable std::condition_variable head_ready_;  // signalled once, by the fetch
  std::optional<HeadOutcome> outcome_;          // guarded by mu_
};

}  // namespace fanout

#endif  // FANOUT_CORE_ENTRY_H_
