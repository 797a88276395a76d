#include "server/fetch_resume.h"

#include <charconv>

#include "core/header_text.h"
#include "core/http_date.h"

namespace fanout {
namespace {

// §8.8.2.2: a Last-Modified at least this long before the response's Date
// is strong enough to compare.
constexpr std::chrono::seconds kStrongDateMargin{60};

bool ParseNumber(std::string_view text, std::uint64_t* out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// "bytes A-B/C" (C known): true with its parts.
bool ParseContentRange(std::string_view value, std::uint64_t* first, std::uint64_t* last,
                       std::uint64_t* complete) {
  value = TrimOws(value);
  if (value.substr(0, 6) != "bytes ") return false;
  value.remove_prefix(6);
  const std::size_t dash = value.find('-');
  const std::size_t slash = value.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) {
    return false;
  }
  return ParseNumber(value.substr(0, dash), first) &&
         ParseNumber(value.substr(dash + 1, slash - dash - 1), last) &&
         ParseNumber(value.substr(slash + 1), complete) && *first <= *last && *last < *complete;
}

}  // namespace

std::optional<ResumeValidator> ResumeValidatorOf(const UpstreamResponseHead& head,
                                                 std::string* why_not) {
  if (head.status != 200) {
    *why_not = "status " + std::to_string(head.status) + ", not 200";
    return std::nullopt;
  }
  const std::string accept_ranges = HeaderValue(head.headers, "Accept-Ranges");
  if (EqualsIgnoreCase(TrimOws(accept_ranges), "none")) {
    *why_not = "the origin says Accept-Ranges: none";
    return std::nullopt;
  }
  ResumeValidator validator;
  const std::string etag(TrimOws(HeaderValue(head.headers, "ETag")));
  if (!etag.empty() && etag.front() == '"' && etag.size() >= 2 && etag.back() == '"') {
    validator.etag = etag;
    return validator;
  }
  const std::string last_modified(TrimOws(HeaderValue(head.headers, "Last-Modified")));
  const auto modified = ParseHttpDate(last_modified);
  const auto date = ParseHttpDate(HeaderValue(head.headers, "Date"));
  if (modified && date && *date - *modified >= kStrongDateMargin) {
    validator.last_modified = last_modified;
    return validator;
  }
  *why_not = etag.empty() && last_modified.empty()
                 ? "no validator (ETag or Last-Modified)"
                 : "no strong validator (a weak ETag, or a Last-Modified within 60 s of Date)";
  return std::nullopt;
}

HeaderList ResumeRequestHeaders(const HeaderList& original, std::uint64_t from,
                                const ResumeValidator& validator) {
  HeaderList headers;
  for (const auto& [name, value] : original) {
    const bool own = EqualsIgnoreCase(name, "Range") || EqualsIgnoreCase(name, "If-Range") ||
                     EqualsIgnoreCase(name, "If-None-Match") ||
                     EqualsIgnoreCase(name, "If-Modified-Since") ||
                     EqualsIgnoreCase(name, "If-Match") ||
                     EqualsIgnoreCase(name, "If-Unmodified-Since");
    if (!own) headers.emplace_back(name, value);
  }
  headers.emplace_back("Range", "bytes=" + std::to_string(from) + "-");
  headers.emplace_back("If-Range", validator.if_range());
  return headers;
}

std::string CheckResumeResponse(const UpstreamResponseHead& head, std::uint64_t from,
                                std::optional<std::uint64_t> total,
                                const ResumeValidator& validator, std::uint64_t* length) {
  if (head.status != 206) {
    return "it answered " + std::to_string(head.status) + " to a range from byte " +
           std::to_string(from) +
           (head.status == 200 ? " (the representation changed, or it ignores ranges)" : "");
  }
  const std::string etag(TrimOws(HeaderValue(head.headers, "ETag")));
  if (!validator.etag.empty() && !etag.empty() && etag != validator.etag) {
    return "its 206 names ETag " + etag + ", not " + validator.etag;
  }
  const std::string modified(TrimOws(HeaderValue(head.headers, "Last-Modified")));
  if (validator.etag.empty() && !modified.empty() && modified != validator.last_modified) {
    return "its 206 names Last-Modified " + modified + ", not " + validator.last_modified;
  }
  std::uint64_t first = 0, last = 0, complete = 0;
  const std::string range = HeaderValue(head.headers, "Content-Range");
  if (!ParseContentRange(range, &first, &last, &complete)) {
    return "its 206 has no usable Content-Range ('" + range + "')";
  }
  if (first != from || last + 1 != complete || (total && complete != *total)) {
    return "its 206 covers " + range + ", not bytes " + std::to_string(from) + "-" +
           (total ? std::to_string(*total - 1) + "/" + std::to_string(*total) : "");
  }
  const std::string content_length(TrimOws(HeaderValue(head.headers, "Content-Length")));
  if (!content_length.empty() && content_length != std::to_string(complete - from)) {
    return "its 206 covers " + range + " but says Content-Length: " + content_length;
  }
  *length = complete;
  return "";
}

}  // namespace fanout
