// ResponseHead: the status line and end-to-end headers of an upstream
// response, as the fetch received them. Immutable once published.

#ifndef FANOUT_CORE_RESPONSE_HEAD_H_
#define FANOUT_CORE_RESPONSE_HEAD_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fanout {

struct ResponseHead {
  int status = 0;
  // In the order received; names as sent by the upstream.
  std::vector<std::pair<std::string, std::string>> headers;
  // The body length the upstream announced, if it did.
  std::optional<std::uint64_t> content_length;
  // When the head arrived (for Age).
  std::chrono::system_clock::time_point received_at;
  // The upstream's Age header at that time, in seconds.
  std::uint64_t upstream_age = 0;

  // The first value of a header (case-insensitive name), or "".
  std::string Header(std::string_view name) const;
};

}  // namespace fanout

#endif  // FANOUT_CORE_RESPONSE_HEAD_H_
