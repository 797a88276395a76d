// Histogram: a distribution of durations in fixed buckets, for Prometheus
// (metrics.h). Observing costs two relaxed atomic adds; reading gives the
// cumulative bucket counts, their sum and count.
//
// The bounds (seconds) run from 1 ms to 5 min: request and upstream times
// of a cache span a hit from memory to a multi-gigabyte download.
//
// Thread-safety: any thread may observe or read. A read during observes may
// see a count without its sum (or the other way round) by one observation.

#ifndef FANOUT_SERVER_HISTOGRAM_H_
#define FANOUT_SERVER_HISTOGRAM_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace fanout {

class Histogram {
 public:
  static constexpr std::array<double, 15> kBounds = {
      0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

  struct Snapshot {
    // cumulative[i]: observations <= kBounds[i]; the last is +Inf (all).
    std::array<std::uint64_t, kBounds.size() + 1> cumulative{};
    double sum_seconds = 0;
    std::uint64_t count() const { return cumulative.back(); }
  };

  void Observe(std::chrono::nanoseconds d) {
    const double seconds = std::chrono::duration<double>(d).count();
    std::size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<std::uint64_t>(d.count() < 0 ? 0 : d.count()),
                      std::memory_order_relaxed);
  }

  Snapshot Read() const {
    Snapshot s;
    std::uint64_t running = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      running += buckets_[i].load(std::memory_order_relaxed);
      s.cumulative[i] = running;
    }
    s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
    return s;
  }

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace fanout

#endif  // FANOUT_SERVER_HISTOGRAM_H_
