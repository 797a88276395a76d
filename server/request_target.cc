#include "server/request_target.h"

#include <vector>

namespace fanout {
namespace {

bool IsUnreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsDotSegment(std::string_view segment) { return segment == "." || segment == ".."; }

// Decodes escapes of unreserved characters and upper-cases the others. A
// '%' that starts no escape is an error, or with `lenient` kept as it is.
Status NormalizeEscapes(std::string_view text, bool lenient, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out->clear();
  out->reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out->push_back(text[i]);
      continue;
    }
    const int hi = i + 2 < text.size() ? HexValue(text[i + 1]) : -1;
    const int lo = hi >= 0 ? HexValue(text[i + 2]) : -1;
    if (lo < 0 && lenient) {
      out->push_back('%');
      continue;
    }
    if (lo < 0) return Status::InvalidArgument("a '%' that starts no escape in the target");
    const char decoded = static_cast<char>(hi * 16 + lo);
    if (IsUnreserved(decoded)) {
      out->push_back(decoded);
    } else {
      out->push_back('%');
      out->push_back(kHex[hi]);
      out->push_back(kHex[lo]);
    }
    i += 2;
  }
  return Status::Ok();
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// RFC 3986 §5.2.4 for an absolute path.
std::string RemoveDotSegments(std::string_view path) {
  std::vector<std::string_view> kept;
  bool ends_in_slash = false;
  const std::vector<std::string_view> segments = Split(path.substr(1), '/');
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const bool last = i + 1 == segments.size();
    ends_in_slash = false;
    if (segments[i] == ".") {
      ends_in_slash = last;
      continue;
    }
    if (segments[i] == "..") {
      if (!kept.empty()) kept.pop_back();
      ends_in_slash = last;
      continue;
    }
    kept.push_back(segments[i]);
  }
  std::string out = "/";
  for (std::size_t i = 0; i < kept.size(); ++i) {
    if (i > 0) out += '/';
    out += kept[i];
  }
  if (ends_in_slash && !kept.empty()) out += '/';
  return out;
}

// Whether a segment hides a dot-segment from an origin that takes "%2F",
// "%5C" or "\" for a separator, or that drops a segment's ";parameters"
// before resolving dots (Tomcat, Jetty: "/..;/x").
bool HidesDotSegment(std::string_view segment) {
  if (IsDotSegment(segment.substr(0, segment.find(';'))) && segment.find(';') != segment.npos) {
    return true;
  }
  std::string split;
  for (std::size_t i = 0; i < segment.size(); ++i) {
    const std::string_view rest = segment.substr(i);
    if (rest.substr(0, 3) == "%2F" || rest.substr(0, 3) == "%5C") {
      split += '/';
      i += 2;
    } else {
      split += segment[i] == '\\' ? '/' : segment[i];
    }
  }
  if (split.find('/') == std::string::npos) return false;
  for (std::string_view piece : Split(split, '/')) {
    if (IsDotSegment(piece.substr(0, piece.find(';')))) return true;
  }
  return false;
}

}  // namespace

Status NormalizeRequestTarget(std::string_view target, std::string* out) {
  if (target.empty() || target.front() != '/') {
    return Status::InvalidArgument("the target must be a path starting with '/'");
  }
  for (const char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return Status::InvalidArgument("a space, control or non-ASCII byte in the target");
    }
    if (c == '#') return Status::InvalidArgument("a fragment ('#') in the target");
  }
  const std::size_t question = target.find('?');
  std::string path;
  Status st = NormalizeEscapes(target.substr(0, question), /*lenient=*/false, &path);
  if (!st.ok()) return st;
  // The query is forwarded as sent (a bare '%' in it too, as browsers
  // send one): only its characters were checked.
  path = RemoveDotSegments(path);
  for (std::string_view segment : Split(path, '/')) {
    if (HidesDotSegment(segment)) {
      return Status::InvalidArgument("an encoded path separator next to a dot-segment");
    }
  }
  *out = std::move(path);
  if (question != std::string_view::npos) out->append(target.substr(question));
  return Status::Ok();
}

std::string NormalizeQueryEscapes(std::string_view query) {
  std::string out;
  (void)NormalizeEscapes(query, /*lenient=*/true, &out);
  return out;
}

}  // namespace fanout
