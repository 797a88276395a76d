// AdminServer: fanoutd's admin interface, on its own listen address
// (loopback by default), never on the port clients use.
//
//   GET  /entries?limit=N&after=K
//                            one page of the stored entries in key order
//                            (limit 1 to 100000, default 1000; after: the
//                            last key of the previous page, which the
//                            X-Next-After header names when more follow):
//                            [{"key", "status", "size", "age", "fresh_for",
//                              "etag", "hits"}] (ages in seconds; fresh_for < 0:
//                            stale)
//   GET  /healthz            200 "ok": the process answers
//   GET  /readyz             200 {"ready": true, "entries"} when the cache
//                            directory takes a new file and fanoutd is not
//                            draining (stopping); else 503 {"ready": false,
//                            "why"}
//   GET  /fetches            the fetches in flight: [{"key", "written" (the
//                            frontier), "length" (null until known), "joins"
//                            (requests attached so far), "head" (whether
//                            the response head came)}]
//   GET  /stats              {"entries", "stored_bytes", "fetches", and the
//                            responses so far by X-Cache: "hit", "miss",
//                            "join", "revalidate", "stale", "bypass";
//                            "direct_hits" of the hits (direct_hit.h);
//                            "bodies_handed_off" so far and "bodies_sending"
//                            now by the body sender, "connections_idle"
//                            (keep-alive, parked in its loops; body_sender.h)}
//   POST /purge?url=U        removes one entry; U is a client path ("/a/b?q",
//   DELETE /entries?url=U    mapped through the routes) or a cache key (the
//                            upstream URL). A fetch in flight for it is
//                            forgotten: its readers finish, nothing is kept.
//   POST /purge?prefix=P     removes every entry whose key starts with P (a
//                            client path prefix, mapped, or a key prefix).
//   POST /purge-all          removes every entry.
// The purges need no request body (curl -X POST sends none).
//
// Thread-safety: Start() then Run() (blocking) on one thread; Stop() from
// any thread.

#ifndef FANOUT_SERVER_ADMIN_SERVER_H_
#define FANOUT_SERVER_ADMIN_SERVER_H_

#include <httplib.h>

#include <atomic>
#include <string>

#include "core/cache.h"
#include "core/status.h"
#include "server/body_sender.h"
#include "server/router.h"
#include "server/server_stats.h"

namespace fanout {

class AdminServer {
 public:
  // `stats` and `sender` may be null (no such counters in /stats then).
  AdminServer(Cache* cache, const Router* router, std::vector<Route> routes,
              const ServerStats* stats, const BodySender* sender = nullptr);

  // Binds host:port (port 0 picks one). kIOError if it cannot.
  Status Start(const std::string& host, int port);
  int port() const { return port_; }
  bool Run();
  void Stop();

 private:
  void Install();
  // The cache key `url` names: a client path through the routes, else as is.
  std::string KeyOf(const std::string& url) const;
  // The caching policy of the route an entry came through.
  CachePolicyOptions PolicyForKey(const std::string& key) const;
  // The key prefix of a purge by prefix: a client path prefix mapped by
  // its route, or an upstream URL prefix as it is.
  std::string KeyPrefixOf(const std::string& prefix) const;

 public:
  // From now on /readyz answers 503 "draining". Any thread.
  void SetDraining() { draining_.store(true); }

 private:
  std::atomic<bool> draining_{false};

  Cache* const cache_;
  const Router* const router_;
  const std::vector<Route> routes_;
  const ServerStats* const stats_;
  const BodySender* const sender_;
  httplib::Server http_;
  int port_ = 0;
};

}  // namespace fanout

#endif  // FANOUT_SERVER_ADMIN_SERVER_H_
