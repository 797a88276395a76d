// The rules of a shared HTTP cache (RFC 9111), as pure functions of a
// request's and a stored response's headers and the time: whether a
// response may be stored, how long it stays fresh, how old it is, whether a
// stored response may answer a request or must be revalidated first, and
// whether a client's conditional request is satisfied.
//
// fanout's deviations, all on purpose and documented in docs/caching.md:
// - a route may set a default TTL, used instead of the heuristic when a
//   response carries no explicit freshness (RFC 9111 allows heuristics only);
// - a route's per-path rules may mark objects immutable, ignore clients'
//   no-cache, or force storing (CachePolicyOptions);
// - responses that set cookies are not shared (many caches agree);
// - responses that are stale at once and carry no validator are not stored
//   (each use would fetch them again anyway).

#ifndef FANOUT_CORE_CACHE_POLICY_H_
#define FANOUT_CORE_CACHE_POLICY_H_

#include <chrono>
#include <optional>
#include <span>
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
  // Targeted cache-control fields (RFC 9213), highest precedence first: the
  // first one a response carries with a valid, non-empty value replaces
  // its Cache-Control and Expires for every decision here. A view of the
  // route's list (options are made per request: no copy on a hit), which
  // must outlive the options.
  std::span<const std::string> targeted_fields;
  // The object at this URL never changes (content-addressed): a 200 (or
  // 203) is stored and fresh whatever its freshness says, never
  // revalidated, and a request's no-cache or max-age does not send it
  // upstream. A response's no-store or private still counts; other
  // statuses follow the usual rules.
  bool immutable = false;
  // A request's no-cache, Pragma: no-cache and max-age do not force a
  // revalidation of a fresh entry.
  bool ignore_client_no_cache = false;
  // false: never stored. true: a 200 (or 203) is stored even without
  // freshness or a validator (then fresh for default_ttl, if set). Unset:
  // RFC 9111.
  std::optional<bool> store;
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
bool MayShare(const ResponseHead& response, bool request_had_credentials,
              const CachePolicyOptions& options);

// Whether a response to a GET may be stored by a shared cache; if not,
// *why says why (for the log).
bool MayStore(const RequestFacts& request, const ResponseHead& response,
              const CachePolicyOptions& options, std::string* why);

// RFC 9111 §3.5: whether a stored response may answer (or a response may
// be stored for) a request carrying Authorization: only if it says public,
// s-maxage or must-revalidate.
bool AllowsAuthorizedReuse(const ResponseHead& response, const CachePolicyOptions& options);

// The cache directives that govern a response here: those of its first
// targeted field with a valid value (*targeted true), else its
// Cache-Control (*targeted false; may be null).
CacheControl GoverningCacheControl(const ResponseHead& response,
                                   const CachePolicyOptions& options, bool* targeted);

// RFC 9111 §4.2.1; the default TTL or the heuristic (10% of the time since
// Last-Modified, at most a day, for heuristically cacheable statuses and
// for `public` responses of any status) when not explicit.
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
// The values of those headers in a request, normalised: lines combined
// with ",", each list element trimmed and its inner whitespace runs made
// one space, empty elements dropped, and for Accept-Encoding and
// Accept-Language lower-cased and sorted; absent headers as "". As (name,
// value).
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
