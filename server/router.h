// Router: picks the route for a request target (longest matching prefix,
// matched on whole path segments) and maps the target to the upstream's.

#ifndef FANOUT_SERVER_ROUTER_H_
#define FANOUT_SERVER_ROUTER_H_

#include <string>
#include <optional>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/cache_policy.h"
#include "server/forward_proxy.h"

namespace fanout {

// The route's caching choices for one upstream target ("/path?query", as
// UpstreamTarget gives it): default TTL, stale-while-revalidate,
// stale-if-error, targeted fields, and the first per-path rule whose match
// takes the path after the route's upstream base path.
CachePolicyOptions CachePolicyOf(const Route& route, std::string_view upstream_target);

// The first of the route's rules matching an upstream target, or null.
const PathRule* RuleFor(const Route& route, std::string_view upstream_target);

class Router {
 public:
  explicit Router(std::vector<Route> routes, ForwardProxy forward_proxy = {});

  // The route for a raw request target ("/a/b?q"), or null.
  const Route* Match(std::string_view target) const;

  // The target to request upstream: the route's upstream path, then the
  // request target minus the route prefix (query string kept).
  static std::string UpstreamTarget(const Route& route, std::string_view target);

  // The inverse, for redirects: a URL into the route's upstream (absolute,
  // "http://upstream/base/x", or path-absolute, "/base/x") as the
  // path-absolute reference a client uses through fanoutd ("/prefix/x").
  // nullopt for one that points elsewhere (another host, port or scheme,
  // or outside the upstream's base path).
  static std::optional<std::string> ClientTarget(const Route& route, std::string_view url);

  // Longest prefix first.
  const std::vector<Route>& routes() const { return routes_; }

  // Forward-proxy mode's routes (forward_proxy.h); enabled() says if on.
  const ProxyRoutes& proxy() const { return proxy_; }

 private:
  std::vector<Route> routes_;  // longest prefix first
  ProxyRoutes proxy_;
};

}  // namespace fanout

#endif  // FANOUT_SERVER_ROUTER_H_
