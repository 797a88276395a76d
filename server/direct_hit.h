// DirectHit: answers the plainest cache hits straight from the request head.
//
// Most requests a busy cache sees are a GET for a small object that is
// stored and fresh, with nothing in the request that could change the
// answer. For those, copying the request out of the read buffer and
// going through the handler's decisions cost more than the answer. The
// connection loop offers each plain request head to TryServe first (on a
// pool thread, or on a loop thread when it arrives on a parked
// connection); it serves the request only when all of these hold, and
// otherwise leaves it, untouched, to the full path (FanoutServer's
// handlers), which then decides everything as before:
//   - GET, HTTP/1.1, origin-form target with a route, or an absolute URL
//     of a host the forward proxy allows (forward_proxy.h);
//   - no header that could change the answer or the connection: Range,
//     If-*, Cache-Control, Pragma, Cookie, Authorization, a request body,
//     Expect, Upgrade, Connection other than keep-alive or close;
//   - a stored entry for the key that is fresh for this request
//     (DecideReuse), has no Vary, is a 200 with a known length;
//   - a body of at most kMaxBody bytes whose bytes read back whole (a
//     damaged entry is dropped, and the full path fetches it anew), or a
//     larger one that a BodySender can take (no later request read ahead):
//     the head is written here and the body handed off (see
//     ConnectionStream::HandOff); a file found short then is dropped.
// The answer is the one the full path gives for such a hit, header for
// header (tests/fanoutd_direct_hit_test.cc compares them).
//
// Thread-safety: TryServe may be called from any number of connection
// threads and BodySender loop threads at once (on a loop, the stream is in
// event-loop mode: a small body only, nothing sent until the caller
// flushes without blocking).

#ifndef FANOUT_SERVER_DIRECT_HIT_H_
#define FANOUT_SERVER_DIRECT_HIT_H_

#include <cstdint>
#include <string>

#include "core/cache.h"
#include "server/access_log.h"
#include "server/body_sender.h"
#include "server/connection_stream.h"
#include "server/http_server.h"
#include "server/http1/request_head.h"
#include "server/route_table.h"
#include "server/server_stats.h"

namespace fanout {

class DirectHit {
 public:
  // Bodies up to this size are sent here; larger ones are handed to the
  // BodySender, or take the full path if there is none.
  static constexpr std::uint64_t kMaxBody = 64 * 1024;

  struct Options {
    // Where answers are logged and counted (may be null: nowhere).
    const AccessLog* access_log = nullptr;
    // This fanoutd's Via entry (server/via.h), added to every answer.
    std::string via_entry;
  };

  // Answers are counted in `stats` (hit and direct_hits) and in the access
  // log's metrics. `sender` (may be null) sends the bodies larger than
  // kMaxBody.
  DirectHit(Options options, Cache* cache, const RouteTable* routes, ServerStats* stats,
            BodySender* sender);

  // Serves `head` (already buffered in `stream`) as a hit, or returns
  // kNotAnswered having written nothing. The caller consumes the head, and
  // closes the connection after a request that said "Connection: close".
  HttpServer::DirectAnswer TryServe(const RequestHead& head, ConnectionStream& stream) const;

 private:
  // Whether a request header rules the direct path out; sets *close for
  // "Connection: close".
  static bool RulesOut(std::string_view name, std::string_view value, bool* close);

  const Options options_;
  Cache* const cache_;
  const RouteTable* const routes_;
  ServerStats* const stats_;
  BodySender* const sender_;
};

}  // namespace fanout

#endif  // FANOUT_SERVER_DIRECT_HIT_H_
