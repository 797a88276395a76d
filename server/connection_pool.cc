#include "server/connection_pool.h"

namespace fanout {
namespace {
thread_local bool t_overflow_connection = false;
}  // namespace

ConnectionPool::ConnectionPool(std::size_t workers, std::size_t max_overflow)
    : workers_(workers), max_overflow_(max_overflow) {
  threads_.reserve(workers);
  for (std::size_t i = 0; i < workers; ++i) {
    threads_.emplace_back([this] { WorkerLoop(); });
  }
}

ConnectionPool::~ConnectionPool() { shutdown(); }

bool ConnectionPool::IsOverflowConnection() { return t_overflow_connection; }

std::size_t ConnectionPool::busy_workers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return busy_;
}

void ConnectionPool::enqueue(std::function<void()> fn) {
  std::unique_lock<std::mutex> lock(mu_);
  const bool worker_free = busy_ + queue_.size() < workers_;
  if (worker_free || overflow_running_ >= max_overflow_ || stopping_) {
    queue_.push_back(std::move(fn));
    lock.unlock();
    work_available_.notify_one();
    return;
  }
  ++overflow_running_;
  lock.unlock();
  // Detached, but counted: shutdown() waits for every overflow thread.
  std::thread([this, fn = std::move(fn)] {
    t_overflow_connection = true;
    fn();
    std::lock_guard<std::mutex> guard(mu_);
    --overflow_running_;
    overflow_done_.notify_all();
  }).detach();
}

void ConnectionPool::WorkerLoop() {
  for (;;) {
    std::function<void()> fn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_available_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to run
      fn = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    fn();
    std::lock_guard<std::mutex> lock(mu_);
    --busy_;
  }
}

void ConnectionPool::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  work_available_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  std::unique_lock<std::mutex> lock(mu_);
  overflow_done_.wait(lock, [this] { return overflow_running_ == 0; });
}

}  // namespace fanout
