// FanoutServer: fanoutd's HTTP front end.
//
// GET and HEAD on a routed path go through the cache: a miss starts the one
// upstream fetch, requests that arrive while it runs join it, and later
// ones are hits while fresh (RFC 9111: core/cache_policy.h); a stale entry
// is revalidated by one conditional fetch that every request joins. Each
// client streams the body (or its Range) from its own reader of the
// entry's stream file. Requests with credentials reuse only entries that
// allow it. Other methods, and requests with cookies, are passed to the
// upstream on their own (X-Cache: BYPASS); successful unsafe ones
// invalidate what they may have changed. With forward_proxy on, a request
// for an absolute URL takes its route from the URL's host (allowed hosts
// only: forward_proxy.h), and CONNECT may be tunnelled. The admin
// interface (entries, purge) listens on its own address.
//
// Thread-safety: Start() then Run() on one thread; Stop() from any thread.

#ifndef FANOUT_SERVER_FANOUT_SERVER_H_
#define FANOUT_SERVER_FANOUT_SERVER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "config/config.h"
#include "core/cache.h"
#include "core/memory_budget.h"
#include "core/wakeup_batcher.h"
#include "server/access_log.h"
#include "server/admin_server.h"
#include "server/direct_hit.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/recent_requests.h"
#include "server/route_table.h"
#include "server/server_stats.h"
#include "server/upstream_fetch.h"

namespace fanout {

class FanoutServer {
 public:
  explicit FanoutServer(Config config);
  ~FanoutServer();

  // Opens the cache and binds the listening socket. kIOError if either fails.
  Status Start();
  // The port actually bound (useful with port 0).
  int port() const { return port_; }
  // The admin interface's port; 0 if it is off.
  int admin_port() const { return admin_ ? admin_->port() : 0; }
  // Serves until Stop(). Returns false if the server could not run.
  bool Run();
  // Starts a graceful stop: no new connections, responses under way go on,
  // /readyz says "draining" (http_server.h). From any thread.
  void Drain();
  // Responses still under way (0: a drain is done).
  std::size_t InFlight() const;
  void Stop();

  // Applies a reloaded config (SIGHUP) to requests from now on: routes and
  // their rules, max_object_size, max_connections_per_client and the access
  // log's settings; requests and fetches under way go on as they started.
  // kInvalidArgument, changing nothing, if `next` differs in what needs a
  // restart (listen, admin_listen, cache_dir, sizes and timeouts fixed at
  // start-up), naming those settings. Any thread, one reload at a time.
  Status Reload(const Config& next);

 private:
  // GET /metrics on the admin interface (metrics.h).
  std::string RenderMetrics() const;

  using Record = std::shared_ptr<AccessLogRecord>;

  // The request's route and, in *upstream_target, the target to send
  // upstream (from the normalized request target: request_target.h); or
  // null after answering 400 (a bad target) or 404 (no route).
  const Route* MatchRoute(const Request& req, Response& res,
                          const Record& record, std::string* upstream_target);
  // Answers one request (HttpServer's handler).
  void Handle(const Request& req, RequestBody& body, Response& res);
  void HandleCacheable(const Request& req, Response& res);
  // A GET/HEAD with Authorization: served from the cache only by entries
  // that allow it, otherwise fetched on its own (and stored if allowed).
  void HandleAuthorized(const Request& req, Response& res,
                        const Route& route, const std::string& target,
                        const std::string& base_key, const RequestFacts& facts,
                        const Cache::Judge& judge,
                        const std::function<std::string(const HeaderList&)>& variant_key,
                        const Record& record);
  void HandlePassThrough(const Request& req, Response& res);
  // A CONNECT (HttpServer's tunnel): false when forward_proxy.connect is
  // off (405); else answers 403 for a host not allowed, or tunnels
  // (connect_tunnel.h) until either side is done.
  bool ServeConnect(const std::string& authority, ConnectionStream& stream);
  // PURGE <path> from a loopback client: removes the entry the path maps
  // to (200, or 404 if none was stored); 403 for anyone else.
  void HandlePurge(const Request& req, Response& res);
  // Pass-through with a request body, streamed upstream as it arrives.
  void HandleUpload(const Request& req, RequestBody& body, Response& res);
  // Starts a fetch for this request alone; null after answering 500.
  std::shared_ptr<Entry> StartPrivateFetch(FetchJob job, Response& res,
                                           const Record& record);
  // Fetches for this request alone and streams the answer (X-Cache:
  // BYPASS, or MISS for a request a fetch in flight was not fresh for).
  void ServePrivate(const Request& req, Response& res, const Route& route,
                    const std::string& target, Record record,
                    const char* cache_status = "BYPASS");
  // Answers from an entry once its head is known (or failed); the fetch's
  // interim responses, if this request caused it, are relayed meanwhile.
  void ServeEntry(const Request& req, Response& res, const Route& route,
                  const std::shared_ptr<Entry>& entry, const char* cache_status,
                  Record record, InterimRelay* interim = nullptr);
  // Waits for the entry's head (or failure) like Entry::WaitForHead,
  // writing the interim responses `interim` carries (may be null) to the
  // client meanwhile.
  static std::optional<Entry::HeadOutcome> AwaitHead(const Entry& entry, Deadline deadline,
                                                     InterimRelay* interim);
  // Answers a single-range GET with 206 (or 416) from the entry, streaming
  // as the frontier passes the range. False: serve the whole body instead
  // (no valid single range, or If-Range does not match).
  bool ServeRange(const Request& req, Response& res,
                  const std::shared_ptr<Entry>& entry, const ResponseHead& head,
                  const Record& record);
  void ServeBody(Response& res, const std::shared_ptr<Entry>& entry,
                 const ResponseHead& head, bool head_only, Record record);
  void ReplyError(Response& res, int status, const std::string& message,
                  const Record& record);
  Record NewRecord(const Request& req);
  FetchJob MakeJob(const Request& req, const Route& route,
                   const std::string& target, bool shared) const;
  static std::string HostHeaderFor(const Route& route);
  std::uint64_t MaxObjectSize() const;
  // After a successful unsafe request (POST, PUT, DELETE, PATCH), purges
  // the entries it may have changed. Waits for the response head.
  void InvalidateAfterUnsafe(const Request& req, const Route& route,
                             const std::string& target, const Entry& entry);
  // 304 Not Modified for a client whose conditional matched `head`.
  void ReplyNotModified(const Request& req, Response& res, const ResponseHead& head,
                        const char* cache_status, const Record& record);
  // The X-Cache value for `req` answered with `cache_status` (server/via.h).
  std::string XCache(const Request& req, const char* cache_status,
                     const HeaderList& upstream) const;
  // A request that has been through this fanoutd already: answers 508.
  bool RefuseLoop(const Request& req, Response& res);

  // As started; a reload changes only what Reload() says, kept below.
  const Config config_;
  RouteTable routes_;
  // How this fanoutd names itself in Via and X-Cache (server/via.h).
  const std::string pseudonym_;
  const std::string via_entry_;  // "1.1 <pseudonym_>"
  std::atomic<std::uint64_t> max_object_size_;
  std::atomic<bool> stopping_{false};
  int port_ = 0;
  // Before everything that counts in them (records end on any thread).
  Metrics metrics_;
  RecentRequests recent_;  // for the admin status page
  std::unique_ptr<AccessLog> access_log_;

  // Destroyed in reverse order: the server (and its connections) first,
  // then the fetches, the cache, and last the batcher they all use.
  std::unique_ptr<WakeupBatcher> batcher_;
  std::unique_ptr<MemoryBudget> spill_budget_;  // for full-disk streams
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<UpstreamFetcher> fetcher_;
  ServerStats stats_;
  std::unique_ptr<ClientLimit> client_limit_;  // before http_: its connections hold slots
  std::unique_ptr<BodySender> sender_;     // before http_: its threads use it
  std::unique_ptr<DirectHit> direct_hit_;  // before http_: its threads use it
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<AdminServer> admin_;
  std::thread admin_thread_;
};

}  // namespace fanout

#endif  // FANOUT_SERVER_FANOUT_SERVER_H_
