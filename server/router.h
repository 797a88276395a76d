// Router: picks the route for a request target (longest matching prefix,
// matched on whole path segments) and maps the target to the upstream's.

#ifndef FANOUT_SERVER_ROUTER_H_
#define FANOUT_SERVER_ROUTER_H_

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/cache_policy.h"

namespace fanout {

// The route's caching choices (default TTL, stale-while-revalidate,
// stale-if-error) as the cache policy takes them.
CachePolicyOptions CachePolicyOf(const Route& route);

class Router {
 public:
  explicit Router(std::vector<Route> routes);

  // The route for a raw request target ("/a/b?q"), or null.
  const Route* Match(std::string_view target) const;

  // The target to request upstream: the route's upstream path, then the
  // request target minus the route prefix (query string kept).
  static std::string UpstreamTarget(const Route& route, std::string_view target);

 private:
  std::vector<Route> routes_;  // longest prefix first
};

}  // namespace fanout

#endif  // FANOUT_SERVER_ROUTER_H_
