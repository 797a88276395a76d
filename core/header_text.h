// Small text rules of HTTP header fields, shared by the parsers in core/
// and server/: optional whitespace and case-insensitive names.

#ifndef FANOUT_CORE_HEADER_TEXT_H_
#define FANOUT_CORE_HEADER_TEXT_H_

#include <strings.h>

#include <string_view>

namespace fanout {

// Without leading and trailing spaces and tabs (RFC 9110 OWS).
inline std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 9110 §5.6.2 tchar: the characters of a token (field names, methods).
inline bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 9110 §5.5: a field value's bytes are visible characters, SP, HTAB
// and obs-text (0x80-0xFF); any other control byte (NUL, a CR, DEL) makes
// it one that recipients read differently, so it is refused.
inline bool IsFieldValueText(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && ch != '\t') || c == 0x7f) return false;
  }
  return true;
}

// Field names compare case-insensitively (RFC 9110 §5.1).
inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace fanout

#endif  // FANOUT_CORE_HEADER_TEXT_H_
