// AccessLog: where finished requests go — a line in the access log (text or
// JSON, if enabled) and the request metrics (metrics.h).
//
// AccessLogRecord: one request's record, written when the record is
// destroyed — after the last body byte was sent or the client went away —
// so it carries the real byte count and durations.
//
// A record is shared by the handler and the body provider of one response;
// both run on the connection's thread, but the counters are atomic so a
// record can also be read from elsewhere. AccessLog's settings may change
// (a config reload) while requests run: any thread.

#ifndef FANOUT_SERVER_ACCESS_LOG_H_
#define FANOUT_SERVER_ACCESS_LOG_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/entry.h"

namespace spdlog {
class logger;
}

namespace fanout {

class Metrics;
class RecentRequests;
class AccessLogRecord;

class AccessLog {
 public:
  enum class Format { kText, kJson };

  // `metrics` may be null (nothing counted). `logger`: the access log's own
  // (log_files.h), whose pattern Configure sets — JSON lines are written
  // as they are; null: lines go to the default logger as they are.
  // `recent` (may be null) gets a sample of the finished requests.
  AccessLog(Metrics* metrics, std::shared_ptr<spdlog::logger> logger,
            RecentRequests* recent = nullptr);

  void Configure(bool enabled, Format format);
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  Metrics* metrics() const { return metrics_; }
  RecentRequests* recent() const { return recent_; }

  // Counts the request and, if enabled, logs its line.
  void Write(const AccessLogRecord& record) const;

 private:
  Metrics* const metrics_;
  RecentRequests* const recent_;
  const std::shared_ptr<spdlog::logger> logger_;
  std::atomic<bool> enabled_{false};
  std::atomic<bool> json_{false};
};

class AccessLogRecord {
 public:
  // `log` may be null: the record is neither logged nor counted.
  AccessLogRecord(const AccessLog* log, std::string remote, std::string method,
                  std::string target);
  ~AccessLogRecord();

  void set_status(int status) { status_ = status; }
  void set_cache_status(std::string s) { cache_status_ = std::move(s); }
  // The upstream response head this request was answered from (a miss, a
  // join, a revalidation, a bypass) is known now; 0: the upstream failed.
  void MarkUpstreamHead(int status);
  // The response head is written: the time to first byte ends here.
  void MarkHeadSent();
  void AddBytes(std::uint64_t n) { bytes_.fetch_add(n, std::memory_order_relaxed); }
  // The body ended before it was complete (client gone, upstream broke).
  void MarkIncomplete(std::string why) { incomplete_ = std::move(why); }
  // The request's interest in the entry it is served from, kept as long as
  // the response (this record) lives: until its last byte is sent.
  void HoldInterest(std::shared_ptr<Entry::Interest> interest) { interest_ = std::move(interest); }
  Entry::Interest* interest() const { return interest_.get(); }

 private:
  friend class AccessLog;

  const AccessLog* const log_;
  const std::string remote_, method_, target_;
  const std::chrono::system_clock::time_point wall_start_;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point end_;
  std::atomic<std::int64_t> head_sent_ns_{-1};  // since start_; -1: not yet
  int status_ = 0;
  std::string cache_status_ = "-";
  int upstream_status_ = 0;  // 0: none
  std::chrono::nanoseconds upstream_wait_{0};  // from start_ to the head
  std::string incomplete_;
  std::atomic<std::uint64_t> bytes_{0};
  std::shared_ptr<Entry::Interest> interest_;
};

}  // namespace fanout

#endif  // FANOUT_SERVER_ACCESS_LOG_H_
