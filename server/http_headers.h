// The header rules of an HTTP cache in front of an origin: which headers
// travel end to end, which requests must not share a fetch, and which
// responses must not be shared or kept.

#ifndef FANOUT_SERVER_HTTP_HEADERS_H_
#define FANOUT_SERVER_HTTP_HEADERS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/response_head.h"
#include "server/http1/request.h"
#include "server/upstream_response_parser.h"

namespace fanout {

// True for the hop-by-hop headers of RFC 9110 §7.6.1, and for any header
// named in the message's Connection header (`connection` is its value).
bool IsHopByHop(std::string_view name, std::string_view connection);

// A request carrying cookies is fetched on its own (and its response never
// stored). Requests with Authorization go through the cache under RFC 9111
// §3.5's rules instead (see FanoutServer).
bool RequestMustBypass(const Request& req);


// The request headers to send upstream: end-to-end headers of the client's
// request, with Host set to `host`. For a shared fetch the headers that
// would make the response specific to one client (conditionals, Range,
// Accept-Encoding) are left out, so every joiner can use the response.
// `via`, if not empty, is this hop's Via entry, appended to the request's
// own (server/via.h).
HeaderList UpstreamRequestHeaders(const Request& req, const std::string& host,
                                  bool shared_fetch, std::string_view via = {});


// The upstream response's end-to-end headers, to store and relay, with a
// Date (the time of receipt) if the upstream sent none. Values are kept
// byte for byte; Content-Length and Age become numbers of the head.
ResponseHead MakeResponseHead(const UpstreamResponseHead& res);


}  // namespace fanout

#endif  // FANOUT_SERVER_HTTP_HEADERS_H_
