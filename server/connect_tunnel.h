// RunConnectTunnel: answers a CONNECT that forward-proxy mode allowed, by
// connecting to host:port and relaying bytes both ways, uncached (the
// bytes of an https exchange are opaque to fanoutd).
//
// The client is answered 200 once the connection is made, or 502 (no
// connection: refused, unresolvable) or 504 (connect timeout) with a
// plain-text reason. The relay then runs on the calling thread — the
// connection's pool thread — until both sides have finished (a side's
// close is passed on as a half-close), either side breaks, nothing moves
// for `idle_timeout`, or `keep_going` returns false (checked at least
// every 250 ms). The client's bytes read ahead with the CONNECT head go
// first. Each direction buffers at most 64 KiB: a slow reader holds back
// its writer, never memory.
//
// Returns the bytes relayed (client to host, host to client).

#ifndef FANOUT_SERVER_CONNECT_TUNNEL_H_
#define FANOUT_SERVER_CONNECT_TUNNEL_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "server/connection_stream.h"

namespace fanout {

struct TunnelOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds idle_timeout{30000};
};

struct TunnelResult {
  int status = 0;  // what the client was answered: 200, 502 or 504
  std::uint64_t bytes_up = 0;    // client to host
  std::uint64_t bytes_down = 0;  // host to client
  std::string ended;             // why the relay ended, for the log
};

TunnelResult RunConnectTunnel(ConnectionStream& client, const std::string& host, int port,
                              const TunnelOptions& options,
                              const std::function<bool()>& keep_going);

}  // namespace fanout

#endif  // FANOUT_SERVER_CONNECT_TUNNEL_H_
