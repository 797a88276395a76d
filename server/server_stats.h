// ServerStats: counters of how fanoutd answered requests, for the admin
// interface (GET /stats). Each response counts once, under its X-Cache
// value; direct_hits counts the hits answered straight from the request
// head (a part of `hit`, see direct_hit.h).
//
// Thread-safety: every member is atomic; any thread may count or read.

#ifndef FANOUT_SERVER_SERVER_STATS_H_
#define FANOUT_SERVER_SERVER_STATS_H_

#include <atomic>
#include <cstdint>
#include <string_view>

namespace fanout {

struct ServerStats {
  std::atomic<std::uint64_t> hit{0};
  std::atomic<std::uint64_t> miss{0};
  std::atomic<std::uint64_t> join{0};
  std::atomic<std::uint64_t> revalidate{0};
  std::atomic<std::uint64_t> stale{0};
  std::atomic<std::uint64_t> bypass{0};
  std::atomic<std::uint64_t> direct_hits{0};

  // Counts one response by its X-Cache value (HIT, MISS, JOIN, ...).
  void Count(std::string_view cache_status) {
    std::atomic<std::uint64_t>* counter = nullptr;
    if (cache_status == "HIT") counter = &hit;
    else if (cache_status == "MISS") counter = &miss;
    else if (cache_status == "JOIN") counter = &join;
    else if (cache_status == "REVALIDATE") counter = &revalidate;
    else if (cache_status == "STALE") counter = &stale;
    else if (cache_status == "BYPASS") counter = &bypass;
    if (counter != nullptr) counter->fetch_add(1, std::memory_order_relaxed);
  }
};

}  // namespace fanout

#endif  // FANOUT_SERVER_SERVER_STATS_H_
