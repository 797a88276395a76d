#include "server/fanout_server.h"

#include <spdlog/spdlog.h>
#include <strings.h>

#include <vector>

#include "server/access_log.h"
#include "server/cache_key.h"
#include "server/relayed_headers.h"
#include "server/connection_pool.h"
#include "server/connect_tunnel.h"
#include "server/connection_stream.h"
#include "server/cpu_slice.h"
#include "server/entry_body_job.h"
#include "server/http_headers.h"
#include "server/request_target.h"
#include "server/via.h"
#include "core/byte_range.h"
#include "core/cache_policy.h"

namespace fanout {
namespace {

// Bytes of a client's request body read from its connection at a time.
constexpr std::size_t kRequestBodyChunkBytes = 64 * 1024;

// Bytes of a client's request body buffered between its connection and the
// upstream; a slower upstream holds the client back, memory stays bounded.
constexpr std::size_t kRequestBodyPipeBytes = 256 * 1024;

// How long a byte may wait before readers at the frontier are woken for it
// (they are woken sooner per 256 KiB). A few milliseconds cost nothing to a
// download and cut the wake-ups, and the small sends that follow them, by
// as much against a 1 ms batch.
constexpr std::chrono::microseconds kWakeMaxDelay(4000);

// Requests per keep-alive connection, and how long an idle one stays open.
constexpr std::size_t kKeepAliveMaxCount = 100000;
constexpr int kKeepAliveTimeoutSec = 5;

// Connections the kernel may hold for accept() (capped by somaxconn).
constexpr int kListenBacklog = 4096;

// How long a new connection may wait for its first bytes before it is
// accepted all the same.
constexpr int kDeferAcceptSec = 5;

// Memory that responses in flight may use, all together, for bytes the
// cache disk has no room for: they reach their clients whole (and are not
// kept) instead of being cut off; past this a full disk cuts them.
constexpr std::uint64_t kDiskFullMemory = 256ull << 20;

// Overflow threads that answer 503 while every worker is busy.
constexpr std::size_t kMaxOverflowThreads = 64;

}  // namespace

FanoutServer::FanoutServer(Config config)
    : config_(std::move(config)),
      routes_(config_.routes, config_.forward_proxy),
      pseudonym_(config_.pseudonym.empty() ? DefaultPseudonym() : config_.pseudonym),
      via_entry_(ViaEntry(pseudonym_)),
      max_object_size_(config_.max_object_size) {}

FanoutServer::~FanoutServer() {
  Stop();
  if (admin_thread_.joinable()) admin_thread_.join();
  admin_.reset();
  http_.reset();
  fetcher_.reset();
  cache_.reset();
  batcher_.reset();
}

Status FanoutServer::Start() {
  // JSON access lines go to their own logger (pattern "%v") when main set
  // one up; else to the default one.
  access_log_ = std::make_unique<AccessLog>(&metrics_, spdlog::get("access"), &recent_);
  access_log_->Configure(config_.access_log, config_.access_log_json ? AccessLog::Format::kJson
                                                                     : AccessLog::Format::kText);
  batcher_ = std::make_unique<WakeupBatcher>(kWakeMaxDelay);
  spill_budget_ = std::make_unique<MemoryBudget>(kDiskFullMemory);
  Cache::Options cache_options;
  cache_options.dir = config_.cache_dir;
  cache_options.batcher = batcher_.get();
  cache_options.spill_budget = spill_budget_.get();
  cache_options.max_size = config_.max_cache_size;
  cache_options.warn = [](const std::string& message) { spdlog::warn("cache: {}", message); };
  cache_options.evicted = [](const std::string& key, std::uint64_t bytes) {
    spdlog::debug("cache: evicted {} ({} bytes)", key, bytes);
  };
  const auto open_started = std::chrono::steady_clock::now();
  Status st = Cache::Open(cache_options, &cache_);
  if (!st.ok()) return st;
  spdlog::info("cache: {} entries, {} bytes, loaded in {:.3f}s", cache_->stored_count(),
               cache_->stored_bytes(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - open_started)
                   .count());
  UpstreamFetcher::Options fetch_options;
  fetch_options.connect_timeout = config_.upstream_connect_timeout;
  fetch_options.read_timeout = config_.upstream_read_timeout;
  fetch_options.resume_attempts = config_.upstream_resume_attempts;
  fetch_options.stall_timeout = config_.upstream_stall_timeout;
  fetch_options.partial_checkpoint = config_.upstream_partial_checkpoint;
  fetch_options.max_uncached_buffer = config_.max_uncached_buffer;
  fetch_options.metrics = &metrics_;
  fetcher_ = std::make_unique<UpstreamFetcher>(fetch_options, cache_.get());

  BodySender::Options sender_options;
  sender_options.threads = std::max(1u, std::thread::hardware_concurrency());
  sender_options.write_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.client_timeout);
  sender_ = std::make_unique<BodySender>(sender_options);
  client_limit_ =
      std::make_unique<ClientLimit>(static_cast<std::size_t>(config_.max_connections_per_client));
  DirectHit::Options direct_options;
  direct_options.access_log = access_log_.get();
  direct_options.via_entry = via_entry_;
  direct_hit_ = std::make_unique<DirectHit>(direct_options, cache_.get(), &routes_, &stats_,
                                            sender_.get());
  HttpServer::Options http_options;
  http_options.host = config_.listen_host;
  http_options.port = config_.listen_port;
  http_options.backlog = kListenBacklog;
  http_options.defer_accept_sec = kDeferAcceptSec;
  http_options.workers = static_cast<std::size_t>(config_.max_connections);
  http_options.max_overflow = kMaxOverflowThreads;
  http_options.read_timeout = config_.client_timeout;
  http_options.write_timeout = config_.client_timeout;
  http_options.keep_alive_timeout = std::chrono::seconds(kKeepAliveTimeoutSec);
  http_options.keep_alive_max_requests = kKeepAliveMaxCount;
  http_options.head_timeout = config_.request_head_timeout;
  http_options.max_request_body = config_.max_request_body;
  http_options.client_limit = client_limit_.get();
  http_options.send = SendContext{cache_.get(), sender_.get(), &stopping_};
  http_options.tunnel = [this](const std::string& authority, ConnectionStream& stream) {
    return ServeConnect(authority, stream);
  };
  http_ = std::make_unique<HttpServer>(
      http_options,
      [this](const Request& req, RequestBody& body, Response& res) { Handle(req, body, res); },
      [this](const RequestHead& head, ConnectionStream& stream) {
        return direct_hit_->TryServe(head, stream);
      });
  st = http_->Bind();
  if (!st.ok()) return st;
  port_ = http_->port();
  if (config_.admin_enabled) {
    admin_ = std::make_unique<AdminServer>(cache_.get(), &routes_, &stats_, sender_.get());
    admin_->ServeMetrics([this] { return RenderMetrics(); });
    admin_->ServeStatus(&recent_, config_.max_cache_size);
    st = admin_->Start(config_.admin_host, config_.admin_port);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

Status FanoutServer::Reload(const Config& next) {
  // What was fixed at start-up: sockets, the cache, thread pools, timeouts
  // handed to the parts that run with them.
  std::vector<std::string> restart;
  auto fixed = [&restart](bool same, const char* key) {
    if (!same) restart.push_back(key);
  };
  fixed(next.listen_host == config_.listen_host && next.listen_port == config_.listen_port,
        "listen");
  fixed(next.admin_enabled == config_.admin_enabled && next.admin_host == config_.admin_host &&
            next.admin_port == config_.admin_port,
        "admin_listen");
  fixed(next.cache_dir == config_.cache_dir, "cache_dir");
  fixed(next.max_connections == config_.max_connections, "max_connections");
  fixed(next.client_timeout == config_.client_timeout, "client_timeout");
  fixed(next.request_head_timeout == config_.request_head_timeout, "request_head_timeout");
  fixed(next.max_request_body == config_.max_request_body, "max_request_body");
  fixed(next.max_cache_size == config_.max_cache_size, "max_cache_size");
  fixed(next.max_uncached_buffer == config_.max_uncached_buffer, "max_uncached_buffer");
  fixed(next.upstream_connect_timeout == config_.upstream_connect_timeout,
        "upstream.connect_timeout");
  fixed(next.upstream_read_timeout == config_.upstream_read_timeout, "upstream.read_timeout");
  fixed(next.upstream_resume_attempts == config_.upstream_resume_attempts,
        "upstream.resume_attempts");
  fixed(next.upstream_stall_timeout == config_.upstream_stall_timeout,
        "upstream.stall_timeout");
  fixed(next.upstream_partial_checkpoint == config_.upstream_partial_checkpoint,
        "upstream.partial_checkpoint");
  fixed(next.pseudonym == config_.pseudonym, "pseudonym");
  fixed(next.log_file == config_.log_file, "log.file");
  fixed(next.access_log_file == config_.access_log_file, "log.access_file");
  if (!restart.empty()) {
    std::string keys;
    for (const std::string& key : restart) keys += (keys.empty() ? "" : ", ") + key;
    return Status::InvalidArgument("changed settings need a restart: " + keys);
  }
  routes_.Replace(next.routes, next.forward_proxy);
  max_object_size_.store(next.max_object_size, std::memory_order_relaxed);
  client_limit_->set_per_client(static_cast<std::size_t>(next.max_connections_per_client));
  access_log_->Configure(next.access_log, next.access_log_json ? AccessLog::Format::kJson
                                                               : AccessLog::Format::kText);
  return Status::Ok();
}

std::string FanoutServer::RenderMetrics() const {
  Metrics::Gauges g;
  g.fetches_in_flight = fetcher_->in_flight();
  for (const Cache::FetchInfo& fetch : cache_->ListFetches()) {
    g.readers_attached += static_cast<std::uint64_t>(std::max(fetch.readers, 0));
  }
  g.entries = cache_->stored_count();
  g.stored_bytes = cache_->stored_bytes();
  const Cache::Evictions evictions = cache_->evictions();
  g.evictions = evictions.count;
  g.evicted_bytes = evictions.bytes;
  g.connections_open = http_->open_connections();
  g.connections_idle = sender_->parked();
  g.responses_in_flight = http_->InFlight();
  g.bodies_sending = sender_->active();
  g.direct_hits = stats_.direct_hits.load(std::memory_order_relaxed);
  return metrics_.RenderPrometheus(g);
}

bool FanoutServer::Run() {
  if (admin_) admin_thread_ = std::thread([this] { admin_->Run(); });
  // This thread accepts connections: a wake-up that should run at once.
  UseInteractiveCpuSlice();
  return http_ && http_->Run();
}

void FanoutServer::Drain() {
  if (admin_) admin_->SetDraining();
  if (http_) http_->Drain();
}

std::size_t FanoutServer::InFlight() const { return http_ ? http_->InFlight() : 0; }

void FanoutServer::Stop() {
  stopping_.store(true);
  if (admin_) admin_->Stop();
  // Before the server: the sender gives connections back to its pool.
  if (sender_) sender_->Stop();
  if (http_) http_->Stop();
}

void FanoutServer::Handle(const Request& req, RequestBody& body, Response& res) {
  if (RefuseLoop(req, res)) return;
  // GET and HEAD go through the cache; every other method, extension
  // methods included, is passed to the upstream with its body.
  if (req.method == "GET" || req.method == "HEAD") {
    HandleCacheable(req, res);
  } else if (req.method == "PURGE") {
    HandlePurge(req, res);
  } else if (req.has_body()) {
    HandleUpload(req, body, res);
  } else {
    HandlePassThrough(req, res);
  }
}

namespace {

bool IsLoopback(std::string_view address) {
  return address.rfind("127.", 0) == 0 || address == "::1" ||
         address.rfind("::ffff:127.", 0) == 0;
}

}  // namespace

bool FanoutServer::ServeConnect(const std::string& authority, ConnectionStream& stream) {
  const ProxyRoutes& proxy = routes_.current().proxy();
  if (!proxy.tunnels()) return false;
  Request req;
  req.method = "CONNECT";
  req.target = authority;
  req.remote_addr = stream.RemoteAddress();
  const Record record = NewRecord(req);
  const ProxyRoutes::Tunnel to = proxy.TunnelTo(authority);
  if (to.status != 0) {
    spdlog::warn("refusing CONNECT {} from {}: {}", authority, req.remote_addr, to.reason);
    Response res;
    ReplyError(res, to.status, to.reason, record);
    (void)SendResponse(res, stream, ConnectionAfter::kClose, SendContext{});
    (void)stream.Flush();
    return true;
  }
  record->set_cache_status("TUNNEL");
  const TunnelOptions options{config_.upstream_connect_timeout, config_.client_timeout};
  const TunnelResult tunnel = RunConnectTunnel(stream, to.host, to.port, options, [this] {
    return !stopping_.load(std::memory_order_relaxed);
  });
  record->set_status(tunnel.status);
  record->AddBytes(tunnel.bytes_down);
  spdlog::info("tunnel to {} for {} ended: {} ({} bytes up, {} down)", authority, req.remote_addr,
               tunnel.ended, tunnel.bytes_up, tunnel.bytes_down);
  return true;
}

bool FanoutServer::RefuseLoop(const Request& req, Response& res) {
  if (!ViaHolds(req.headers, pseudonym_)) return false;
  const Record record = NewRecord(req);
  spdlog::warn("refusing {} {}: its Via ({}) holds this fanoutd's pseudonym '{}': a loop",
               req.method, req.target, req.header("Via"), pseudonym_);
  ReplyError(res, 508,
             "fanoutd " + pseudonym_ + ": loop detected: this request has already passed "
             "through " + pseudonym_ + " (Via: " + req.header("Via") +
             "); a route's upstream leads back here",
             record);
  return true;
}

std::string FanoutServer::XCache(const Request& req, const char* cache_status,
                                 const HeaderList& upstream) const {
  return XCacheValue(cache_status, pseudonym_, upstream, req.has_header("Via"));
}

void FanoutServer::HandlePurge(const Request& req, Response& res) {
  const Record record = NewRecord(req);
  if (!IsLoopback(req.remote_addr)) {
    ReplyError(res, 403,
               "fanoutd: PURGE is taken from loopback clients only; use the admin interface's "
               "POST /purge",
               record);
    return;
  }
  std::string target;
  const Route* route = MatchRoute(req, res, record, &target);
  if (route == nullptr) return;
  const std::string key = CacheKey(*route, target);
  const bool purged = cache_->Purge(key);
  spdlog::info("PURGE {}: {}", key, purged ? "removed" : "not stored");
  res.status = purged ? 200 : 404;
  res.SetText(res.status, (purged ? "purged " : "not stored: ") + key + "\n");
  res.record = record;
  record->set_status(res.status);
}

FanoutServer::Record FanoutServer::NewRecord(const Request& req) {
  return std::make_shared<AccessLogRecord>(access_log_.get(), req.remote_addr, req.method,
                                           req.url());
}

void FanoutServer::ReplyError(Response& res, int status, const std::string& message,
                              const Record& record) {
  res.status = status;
  res.SetText(status, message + "\n");
  res.record = record;
  record->set_status(status);
}

std::string FanoutServer::HostHeaderFor(const Route& route) {
  return route.host_override.empty() ? route.upstream.HostHeader() : route.host_override;
}


FetchJob FanoutServer::MakeJob(const Request& req, const Route& route,
                               const std::string& target, bool shared) const {
  FetchJob job;
  job.origin = route.upstream;
  job.tls = {route.tls_ca_file, route.tls_verify};
  job.method = shared ? "GET" : req.method;
  if (job.method == "HEAD") job.method = "GET";  // fetch the body others may want
  job.target = target;
  job.headers = UpstreamRequestHeaders(req, HostHeaderFor(route), shared, via_entry_);
  // RFC 9110 §15.2: no interim response to an HTTP/1.0 client.
  if (req.minor_version >= 1) job.interim = std::make_shared<InterimRelay>();
  job.keep = shared;
  job.facts = RequestFacts::From(req.headers);
  job.policy = CachePolicyOf(route, target);
  job.max_object_size = MaxObjectSize();
  job.verify = route.verify;
  return job;
}

std::uint64_t FanoutServer::MaxObjectSize() const {
  // An object that alone would push the cache past its low-water mark
  // would be evicted at once, and everything else with it.
  const auto cap = static_cast<std::uint64_t>(static_cast<double>(config_.max_cache_size) * 0.9);
  const std::uint64_t max_object_size = max_object_size_.load(std::memory_order_relaxed);
  if (max_object_size == 0) return cap;
  return std::min(max_object_size, cap);
}

const Route* FanoutServer::MatchRoute(const Request& req, Response& res,
                                      const Record& record, std::string* upstream_target) {
  std::string target;
  if (Status st = NormalizeRequestTarget(req.target, &target); !st.ok()) {
    res.close = true;
    ReplyError(res, 400, "fanoutd: bad request target: " + st.message(), record);
    return nullptr;
  }
  const Router& router = routes_.current();
  if (!req.scheme.empty() && router.proxy().enabled()) {
    // A proxy client's absolute URL: its host decides, never a route.
    ProxyRoutes::Decision proxied = router.proxy().RouteFor(req.scheme, req.authority);
    if (proxied.route == nullptr) {
      spdlog::warn("refusing {} {} from {}: {}", req.method, req.url(), req.remote_addr,
                   proxied.reason);
      ReplyError(res, proxied.status, proxied.reason, record);
      return nullptr;
    }
    *upstream_target = std::move(target);
    return proxied.route;
  }
  const Route* route = router.Match(target);
  if (route == nullptr) {
    ReplyError(res, 404,
               "fanoutd: no route for " + target.substr(0, target.find('?')) +
                   (router.proxy().enabled() && router.routes().empty()
                        ? " (fanoutd is a forward proxy here: send the absolute URL, as a "
                          "client set up with http_proxy does)"
                        : ""),
               record);
    return nullptr;
  }
  *upstream_target = Router::UpstreamTarget(*route, target);
  return route;
}

void FanoutServer::HandleCacheable(const Request& req, Response& res) {
  Record record = NewRecord(req);
  std::string target;
  const Route* route = MatchRoute(req, res, record, &target);
  if (route == nullptr) return;
  if (RequestMustBypass(req)) {
    ServePrivate(req, res, *route, target, record);
    return;
  }
  const std::string base_key = CacheKey(*route, target);
  const RequestFacts facts = RequestFacts::From(req.headers);
  const CachePolicyOptions policy = CachePolicyOf(*route, target);
  const auto now = std::chrono::system_clock::now();
  const bool only_if_cached = facts.cache_control.only_if_cached;
  // What a shared fetch for this request would send: Vary is matched on it.
  // Worked out only when a Vary needs it: most responses vary on nothing.
  std::optional<HeaderList> sent_headers;
  auto sent = [&]() -> const HeaderList& {
    if (!sent_headers) {
      sent_headers.emplace(UpstreamRequestHeaders(req, HostHeaderFor(*route), true));
    }
    return *sent_headers;
  };
  auto judge = [&](const ResponseHead& stored, const HeaderList& vary) {
    if (!vary.empty() && !VaryMatches(vary, sent())) return Reuse::kOtherVariant;
    return DecideReuse(facts, stored, policy, now);
  };
  auto variant_key = [&](const HeaderList& other) {
    std::vector<std::string> names;
    for (const auto& [name, value] : other) names.push_back(name);
    return VariantKey(base_key, SelectingValues(names, sent()));
  };
  if (facts.has_authorization) {
    HandleAuthorized(req, res, *route, target, base_key, facts, judge, variant_key, record);
    return;
  }
  std::string key = base_key;
  // At most a few turns: the base key, then the request's variant (again
  // if a joined fetch turns out to vary); past that, the request goes alone.
  for (int turn = 0; turn < 3; ++turn) {
    Cache::Acquired acquired = cache_->Acquire(key, judge, /*may_fetch=*/!only_if_cached);
    if (acquired.lookup == Cache::Lookup::kOtherVariant) {
      key = variant_key(acquired.vary);
      continue;
    }
    if (acquired.lookup == Cache::Lookup::kNotFresh) {
      ServePrivate(req, res, *route, target, record, "MISS");
      return;
    }
    if (only_if_cached && acquired.lookup != Cache::Lookup::kHit) {
      // RFC 9111 §5.2.1.7: nothing usable stored, and the client forbids a fetch.
      ReplyError(res, 504, "fanoutd: not in cache (only-if-cached)", record);
      return;
    }
    if (!acquired.status.ok()) {
      spdlog::error("cache cannot take {}: {}", key, acquired.status.ToString());
      ReplyError(res, 500, "fanoutd: cache unavailable: " + acquired.status.message(), record);
      return;
    }
    std::shared_ptr<InterimRelay> interim;
    if (acquired.fetch) {
      FetchJob job = MakeJob(req, *route, target, /*shared=*/true);
      interim = job.interim;
      if (acquired.stale) {
        if (auto stored = acquired.stale->head()) {
          for (auto& [name, value] : ConditionalHeaders(*stored)) job.headers.emplace_back(name, value);
        }
        job.revalidates = acquired.stale;
      }
      job.partial = std::move(acquired.partial);
      fetcher_->Start(std::move(job), acquired.fetch);
    }
    const char* cache_status = "HIT";
    switch (acquired.lookup) {
      case Cache::Lookup::kHit:
        cache_status = acquired.fetch ? "STALE" : "HIT";
        break;
      case Cache::Lookup::kMiss:
        cache_status = acquired.stale ? "REVALIDATE" : "MISS";
        break;
      case Cache::Lookup::kJoin:
      case Cache::Lookup::kOtherVariant:
      case Cache::Lookup::kNotFresh:
        cache_status = "JOIN";
        break;
    }
    const auto deadline = std::chrono::steady_clock::now() + config_.upstream_connect_timeout +
                          config_.upstream_read_timeout + std::chrono::seconds(5);
    auto outcome = AwaitHead(*acquired.entry, deadline, interim.get());
    if (outcome && outcome->head && acquired.lookup == Cache::Lookup::kJoin &&
        !outcome->vary.empty() && !VaryMatches(outcome->vary, sent())) {
      // The fetch we joined varies on headers whose values differ here.
      key = variant_key(outcome->vary);
      continue;
    }
    if (outcome && outcome->head && !outcome->shareable &&
        acquired.lookup != Cache::Lookup::kMiss) {
      // The response belongs to the request that caused the fetch: go alone.
      ServePrivate(req, res, *route, target, record);
      return;
    }
    if (acquired.interest) record->HoldInterest(acquired.interest);
    ServeEntry(req, res, *route, acquired.entry, cache_status, record, interim.get());
    return;
  }
  ServePrivate(req, res, *route, target, record);
}

void FanoutServer::HandleAuthorized(
    const Request& req, Response& res, const Route& route,
    const std::string& target, const std::string& base_key, const RequestFacts& facts,
    const Cache::Judge& judge, const std::function<std::string(const HeaderList&)>& variant_key,
    const Record& record) {
  // RFC 9111 §3.5: a stored response answers a request with credentials
  // only if it says public, s-maxage or must-revalidate; otherwise the
  // request goes upstream with its credentials, on a fetch of its own
  // (never joining, nor joined by, others unless its answer allows it).
  auto authorized_judge = [&](const ResponseHead& stored, const HeaderList& vary) {
    const Reuse reuse = judge(stored, vary);
    if (reuse == Reuse::kOtherVariant || AllowsAuthorizedReuse(stored, CachePolicyOf(route, target))) {
      return reuse;
    }
    return Reuse::kRevalidate;
  };
  std::string key = base_key;
  Cache::Acquired probe = cache_->Acquire(key, authorized_judge, /*may_fetch=*/false);
  if (probe.lookup == Cache::Lookup::kOtherVariant) {
    key = variant_key(probe.vary);
    probe = cache_->Acquire(key, authorized_judge, /*may_fetch=*/false);
  }
  if (probe.lookup == Cache::Lookup::kHit) {
    ServeEntry(req, res, route, probe.entry, "HIT", record);
    return;
  }
  if (facts.cache_control.only_if_cached) {
    ReplyError(res, 504, "fanoutd: not in cache (only-if-cached)", record);
    return;
  }
  std::shared_ptr<Entry> entry;
  if (Status st = cache_->StartOwnFetch(key, &entry); !st.ok()) {
    ReplyError(res, 500, "fanoutd: cache unavailable: " + st.message(), record);
    return;
  }
  record->HoldInterest(Entry::Attach(entry));
  FetchJob job = MakeJob(req, route, target, /*shared=*/true);
  const std::shared_ptr<InterimRelay> interim = job.interim;
  fetcher_->Start(std::move(job), entry);
  ServeEntry(req, res, route, entry, "MISS", record, interim.get());
}

void FanoutServer::HandlePassThrough(const Request& req, Response& res) {
  Record record = NewRecord(req);
  std::string target;
  const Route* route = MatchRoute(req, res, record, &target);
  if (route == nullptr) return;
  FetchJob job = MakeJob(req, *route, target, /*shared=*/false);
  const std::shared_ptr<InterimRelay> interim = job.interim;
  auto entry = StartPrivateFetch(std::move(job), res, record);
  if (!entry) return;
  InvalidateAfterUnsafe(req, *route, target, *entry);
  ServeEntry(req, res, *route, entry, "BYPASS", record, interim.get());
}

void FanoutServer::InvalidateAfterUnsafe(const Request& req, const Route& route,
                                         const std::string& target, const Entry& entry) {
  // RFC 9111 §4.4: unsafe methods, and methods whose safety is unknown
  // (M-SEARCH, any extension method), invalidate; the safe ones of RFC
  // 9110 §9.2.1 and the read-only WebDAV ones do not.
  static constexpr std::string_view kSafe[] = {"GET",      "HEAD",   "OPTIONS", "TRACE",
                                               "PROPFIND", "REPORT", "SEARCH"};
  if (std::find(std::begin(kSafe), std::end(kSafe), req.method) != std::end(kSafe)) return;
  const auto outcome = entry.WaitForHead(std::chrono::steady_clock::now() +
                                         config_.upstream_connect_timeout +
                                         config_.upstream_read_timeout);
  if (!outcome || !outcome->head) return;
  const ResponseHead& head = *outcome->head;
  // RFC 9111 §4.4: after a non-error answer to an unsafe request, the
  // target and the same-origin URLs in Location / Content-Location go.
  if (head.status < 200 || head.status >= 400) return;
  const std::string origin = route.upstream.Origin();
  std::vector<std::string> keys = {CacheKey(route, target)};
  for (const char* name : {"Location", "Content-Location"}) {
    std::string value = head.Header(name);
    if (value.rfind(origin + "/", 0) == 0) value.erase(0, origin.size());
    std::string normal;
    if (!value.empty() && value[0] == '/' && NormalizeRequestTarget(value, &normal).ok()) {
      keys.push_back(CacheKey(route, normal));
    }
  }
  for (const auto& key : keys) {
    if (cache_->Purge(key)) spdlog::info("invalidated {} after {} {}", key, req.method, target);
  }
}

void FanoutServer::HandleUpload(const Request& req, RequestBody& body, Response& res) {
  Record record = NewRecord(req);
  std::string job_target;
  const Route* route = MatchRoute(req, res, record, &job_target);
  if (route == nullptr) {
    res.close = true;  // the unread body is still on the socket
    return;
  }
  FetchJob job = MakeJob(req, *route, job_target, /*shared=*/false);
  auto pipe = std::make_shared<BytePipe>(kRequestBodyPipeBytes);
  job.body_stream = pipe;
  job.body_length = req.body_length();
  const std::shared_ptr<InterimRelay> interim = job.interim;
  std::shared_ptr<Entry> entry = StartPrivateFetch(std::move(job), res, record);
  if (!entry) {
    res.close = true;
    return;
  }
  // This thread reads the client's body into the pipe while the fetch
  // thread sends it upstream: the body is never held whole. If the fetch
  // stops taking it (upstream unreachable or hung up), the rest is read and
  // discarded, so that the client, still sending, can read the answer.
  std::vector<char> buffer(kRequestBodyChunkBytes);
  long n = 0;
  while ((n = body.Read(buffer.data(), buffer.size())) > 0) {
    // Fails only once the fetch stopped reading.
    (void)pipe->Write(buffer.data(), static_cast<std::size_t>(n));
  }
  if (n == 0) {
    pipe->Finish();
    InvalidateAfterUnsafe(req, *route, job_target, *entry);
  } else {
    // The client side failed (body too large, cut off, or too slow); the
    // upstream saw an incomplete request and the fetch fails with it.
    pipe->Fail("the client's request body broke off");
    res.close = true;  // part of the body may be unread
    const bool too_large = body.error() == RequestBody::Error::kTooLarge;
    ReplyError(res, too_large ? 413 : 400,
               too_large ? "fanoutd: request body larger than max_request_body (" +
                               std::to_string(config_.max_request_body) + " bytes)"
                         : body.error() == RequestBody::Error::kMalformed
                               ? "fanoutd: malformed chunked request body"
                               : "fanoutd: request body incomplete",
               record);
    return;
  }
  ServeEntry(req, res, *route, entry, "BYPASS", record, interim.get());
}

std::shared_ptr<Entry> FanoutServer::StartPrivateFetch(FetchJob job, Response& res,
                                                       const Record& record) {
  std::shared_ptr<Entry> entry;
  Status st = cache_->CreatePrivate(job.origin.Origin() + job.target, &entry);
  if (!st.ok()) {
    ReplyError(res, 500, "fanoutd: cannot buffer the response: " + st.message(), record);
    return nullptr;
  }
  record->HoldInterest(Entry::Attach(entry));
  fetcher_->Start(std::move(job), entry);
  return entry;
}

void FanoutServer::ServePrivate(const Request& req, Response& res,
                                const Route& route, const std::string& target,
                                Record record, const char* cache_status) {
  FetchJob job = MakeJob(req, route, target, /*shared=*/false);
  const std::shared_ptr<InterimRelay> interim = job.interim;
  auto entry = StartPrivateFetch(std::move(job), res, record);
  if (entry) ServeEntry(req, res, route, entry, cache_status, record, interim.get());
}

std::optional<Entry::HeadOutcome> FanoutServer::AwaitHead(const Entry& entry, Deadline deadline,
                                                          InterimRelay* interim) {
  if (interim == nullptr) return entry.WaitForHead(deadline);
  // How long an interim response may wait for this thread to relay it.
  constexpr auto kInterimCheck = std::chrono::milliseconds(20);
  ConnectionStream* client = ConnectionStream::Current();
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    auto outcome = entry.WaitForHead(std::min(deadline, now + kInterimCheck));
    // Interim responses come before the head: relayed first.
    for (const std::string& head : interim->Take()) {
      if (client != nullptr) (void)client->WriteAll(head);
    }
    if (client != nullptr) (void)client->Flush();
    if (outcome || std::chrono::steady_clock::now() >= deadline) return outcome;
  }
}

void FanoutServer::ServeEntry(const Request& req, Response& res, const Route& route,
                              const std::shared_ptr<Entry>& entry, const char* cache_status,
                              Record record, InterimRelay* interim) {
  record->set_cache_status(cache_status);
  stats_.Count(cache_status);
  const auto deadline = std::chrono::steady_clock::now() + config_.upstream_connect_timeout +
                        config_.upstream_read_timeout + std::chrono::seconds(5);
  auto outcome = AwaitHead(*entry, deadline, interim);
  if (std::string_view(cache_status) != "HIT") {
    record->MarkUpstreamHead(outcome && outcome->head ? outcome->head->status : 0);
  }
  if (!outcome) {
    ReplyError(res, 504, "fanoutd: no response from upstream for " + entry->key(), record);
    return;
  }
  if (outcome->error) {
    const bool timed_out = *outcome->error == Entry::UpstreamError::kTimedOut;
    res.Set("X-Cache", XCache(req, cache_status, {}));
    ReplyError(res, timed_out ? 504 : 502,
               std::string("fanoutd: ") +
                   (timed_out ? "upstream timed out: " : "upstream failed: ") +
                   outcome->error_message,
               record);
    return;
  }
  const ResponseHead& head = *outcome->head;
  const bool from_cache = std::string_view(cache_status) != "BYPASS";
  if (from_cache && (req.method == "GET" || req.method == "HEAD") &&
      (req.has_header("If-None-Match") || req.has_header("If-Modified-Since")) &&
      ClientConditionSatisfied(req.headers, head)) {
    ReplyNotModified(req, res, head, cache_status, record);
    return;
  }
  res.status = head.status;
  record->set_status(head.status);
  // The stored header fields byte for byte, in the order received, then
  // fanoutd's own (the same order as a direct hit's: direct_hit.h).
  res.headers = head.headers;
  RelayedForClients(route, &res.headers);
  const bool ranges = from_cache && head.status == 200;
  if (ranges) {
    res.Erase("Accept-Ranges");
    res.Add("Accept-Ranges", "bytes");
  }
  res.Set("X-Cache", XCache(req, cache_status, head.headers));
  // Age on everything served from a stored response (RFC 9111 §5.1); on a
  // response still arriving, the upstream's own Age if it sent one.
  if (entry->complete() || entry->stream()->state() == StreamFile::State::kFinished) {
    res.Set("Age", std::to_string(CurrentAge(head, std::chrono::system_clock::now()).count()));
  } else if (head.upstream_age > 0) {
    res.Set("Age", std::to_string(head.upstream_age));
  }
  res.Set("Via", ViaWith(head.headers, via_entry_));
  if (ranges && req.method == "GET" && req.has_header("Range") &&
      ServeRange(req, res, entry, head, record)) {
    return;
  }
  ServeBody(res, entry, head, req.method == "HEAD", std::move(record));
}

namespace {

// RFC 9110 §13.1.5: If-Range holds an entity-tag (strong comparison) or a
// date (equal to Last-Modified); the range is served only if it matches.
bool IfRangeMatches(const std::string& if_range, const ResponseHead& head) {
  if (if_range.empty()) return true;
  if (if_range.front() == '"' || if_range.rfind("W/", 0) == 0) {
    const std::string etag = head.Header("ETag");
    return if_range.front() == '"' && !etag.empty() && etag.front() == '"' && if_range == etag;
  }
  const auto date = ParseHttpDate(if_range);
  const auto last_modified = ParseHttpDate(head.Header("Last-Modified"));
  return date && last_modified && *date == *last_modified;
}

}  // namespace

bool FanoutServer::ServeRange(const Request& req, Response& res,
                              const std::shared_ptr<Entry>& entry, const ResponseHead& head,
                              const Record& record) {
  const auto specs = ParseRangeHeader(req.header("Range"));
  // Invalid syntax is ignored (RFC 9110 §14.2); several ranges get the
  // whole body, which the RFC allows, rather than multipart/byteranges.
  if (!specs || specs->size() != 1) return false;
  if (!IfRangeMatches(req.header("If-Range"), head)) return false;
  const RangeSpec spec = specs->front();
  const std::shared_ptr<StreamFile> stream = entry->stream();
  std::optional<std::uint64_t> length = head.content_length;
  if (!length) {
    // No length announced and the fetch still running: a range "a-b" is
    // served once byte b is written; one that needs the end waits for it.
    if (stream->state() == StreamFile::State::kFinished) {
      length = stream->frontier();
    } else {
      const std::uint64_t needed = spec.closed() ? *spec.last : (std::uint64_t{1} << 62);
      const auto deadline = std::chrono::steady_clock::now() + config_.upstream_read_timeout;
      // Waits without a reader: a fetch that releases the bytes its
      // readers passed must not take this request for one already reading.
      const Status waited = stream->WaitForByte(needed, deadline);
      if (waited.code() == Status::Code::kEndOfStream) length = stream->frontier();
      else if (!waited.ok()) return false;  // failed or too slow: the full path reports it
    }
  }
  ByteRange range;
  std::string total = "*";
  if (length) {
    const auto resolved = ResolveRange(spec, *length);
    if (!resolved) {
      ReplyError(res, 416, "fanoutd: range not satisfiable", record);
      res.Set("Content-Range", "bytes */" + std::to_string(*length));
      return true;
    }
    range = *resolved;
    total = std::to_string(*length);
  } else {
    range = ByteRange{*spec.first, *spec.last};  // written already, length still unknown
  }
  res.status = 206;
  record->set_status(206);
  res.Set("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                               std::to_string(range.last) + "/" + total);
  res.entry = entry;
  res.offset = range.first;
  res.length = range.length();
  res.record = record;
  return true;
}

void FanoutServer::ReplyNotModified(const Request& req, Response& res, const ResponseHead& head,
                                    const char* cache_status, const Record& record) {
  // RFC 9110 §15.4.5: the headers a 200 would carry that describe the
  // representation's validity, and no body.
  res.status = 304;
  record->set_status(304);
  record->set_cache_status(cache_status);
  for (const char* name :
       {"Cache-Control", "Content-Location", "Date", "ETag", "Expires", "Last-Modified", "Vary"}) {
    for (const auto& value : HeaderValues(head.headers, name)) res.Add(name, value);
  }
  res.Set("X-Cache", XCache(req, cache_status, head.headers));
  res.Set("Age", std::to_string(CurrentAge(head, std::chrono::system_clock::now()).count()));
  res.Set("Via", ViaWith(head.headers, via_entry_));
}

void FanoutServer::ServeBody(Response& res, const std::shared_ptr<Entry>& entry,
                             const ResponseHead& head, bool head_only, Record record) {
  res.record = std::move(record);
  res.head_only = head_only;
  // RFC 9110 §6.4.1: 1xx, 204 and 304 responses have no body, and no
  // framing for one (the writer sends none).
  if (!StatusHasBody(head.status)) return;
  // A complete stream's length is known even if the upstream sent none.
  std::optional<std::uint64_t> length = head.content_length;
  if (!length && entry->stream()->state() == StreamFile::State::kFinished) {
    length = entry->stream()->frontier();
  }
  if (length == 0u) return;  // an empty text body
  // HEAD: the framing headers still say what a GET would carry: the
  // length when known, else chunked (never a Content-Length that is not
  // the body's).
  res.entry = entry;
  res.offset = 0;
  res.length = length;
}

}  // namespace fanout
