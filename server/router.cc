#include "server/router.h"

#include <algorithm>

#include "core/header_text.h"

namespace fanout {

namespace {

std::string_view PathOf(std::string_view target) {
  return target.substr(0, target.find('?'));
}

}  // namespace

const PathRule* RuleFor(const Route& route, std::string_view upstream_target) {
  if (route.rules.empty()) return nullptr;
  // The path as the route's client side names it: what follows the
  // upstream base path ("/debian" + "/pool/x.deb" -> "/pool/x.deb").
  std::string_view path = PathOf(upstream_target);
  if (path.substr(0, route.upstream.path.size()) == route.upstream.path) {
    path.remove_prefix(route.upstream.path.size());
  }
  const std::string relative = path.empty() || path[0] != '/' ? "/" + std::string(path)
                                                              : std::string(path);
  for (const PathRule& rule : route.rules) {
    if (rule.match.Matches(relative)) return &rule;
  }
  return nullptr;
}

CachePolicyOptions CachePolicyOf(const Route& route, std::string_view upstream_target) {
  CachePolicyOptions policy;
  policy.default_ttl = route.default_ttl;
  policy.stale_while_revalidate = route.stale_while_revalidate;
  policy.stale_if_error = route.stale_if_error;
  policy.targeted_fields = route.targeted_cache_control;
  if (const PathRule* rule = RuleFor(route, upstream_target)) {
    if (rule->ttl) policy.default_ttl = rule->ttl;
    policy.immutable = rule->immutable;
    policy.ignore_client_no_cache = rule->ignore_client_no_cache;
    policy.store = rule->store;
  }
  return policy;
}

namespace {

bool PrefixMatches(std::string_view prefix, std::string_view path) {
  if (prefix == "/") return true;
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

}  // namespace

Router::Router(std::vector<Route> routes, ForwardProxy forward_proxy)
    : routes_(std::move(routes)), proxy_(std::move(forward_proxy)) {
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

std::optional<std::string> Router::ClientTarget(const Route& route, std::string_view url) {
  std::string_view rest = url;
  if (const auto sep = url.find("://"); sep != std::string_view::npos) {
    const std::size_t authority_end = std::min(url.find_first_of("/?#", sep + 3), url.size());
    std::string error;
    const auto parsed = ParseUrl(url.substr(0, authority_end), &error);
    if (!parsed || parsed->scheme != route.upstream.scheme || parsed->port != route.upstream.port ||
        !EqualsIgnoreCase(parsed->host, route.upstream.host)) {
      return std::nullopt;
    }
    rest = url.substr(authority_end);
    if (rest.empty()) rest = "/";
  } else if (rest.empty() || rest[0] != '/' || rest.substr(0, 2) == "//") {
    return std::nullopt;  // relative to the current path, or another authority
  }
  if (rest[0] != '/') return std::nullopt;
  const std::string& base = route.upstream.path;
  if (rest.substr(0, base.size()) != base) return std::nullopt;
  rest.remove_prefix(base.size());
  if (!rest.empty() && rest[0] != '/' && rest[0] != '?' && rest[0] != '#') return std::nullopt;
  std::string out = route.prefix == "/" ? "" : route.prefix;
  if (rest.empty() || rest[0] != '/') out += '/';
  out += rest;
  return out;
}

std::string Router::UpstreamTarget(const Route& route, std::string_view target) {
  std::string_view rest = route.prefix == "/" ? target : target.substr(route.prefix.size());
  std::string out = route.upstream.path;
  if (rest.empty() || rest[0] == '?') out += "/";
  out += rest;
  return out;
}

}  // namespace fanout
