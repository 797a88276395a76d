#include "server/request_head.h"

#include "core/header_text.h"

namespace fanout {
namespace {

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

// Visible ASCII: what an origin-form target may hold (no spaces or controls).
bool IsTargetText(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

// Field values: visible bytes, spaces and tabs (obs-text allowed), never
// other controls.
bool IsFieldValue(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

// Splits off the next CRLF-terminated line; false if none or a bare LF/CR.
bool NextLine(std::string_view& rest, std::string_view& line) {
  const std::size_t crlf = rest.find("\r\n");
  if (crlf == std::string_view::npos) return false;
  line = rest.substr(0, crlf);
  if (line.find_first_of("\r\n") != std::string_view::npos) return false;
  rest.remove_prefix(crlf + 2);
  return true;
}

}  // namespace

std::optional<RequestHead> ParseRequestHead(std::string_view bytes) {
  const std::size_t end = bytes.find("\r\n\r\n");
  if (end == std::string_view::npos) return std::nullopt;
  RequestHead head;
  head.size = end + 4;
  std::string_view rest = bytes.substr(0, end + 2);  // every line keeps its CRLF
  std::string_view line;
  if (!NextLine(rest, line)) return std::nullopt;
  // request-line = method SP request-target SP HTTP-version
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return std::nullopt;
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return std::nullopt;
  head.method = line.substr(0, sp1);
  head.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (!IsToken(head.method) || head.target.empty() || head.target.front() != '/' ||
      !IsTargetText(head.target) || line.substr(sp2 + 1) != "HTTP/1.1") {
    return std::nullopt;
  }
  while (!rest.empty()) {
    if (!NextLine(rest, line)) return std::nullopt;
    if (head.header_count == RequestHead::kMaxHeaders) return std::nullopt;
    // field-line = field-name ":" OWS field-value OWS; no space before ':'
    // and no obs-fold (a line starting with whitespace fails IsToken).
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = TrimOws(line.substr(colon + 1));
    if (!IsToken(name) || !IsFieldValue(value)) return std::nullopt;
    head.headers[head.header_count++] = {name, value};
  }
  return head;
}

HeadProblem CheckRequestHead(std::string_view bytes) {
  const std::size_t head_end = bytes.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return {400, "no blank line after the head"};
  const std::string_view head = bytes.substr(0, head_end + 4);
  const std::size_t line_end = head.find("\r\n");
  if (line_end == std::string_view::npos) return {400, "no request line"};
  const std::string_view line = head.substr(0, line_end);
  if (line.size() > kMaxRequestLine) {
    return {414, "request line longer than " + std::to_string(kMaxRequestLine) + " bytes"};
  }
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos ||
      !IsToken(line.substr(0, sp1)) || sp2 == sp1 + 1) {
    return {400, "malformed request line"};
  }
  if (!IsTargetText(line.substr(sp1 + 1, sp2 - sp1 - 1))) {
    return {400, "a control or non-ASCII byte in the request target"};
  }
  const std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    if (version.size() == 8 && version.substr(0, 5) == "HTTP/") {
      return {505, "HTTP version not supported"};
    }
    return {400, "malformed request line"};
  }
  std::string_view rest = head.substr(line_end + 2);
  std::size_t fields = 0;
  while (rest.size() > 2) {  // the blank line ends the head
    const std::size_t crlf = rest.find("\r\n");
    if (crlf == std::string_view::npos) return {400, "a field line without CRLF"};
    const std::string_view field = rest.substr(0, crlf);
    rest.remove_prefix(crlf + 2);
    if (++fields > kMaxFields) {
      return {431, "more than " + std::to_string(kMaxFields) + " header fields"};
    }
    if (field.find('\r') != std::string_view::npos) return {400, "a bare CR in a header field"};
    if (!field.empty() && (field.front() == ' ' || field.front() == '\t')) {
      return {400, "obs-folded header line"};
    }
    const std::size_t colon = field.find(':');
    if (colon == std::string_view::npos || !IsToken(field.substr(0, colon))) {
      return {400, "malformed header field name"};
    }
    if (!IsFieldValue(field.substr(colon + 1))) {
      return {400, "a control character in a header field value"};
    }
  }
  return {};
}

std::optional<std::vector<std::pair<std::string, std::string>>> RawHeaderFields(
    std::string_view bytes) {
  const std::size_t end = bytes.find("\r\n\r\n");
  if (end == std::string_view::npos) return std::nullopt;
  std::string_view rest = bytes.substr(0, end + 2);
  std::vector<std::pair<std::string, std::string>> fields;
  bool request_line = true;
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (request_line) {
      request_line = false;
      continue;
    }
    if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) return std::nullopt;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // httplib skips such lines too
    fields.emplace_back(std::string(line.substr(0, colon)),
                        std::string(TrimOws(line.substr(colon + 1))));
  }
  return fields;
}

}  // namespace fanout
