// RecentRequests: the last few finished requests, for the admin status
// page. A sample, not a log: a request that finds the ring busy (another
// thread adding at that instant) is left out rather than waited for, so
// the ring never slows the data plane.
//
// Thread-safety: any thread may Add or read.

#ifndef FANOUT_SERVER_RECENT_REQUESTS_H_
#define FANOUT_SERVER_RECENT_REQUESTS_H_

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <algorithm>
#include <vector>

namespace fanout {

class RecentRequests {
 public:
  struct Request {
    std::chrono::system_clock::time_point ended;
    std::string method;
    std::string target;
    int status = 0;
    std::string cache;  // X-Cache, "-" for none
    std::uint64_t bytes = 0;
    double milliseconds = 0;
  };

  // Longer targets are cut (the page shows them, nothing else).
  static constexpr std::size_t kMaxTarget = 512;

  explicit RecentRequests(std::size_t capacity = 50) : ring_(capacity) {}

  // Copies into a slot's strings, whose capacity stays: no allocation
  // once the ring has gone round with targets as long.
  void Add(std::string_view method, std::string_view target, int status,
           std::string_view cache, std::uint64_t bytes, double milliseconds) {
    std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
    if (!lock.owns_lock()) return;
    Request& slot = ring_[next_ % ring_.size()];
    slot.ended = std::chrono::system_clock::now();
    slot.method.assign(method);
    slot.target.assign(target.substr(0, kMaxTarget));
    slot.status = status;
    slot.cache.assign(cache);
    slot.bytes = bytes;
    slot.milliseconds = milliseconds;
    ++next_;
  }

  // Newest first.
  std::vector<Request> Newest() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Request> out;
    const std::size_t n = std::min<std::size_t>(next_, ring_.size());
    for (std::size_t i = 1; i <= n; ++i) out.push_back(ring_[(next_ - i) % ring_.size()]);
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Request> ring_;  // guarded by mu_
  std::size_t next_ = 0;       // guarded by mu_; requests added so far
};

}  // namespace fanout

#endif  // FANOUT_SERVER_RECENT_REQUESTS_H_
