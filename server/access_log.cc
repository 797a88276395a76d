#include "server/access_log.h"

#include <spdlog/spdlog.h>

namespace fanout {

AccessLogRecord::AccessLogRecord(bool enabled, std::string remote, std::string method,
                                 std::string target)
    : enabled_(enabled),
      remote_(std::move(remote)),
      method_(std::move(method)),
      target_(std::move(target)),
      start_(std::chrono::steady_clock::now()) {}

AccessLogRecord::~AccessLogRecord() {
  if (!enabled_) return;
  const double ms = std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - start_)
                        .count();
  spdlog::info("access {} \"{} {}\" {} {} {} bytes {:.1f}ms{}{}", remote_, method_, target_,
               status_, cache_status_, bytes_.load(), ms,
               incomplete_.empty() ? "" : " incomplete: ", incomplete_);
}

}  // namespace fanout
