// The one writer of response heads on fanoutd's data plane.
//
// Every response a client gets — hit, miss, join, 206, 304, 416, BYPASS,
// fanoutd's own errors, HEAD — has its status line and header block made
// here, so the framing and connection rules live in one place:
//   - the relayed headers are end to end: hop-by-hop fields (RFC 9110
//     §7.6.1, and any the response's Connection names) and the upstream's
//     framing (Content-Length, Transfer-Encoding) are never copied;
//   - the framing is fanoutd's own: Content-Length when the body's length
//     is known, chunked otherwise; none at all for 1xx, 204 and 304;
//   - `Connection: close` when this is the connection's last response,
//     `Connection: keep-alive` for an HTTP/1.0 client kept open.
// A HEAD response carries the framing a GET would (its caller sends no
// body).
//
// Thread-safety: pure functions.

#ifndef FANOUT_SERVER_HTTP1_RESPONSE_WRITER_H_
#define FANOUT_SERVER_HTTP1_RESPONSE_WRITER_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "core/response_head.h"

namespace fanout {

struct ResponseFraming {
  // nullopt: chunked (the length is not known when the head leaves) —
  // or, if until_close, no framing: the body ends when the connection
  // closes (for an HTTP/1.0 client, which knows no chunked coding).
  std::optional<std::uint64_t> length;
  bool until_close = false;
};

enum class ConnectionAfter { kKeepOpen, kKeepOpenHttp10, kClose };

// The reason phrase of a status ("" for one it does not know).
std::string_view ReasonPhrase(int status);

// Whether a response with this status has a body (RFC 9110 §6.4.1).
inline bool StatusHasBody(int status) {
  return status >= 200 && status != 204 && status != 304;
}

// Appends the head: status line, `headers` (end-to-end ones, in order),
// then `own` (fanoutd's fields, which replace any of the same name in
// `headers`), framing and connection fields, blank line.
using OwnFields = std::span<const std::pair<std::string_view, std::string_view>>;
void AppendResponseHead(int status, const HeaderList& headers, OwnFields own,
                        const ResponseFraming& framing, ConnectionAfter after, std::string* out);
inline void AppendResponseHead(int status, const HeaderList& headers,
                               const ResponseFraming& framing, ConnectionAfter after,
                               std::string* out) {
  AppendResponseHead(status, headers, {}, framing, after, out);
}

// Appends one header line.
inline void AppendHeaderLine(std::string_view name, std::string_view value, std::string* out) {
  out->append(name).append(": ").append(value).append("\r\n");
}

}  // namespace fanout

#endif  // FANOUT_SERVER_HTTP1_RESPONSE_WRITER_H_
