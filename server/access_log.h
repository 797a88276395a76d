// AccessLogRecord: one request's line in the access log, written when the
// record is destroyed — after the last body byte was sent or the client
// went away — so it carries the real byte count and duration.
//
// A record is shared by the handler and the body provider of one response;
// both run on the connection's thread, but the counters are atomic so a
// record can also be read from elsewhere.

#ifndef FANOUT_SERVER_ACCESS_LOG_H_
#define FANOUT_SERVER_ACCESS_LOG_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/entry.h"

namespace fanout {

class AccessLogRecord {
 public:
  AccessLogRecord(bool enabled, std::string remote, std::string method,
                  std::string target);
  ~AccessLogRecord();

  void set_status(int status) { status_ = status; }
  void set_cache_status(std::string s) { cache_status_ = std::move(s); }
  void AddBytes(std::uint64_t n) { bytes_.fetch_add(n, std::memory_order_relaxed); }
  // The body ended before it was complete (client gone, upstream broke).
  void MarkIncomplete(std::string why) { incomplete_ = std::move(why); }
  // The request's interest in the entry it is served from, kept as long as
  // the response (this record) lives: until its last byte is sent.
  void HoldInterest(std::shared_ptr<Entry::Interest> interest) { interest_ = std::move(interest); }
  Entry::Interest* interest() const { return interest_.get(); }

 private:
  const bool enabled_;
  const std::string remote_, method_, target_;
  const std::chrono::steady_clock::time_point start_;
  int status_ = 0;
  std::string cache_status_ = "-";
  std::string incomplete_;
  std::atomic<std::uint64_t> bytes_{0};
  std::shared_ptr<Entry::Interest> interest_;
};

}  // namespace fanout

#endif  // FANOUT_SERVER_ACCESS_LOG_H_
