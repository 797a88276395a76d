// ResponseHead: the status line and end-to-end headers of an upstream
// response, as the fetch received them, and when. Immutable once published.

#ifndef FANOUT_CORE_RESPONSE_HEAD_H_
#define FANOUT_CORE_RESPONSE_HEAD_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fanout {

// Header lines in order; names as sent.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// The first value of a header (case-insensitive name), or "".
std::string HeaderValue(const HeaderList& headers, std::string_view name);
// Every value of a header, in order.
std::vector<std::string> HeaderValues(const HeaderList& headers, std::string_view name);

struct ResponseHead {
  int status = 0;
  HeaderList headers;
  // The body length the upstream announced, if it did.
  std::optional<std::uint64_t> content_length;
  // When the request that produced it was sent, and when the head arrived
  // (RFC 9111 §4.2.3's request_time and response_time).
  std::chrono::system_clock::time_point requested_at;
  std::chrono::system_clock::time_point received_at;
  // The upstream's Age header at that time, in seconds.
  std::uint64_t upstream_age = 0;

  std::string Header(std::string_view name) const { return HeaderValue(headers, name); }
};

}  // namespace fanout

#endif  // FANOUT_CORE_RESPONSE_HEAD_H_
