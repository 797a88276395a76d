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
//   GET  /                   the live status page (status_page.h)
//   GET  /status.json        what it shows: {"fetches" (as /fetches),
//                            "totals" (responses by X-Cache), "entries",
//                            "stored_bytes", "max_cache_size" (0: none),
//                            "recent": [{"ended" (ms since the epoch),
//                            "method", "target", "status", "cache",
//                            "bytes", "ms"}] newest first}
//   GET  /metrics            counters, gauges and histograms in the Prometheus
//                            text format (metrics.h; README "Metrics")
//   GET  /healthz            200 "ok": the process answers
//   GET  /readyz             200 {"ready": true, "entries"} when the cache
//                            directory takes a new file and fanoutd is not
//                            draining (stopping); else 503 {"ready": false,
//                            "why"}
//   GET  /fetches            the fetches in flight: [{"key", "written" (the
//                            frontier), "length" (null until known), "joins"
//                            (requests attached so far), "readers" (open
//                            on its stream now), "head" (whether
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
#include <functional>
#include <optional>
#include <string>

#include "core/cache.h"
#include "core/status.h"
#include "server/body_sender.h"
#include "server/recent_requests.h"
#include "server/route_table.h"
#include "server/server_stats.h"

namespace fanout {

class AdminServer {
 public:
  // `stats` and `sender` may be null (no such counters in /stats then).
  AdminServer(Cache* cache, const RouteTable* routes, const ServerStats* stats,
              const BodySender* sender = nullptr);

  // Serves GET /metrics from `render` (called per scrape, on the admin
  // thread). Before Start().
  void ServeMetrics(std::function<std::string()> render) { render_metrics_ = std::move(render); }
  // The status page's recent requests (may be null: none shown) and the
  // cache's size limit (0: none). Before Start().
  void ServeStatus(const RecentRequests* recent, std::uint64_t max_cache_size) {
    recent_ = recent;
    max_cache_size_ = max_cache_size;
  }

  // Binds host:port (port 0 picks one). kIOError if it cannot.
  Status Start(const std::string& host, int port);
  int port() const { return port_; }
  bool Run();
  void Stop();

 private:
  void Install();
  // The cache key `url` names: a client path through the routes, an
  // absolute URL as its key spells it (the origin with its port), else as is.
  std::string KeyOf(const std::string& url) const;
  // For an absolute http(s) URL (or, with `prefix`, the start of one): the
  // key, or the key prefix; nullopt for anything else.
  std::optional<std::string> AbsoluteKeyOf(const std::string& url, bool prefix) const;
  // The caching policy of the route an entry came through (for a forward
  // proxy's entry, its host's rules).
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
  const RouteTable* const routes_;
  const ServerStats* const stats_;
  const BodySender* const sender_;
  std::function<std::string()> render_metrics_;
  const RecentRequests* recent_ = nullptr;
  std::uint64_t max_cache_size_ = 0;
  httplib::Server http_;
  int port_ = 0;
};

}  // namespace fanout

#endif  // FANOUT_SERVER_ADMIN_SERVER_H_
