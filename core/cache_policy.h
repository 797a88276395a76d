// The rules of a shared HTTP cache (RFC 9111), as pure functions of a
// request's and a stored response's headers and the time: whether a
// response may be stored, how long it stays fresh, how old it is, whether a
// stored response may answer a request or must be revalidated first, and
// whether a client's conditional request is satisfied.
//
// fanout's deviations, all on purpose and documented in the README:
// - a route may set a default TTL, used instead of the heuristic when a
//   response carries no explicit freshness (RFC 9111 allows heuristics only);
// - responses that set cookies are not shared (many caches agree);
// - responses that are stale at once and carry no validator are not stored
//   (each use would fetch them again anyway).

#ifndef FANOUT_CORE_CACHE_POLICY_H_
#define FANOUT_CORE_CACHE_POLICY_H_

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/cache_control.h"
#include "core/http_date.h"
#include "core/response_head.h"

namespace fanout {

// A route's caching choices (from the configuration).
struct CachePolicyOptions {
  // Freshness for responses without explicit freshness; replaces the
  // heuristic when set.
  std::optional<std::chrono::seconds> default_ttl;
  // Serve a stale entry while one revalidation runs in the background, for
  // up to this long past its freshness (as the response directive would).
  std::optional<std::chrono::seconds> stale_while_revalidate;
  // Serve a stale entry when revalidation fails (upstream down, 5xx), for
  // up to this long past its freshness.
  std::optional<std::chrono::seconds> stale_if_error;
};

// What a request asks of the cache.
struct RequestFacts {
  CacheControl cache_control;
  bool pragma_no_cache = false;   // only counts without Cache-Control
  bool has_authorization = false;
  bool has_conditionals = false;  // If-None-Match / If-Modified-Since / ...

  static RequestFacts From(const HeaderList& request_headers);
};

// Whether a response may be served to requests other than the one that
// caused it (joiners, later hits): not private or no-store, no Set-Cookie,
// not Vary: *, and, if that request had credentials, AllowsAuthorizedReuse.
bool MayShare(const ResponseHead& response, bool request_had_credentials);

// Whether a response to a GET may be stored by a shared cache; if not,
// *why says why (for the log).
bool MayStore(const RequestFacts& request, const ResponseHead& response,
              const CachePolicyOptions& options, std::string* why);

// RFC 9111 §3.5: whether a stored response may answer (or a response may
// be stored for) a request carrying Authorization: only if it says public,
// s-maxage or must-revalidate.
bool AllowsAuthorizedReuse(const ResponseHead& response);

// RFC 9111 §4.2.1; the default TTL or the heuristic (10% of the time since
// Last-Modified, for heuristically cacheable statuses) when not explicit.
std::chrono::seconds FreshnessLifetime(const ResponseHead& response,
                                       const CachePolicyOptions& options);

// RFC 9111 §4.2.3, at `now`.
std::chrono::seconds CurrentAge(const ResponseHead& response, SystemTime now);

enum class Reuse {
  kFresh,                 // serve it
  kStaleWhileRevalidate,  // serve it, and revalidate in the background
  kRevalidate,            // ask the upstream first (conditionally if it has validators)
  kOtherVariant,          // selected by other request header values (Vary): not this one
};

Reuse DecideReuse(const RequestFacts& request, const ResponseHead& stored,
                  const CachePolicyOptions& options, SystemTime now);

// Whether a stale stored response may answer a request whose revalidation
// failed (stale-if-error, and nothing forbids serving stale).
bool MayServeStaleOnError(const ResponseHead& stored, const CachePolicyOptions& options,
                          SystemTime now);

// True if the stored response has a validator a conditional request can use.
bool HasValidator(const ResponseHead& stored);

// The headers of a conditional request revalidating `stored`.
HeaderList ConditionalHeaders(const ResponseHead& stored);

// RFC 9111 §4.3.4: the stored response refreshed by a 304: its headers
// replaced by those the 304 carries (except framing ones), its times and
// Age taken from the 304.
ResponseHead Refreshed(const ResponseHead& stored, const ResponseHead& not_modified);

// ---- Vary (RFC 9111 §4.1) ----
// The request header names a response's Vary lists, lower-case, sorted,
// without duplicates ("*" included if listed).
std::vector<std::string> VaryNames(const ResponseHead& response);
// The values of those headers in a request, normalised (lines combined
// with ",", whitespace removed; absent headers as ""), as (name, value).
HeaderList SelectingValues(const std::vector<std::string>& names, const HeaderList& request);
// Whether a request matches the selecting values a response was stored with.
bool VaryMatches(const HeaderList& stored_selecting, const HeaderList& request);
// The cache key of the variant of `base` selected by `selecting`.
std::string VariantKey(const std::string& base, const HeaderList& selecting);

// RFC 9110 §13.1: a client's If-None-Match / If-Modified-Since against a
// stored response; true when the answer is 304 Not Modified.
bool ClientConditionSatisfied(const HeaderList& request_headers, const ResponseHead& stored);

}  // namespace fanout

#endif  // FANOUT_CORE_CACHE_POLICY_H_
