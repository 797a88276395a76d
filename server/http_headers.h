// The header rules of an HTTP cache in front of an origin: which headers
// travel end to end, which requests must not share a fetch, and which
// responses must not be shared or kept.

#ifndef FANOUT_SERVER_HTTP_HEADERS_H_
#define FANOUT_SERVER_HTTP_HEADERS_H_

#include <httplib.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/response_head.h"
#include "server/upstream_response_parser.h"

namespace fanout {

// True for the hop-by-hop headers of RFC 9110 §7.6.1, and for any header
// named in the message's Connection header (`connection` is its value).
bool IsHopByHop(std::string_view name, std::string_view connection);

// A request carrying cookies is fetched on its own (and its response never
// stored). Requests with Authorization go through the cache under RFC 9111
// §3.5's rules instead (see FanoutServer).
bool RequestMustBypass(const httplib::Request& req);


// The request headers to send upstream: end-to-end headers of the client's
// request, with Host set to `host`. For a shared fetch the headers that
// would make the response specific to one client (conditionals, Range,
// Accept-Encoding) are left out, so every joiner can use the response.
httplib::Headers UpstreamRequestHeaders(const httplib::Request& req,
                                        const std::string& host,
                                        bool shared_fetch);

// The length of the request's body: its Content-Length, none (nullopt) for
// a chunked body, 0 when it has neither.
std::optional<std::uint64_t> RequestBodyLength(const httplib::Request& req);

// cpp-httplib acts on two request headers itself, which a proxy must not
// let it do: a multipart/form-data Content-Type makes it parse the body, and
// Accept-Encoding makes it gzip chunked text responses (even ones the
// upstream already encoded). Called before routing, this moves those headers
// to private names that UpstreamRequestHeaders turns back into the
// originals; the private names are dropped if a client sent them.
// Range is restored there too: HideRangeFromHttplib renames it in the raw
// request head before httplib parses it (httplib would answer an invalid
// or unknown-unit Range with 416 on its own, before any handler runs).
void HideHeadersFromHttplib(httplib::Request& req);

// cpp-httplib 0.11.4 percent-decodes every request header value it parses
// (a Cookie "s=a%2Bb" reaches handlers as "s=a+b", and would go upstream
// so). Puts back the values as the client sent them (`raw`, in the order
// sent), but only if raw and parsed agree field for field on names;
// otherwise leaves the request as it is. Returns whether it restored.
bool RestoreRawHeaderValues(httplib::Request& req,
                            const std::vector<std::pair<std::string, std::string>>& raw);

// The raw request head (request line, header lines, blank line) with any
// Range header renamed to a private name, and client lines using that name
// dropped.
std::string HideRangeFromHttplib(std::string_view head);
// Whether HideRangeFromHttplib has anything to do: a header line whose
// name is Range (or the private name) — a cheap case-insensitive scan.
bool HeadMentionsRange(std::string_view head);

// The client request's headers as a list (httplib's own bookkeeping
// entries left out, hidden headers under their real names).
HeaderList RequestHeaderList(const httplib::Request& req);

// The upstream response's end-to-end headers, to store and relay, with a
// Date (the time of receipt) if the upstream sent none. Values are kept
// byte for byte; Content-Length and Age become numbers of the head.
ResponseHead MakeResponseHead(const UpstreamResponseHead& res);


}  // namespace fanout

#endif  // FANOUT_SERVER_HTTP_HEADERS_H_
