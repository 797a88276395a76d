#include "server/connection_pool.h"

namespace fanout {
namespace {
thread_local bool t_overflow_connection = false;
}  // namespace

ConnectionPool::ConnectionPool(std::size_t workers, std::size_t max_overflow,
                               const std::atomic<std::size_t>* handed_off,
                               std::chrono::milliseconds idle_exit, std::size_t keep_workers)
    : workers_(workers),
      max_overflow_(max_overflow),
      handed_off_(handed_off),
      idle_exit_(idle_exit),
      keep_workers_(keep_workers) {
  threads_.reserve(workers);
}

ConnectionPool::~ConnectionPool() { shutdown(); }

bool ConnectionPool::IsOverflowConnection() { return t_overflow_connection; }

void ConnectionPool::TreatAsWorkerConnection() { t_overflow_connection = false; }

std::size_t ConnectionPool::started_workers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return threads_.size();
}

std::size_t ConnectionPool::busy_workers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return busy_;
}

void ConnectionPool::enqueue(std::function<void()> fn) {
  std::unique_lock<std::mutex> lock(mu_);
  const std::size_t elsewhere =
      handed_off_ != nullptr ? handed_off_->load(std::memory_order_relaxed) : 0;
  const bool worker_free = busy_ + queue_.size() + elsewhere < workers_;
  if (worker_free || overflow_running_ >= max_overflow_ || stopping_) {
    queue_.push_back(std::move(fn));
    // Workers are started as connections need them, up to `workers`: an
    // idle daemon keeps few threads, a busy one keeps the ones it needed.
    if (!stopping_ && busy_ + queue_.size() > threads_.size() && threads_.size() < workers_) {
      threads_.emplace_back([this] { WorkerLoop(); });
    }
    // Signalled under the lock: the body sender enqueues from its own
    // threads, and shutdown() (whose lock then follows this one) must not
    // let the pool be destroyed while a signal is still on its way.
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
    thread_gone_.notify_all();
  }).detach();
}

void ConnectionPool::WorkerLoop() {
  for (;;) {
    std::function<void()> fn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      const bool woke = work_available_.wait_for(
          lock, idle_exit_, [this] { return stopping_ || !queue_.empty(); });
      if (!woke && threads_.size() > keep_workers_) {
        RetireLocked();
        break;
      }
      if (!woke) continue;
      if (queue_.empty()) return;  // stopping, and nothing left to run
      fn = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    fn();
    std::lock_guard<std::mutex> lock(mu_);
    --busy_;
  }
  // Retired: the last touch of the pool, which shutdown() waits for.
  std::lock_guard<std::mutex> lock(mu_);
  --retiring_;
  thread_gone_.notify_all();
}

void ConnectionPool::RetireLocked() {
  const auto me = std::this_thread::get_id();
  for (auto it = threads_.begin(); it != threads_.end(); ++it) {
    if (it->get_id() != me) continue;
    it->detach();
    threads_.erase(it);
    break;
  }
  ++retiring_;
}

void ConnectionPool::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    threads.swap(threads_);
  }
  work_available_.notify_all();
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
  std::unique_lock<std::mutex> lock(mu_);
  thread_gone_.wait(lock, [this] { return overflow_running_ == 0 && retiring_ == 0; });
}

}  // namespace fanout
