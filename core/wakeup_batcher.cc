#include "core/wakeup_batcher.h"

#include <algorithm>
#include <vector>

#include "core/stream_file.h"

namespace fanout {

WakeupBatcher::WakeupBatcher(std::chrono::microseconds max_delay)
    : max_delay_(max_delay), thread_([this] { Run(); }) {}

WakeupBatcher::~WakeupBatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void WakeupBatcher::Schedule(std::weak_ptr<StreamFile> stream,
                             Clock::time_point when) {
  bool new_front;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Deadlines are nearly always increasing (now + a fixed delay), so the
    // insertion point is almost always the back.
    auto it = pending_.end();
    while (it != pending_.begin() && std::prev(it)->when > when) --it;
    new_front = it == pending_.begin();
    pending_.insert(it, Pending{when, std::move(stream)});
  }
  if (new_front) cv_.notify_one();
}

void WakeupBatcher::Run() {
  std::vector<std::weak_ptr<StreamFile>> due;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (pending_.empty()) {
      if (stopping_) return;
      cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      continue;
    }
    const auto next = pending_.front().when;
    if (!stopping_ && Clock::now() < next) {
      cv_.wait_until(lock, next);
      continue;
    }
    const auto now = Clock::now();
    while (!pending_.empty() && (stopping_ || pending_.front().when <= now)) {
      due.push_back(std::move(pending_.front().stream));
      pending_.pop_front();
    }
    lock.unlock();
    for (auto& weak : due) {
      if (auto stream = weak.lock()) stream->FlushWakeups();
    }
    due.clear();
    lock.lock();
  }
}

}  // namespace fanout
