// UpstreamFetcher: runs fetches — the one upstream transfer per entry —
// each on its own thread, writing the body into the entry's stream file.
//
// A fetch publishes the response head to the entry as soon as it arrives,
// appends body bytes as they come, and ends the stream: finished (then, for
// a shareable 200 of a shared fetch, the entry is committed as a hit) or
// failed (then every reader sees the error and nothing is kept). Clients
// never drive a fetch: one that leaves changes nothing for the others.
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
#include "server/interim_relay.h"
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
  // server (routes are not reloaded).
  CachePolicyOptions policy;
  std::uint64_t max_object_size = 0;
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
  };
  // Sends the job's request upstream with an UpstreamClient over pool_'s
  // connections, and streams the response through on_head and on_body, or
  // on_pipe for a long body the client splices (UpstreamClient::
  // TakeBodiesThroughPipe).
  Transfer Send(const FetchJob& job,
                const std::function<bool(const UpstreamResponseHead&)>& on_head,
                const std::function<bool(const char*, std::size_t)>& on_body,
                const UpstreamClient::PipeHandler& on_pipe);
  // For a response that is not kept, before `n` more bytes are written:
  // waits while the stream would run more than max_uncached_buffer ahead
  // of its slowest reader, freeing what they all passed. False (with the
  // reason in *why) if the fetch should stop: no request is left to read
  // it, or fanoutd is stopping.
  bool PaceUncached(const Entry& entry, StreamFile& stream, std::size_t n, std::string* why);
  bool stopping() const;
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
  std::size_t running_ = 0;                  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  // How to stop each transfer in progress (on destruction).
  std::map<const void*, std::function<void()>> stoppers_;  // guarded by mu_
};

}  // namespace fanout

#endif  // FANOUT_SERVER_UPSTREAM_FETCH_H_
