#include "server/router.h"

#include <algorithm>

namespace fanout {

CachePolicyOptions CachePolicyOf(const Route& route) {
  CachePolicyOptions policy;
  policy.default_ttl = route.default_ttl;
  policy.stale_while_revalidate = route.stale_while_revalidate;
  policy.stale_if_error = route.stale_if_error;
  return policy;
}
namespace {

std::string_view PathOf(std::string_view target) {
  return target.substr(0, target.find('?'));
}

bool PrefixMatches(std::string_view prefix, std::string_view path) {
  if (prefix == "/") return true;
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

}  // namespace

Router::Router(std::vector<Route> routes) : routes_(std::move(routes)) {
  std::stable_sort(routes_.begin(), routes_.end(), [](const Route& a, const Route& b) {
    return a.prefix.size() > b.prefix.size();
  });
}

const Route* Router::Match(std::string_view target) const {
  const std::string_view path = PathOf(target);
  for (const Route& r : routes_) {
    if (PrefixMatches(r.prefix, path)) return &r;
  }
  return nullptr;
}

std::string Router::UpstreamTarget(const Route& route, std::string_view target) {
  std::string_view rest = route.prefix == "/" ? target : target.substr(route.prefix.size());
  std::string out = route.upstream.path;
  if (rest.empty() || rest[0] == '?') out += "/";
  out += rest;
  return out;
}

}  // namespace fanout
