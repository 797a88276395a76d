// Metrics: what fanoutd counts for GET /metrics on the admin interface, in
// the Prometheus text exposition format (RenderPrometheus).
//
// Counters and histograms live here and are counted where things happen:
// requests when their response ends (access_log.h, direct_hit.h), fetches
// by the fetcher (upstream_fetch.h), connects by the upstream client.
// Gauges (entries, fetches in flight, connections) belong to the parts that
// own them and are read at each scrape into MetricsGauges.
//
// Thread-safety: every member is atomic; any thread may count or read.

#ifndef FANOUT_SERVER_METRICS_H_
#define FANOUT_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/histogram.h"

namespace fanout {

class Metrics {
 public:
  // A response's X-Cache value; kNone: it has none (a 404 for no route,
  // a 400 for a bad request).
  enum class Outcome {
    kHit, kMiss, kJoin, kRevalidate, kStale, kBypass, kTunnel, kNone, kCount
  };
  // Why a fetch failed. kConnect: no response head (refused, reset, DNS, a
  // bad head); kTimeout: connect or read timeout; kBroken: the body broke
  // off after the head; kAbandoned: stopped because no client was left for
  // a response that is not kept, or fanoutd was stopping; kStore: the
  // stream file could not be finished (disk); kIntegrity: the body does not
  // match the digest its response announced.
  enum class FetchFailure {
    kConnect, kTimeout, kBroken, kAbandoned, kStore, kIntegrity, kCount
  };
  // What one attempt to resume a broken fetch came to: kResumed (a 206
  // from the frontier went on with the body), kRefused (the origin sent
  // anything else: a 200, another validator, a wrong Content-Range),
  // kFailed (no response to it).
  enum class Resume { kResumed, kRefused, kFailed, kCount };
  // What a request for the rest sent beside a stalled transfer came to:
  // kWon (it delivered first; the stalled connection was closed), kLost
  // (the stalled transfer delivered first; the hedge was closed), kFailed
  // (refused or failed before delivering; the stalled transfer went on).
  enum class Hedge { kWon, kLost, kFailed, kCount };
  // What revalidating a stored entry came to: kNotModified (304, the entry
  // refreshed), kModified (a new response replaces it), kStaleIfError (the
  // stored entry served after an error), kFailed (an error, nothing served
  // from the stored entry).
  enum class Revalidation { kNotModified, kModified, kStaleIfError, kFailed, kCount };

  static Outcome OutcomeOf(std::string_view x_cache);

  // One response that ended: `ttfb` until its head was written, `total`
  // until its last byte was (or the client left).
  void CountRequest(Outcome outcome, int status, std::uint64_t body_bytes,
                    std::chrono::nanoseconds ttfb, std::chrono::nanoseconds total);
  void CountFetchStarted() { fetches_started_.fetch_add(1, std::memory_order_relaxed); }
  void CountFetchCompleted() { fetches_completed_.fetch_add(1, std::memory_order_relaxed); }
  void CountFetchFailed(FetchFailure why) {
    fetch_failures_[static_cast<std::size_t>(why)].fetch_add(1, std::memory_order_relaxed);
  }
  void CountResume(Resume result) {
    resumes_[static_cast<std::size_t>(result)].fetch_add(1, std::memory_order_relaxed);
  }
  void CountHedge(Hedge result) {
    hedges_[static_cast<std::size_t>(result)].fetch_add(1, std::memory_order_relaxed);
  }
  void CountRevalidation(Revalidation result) {
    revalidations_[static_cast<std::size_t>(result)].fetch_add(1, std::memory_order_relaxed);
  }
  void AddUpstreamBytes(std::uint64_t n) {
    upstream_bytes_.fetch_add(n, std::memory_order_relaxed);
  }
  // Time to a new upstream connection (TCP, and TLS for https).
  Histogram& upstream_connect() { return upstream_connect_; }
  // From a fetch's start to its response head.
  Histogram& upstream_first_byte() { return upstream_first_byte_; }

  // Read at a scrape from the parts that own them.
  struct Gauges {
    std::uint64_t fetches_in_flight = 0;
    std::uint64_t readers_attached = 0;  // readers open on fetches in flight
    std::uint64_t entries = 0;
    std::uint64_t stored_bytes = 0;
    std::uint64_t evictions = 0;         // counters kept by the cache
    std::uint64_t evicted_bytes = 0;
    std::uint64_t connections_open = 0;
    std::uint64_t connections_idle = 0;  // parked between requests
    std::uint64_t responses_in_flight = 0;
    std::uint64_t bodies_sending = 0;    // queued in the body sender
    std::uint64_t direct_hits = 0;
  };

  // The whole exposition: every series, zeros included, so a scrape after
  // a restart shows the same set.
  std::string RenderPrometheus(const Gauges& gauges) const;

 private:
  static constexpr std::size_t kOutcomes = static_cast<std::size_t>(Outcome::kCount);
  // requests_[outcome][status / 100 - 1]: 1xx to 5xx.
  std::array<std::array<std::atomic<std::uint64_t>, 5>, kOutcomes> requests_{};
  std::atomic<std::uint64_t> client_bytes_{0};
  std::atomic<std::uint64_t> upstream_bytes_{0};
  std::atomic<std::uint64_t> fetches_started_{0};
  std::atomic<std::uint64_t> fetches_completed_{0};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(FetchFailure::kCount)>
      fetch_failures_{};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Revalidation::kCount)>
      revalidations_{};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Resume::kCount)> resumes_{};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Hedge::kCount)> hedges_{};
  Histogram request_first_byte_;
  Histogram request_duration_;
  Histogram upstream_connect_;
  Histogram upstream_first_byte_;
};

}  // namespace fanout

#endif  // FANOUT_SERVER_METRICS_H_
