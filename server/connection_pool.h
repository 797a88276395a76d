// ConnectionPool: the task queue that runs fanoutd's client connections.
//
// The server hands every accepted connection to the pool as one task that
// lives as long as the connection's thread serves it. The pool runs up to `workers` connections at once, starting worker threads as
// connections first need them (they then stay for later connections); a connection beyond that
// runs on a short-lived overflow thread that answers 503 at once (the
// server asks IsOverflowConnection() before routing), so clients are told
// instead of left hanging. Past `max_overflow` such threads, connections
// queue until a worker is free. Connections whose bodies a BodySender is
// sending count against `workers` too (`handed_off`), though they hold no
// worker thread: the limit is on connections served at once. A worker left
// idle for `idle_exit` leaves (down to `keep_workers`), so the threads a
// burst of connections started do not stay for good.
//
// Thread-safety: enqueue() is called by the server's accept thread (and by
// loops handing connections back); shutdown()
// by the server's stop path; IsOverflowConnection() on any connection thread.

#ifndef FANOUT_SERVER_CONNECTION_POOL_H_
#define FANOUT_SERVER_CONNECTION_POOL_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fanout {

class ConnectionPool {
 public:
  // handed_off (may be null) counts connections served elsewhere; it must
  // outlive the pool.
  ConnectionPool(std::size_t workers, std::size_t max_overflow,
                 const std::atomic<std::size_t>* handed_off = nullptr,
                 std::chrono::milliseconds idle_exit = std::chrono::seconds(60),
                 std::size_t keep_workers = 8);
  ~ConnectionPool();

  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  void enqueue(std::function<void()> fn);
  // Runs what is queued, then joins every thread; later enqueues are dropped.
  void shutdown();

  // True on a thread that runs a connection the pool had no room for.
  static bool IsOverflowConnection();
  // Serves this thread's connection like a worker's after all (room was
  // made for it by closing another).
  static void TreatAsWorkerConnection();

  std::size_t busy_workers() const;
  std::size_t started_workers() const;

 private:
  void WorkerLoop();
  // An idle worker leaving: its thread is detached and forgotten. REQUIRES
  // mu_ held (by `lock`).
  void RetireLocked();

  const std::size_t workers_;
  const std::size_t max_overflow_;
  const std::atomic<std::size_t>* const handed_off_;
  const std::chrono::milliseconds idle_exit_;
  const std::size_t keep_workers_;

  mutable std::mutex mu_;
  std::condition_variable work_available_;  // signalled on enqueue and shutdown
  std::condition_variable thread_gone_;  // an overflow or retiring thread ended
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  std::size_t busy_ = 0;                     // guarded by mu_; workers running a task
  std::size_t overflow_running_ = 0;         // guarded by mu_
  std::size_t retiring_ = 0;                 // guarded by mu_; leaving idle workers
  bool stopping_ = false;                    // guarded by mu_

  std::vector<std::thread> threads_;  // guarded by mu_; workers started so far
};

}  // namespace fanout

#endif  // FANOUT_SERVER_CONNECTION_POOL_H_
