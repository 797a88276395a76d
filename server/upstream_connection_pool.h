// UpstreamConnectionPool: idle upstream connections kept between fetches,
// per origin (UpstreamOrigin::Key(): scheme, host, port and TLS settings),
// and the TLS contexts those connections are made with.
//
// A fetch takes an idle connection for its origin if there is one (else it
// connects anew) and gives it back only after a response was read whole
// with known framing, on a connection neither side asked to close. At most
// kMaxIdlePerOrigin wait per origin (the oldest is closed to make room);
// one idle longer than kIdleTimeout, or that the upstream closed or wrote
// to meanwhile, is closed instead of being handed out. There is no
// background thread: the checks are made when connections are taken and
// given back, and each of those also closes every origin's connections
// idle past kIdleTimeout (one left idle is closed at the next use of the
// pool after its timeout, or when the pool is destroyed).
//
// Thread-safety: all methods may be called from any thread at once (fetch
// threads run concurrently). Connections handed out belong to the caller
// alone until given back.

#ifndef FANOUT_SERVER_UPSTREAM_CONNECTION_POOL_H_
#define FANOUT_SERVER_UPSTREAM_CONNECTION_POOL_H_

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "server/tls_client_context.h"
#include "server/upstream_connection.h"

namespace fanout {

class UpstreamConnectionPool {
 public:
  // Enough for a burst of fetches from one origin to find connections
  // again, few enough that an origin is never holding many idle sockets.
  static constexpr std::size_t kMaxIdlePerOrigin = 8;
  // Shorter than the keep-alive timeouts of common servers (nginx 75 s,
  // Apache 5 s is the exception, which the readability check covers).
  static constexpr std::chrono::seconds kIdleTimeout{30};

  UpstreamConnectionPool() = default;
  ~UpstreamConnectionPool();  // closes the idle connections
  UpstreamConnectionPool(const UpstreamConnectionPool&) = delete;
  UpstreamConnectionPool& operator=(const UpstreamConnectionPool&) = delete;

  // An idle connection to `origin` that is still open, or null if there is
  // none. Stale ones met on the way are closed.
  std::unique_ptr<UpstreamConnection> Take(const UpstreamOrigin& origin);
  // Keeps `connection` (REQUIRES: to `origin`, its last response read whole,
  // reusable) for a later Take.
  void GiveBack(const UpstreamOrigin& origin, std::unique_ptr<UpstreamConnection> connection);

  // The TLS context for `options`, made once and shared; null with the
  // reason in *error if it cannot be made.
  std::shared_ptr<const TlsClientContext> TlsContext(const TlsClientOptions& options,
                                                     std::string* error);

  // Idle connections held now, all origins together (tests, stats).
  std::size_t idle() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Idle {
    std::unique_ptr<UpstreamConnection> connection;
    Clock::time_point since;
  };
  // Moves every connection idle past kIdleTimeout into *expired (to be
  // closed once mu_ is released). REQUIRES: mu_ held.
  void TakeExpiredLocked(Clock::time_point now,
                         std::vector<std::unique_ptr<UpstreamConnection>>* expired);

  mutable std::mutex mu_;
  // Per origin key, oldest first. Guarded by mu_.
  std::map<std::string, std::deque<Idle>> idle_;
  // Per "verify ca_file" key. Guarded by mu_.
  std::map<std::string, std::shared_ptr<const TlsClientContext>> tls_;
};

}  // namespace fanout

#endif  // FANOUT_SERVER_UPSTREAM_CONNECTION_POOL_H_
