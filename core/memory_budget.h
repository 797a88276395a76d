// MemoryBudget: bytes of memory that several owners draw from and give
// back, with a fixed total. Used for stream bytes held in memory when the
// disk refuses them (StreamFile), so that a full disk cannot make the
// daemon take unbounded memory instead.
//
// Thread-safety: all methods from any thread.

#ifndef FANOUT_CORE_MEMORY_BUDGET_H_
#define FANOUT_CORE_MEMORY_BUDGET_H_

#include <atomic>
#include <cstdint>

namespace fanout {

class MemoryBudget {
 public:
  explicit MemoryBudget(std::uint64_t total) : total_(total) {}

  // Takes n bytes if that many are left; false (nothing taken) otherwise.
  bool Take(std::uint64_t n) {
    std::uint64_t used = used_.load(std::memory_order_relaxed);
    do {
      if (n > total_ - used) return false;
    } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
    return true;
  }
  // Gives back n bytes taken earlier.
  void Give(std::uint64_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }

  std::uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  std::uint64_t total() const { return total_; }

 private:
  const std::uint64_t total_;
  std::atomic<std::uint64_t> used_{0};
};

}  // namespace fanout

#endif  // FANOUT_CORE_MEMORY_BUDGET_H_
