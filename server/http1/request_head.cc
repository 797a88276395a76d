#include "server/http1/request_head.h"

#include "core/header_text.h"

namespace fanout {
namespace {

HeadParse Error(int status, std::string reason) {
  return HeadParse{HeadParse::State::kError, status, std::move(reason)};
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

// Visible ASCII: what a request target may hold (no spaces or controls).
bool IsTargetText(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

// RFC 3986 uri-host [":" port]: an IP-literal in brackets or a reg-name
// (unreserved, pct-encoded, sub-delims), then an optional port of digits.
bool IsHostValue(std::string_view s) {
  std::size_t port_at;
  if (!s.empty() && s.front() == '[') {
    const std::size_t close = s.find(']');
    if (close == std::string_view::npos) return false;
    for (char c : s.substr(1, close - 1)) {
      const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                      c == ':' || c == '.' || c == 'v' || c == 'V';
      if (!ok) return false;
    }
    port_at = close + 1;
    if (port_at < s.size() && s[port_at] != ':') return false;
  } else {
    port_at = s.find(':');
    for (char c : s.substr(0, port_at)) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      std::string_view("-._~%!$&'()*+,;=").find(c) != std::string_view::npos;
      if (!ok) return false;
    }
  }
  if (port_at >= s.size()) return true;
  for (char c : s.substr(port_at + 1)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// The first byte of a bare CR or LF in a head (CRLF pairs aside), or npos.
// A CR as the very last byte may still be followed by its LF.
std::size_t FindBareLineEnd(std::string_view bytes) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] == '\n' && (i == 0 || bytes[i - 1] != '\r')) return i;
    if (bytes[i] == '\r' && i + 1 < bytes.size() && bytes[i + 1] != '\n') return i;
  }
  return std::string_view::npos;
}

// One decimal number, or a list of identical ones ("5, 5"); nullopt for
// anything else (signs, hex, spaces inside, different numbers, overflow).
std::optional<std::uint64_t> ParseContentLength(std::string_view value) {
  std::optional<std::uint64_t> result;
  for (;;) {
    const std::size_t comma = value.find(',');
    const std::string_view item = TrimOws(value.substr(0, comma));
    if (item.empty() || item.size() > 19) return std::nullopt;  // 19 digits < 2^63
    std::uint64_t n = 0;
    for (char c : item) {
      if (c < '0' || c > '9') return std::nullopt;
      n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (result && *result != n) return std::nullopt;
    result = n;
    if (comma == std::string_view::npos) return result;
    value.remove_prefix(comma + 1);
  }
}

// Checks the request line and fills method, target, form and version.
HeadParse ParseRequestLine(std::string_view line, RequestHead* head) {
  if (line.size() > kMaxRequestLine) {
    return Error(414, "request line longer than " + std::to_string(kMaxRequestLine) + " bytes");
  }
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos ||
      !IsToken(line.substr(0, sp1)) || sp2 == sp1 + 1) {
    return Error(400, "malformed request line");
  }
  head->method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (!IsTargetText(target)) return Error(400, "a control or non-ASCII byte in the request target");
  const std::string_view version = line.substr(sp2 + 1);
  if (version == "HTTP/1.1") {
    head->minor_version = 1;
  } else if (version == "HTTP/1.0") {
    head->minor_version = 0;
  } else if (version.size() == 8 && version.substr(0, 5) == "HTTP/" &&
             version[5] >= '0' && version[5] <= '9' && version[6] == '.' &&
             version[7] >= '0' && version[7] <= '9') {
    return Error(505, "HTTP version not supported");
  } else {
    return Error(400, "malformed request line");
  }
  // RFC 9112 §3.2: the four forms of request-target.
  if (target.front() == '/') {
    head->form = RequestHead::TargetForm::kOrigin;
  } else if (target == "*") {
    if (head->method != "OPTIONS") return Error(400, "'*' is a target for OPTIONS only");
    head->form = RequestHead::TargetForm::kAsterisk;
  } else if (head->method == "CONNECT") {
    head->form = RequestHead::TargetForm::kAuthority;
  } else {
    const std::size_t scheme_end = target.find("://");
    const std::string_view scheme =
        scheme_end == std::string_view::npos ? "" : target.substr(0, scheme_end);
    if (!EqualsIgnoreCase(scheme, "http") && !EqualsIgnoreCase(scheme, "https")) {
      return Error(400, "request target is neither a path nor an http(s) URL");
    }
    const std::string_view rest = target.substr(scheme_end + 3);
    const std::size_t path = rest.find_first_of("/?");
    head->host = rest.substr(0, path);
    if (head->host.empty() || !IsHostValue(head->host) ||
        head->host.find('@') != std::string_view::npos) {
      return Error(400, "bad authority in the request target");
    }
    if (path == std::string_view::npos) {
      target = "/";
    } else if (rest[path] == '?') {
      return Error(400, "request target URL has a query but no path");
    } else {
      target = rest.substr(path);
    }
    head->form = RequestHead::TargetForm::kAbsolute;
    head->scheme = EqualsIgnoreCase(scheme, "http") ? "http" : "https";
  }
  head->target = target;
  return {HeadParse::State::kComplete, 0, {}};
}

// Checks one field and what it means for the request; `hosts` counts Host
// fields, `transfer_coding_seen` whether Transfer-Encoding was.
HeadParse CheckField(std::string_view name, std::string_view value, RequestHead* head,
                     int* hosts, bool* transfer_coding_seen, bool* keep_alive) {
  if (EqualsIgnoreCase(name, "Host")) {
    ++*hosts;
    if (!IsHostValue(value)) return Error(400, "malformed Host header");
    if (head->form != RequestHead::TargetForm::kAbsolute) head->host = value;
  } else if (EqualsIgnoreCase(name, "Content-Length")) {
    const auto n = ParseContentLength(value);
    if (!n) return Error(400, "malformed Content-Length");
    if (head->framing == RequestHead::Framing::kLength && head->content_length != *n) {
      return Error(400, "conflicting Content-Length headers");
    }
    if (head->framing == RequestHead::Framing::kChunked) {
      return Error(400, "both Content-Length and Transfer-Encoding");
    }
    head->framing = RequestHead::Framing::kLength;
    head->content_length = *n;
  } else if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
    if (head->minor_version == 0) return Error(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (head->framing == RequestHead::Framing::kLength) {
      return Error(400, "both Content-Length and Transfer-Encoding");
    }
    // Every coding listed, across lines: only one `chunked`, and last.
    std::string_view list = value;
    while (true) {
      const std::size_t comma = list.find(',');
      const std::string_view coding = TrimOws(list.substr(0, comma));
      if (!coding.empty()) {
        if (!EqualsIgnoreCase(coding, "chunked")) {
          if (!IsToken(coding)) return Error(400, "malformed Transfer-Encoding");
          return Error(501, "transfer coding '" + std::string(coding) + "' not implemented");
        }
        if (*transfer_coding_seen) return Error(400, "chunked applied more than once");
        *transfer_coding_seen = true;
      }
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
    if (!*transfer_coding_seen) return Error(400, "empty Transfer-Encoding");
    head->framing = RequestHead::Framing::kChunked;
  } else if (EqualsIgnoreCase(name, "Connection")) {
    std::string_view list = value;
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      const std::string_view option = TrimOws(list.substr(0, comma));
      if (EqualsIgnoreCase(option, "close")) head->connection_close = true;
      if (EqualsIgnoreCase(option, "keep-alive")) *keep_alive = true;
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  } else if (EqualsIgnoreCase(name, "Expect")) {
    if (!EqualsIgnoreCase(TrimOws(value), "100-continue")) {
      return Error(417, "only 'Expect: 100-continue' is understood");
    }
    head->expect_continue = head->minor_version == 1;
  }
  return {HeadParse::State::kComplete, 0, {}};
}

}  // namespace

std::optional<std::string_view> RequestHead::Find(std::string_view name) const {
  for (std::size_t i = 0; i < header_count; ++i) {
    if (EqualsIgnoreCase(headers[i].first, name)) return headers[i].second;
  }
  return std::nullopt;
}

HeadParse ParseRequestHead(std::string_view bytes, RequestHead* head) {
  *head = RequestHead{};
  // A request line may be preceded by empty lines (RFC 9112 §2.2).
  std::size_t start = 0;
  while (bytes.substr(start, 2) == "\r\n") start += 2;
  const std::size_t end = bytes.find("\r\n\r\n", start);
  const std::string_view seen = bytes.substr(0, end == std::string_view::npos ? bytes.size()
                                                                              : end + 4);
  if (FindBareLineEnd(seen) != std::string_view::npos) {
    return Error(400, "request head lines must end with CRLF");
  }
  const std::size_t line_end = bytes.find("\r\n", start);
  if (line_end == std::string_view::npos || end == std::string_view::npos) {
    if (line_end == std::string_view::npos && bytes.size() - start > kMaxRequestLine) {
      return Error(414, "request line longer than " + std::to_string(kMaxRequestLine) + " bytes");
    }
    return {};
  }
  head->size = end + 4;
  if (HeadParse line = ParseRequestLine(bytes.substr(start, line_end - start), head);
      line.state == HeadParse::State::kError) {
    return line;
  }
  int hosts = 0;
  bool transfer_coding_seen = false;
  bool keep_alive = false;
  std::string_view rest = bytes.substr(line_end + 2, end + 2 - (line_end + 2));
  while (!rest.empty()) {
    const std::size_t crlf = rest.find("\r\n");
    const std::string_view field = rest.substr(0, crlf);
    rest.remove_prefix(crlf + 2);
    if (head->header_count == kMaxFields) {
      return Error(431, "more than " + std::to_string(kMaxFields) + " header fields");
    }
    if (!field.empty() && (field.front() == ' ' || field.front() == '\t')) {
      return Error(400, "obs-folded header line");
    }
    const std::size_t colon = field.find(':');
    if (colon == std::string_view::npos || !IsToken(field.substr(0, colon))) {
      return Error(400, "malformed header field name");
    }
    const std::string_view name = field.substr(0, colon);
    const std::string_view value = TrimOws(field.substr(colon + 1));
    if (!IsFieldValueText(value)) return Error(400, "a control character in a header field value");
    head->headers[head->header_count++] = {name, value};
    if (HeadParse checked =
            CheckField(name, value, head, &hosts, &transfer_coding_seen, &keep_alive);
        checked.state == HeadParse::State::kError) {
      return checked;
    }
  }
  // RFC 9112 §3.2: exactly one Host in HTTP/1.1 (absolute-form included).
  if ((head->minor_version == 1 && hosts != 1) || hosts > 1) {
    return Error(400, hosts == 0 ? "no Host header" : "more than one Host header");
  }
  if (head->minor_version == 0 && !keep_alive) head->connection_close = true;
  return {HeadParse::State::kComplete, 0, {}};
}

}  // namespace fanout
