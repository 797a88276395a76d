// Via and X-Cache across tiers of caches: how a fanoutd names itself to
// the caches before and after it (RFC 9110 §7.6.3).
//
// Every request fanoutd sends upstream carries the Via entries it came
// with plus "1.1 <pseudonym>", and every response it sends carries the
// upstream's Via entries plus its own. A request whose Via already names
// this fanoutd's pseudonym has come round a loop (a child whose parent's
// upstream leads back to it) and is refused (508).
//
// X-Cache stays the plain value ("HIT", "MISS", ...) for a client that
// talks to fanoutd directly. When the response came through another cache
// (it carries an X-Cache of its own) or the request came through a proxy
// (it carries Via), each hop names itself, nearest first:
// "HIT from child, MISS from parent".
//
// Thread-safety: pure functions.

#ifndef FANOUT_SERVER_VIA_H_
#define FANOUT_SERVER_VIA_H_

#include <string>
#include <string_view>

#include "core/response_head.h"

namespace fanout {

// "1.1 <pseudonym>".
std::string ViaEntry(std::string_view pseudonym);

// Whether any Via entry in `headers` was received by `pseudonym`.
bool ViaHolds(const HeaderList& headers, std::string_view pseudonym);

// Every Via value in `headers`, in order, joined with ", ", then `entry`.
std::string ViaWith(const HeaderList& headers, std::string_view entry);

// The X-Cache value for this hop's `own` status (see above). `upstream`:
// the stored or relayed response's fields (their X-Cache), or empty.
std::string XCacheValue(std::string_view own, std::string_view pseudonym,
                        const HeaderList& upstream, bool request_has_via);

// This host's name made a pseudonym ('-' for what a token may not hold),
// or "fanoutd".
std::string DefaultPseudonym();

}  // namespace fanout

#endif  // FANOUT_SERVER_VIA_H_
