#include "server/access_log.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

#include "server/log_files.h"
#include "server/metrics.h"
#include "server/recent_requests.h"

namespace fanout {
namespace {

double Milliseconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// ISO 8601 UTC with milliseconds: 2026-12-01T10:00:00.123Z.
std::string IsoTime(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  const std::time_t seconds = static_cast<std::time_t>(ms.count() / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms.count() % 1000));
  return buf;
}

}  // namespace

AccessLog::AccessLog(Metrics* metrics, std::shared_ptr<spdlog::logger> logger,
                     RecentRequests* recent)
    : metrics_(metrics), recent_(recent), logger_(std::move(logger)) {}

void AccessLog::Configure(bool enabled, Format format) {
  const bool json = format == Format::kJson;
  if (logger_) logger_->set_pattern(json ? "%v" : kLogPattern);
  json_.store(json, std::memory_order_relaxed);
  enabled_.store(enabled, std::memory_order_relaxed);
}

void AccessLog::Write(const AccessLogRecord& r) const {
  const auto total = r.end_ - r.start_;
  const std::int64_t head_ns = r.head_sent_ns_.load(std::memory_order_relaxed);
  const auto ttfb = head_ns < 0 ? total : std::chrono::nanoseconds(head_ns);
  const std::uint64_t bytes = r.bytes_.load(std::memory_order_relaxed);
  if (metrics_ != nullptr) {
    metrics_->CountRequest(Metrics::OutcomeOf(r.cache_status_), r.status_, bytes, ttfb, total);
  }
  if (recent_ != nullptr) {
    recent_->Add(r.method_, r.target_, r.status_, r.cache_status_, bytes, Milliseconds(total));
  }
  if (!enabled()) return;
  spdlog::logger& logger = logger_ ? *logger_ : *spdlog::default_logger_raw();
  if (!json_.load(std::memory_order_relaxed)) {
    logger.info("access {} \"{} {}\" {} {} {} bytes {:.1f}ms{}{}", r.remote_, r.method_,
                r.target_, r.status_, r.cache_status_, bytes, Milliseconds(total),
                r.incomplete_.empty() ? "" : " incomplete: ", r.incomplete_);
    return;
  }
  nlohmann::json line = {
      {"time", IsoTime(r.wall_start_)},
      {"client", r.remote_},
      {"method", r.method_},
      {"target", r.target_},
      {"status", r.status_},
      {"cache", r.cache_status_},
      {"bytes", bytes},
      {"duration_ms", Milliseconds(total)},
      {"ttfb_ms", Milliseconds(ttfb)},
  };
  if (r.upstream_status_ != 0) {
    line["upstream_status"] = r.upstream_status_;
    line["upstream_ms"] = Milliseconds(r.upstream_wait_);
  }
  if (!r.incomplete_.empty()) line["incomplete"] = r.incomplete_;
  // Targets and client-supplied text may hold anything: invalid UTF-8 is
  // replaced rather than failing the line.
  const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  logger.info(text);
}

AccessLogRecord::AccessLogRecord(const AccessLog* log, std::string remote, std::string method,
                                 std::string target)
    : log_(log),
      remote_(std::move(remote)),
      method_(std::move(method)),
      target_(std::move(target)),
      wall_start_(log != nullptr && log->enabled() ? std::chrono::system_clock::now()
                                                   : std::chrono::system_clock::time_point{}),
      start_(std::chrono::steady_clock::now()) {}

void AccessLogRecord::MarkUpstreamHead(int status) {
  upstream_status_ = status;
  upstream_wait_ = std::chrono::steady_clock::now() - start_;
}

void AccessLogRecord::MarkHeadSent() {
  std::int64_t expected = -1;
  const std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::steady_clock::now() - start_)
                              .count();
  head_sent_ns_.compare_exchange_strong(expected, ns, std::memory_order_relaxed);
}

AccessLogRecord::~AccessLogRecord() {
  if (log_ == nullptr) return;
  end_ = std::chrono::steady_clock::now();
  log_->Write(*this);
}

}  // namespace fanout
