// UpstreamFetcher: runs fetches — the one upstream transfer per entry —
// each on its own thread, writing the body into the entry's stream file.
//
// A fetch publishes the response head to the entry as soon as it arrives,
// appends body bytes as they come, and ends the stream: finished (then, for
// a shareable 200 of a shared fetch, the entry is committed as a hit) or
// failed (then every reader sees the error and nothing is kept). Clients
// never drive a fetch: one that leaves changes nothing for the others.
//
// A 200 whose body breaks off (the connection reset or closed early, a read
// timeout between bytes) is resumed when it can be (fetch_resume.h): the
// rest is asked for from the frontier and appended to the same stream
// file, up to resume_attempts times per fetch, so readers never notice.
// A resumable 200 whose body stalls — no byte for stall_timeout while
// readers wait — gets a second request for the rest beside it (a hedge,
// fetch_race.h): the first of the two to deliver goes on, the other is
// closed.
// A 200 that announces a digest (Repr-Digest or Content-Digest, sha-256 or
// sha-512) has its body hashed as it is written; a mismatch fails the
// stream and nothing is kept.
// A resumable body of known length that will be kept is checkpointed as it
// is written (core/partial_body.h); when fanoutd stops or dies before it
// ends, the next run's fetch of it asks only for the rest.
//
// Each fetch makes its exchange with an UpstreamClient (upstream_client.h)
// over connections from the one UpstreamConnectionPool the fetcher owns,
// so fetches from one origin reuse each other's connections.
//
// Thread-safety: Start() from any thread. The destructor cancels the
// fetches still running and waits for their threads.

#ifndef FANOUT_SERVER_UPSTREAM_FETCH_H_
#define FANOUT_SERVER_UPSTREAM_FETCH_H_

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <functional>
#include <map>
#include <string>

#include "config/url.h"
#include "core/byte_pipe.h"
#include "core/cache.h"
#include "core/cache_policy.h"
#include "core/entry.h"
#include "core/partial_body.h"
#include "server/interim_relay.h"
#include "server/metrics.h"
#include "server/tls_client_context.h"
#include "server/upstream_client.h"
#include "server/upstream_connection_pool.h"
#include "server/upstream_response_parser.h"

namespace fanout {

struct FetchJob {
  Url origin;                 // where to connect
  TlsClientOptions tls;       // for an https origin: the route's tls_ca_file, tls_verify
  std::string method = "GET";
  std::string target;         // path and query sent upstream
  HeaderList headers;         // request headers, Host included, in order
  std::string body;           // a request body already read whole, or
  // a request body streamed from the client while the fetch runs: sent with
  // Content-Length when `body_length` is known, chunked otherwise.
  std::shared_ptr<BytePipe> body_stream;
  std::optional<std::uint64_t> body_length;
  // Where the upstream's interim (1xx) responses go, for the client that
  // caused the fetch (may be null: nowhere).
  std::shared_ptr<InterimRelay> interim;
  // A shared fetch's response becomes a cache entry if a shared cache may
  // store it (MayStore, judged with the request's facts and the route's
  // policy) and it is not larger than max_object_size (0: no limit);
  // anything else (private fetches too) is streamed to its readers and
  // dropped.
  bool keep = true;
  RequestFacts facts;
  // Its targeted_fields view the route's list, which lives as long as the
  // server (a reload keeps the routes it replaces: route_table.h).
  CachePolicyOptions policy;
  std::uint64_t max_object_size = 0;
  // Keep only a response whose body matched a digest it announced (the
  // route's "verify").
  bool verify = false;
  // The first bytes of this body, kept by an earlier run whose fetch did
  // not finish (core/partial_body.h): the fetch asks only for the rest,
  // and falls back to the whole body if the origin will not give it.
  std::shared_ptr<PartialBody> partial;
  // Set when this fetch revalidates a stored entry (its validators are in
  // `headers`): a 304 makes the fetch's entry adopt the stored body with
  // the refreshed head; a failure or 5xx serves the stored entry instead
  // when stale-if-error allows it.
  std::shared_ptr<Entry> revalidates;
};

class UpstreamFetcher {
 public:
  struct Options {
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds read_timeout{30000};
    // A response that is not kept is written at most this far ahead of its
    // slowest reader, and the bytes every reader passed are freed, so its
    // stream file never takes more disk than this (nginx's
    // proxy_max_temp_file_size). 0: no limit.
    std::uint64_t max_uncached_buffer = 256ull << 20;
    // Requests for the rest of a broken body, per fetch (0: none).
    int resume_attempts = 3;
    // The pause before the first of them; doubled for each next one.
    std::chrono::milliseconds resume_backoff{250};
    // A body that brings no byte for this long while readers wait gets a
    // request for the rest raced beside it (0: never).
    std::chrono::milliseconds stall_timeout{0};
    // A resumable body of known length that will be kept is made durable
    // and recorded every this many bytes, so that it outlives a restart
    // or a crash as a partial body (0: never).
    std::uint64_t partial_checkpoint = 64ull << 20;
    // Where fetches, upstream bytes and times are counted (may be null).
    Metrics* metrics = nullptr;
  };

  UpstreamFetcher(const Options& options, Cache* cache);
  ~UpstreamFetcher();

  void Start(FetchJob job, std::shared_ptr<Entry> entry);

  std::size_t in_flight() const;

 private:
  void Run(const FetchJob& job, const std::shared_ptr<Entry>& entry);

  // How one upstream exchange ended.
  struct Transfer {
    bool not_started = false;  // fanoutd is stopping
    bool ok = false;           // the response arrived whole
    std::string why;           // if not ok
    bool timed_out = false;    // if not ok: connect or read timeout
    // If not ok: the connection failed (refused, reset, closed early, timed
    // out), so asking again may succeed; not for a malformed response or
    // an exchange the fetch ended itself.
    bool connection_failed = false;
  };
  // Sends the job's request upstream with an UpstreamClient over pool_'s
  // connections, and streams the response through on_head and on_body, or
  // on_pipe for a long body the client splices (UpstreamClient::
  // TakeBodiesThroughPipe).
  // `expose_stop`, if set, is given a function that stops the exchange
  // while it runs, and an empty one before Send returns.
  Transfer Send(const FetchJob& job,
                const std::function<bool(const UpstreamResponseHead&)>& on_head,
                const std::function<bool(const char*, std::size_t)>& on_body,
                const UpstreamClient::PipeHandler& on_pipe,
                const std::function<void(std::function<void()>)>& expose_stop = {});
  // A request for the rest of a body: what to send, and the check of its
  // response head.
  struct RestRequest {
    FetchJob job;
    std::function<bool(const UpstreamResponseHead&)> on_head;
    std::uint64_t from = 0;
    // Set by on_head: why its answer was not taken, or that it was.
    std::shared_ptr<std::string> refused = std::make_shared<std::string>();
    std::shared_ptr<bool> accepted = std::make_shared<bool>(false);
  };
  // Send, raced by a hedge when the body stalls for stall_timeout: then
  // `plan_hedge` (called under the race's lock, so it may read the stream)
  // gives the request for the rest, or nothing if there is to be none now.
  // Returns the transfer that delivered the body: the hedge's if it won,
  // else the first one's.
  Transfer SendRacingStalls(const std::string& url, const FetchJob& job,
                            const std::function<bool(const UpstreamResponseHead&)>& on_head,
                            const std::function<bool(const char*, std::size_t)>& on_body,
                            const UpstreamClient::PipeHandler& on_pipe,
                            const std::function<std::optional<RestRequest>()>& plan_hedge);
  // For a response that is not kept, before `n` more bytes are written:
  // waits while the stream would run more than max_uncached_buffer ahead
  // of its slowest reader, freeing what they all passed. False (with the
  // reason in *why) if the fetch should stop: no request is left to read
  // it, or fanoutd is stopping.
  bool PaceUncached(const Entry& entry, StreamFile& stream, std::size_t n, std::string* why);
  bool stopping() const;
  // When fanoutd is stopping: records the whole frontier of a body being
  // checkpointed and keeps its stream file and record for the next run.
  void KeepPartialIfStopping(const std::string& url, StreamFile& stream,
                             std::optional<PartialRecord>* record);
  // Waits `pause` unless fanoutd is stopping; false if it is.
  bool PauseUnlessStopping(std::chrono::milliseconds pause);
  // For a revalidating fetch: serves the stored entry to everyone waiting
  // on `entry` if stale-if-error allows it. True if it did.
  bool ServeStaleOnError(const FetchJob& job, const std::shared_ptr<Entry>& entry) const;
  const Options options_;
  Cache* const cache_;
  // Upstream connections kept between fetches (it locks on its own).
  // Destroyed after the destructor has waited for every fetch to end.
  UpstreamConnectionPool pool_;

  mutable std::mutex mu_;
  std::condition_variable all_done_;         // signalled when running_ drops to 0
  std::condition_variable stop_requested_;   // signalled when stopping_ is set
  std::size_t running_ = 0;                  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  // How to stop each transfer in progress (on destruction).
  std::map<const void*, std::function<void()>> stoppers_;  // guarded by mu_
};

}  // namespace fanout

#endif  // FANOUT_SERVER_UPSTREAM_FETCH_H_
