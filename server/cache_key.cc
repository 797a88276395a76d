#include "server/cache_key.h"

#include <algorithm>

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

// Escapes of unreserved characters decoded, the others' hex upper-cased;
// a '%' that starts no escape is kept as it is.
std::string NormalizeEscapes(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const int hi = text[i] == '%' && i + 2 < text.size() ? HexValue(text[i + 1]) : -1;
    const int lo = hi >= 0 ? HexValue(text[i + 2]) : -1;
    if (lo < 0) {
      out.push_back(text[i]);
      continue;
    }
    const char decoded = static_cast<char>(hi * 16 + lo);
    if (IsUnreserved(decoded)) {
      out.push_back(decoded);
    } else {
      out.push_back('%');
      out.push_back(kHex[hi]);
      out.push_back(kHex[lo]);
    }
    i += 2;
  }
  return out;
}

}  // namespace

std::string KeyQuery(std::string_view query, const std::vector<std::string>& ignored_params) {
  if (ignored_params.empty()) {
    return query.find('%') == std::string_view::npos ? std::string(query) : NormalizeEscapes(query);
  }
  std::string out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = std::min(query.find('&', start), query.size());
    const std::string param = NormalizeEscapes(query.substr(start, end - start));
    const std::string name = param.substr(0, param.find('='));
    const bool ignored =
        std::find(ignored_params.begin(), ignored_params.end(), name) != ignored_params.end();
    if (!ignored) {
      if (!out.empty()) out.push_back('&');
      out += param;
    }
    if (end == query.size()) return out;
    start = end + 1;
  }
}

std::string CacheKey(const Route& route, std::string_view upstream_target) {
  std::string key = route.upstream.Origin();
  const std::size_t question = upstream_target.find('?');
  if (question == std::string_view::npos) {
    key += upstream_target;
    return key;
  }
  key += upstream_target.substr(0, question);
  const std::string query = KeyQuery(upstream_target.substr(question + 1), route.ignore_query_params);
  // "/a?" stays as it is (RFC 3986 §6.2.3 keeps empty components'
  // delimiters); "/a?utm_source=x" with that parameter ignored is "/a".
  if (!query.empty() || question + 1 == upstream_target.size()) {
    key.push_back('?');
    key += query;
  }
  return key;
}

}  // namespace fanout
