// WakeupBatcher: delivers deferred reader wake-ups for stream files.
//
// A stream file whose writer appends many small chunks does not wake its
// waiting readers on every append; it wakes them at most once per
// max_delay() (or per batch of bytes) and asks the batcher to wake them
// at the end of the delay in case no further append comes. One batcher
// thread serves every stream file of a process.
//
// Thread-safety: Schedule() may be called from any thread. The batcher must
// outlive every StreamFile created with it. The destructor delivers every
// pending wake-up, then stops and joins its thread.

#ifndef FANOUT_CORE_WAKEUP_BATCHER_H_
#define FANOUT_CORE_WAKEUP_BATCHER_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

namespace fanout {

class StreamFile;

class WakeupBatcher {
 public:
  using Clock = std::chrono::steady_clock;

  // max_delay bounds how long a written byte may stay invisible to a reader
  // that sleeps at the frontier.
  explicit WakeupBatcher(
      std::chrono::microseconds max_delay = std::chrono::microseconds(1000));
  ~WakeupBatcher();

  WakeupBatcher(const WakeupBatcher&) = delete;
  WakeupBatcher& operator=(const WakeupBatcher&) = delete;

  std::chrono::microseconds max_delay() const { return max_delay_; }

  // Calls stream->FlushWakeups() at or soon after `when`, unless the stream
  // is gone by then.
  void Schedule(std::weak_ptr<StreamFile> stream, Clock::time_point when);

 private:
  struct Pending {
    Clock::time_point when;
    std::weak_ptr<StreamFile> stream;
  };

  void Run();

  const std::chrono::microseconds max_delay_;

  std::mutex mu_;
  std::condition_variable cv_;  // signalled on Schedule and on stop
  std::deque<Pending> pending_;  // guarded by mu_; sorted by `when`
  bool stopping_ = false;        // guarded by mu_

  std::thread thread_;  // last: starts after every member above exists
};

}  // namespace fanout

#endif  // FANOUT_CORE_WAKEUP_BATCHER_H_
