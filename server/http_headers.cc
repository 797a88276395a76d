#include "server/http_headers.h"

#include <strings.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <string_view>

#include "core/header_text.h"
#include "core/http_date.h"

namespace fanout {
namespace {

// Calls f(token) for each comma-separated token of a header value.
template <typename F>
bool AnyToken(std::string_view list, F f) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    std::string_view token = TrimOws(list.substr(0, comma));
    if (!token.empty() && f(token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// A string of decimal digits as a number, saturating at `cap`; nullopt if
// it is empty or holds anything else (a sign, spaces, a fraction).
std::optional<std::uint64_t> ParseDigits(std::string_view text, std::uint64_t cap) {
  if (text.empty()) return std::nullopt;
  std::uint64_t n = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    n = n > (cap - digit) / 10 ? cap : n * 10 + digit;
  }
  return std::min(n, cap);
}

}  // namespace

bool IsHopByHop(std::string_view name, std::string_view connection) {
  static constexpr std::array<std::string_view, 9> kHopByHop = {
      "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
      "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade"};
  for (auto h : kHopByHop) {
    if (EqualsIgnoreCase(name, h)) return true;
  }
  return AnyToken(connection, [&](std::string_view t) { return EqualsIgnoreCase(t, name); });
}


bool RequestMustBypass(const Request& req) { return req.has_header("Cookie"); }


HeaderList UpstreamRequestHeaders(const Request& req, const std::string& host,
                                  bool shared_fetch, std::string_view via) {
  static constexpr std::array<std::string_view, 7> kClientSpecific = {
      "Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match",
      "If-Unmodified-Since", "Accept-Encoding"};
  const std::string connection = req.header("Connection");
  HeaderList out;
  out.reserve(req.headers.size() + 2);
  out.emplace_back("Host", host);
  std::string forwarded_for;
  std::string via_list;
  for (const auto& [name, value] : req.headers) {
    if (IsHopByHop(name, connection)) continue;
    if (!via.empty() && EqualsIgnoreCase(name, "Via")) {
      via_list.append(value).append(", ");
      continue;
    }
    // Framing is the upstream client's; Host is the route's.
    if (EqualsIgnoreCase(name, "Host") || EqualsIgnoreCase(name, "Content-Length")) continue;
    if (EqualsIgnoreCase(name, "X-Forwarded-For")) {
      forwarded_for += (forwarded_for.empty() ? "" : ", ") + value;
      continue;
    }
    bool specific = false;
    for (auto h : kClientSpecific) specific = specific || EqualsIgnoreCase(name, h);
    if (shared_fetch && specific) continue;
    out.emplace_back(name, value);
  }
  if (!req.remote_addr.empty()) {
    forwarded_for += (forwarded_for.empty() ? "" : ", ") + req.remote_addr;
  }
  if (!forwarded_for.empty()) out.emplace_back("X-Forwarded-For", std::move(forwarded_for));
  if (!via.empty()) out.emplace_back("Via", via_list.append(via));
  return out;
}

ResponseHead MakeResponseHead(const UpstreamResponseHead& res) {
  ResponseHead head;
  head.status = res.status;
  head.received_at = std::chrono::system_clock::now();
  // Every Connection field names hop-by-hop headers (RFC 9110 §7.6.1).
  std::string connection;
  for (const auto& [name, value] : res.headers) {
    if (EqualsIgnoreCase(name, "Connection")) connection += (connection.empty() ? "" : ", ") + value;
  }
  bool age_seen = false;
  for (const auto& [name, value] : res.headers) {
    if (IsHopByHop(name, connection)) continue;
    if (EqualsIgnoreCase(name, "Content-Length")) {
      // The upstream client checked the framing; only digits count here.
      if (const auto n = ParseDigits(value, UINT64_MAX)) head.content_length = *n;
      continue;  // set again from the stream's length when served
    }
    if (EqualsIgnoreCase(name, "Age")) {
      // RFC 9111 §5.1: delta-seconds; past 2^31 it is 2^31 (§1.2.2). Only
      // the first value counts (of the first line, or of a list, which is
      // the same field combined, RFC 9110 §5.3); one that is not digits
      // ("7200.0", "12s", "-1") makes the field ignored.
      if (!age_seen) {
        age_seen = true;
        const std::string_view first = TrimOws(std::string_view(value).substr(0, value.find(',')));
        if (const auto n = ParseDigits(first, std::uint64_t{1} << 31)) head.upstream_age = *n;
      }
      continue;  // recomputed on every response
    }
    head.headers.emplace_back(name, value);
  }
  // RFC 9110 §6.6.1: a recipient with a clock adds the Date it received a
  // response without one before caching or forwarding it.
  if (HeaderValue(head.headers, "Date").empty()) {
    head.headers.emplace_back("Date", FormatHttpDate(head.received_at));
  }
  return head;
}

}  // namespace fanout
