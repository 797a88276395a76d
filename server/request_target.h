// NormalizeRequestTarget: the one normal form of a client's origin-form
// request target ("/path?query"), computed before any route is matched.
//
// A route maps a client path prefix onto an upstream base path; a target
// like "/pub/../private/x" must never reach the upstream as
// "/public/../private/x", where the origin would resolve it outside the
// route's base path. So, as RFC 3986 §6.2.2 describes:
//   - percent-encodings of unreserved characters are decoded ("%7E" -> "~",
//     "%2e" -> ".") and the hex digits of the others upper-cased ("%2f" ->
//     "%2F"), so one resource has one spelling;
//   - dot-segments ("." and "..") are removed (RFC 3986 §5.2.4); ".." at
//     the root stays at the root;
//   - a segment that would still be a dot-segment to an origin that decodes
//     "%2F", "%5C", treats "\" as a separator ("..%2F", "%5C..") or drops
//     a segment's ";parameters" first ("..;") is refused: there is no
//     spelling of it that is safe to forward.
// The query is kept as sent (after the character check). Every byte must
// be visible ASCII (RFC 9112 §3.2: no spaces, controls or bytes >= 0x80 in
// a request target); a '%' in the path must start a valid escape.
//
// Pure function; any thread.

#ifndef FANOUT_SERVER_REQUEST_TARGET_H_
#define FANOUT_SERVER_REQUEST_TARGET_H_

#include <string>
#include <string_view>

#include "core/status.h"

namespace fanout {

// On success *out holds the normal form (always starting with '/').
// kInvalidArgument, with the reason, for a target to answer 400.
Status NormalizeRequestTarget(std::string_view target, std::string* out);

// The same normal form of escapes for a query (which is forwarded as sent,
// but keyed normalised: cache_key.h); a '%' that starts no escape is kept.
std::string NormalizeQueryEscapes(std::string_view query);

}  // namespace fanout

#endif  // FANOUT_SERVER_REQUEST_TARGET_H_
