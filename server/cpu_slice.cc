#include "server/cpu_slice.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace fanout {
namespace {

// The kernel's struct sched_attr (linux/sched/types.h, which clashes with
// glibc's sched.h when both are included).
struct SchedAttr {
  std::uint32_t size;
  std::uint32_t sched_policy;
  std::uint64_t sched_flags;
  std::int32_t sched_nice;
  std::uint32_t sched_priority;
  std::uint64_t sched_runtime;
  std::uint64_t sched_deadline;
  std::uint64_t sched_period;
};

constexpr std::uint64_t kInteractiveSliceNs = 100'000;  // the kernel's minimum
constexpr std::uint64_t kBulkSliceNs = 10'000'000;

// Set once a request fails (old kernel, seccomp): then never asked again.
std::atomic<bool> unsupported{false};

thread_local std::uint64_t current_slice_ns = 0;  // 0: the kernel's default

void UseSlice(std::uint64_t ns) {
  if (current_slice_ns == ns || unsupported.load(std::memory_order_relaxed)) return;
  // Read first so the policy and nice value are kept: only the slice changes.
  SchedAttr attr{};
  if (::syscall(SYS_sched_getattr, 0, &attr, sizeof attr, 0) != 0 ||
      attr.sched_policy != SCHED_OTHER) {
    unsupported.store(true, std::memory_order_relaxed);
    return;
  }
  attr.size = sizeof attr;
  attr.sched_runtime = ns;
  if (::syscall(SYS_sched_setattr, 0, &attr, 0) != 0) {
    unsupported.store(true, std::memory_order_relaxed);
    return;
  }
  current_slice_ns = ns;
}

}  // namespace

void UseInteractiveCpuSlice() { UseSlice(kInteractiveSliceNs); }

void UseBulkCpuSlice() { UseSlice(kBulkSliceNs); }

}  // namespace fanout
