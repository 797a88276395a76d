// RelayedForClients: what a route changes in the upstream's response
// header fields before clients see them (stored fields stay as received):
//   - its targeted cache-control fields (Route::targeted_cache_control)
//     that aim at fanoutd alone are removed: all but CDN-Cache-Control,
//     which RFC 9213 aims at every CDN on the path and so goes on;
//   - with rewrite_redirects, a Location or Content-Location pointing into
//     its upstream becomes the path through fanoutd (Router::ClientTarget),
//     so clients stay on the cache.
//
// Pure function; any thread.

#ifndef FANOUT_SERVER_RELAYED_HEADERS_H_
#define FANOUT_SERVER_RELAYED_HEADERS_H_

#include "config/config.h"
#include "core/response_head.h"

namespace fanout {

// True if `headers` needs RelayedForClients at all (cheap; most do not).
bool NeedsRelayChanges(const Route& route, const HeaderList& headers);

void RelayedForClients(const Route& route, HeaderList* headers);

}  // namespace fanout

#endif  // FANOUT_SERVER_RELAYED_HEADERS_H_
