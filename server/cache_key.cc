#include "server/cache_key.h"

#include <algorithm>

#include "server/request_target.h"

namespace fanout {

std::string KeyQuery(std::string_view query, const std::vector<std::string>& ignored_params) {
  if (ignored_params.empty()) {
    if (query.find('%') == std::string_view::npos) return std::string(query);
    return NormalizeQueryEscapes(query);
  }
  std::string out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = std::min(query.find('&', start), query.size());
    const std::string param = NormalizeQueryEscapes(query.substr(start, end - start));
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
