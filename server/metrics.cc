#include "server/metrics.h"

#include <cstdio>

namespace fanout {
namespace {

constexpr const char* kOutcomeNames[] = {"HIT",    "MISS",   "JOIN",   "REVALIDATE",
                                         "STALE",  "BYPASS", "TUNNEL", "none"};
constexpr const char* kFailureNames[] = {"connect",   "timeout", "broken",
                                         "abandoned", "store",   "integrity"};
constexpr const char* kResumeNames[] = {"resumed", "refused", "failed"};
constexpr const char* kHedgeNames[] = {"won", "lost", "failed"};
constexpr const char* kRevalidationNames[] = {"not_modified", "modified", "stale_if_error",
                                              "failed"};

// Appends one metric family's HELP and TYPE lines.
void Family(std::string* out, const char* name, const char* type, const char* help) {
  *out += "# HELP ";
  *out += name;
  *out += ' ';
  *out += help;
  *out += "\n# TYPE ";
  *out += name;
  *out += ' ';
  *out += type;
  *out += '\n';
}

void Sample(std::string* out, const std::string& name_and_labels, std::uint64_t value) {
  *out += name_and_labels;
  *out += ' ';
  *out += std::to_string(value);
  *out += '\n';
}

std::string Number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void Single(std::string* out, const char* name, const char* type, const char* help,
            std::uint64_t value) {
  Family(out, name, type, help);
  Sample(out, name, value);
}

void HistogramFamily(std::string* out, const char* name, const char* help,
                     const Histogram& histogram) {
  Family(out, name, "histogram", help);
  const Histogram::Snapshot s = histogram.Read();
  const std::string base = name;
  for (std::size_t i = 0; i < Histogram::kBounds.size(); ++i) {
    Sample(out, base + "_bucket{le=\"" + Number(Histogram::kBounds[i]) + "\"}",
           s.cumulative[i]);
  }
  Sample(out, base + "_bucket{le=\"+Inf\"}", s.count());
  *out += base + "_sum " + Number(s.sum_seconds) + "\n";
  Sample(out, base + "_count", s.count());
}

}  // namespace

Metrics::Outcome Metrics::OutcomeOf(std::string_view x_cache) {
  for (std::size_t i = 0; i + 1 < kOutcomes; ++i) {
    if (x_cache == kOutcomeNames[i]) return static_cast<Outcome>(i);
  }
  return Outcome::kNone;
}

void Metrics::CountRequest(Outcome outcome, int status, std::uint64_t body_bytes,
                           std::chrono::nanoseconds ttfb, std::chrono::nanoseconds total) {
  const int status_class = status / 100;
  if (status_class >= 1 && status_class <= 5) {
    requests_[static_cast<std::size_t>(outcome)][static_cast<std::size_t>(status_class - 1)]
        .fetch_add(1, std::memory_order_relaxed);
  }
  client_bytes_.fetch_add(body_bytes, std::memory_order_relaxed);
  request_first_byte_.Observe(ttfb);
  request_duration_.Observe(total);
}

std::string Metrics::RenderPrometheus(const Gauges& g) const {
  std::string out;
  out.reserve(8192);
  Family(&out, "fanout_requests_total", "counter",
         "Responses that ended, by X-Cache value (none: no cache involved) and status class.");
  for (std::size_t o = 0; o < kOutcomes; ++o) {
    for (std::size_t c = 0; c < 5; ++c) {
      Sample(&out,
             std::string("fanout_requests_total{cache=\"") + kOutcomeNames[o] + "\",code=\"" +
                 std::to_string(c + 1) + "xx\"}",
             requests_[o][c].load(std::memory_order_relaxed));
    }
  }
  Single(&out, "fanout_direct_hits_total", "counter",
         "Hits answered straight from the request head (a part of the HIT requests).",
         g.direct_hits);
  Single(&out, "fanout_client_bytes_total", "counter", "Body bytes sent to clients.",
         client_bytes_.load(std::memory_order_relaxed));
  Single(&out, "fanout_upstream_bytes_total", "counter", "Body bytes received from upstreams.",
         upstream_bytes_.load(std::memory_order_relaxed));
  Single(&out, "fanout_fetches_started_total", "counter", "Upstream fetches started.",
         fetches_started_.load(std::memory_order_relaxed));
  Single(&out, "fanout_fetches_completed_total", "counter",
         "Upstream fetches whose response arrived whole.",
         fetches_completed_.load(std::memory_order_relaxed));
  Family(&out, "fanout_fetches_failed_total", "counter", "Upstream fetches that failed, by cause.");
  for (std::size_t i = 0; i < fetch_failures_.size(); ++i) {
    Sample(&out, std::string("fanout_fetches_failed_total{cause=\"") + kFailureNames[i] + "\"}",
           fetch_failures_[i].load(std::memory_order_relaxed));
  }
  Family(&out, "fanout_fetch_resumes_total", "counter",
         "Requests for the rest of a fetch that broke off mid-body, by result.");
  for (std::size_t i = 0; i < resumes_.size(); ++i) {
    Sample(&out, std::string("fanout_fetch_resumes_total{result=\"") + kResumeNames[i] + "\"}",
           resumes_[i].load(std::memory_order_relaxed));
  }
  Family(&out, "fanout_fetch_hedges_total", "counter",
         "Requests for the rest sent beside a stalled fetch, by result.");
  for (std::size_t i = 0; i < hedges_.size(); ++i) {
    Sample(&out, std::string("fanout_fetch_hedges_total{result=\"") + kHedgeNames[i] + "\"}",
           hedges_[i].load(std::memory_order_relaxed));
  }
  Single(&out, "fanout_fetches_in_flight", "gauge", "Upstream fetches running now.",
         g.fetches_in_flight);
  Single(&out, "fanout_readers_attached", "gauge",
         "Client readers open on the stream files of fetches in flight.", g.readers_attached);
  Family(&out, "fanout_revalidations_total", "counter",
         "Revalidations of stored entries, by result.");
  for (std::size_t i = 0; i < revalidations_.size(); ++i) {
    Sample(&out,
           std::string("fanout_revalidations_total{result=\"") + kRevalidationNames[i] + "\"}",
           revalidations_[i].load(std::memory_order_relaxed));
  }
  Single(&out, "fanout_entries", "gauge", "Entries stored in the cache.", g.entries);
  Single(&out, "fanout_stored_bytes", "gauge", "Body bytes of the stored entries.",
         g.stored_bytes);
  Single(&out, "fanout_evictions_total", "counter",
         "Entries removed to keep the cache under max_cache_size.", g.evictions);
  Single(&out, "fanout_evicted_bytes_total", "counter", "Body bytes of the evicted entries.",
         g.evicted_bytes);
  Single(&out, "fanout_connections_open", "gauge", "Client connections open.",
         g.connections_open);
  Single(&out, "fanout_connections_idle", "gauge",
         "Client connections idle between requests (keep-alive).", g.connections_idle);
  Single(&out, "fanout_responses_in_flight", "gauge",
         "Requests being answered or bodies being sent.", g.responses_in_flight);
  Single(&out, "fanout_body_sender_bodies", "gauge",
         "Response bodies queued in the body sender's loops.", g.bodies_sending);
  HistogramFamily(&out, "fanout_request_first_byte_seconds",
                  "From a request's head to its response head written.", request_first_byte_);
  HistogramFamily(&out, "fanout_request_duration_seconds",
                  "From a request's head to its last body byte written (or the client leaving).",
                  request_duration_);
  HistogramFamily(&out, "fanout_upstream_connect_seconds",
                  "Time to open a new upstream connection (TCP and TLS).", upstream_connect_);
  HistogramFamily(&out, "fanout_upstream_first_byte_seconds",
                  "From a fetch's start to its upstream response head.", upstream_first_byte_);
  return out;
}

}  // namespace fanout
