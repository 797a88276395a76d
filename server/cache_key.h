// CacheKey: the one name of an entry. Two requests share an entry exactly
// when their keys are equal.
//
// The key is the upstream URL the request maps to (the route's upstream
// origin, then its upstream target), with:
//   - the path in the normal form of NormalizeRequestTarget (RFC 3986
//     §6.2.2: hex digits of escapes upper-cased, escapes of unreserved
//     characters decoded, dot-segments removed) — the caller passes a
//     target built from a normalized one;
//   - the query normalized the same way ("%2b" and "%2B" are one key,
//     "%7E" is "~"), but never decoded further: "+" and "%2B" stay
//     different, as do "&" and "%26";
//   - the route's ignore_query_params left out (compared by name after the
//     same normalization); a query they leave empty drops its "?".
// The upstream is still sent the query as the client sent it.
//
// Pure functions; any thread.

#ifndef FANOUT_SERVER_CACHE_KEY_H_
#define FANOUT_SERVER_CACHE_KEY_H_

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace fanout {

// upstream_target: "/path?query" as Router::UpstreamTarget gives it.
std::string CacheKey(const Route& route, std::string_view upstream_target);

// The query part alone ("a=1&b=2", without the '?'); exposed for tests.
std::string KeyQuery(std::string_view query, const std::vector<std::string>& ignored_params);

}  // namespace fanout

#endif  // FANOUT_SERVER_CACHE_KEY_H_
