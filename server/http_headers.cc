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

// Where HideHeadersFromHttplib keeps the headers it hides.
constexpr const char* kHiddenContentType = "X-Fanout-Hidden-Content-Type";
constexpr const char* kHiddenAcceptEncoding = "X-Fanout-Hidden-Accept-Encoding";
constexpr std::string_view kHiddenRange = "X-Fanout-Hidden-Range";

void MoveHeader(httplib::Request& req, const char* from, const char* to) {
  auto it = req.headers.find(from);
  if (it == req.headers.end()) return;
  std::string value = std::move(it->second);
  req.headers.erase(it);
  req.headers.emplace(to, std::move(value));
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

std::optional<std::uint64_t> RequestBodyLength(const httplib::Request& req) {
  if (req.has_header("Transfer-Encoding")) return std::nullopt;
  const std::string length = req.get_header_value("Content-Length");
  if (length.empty()) return 0;
  return ParseDigits(length, UINT64_MAX).value_or(0);  // httplib validated it
}

bool HeadMentionsRange(std::string_view head) {
  for (auto at = head.find("\r\n"); at != std::string_view::npos; at = head.find("\r\n", at + 2)) {
    const std::string_view line = head.substr(at + 2);
    auto starts = [&](std::string_view name) {
      return line.size() > name.size() && line[name.size()] == ':' &&
             EqualsIgnoreCase(line.substr(0, name.size()), name);
    };
    if (starts("Range") || starts(kHiddenRange)) return true;
  }
  return false;
}

std::string HideRangeFromHttplib(std::string_view head) {
  std::string out;
  out.reserve(head.size() + 16);
  bool first = true;
  while (!head.empty()) {
    const auto eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol == std::string_view::npos ? head.size() : eol + 2);
    head.remove_prefix(line.size());
    const auto colon = line.find(':');
    const std::string_view name = colon == std::string_view::npos ? "" : line.substr(0, colon);
    if (!first && EqualsIgnoreCase(name, kHiddenRange)) continue;
    if (!first && EqualsIgnoreCase(name, "Range")) {
      out.append(kHiddenRange);
      out.append(line.substr(colon));
    } else {
      out.append(line);
    }
    first = false;
  }
  return out;
}

void HideHeadersFromHttplib(httplib::Request& req) {
  req.headers.erase(kHiddenContentType);
  req.headers.erase(kHiddenAcceptEncoding);
  MoveHeader(req, std::string(kHiddenRange).c_str(), "Range");
  MoveHeader(req, "Accept-Encoding", kHiddenAcceptEncoding);
  if (req.method == "GET" || req.method == "HEAD") return;
  if (req.get_header_value("Content-Type").rfind("multipart/form-data", 0) == 0) {
    MoveHeader(req, "Content-Type", kHiddenContentType);
  }
}

bool IsHopByHop(std::string_view name, std::string_view connection) {
  static constexpr std::array<std::string_view, 9> kHopByHop = {
      "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
      "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade"};
  for (auto h : kHopByHop) {
    if (EqualsIgnoreCase(name, h)) return true;
  }
  return AnyToken(connection, [&](std::string_view t) { return EqualsIgnoreCase(t, name); });
}


bool RequestMustBypass(const httplib::Request& req) { return req.has_header("Cookie"); }


httplib::Headers UpstreamRequestHeaders(const httplib::Request& req,
                                        const std::string& host, bool shared_fetch) {
  static constexpr std::array<std::string_view, 9> kClientSpecific = {
      "Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match",
      "If-Unmodified-Since", "Accept-Encoding", "Content-Length", "Host"};
  const std::string connection = req.get_header_value("Connection");
  httplib::Headers out;
  for (const auto& [name, value] : req.headers) {
    if (IsHopByHop(name, connection)) continue;
    if (EqualsIgnoreCase(name, "Host") || EqualsIgnoreCase(name, "Content-Length")) continue;
    // httplib adds these to every request it parses; they are not the client's.
    if (EqualsIgnoreCase(name, "REMOTE_ADDR") || EqualsIgnoreCase(name, "REMOTE_PORT") ||
        EqualsIgnoreCase(name, "LOCAL_ADDR") || EqualsIgnoreCase(name, "LOCAL_PORT")) {
      continue;
    }
    std::string_view original = name;
    if (EqualsIgnoreCase(name, kHiddenContentType)) original = "Content-Type";
    if (EqualsIgnoreCase(name, kHiddenAcceptEncoding)) original = "Accept-Encoding";
    bool specific = false;
    for (auto h : kClientSpecific) specific = specific || EqualsIgnoreCase(original, h);
    if (shared_fetch && specific) continue;
    out.emplace(std::string(original), value);
  }
  out.emplace("Host", host);
  if (!req.remote_addr.empty()) {
    const std::string prior = req.get_header_value("X-Forwarded-For");
    out.erase("X-Forwarded-For");
    out.emplace("X-Forwarded-For",
                prior.empty() ? req.remote_addr : prior + ", " + req.remote_addr);
  }
  return out;
}

HeaderList RequestHeaderList(const httplib::Request& req) {
  HeaderList out;
  for (const auto& [name, value] : req.headers) {
    if (EqualsIgnoreCase(name, "REMOTE_ADDR") || EqualsIgnoreCase(name, "REMOTE_PORT") ||
        EqualsIgnoreCase(name, "LOCAL_ADDR") || EqualsIgnoreCase(name, "LOCAL_PORT")) {
      continue;
    }
    if (EqualsIgnoreCase(name, kHiddenContentType)) out.emplace_back("Content-Type", value);
    else if (EqualsIgnoreCase(name, kHiddenAcceptEncoding)) out.emplace_back("Accept-Encoding", value);
    else out.emplace_back(name, value);
  }
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
      // RFC 9111 §5.1: delta-seconds; past 2^31 it is 2^31 (§1.2.2). The
      // first valid one counts; anything else is ignored.
      if (const auto n = ParseDigits(value, std::uint64_t{1} << 31); n && !age_seen) {
        head.upstream_age = *n;
        age_seen = true;
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

bool RestoreRawHeaderValues(httplib::Request& req,
                            const std::vector<std::pair<std::string, std::string>>& raw) {
  if (raw.empty()) return false;
  // The same multimap order as httplib's (names compared without case;
  // fields of one name in the order sent): then the two line up.
  httplib::Headers restored;
  for (const auto& [name, value] : raw) restored.emplace(name, value);
  // Fields httplib adds itself, not sent by the client.
  for (const char* own : {"REMOTE_ADDR", "REMOTE_PORT", "LOCAL_ADDR", "LOCAL_PORT"}) {
    const auto range = req.headers.equal_range(own);
    for (auto it = range.first; it != range.second; ++it) restored.emplace(it->first, it->second);
  }
  if (restored.size() != req.headers.size()) return false;
  auto parsed = req.headers.begin();
  for (auto it = restored.begin(); it != restored.end(); ++it, ++parsed) {
    if (it->first != parsed->first) return false;
  }
  req.headers.swap(restored);
  return true;
}

}  // namespace fanout
