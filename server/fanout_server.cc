#include "server/fanout_server.h"

#include <spdlog/spdlog.h>
#include <strings.h>

#include <vector>

#include "server/access_log.h"
#include "server/connection_pool.h"
#include "server/connection_stream.h"
#include "server/cpu_slice.h"
#include "server/entry_body_job.h"
#include "server/http_headers.h"
#include "server/request_target.h"
#include "core/byte_range.h"
#include "core/cache_policy.h"

namespace fanout {
namespace {

// Bytes a client's body provider copies from the stream file per call when
// it copies (chunked bodies): large enough for few syscalls.
constexpr std::size_t kBodyBufferBytes = 64 * 1024;

// Bodies up to this size are copied rather than sent from the mapping, so
// the head and the body leave in one segment.
constexpr std::size_t kSmallBodyBytes = 16 * 1024 - 1024;

// Known-length bodies at least this long are sent by the BodySender (see
// body_sender.h) rather than by the connection's thread: they can take a
// client long enough, or wait at the frontier long enough, to tie a
// thread up; a smaller one usually fits in the socket buffer at once.
constexpr std::size_t kHandOffBytes = 256 * 1024;

// After this many bytes of one body, its thread asks for long CPU slices.
constexpr std::uint64_t kBulkBodyBytes = 1 << 20;

// How often a client waiting at the frontier checks for shutdown.
constexpr auto kFrontierPoll = std::chrono::seconds(1);

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

// Ends the connection after this response: said in its head, and done by
// the connection loop (httplib would keep the connection open).
void CloseAfterResponse(httplib::Response& res) {
  res.set_header("Connection", "close");
  if (ConnectionStream* conn = ConnectionStream::Current()) conn->set_close_after_response();
}

// Sends one response's body from its own reader of the entry's stream
// file, on the connection's thread (httplib calls the provider there).
// Known-length bodies go out from the stream file's shared read-only
// mapping (copied if it cannot be mapped), except small ones,
// which are copied so that head and body leave in one packet; chunked
// bodies are copied (httplib frames chunks in memory).
struct BodyProvider {
  std::shared_ptr<Entry> entry;
  std::shared_ptr<StreamReader> reader;
  std::shared_ptr<AccessLogRecord> record;
  const std::atomic<bool>* stopping;
  Cache* cache;  // to drop an entry whose file turns out damaged
  BodySender* sender;  // null: no hand-offs
  std::vector<char> buffer;  // copy path only
  std::uint64_t sent = 0;

  // Calls attempt(deadline) until it stops timing out. Before it first
  // waits at the frontier, held-back output is flushed so the client is
  // not kept from bytes already produced.
  template <typename Attempt>
  auto AwaitBytes(Attempt attempt) -> decltype(attempt(Deadline{})) {
    auto r = attempt(std::chrono::steady_clock::now());
    if (r.status.code() != Status::Code::kDeadlineExceeded) return r;
    if (ConnectionStream* conn = ConnectionStream::Current()) conn->Flush();
    for (;;) {
      r = attempt(std::chrono::steady_clock::now() + kFrontierPoll);
      if (r.status.code() != Status::Code::kDeadlineExceeded || stopping->load()) return r;
    }
  }

  // Records why the body ends early; returns false for httplib.
  bool Incomplete(const Status& status) {
    if (status.code() == Status::Code::kDeadlineExceeded) {
      record->MarkIncomplete("fanoutd stopping");
    } else if (status.code() == Status::Code::kEndOfStream) {
      record->MarkIncomplete("stream shorter than its length");
    } else {
      record->MarkIncomplete(status.ToString());
    }
    // kIOError: the entry's file lost bytes under it (cut on disk).
    if (status.code() == Status::Code::kIOError) cache->DropDamaged(entry, status.message());
    return false;
  }

  bool Sent(bool ok, std::size_t n) {
    if (!ok) {
      record->MarkIncomplete("client went away");
      return false;
    }
    record->AddBytes(n);
    sent += n;
    // A large body: this thread is a bulk sender now, and lets threads
    // answering requests run first (see cpu_slice.h).
    if (sent >= kBulkBodyBytes) UseBulkCpuSlice();
    return true;
  }

  // Content provider for a known length: the bytes at [offset, offset+length).
  bool SendRange(std::size_t offset, std::size_t length, httplib::DataSink& sink) {
    if (offset != reader->position()) reader->Seek(offset);
    ConnectionStream* conn = ConnectionStream::Current();
    if (conn == nullptr || length <= kSmallBodyBytes) return CopyNext(length, sink);
    if (sender != nullptr && length >= kHandOffBytes && conn->CanHandOff()) {
      conn->HandOff(NewEntryBodyJob(reader, length, record, entry, cache));
      return false;  // ends httplib's write; the connection loop hands it on
    }
    auto extent = AwaitBytes([&](Deadline d) {
      return reader->NextExtent(std::min(length, ConnectionStream::kMaxBodyWrite), d);
    });
    if (!extent.status.ok()) return Incomplete(extent.status);
    if (extent.data == nullptr) {
      // The stream file could not be mapped: copy these bytes instead.
      reader->Seek(extent.offset);
      return CopyNext(extent.length, sink);
    }
    // From the stream file's mapping: one copy, into the socket.
    if (!sink.write(extent.data, extent.length)) {
      if (conn->file_short()) {
        return Incomplete(Status::IOError("stream file shorter than its frontier"));
      }
      return Sent(false, 0);
    }
    return Sent(true, extent.length);
  }

  // Copies up to max bytes at the reader's position out and sends them.
  bool CopyNext(std::size_t max, httplib::DataSink& sink) {
    if (buffer.empty()) buffer.resize(std::min(max, kBodyBufferBytes));
    auto r = AwaitBytes([&](Deadline d) {
      return reader->Read(buffer.data(), std::min(max, buffer.size()), d);
    });
    if (!r.status.ok()) return Incomplete(r.status);
    return Sent(sink.write(buffer.data(), r.bytes), r.bytes);
  }

  // Chunked content provider: the next bytes, or the end.
  bool SendChunk(httplib::DataSink& sink) {
    if (buffer.empty()) buffer.resize(kBodyBufferBytes);
    auto r = AwaitBytes([&](Deadline d) {
      return reader->Read(buffer.data(), buffer.size(), d);
    });
    if (r.status.code() == Status::Code::kEndOfStream) {
      sink.done();
      return true;
    }
    if (!r.status.ok()) return Incomplete(r.status);
    return Sent(sink.write(buffer.data(), r.bytes), r.bytes);
  }
};

// A sender with a new reader of the entry's stream, at offset 0.
std::shared_ptr<BodyProvider> NewBodyProvider(const std::shared_ptr<Entry>& entry,
                                          std::shared_ptr<AccessLogRecord> record,
                                          const std::atomic<bool>* stopping, Cache* cache,
                                          BodySender* sender) {
  std::shared_ptr<StreamReader> reader(entry->stream()->OpenReader());
  // Opened (at byte 0): a fetch that frees the bytes its readers passed may
  // count on this request's reader from now on.
  if (Entry::Interest* interest = record->interest()) interest->MarkReading();
  return std::make_shared<BodyProvider>(
      BodyProvider{entry, std::move(reader), std::move(record), stopping, cache, sender, {}});
}

}  // namespace

FanoutServer::FanoutServer(Config config)
    : config_(std::move(config)), router_(config_.routes) {}

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
  batcher_ = std::make_unique<WakeupBatcher>(kWakeMaxDelay);
  spill_budget_ = std::make_unique<MemoryBudget>(kDiskFullMemory);
  Cache::Options cache_options;
  cache_options.dir = config_.cache_dir;
  cache_options.batcher = batcher_.get();
  cache_options.spill_budget = spill_budget_.get();
  cache_options.max_size = config_.max_cache_size;
  cache_options.warn = [](const std::string& message) { spdlog::warn("cache: {}", message); };
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
  fetch_options.max_uncached_buffer = config_.max_uncached_buffer;
  fetcher_ = std::make_unique<UpstreamFetcher>(fetch_options, cache_.get());

  BodySender::Options sender_options;
  sender_options.threads = std::max(1u, std::thread::hardware_concurrency());
  sender_options.write_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.client_timeout);
  sender_ = std::make_unique<BodySender>(sender_options);
  http_ = std::make_unique<HttpServer>();
  http_->UseConnectionPool(static_cast<std::size_t>(config_.max_connections),
                           kMaxOverflowThreads, sender_.get());
  client_limit_ =
      std::make_unique<ClientLimit>(static_cast<std::size_t>(config_.max_connections_per_client));
  http_->SetRequestLimits(config_.request_head_timeout, client_limit_.get());
  http_->set_tcp_nodelay(true);
  http_->set_keep_alive_max_count(kKeepAliveMaxCount);
  http_->set_keep_alive_timeout(kKeepAliveTimeoutSec);
  DirectHit::Options direct_options;
  direct_options.access_log = config_.access_log;
  direct_options.keep_alive_timeout_sec = kKeepAliveTimeoutSec;
  direct_options.keep_alive_max_count = kKeepAliveMaxCount;
  direct_hit_ = std::make_unique<DirectHit>(direct_options, cache_.get(), &router_, &stats_,
                                            sender_.get());
  http_->SetDirectPath([this](const RequestHead& head, ConnectionStream& stream) {
    return direct_hit_->TryServe(head, stream);
  });
  http_->set_read_timeout(config_.client_timeout);
  http_->set_write_timeout(config_.client_timeout);
  http_->set_payload_max_length(config_.max_request_body);

  http_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // httplib parsed the request: the connection may go on after it.
    if (ConnectionStream* conn = ConnectionStream::Current()) conn->set_close_after_response(false);
    if (ConnectionPool::IsOverflowConnection()) {
      res.set_header("Retry-After", "1");
      CloseAfterResponse(res);
      ReplyError(res, 503,
                 "fanoutd: too many connections (max_connections is " +
                     std::to_string(config_.max_connections) + ")",
                 NewRecord(req));
      return httplib::Server::HandlerResponse::Handled;
    }
    auto& mutable_req = const_cast<httplib::Request&>(req);
    if (ConnectionStream* conn = ConnectionStream::Current()) {
      RestoreRawHeaderValues(mutable_req, conn->raw_fields());
    }
    // fanoutd answers ranges itself (a later version); httplib must not cut
    // the body on its own, so the parsed ranges are dropped here.
    mutable_req.ranges.clear();
    // httplib would parse multipart bodies and gzip responses itself;
    // fanoutd relays both as they are.
    HideHeadersFromHttplib(mutable_req);
    return httplib::Server::HandlerResponse::Unhandled;
  });
  auto cacheable = [this](const httplib::Request& req, httplib::Response& res) {
    HandleCacheable(req, res);
  };
  auto pass = [this](const httplib::Request& req, httplib::Response& res) {
    HandlePassThrough(req, res);
  };
  auto upload = [this](const httplib::Request& req, httplib::Response& res,
                       const httplib::ContentReader& read_body) {
    HandleUpload(req, res, read_body);
  };
  http_->Get(".*", cacheable);
  http_->Post(".*", upload);
  http_->Put(".*", upload);
  http_->Delete(".*", upload);
  http_->Patch(".*", upload);
  http_->Options(".*", pass);

  if (config_.listen_port == 0) {
    port_ = http_->bind_to_any_port(config_.listen_host);
    if (port_ < 0) port_ = 0;
  } else if (http_->bind_to_port(config_.listen_host, config_.listen_port)) {
    port_ = config_.listen_port;
  }
  if (port_ <= 0) {
    return Status::IOError("cannot listen on " + config_.listen_host + ":" +
                           std::to_string(config_.listen_port));
  }
  if (!http_->DeferAcceptUntilData(kDeferAcceptSec)) {
    spdlog::warn("cannot defer accepting connections until their request arrives");
  }
  if (!http_->SetListenBacklog(kListenBacklog)) {
    spdlog::warn("cannot raise the listen backlog to {}; bursts of new clients may wait",
                 kListenBacklog);
  }
  if (config_.admin_enabled) {
    admin_ = std::make_unique<AdminServer>(cache_.get(), &router_, config_.routes, &stats_,
                                           sender_.get());
    st = admin_->Start(config_.admin_host, config_.admin_port);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

bool FanoutServer::Run() {
  if (admin_) admin_thread_ = std::thread([this] { admin_->Run(); });
  // This thread accepts connections: a wake-up that should run at once.
  UseInteractiveCpuSlice();
  return http_ && http_->listen_after_bind();
}

void FanoutServer::Stop() {
  stopping_.store(true);
  if (admin_) admin_->Stop();
  // Before the server: the sender gives connections back to its pool.
  if (sender_) sender_->Stop();
  if (http_) http_->stop();
}

FanoutServer::Record FanoutServer::NewRecord(const httplib::Request& req) {
  return std::make_shared<AccessLogRecord>(config_.access_log, req.remote_addr, req.method,
                                           req.target);
}

void FanoutServer::ReplyError(httplib::Response& res, int status, const std::string& message,
                              const Record& record) {
  res.status = status;
  res.set_content(message + "\n", "text/plain; charset=utf-8");
  record->set_status(status);
  record->AddBytes(message.size() + 1);
}

std::string FanoutServer::HostHeaderFor(const Route& route) {
  return route.host_override.empty() ? route.upstream.HostHeader() : route.host_override;
}


FetchJob FanoutServer::MakeJob(const httplib::Request& req, const Route& route,
                               const std::string& target, bool shared) const {
  FetchJob job;
  job.origin = route.upstream;
  job.tls = {route.tls_ca_file, route.tls_verify};
  job.method = shared ? "GET" : req.method;
  if (job.method == "HEAD") job.method = "GET";  // fetch the body others may want
  job.target = target;
  const httplib::Headers headers = UpstreamRequestHeaders(req, HostHeaderFor(route), shared);
  job.headers.assign(headers.begin(), headers.end());
  job.body = req.body;
  job.keep = shared;
  job.facts = RequestFacts::From(RequestHeaderList(req));
  job.policy = CachePolicyOf(route);
  job.max_object_size = MaxObjectSize();
  return job;
}

std::uint64_t FanoutServer::MaxObjectSize() const {
  // An object that alone would push the cache past its low-water mark
  // would be evicted at once, and everything else with it.
  const auto cap = static_cast<std::uint64_t>(static_cast<double>(config_.max_cache_size) * 0.9);
  if (config_.max_object_size == 0) return cap;
  return std::min(config_.max_object_size, cap);
}

const Route* FanoutServer::MatchRoute(const httplib::Request& req, httplib::Response& res,
                                      const Record& record, std::string* upstream_target) {
  std::string target;
  if (Status st = NormalizeRequestTarget(req.target, &target); !st.ok()) {
    CloseAfterResponse(res);
    ReplyError(res, 400, "fanoutd: bad request target: " + st.message(), record);
    return nullptr;
  }
  const Route* route = router_.Match(target);
  if (route == nullptr) {
    ReplyError(res, 404, "fanoutd: no route for " + target.substr(0, target.find('?')), record);
    return nullptr;
  }
  *upstream_target = Router::UpstreamTarget(*route, target);
  return route;
}

void FanoutServer::HandleCacheable(const httplib::Request& req, httplib::Response& res) {
  Record record = NewRecord(req);
  std::string target;
  const Route* route = MatchRoute(req, res, record, &target);
  if (route == nullptr) return;
  if (RequestMustBypass(req)) {
    ServePrivate(req, res, *route, target, record);
    return;
  }
  const std::string base_key = route->upstream.Origin() + target;
  const RequestFacts facts = RequestFacts::From(RequestHeaderList(req));
  const CachePolicyOptions policy = CachePolicyOf(*route);
  const auto now = std::chrono::system_clock::now();
  const bool only_if_cached = facts.cache_control.only_if_cached;
  // What a shared fetch for this request would send: Vary is matched on it.
  // Worked out only when a Vary needs it: most responses vary on nothing.
  std::optional<HeaderList> sent_headers;
  auto sent = [&]() -> const HeaderList& {
    if (!sent_headers) {
      const httplib::Headers h = UpstreamRequestHeaders(req, HostHeaderFor(*route), true);
      sent_headers.emplace(h.begin(), h.end());
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
    if (acquired.fetch) {
      FetchJob job = MakeJob(req, *route, target, /*shared=*/true);
      if (acquired.stale) {
        if (auto stored = acquired.stale->head()) {
          for (auto& [name, value] : ConditionalHeaders(*stored)) job.headers.emplace_back(name, value);
        }
        job.revalidates = acquired.stale;
      }
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
        cache_status = "JOIN";
        break;
    }
    const auto deadline = std::chrono::steady_clock::now() + config_.upstream_connect_timeout +
                          config_.upstream_read_timeout + std::chrono::seconds(5);
    auto outcome = acquired.entry->WaitForHead(deadline);
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
    ServeEntry(req, res, acquired.entry, cache_status, record);
    return;
  }
  ServePrivate(req, res, *route, target, record);
}

void FanoutServer::HandleAuthorized(
    const httplib::Request& req, httplib::Response& res, const Route& route,
    const std::string& target, const std::string& base_key, const RequestFacts& facts,
    const Cache::Judge& judge, const std::function<std::string(const HeaderList&)>& variant_key,
    const Record& record) {
  // RFC 9111 §3.5: a stored response answers a request with credentials
  // only if it says public, s-maxage or must-revalidate; otherwise the
  // request goes upstream with its credentials, on a fetch of its own
  // (never joining, nor joined by, others unless its answer allows it).
  auto authorized_judge = [&](const ResponseHead& stored, const HeaderList& vary) {
    const Reuse reuse = judge(stored, vary);
    if (reuse == Reuse::kOtherVariant || AllowsAuthorizedReuse(stored)) return reuse;
    return Reuse::kRevalidate;
  };
  std::string key = base_key;
  Cache::Acquired probe = cache_->Acquire(key, authorized_judge, /*may_fetch=*/false);
  if (probe.lookup == Cache::Lookup::kOtherVariant) {
    key = variant_key(probe.vary);
    probe = cache_->Acquire(key, authorized_judge, /*may_fetch=*/false);
  }
  if (probe.lookup == Cache::Lookup::kHit) {
    ServeEntry(req, res, probe.entry, "HIT", record);
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
  fetcher_->Start(MakeJob(req, route, target, /*shared=*/true), entry);
  ServeEntry(req, res, entry, "MISS", record);
}

void FanoutServer::HandlePassThrough(const httplib::Request& req, httplib::Response& res) {
  Record record = NewRecord(req);
  std::string target;
  const Route* route = MatchRoute(req, res, record, &target);
  if (route == nullptr) return;
  auto entry = StartPrivateFetch(MakeJob(req, *route, target, /*shared=*/false), res, record);
  if (!entry) return;
  InvalidateAfterUnsafe(req, *route, target, *entry);
  ServeEntry(req, res, entry, "BYPASS", record);
}

void FanoutServer::InvalidateAfterUnsafe(const httplib::Request& req, const Route& route,
                                         const std::string& target, const Entry& entry) {
  if (req.method != "POST" && req.method != "PUT" && req.method != "DELETE" &&
      req.method != "PATCH") {
    return;
  }
  const auto outcome = entry.WaitForHead(std::chrono::steady_clock::now() +
                                         config_.upstream_connect_timeout +
                                         config_.upstream_read_timeout);
  if (!outcome || !outcome->head) return;
  const ResponseHead& head = *outcome->head;
  // RFC 9111 §4.4: after a non-error answer to an unsafe request, the
  // target and the same-origin URLs in Location / Content-Location go.
  if (head.status < 200 || head.status >= 400) return;
  const std::string origin = route.upstream.Origin();
  std::vector<std::string> keys = {origin + target};
  for (const char* name : {"Location", "Content-Location"}) {
    const std::string value = head.Header(name);
    if (value.rfind(origin + "/", 0) == 0) keys.push_back(value);
    else if (!value.empty() && value[0] == '/') keys.push_back(origin + value);
  }
  for (const auto& key : keys) {
    if (cache_->Purge(key)) spdlog::info("invalidated {} after {} {}", key, req.method, target);
  }
}

void FanoutServer::HandleUpload(const httplib::Request& req, httplib::Response& res,
                                const httplib::ContentReader& read_body) {
  Record record = NewRecord(req);
  std::string job_target;
  const Route* route = MatchRoute(req, res, record, &job_target);
  if (route == nullptr) {
    CloseAfterResponse(res);  // the unread body is still on the socket
    return;
  }
  FetchJob job = MakeJob(req, *route, job_target, /*shared=*/false);
  auto pipe = std::make_shared<BytePipe>(kRequestBodyPipeBytes);
  job.body_stream = pipe;
  job.body_length = RequestBodyLength(req);
  std::shared_ptr<Entry> entry = StartPrivateFetch(std::move(job), res, record);
  if (!entry) {
    CloseAfterResponse(res);
    return;
  }
  // This thread reads the client's body into the pipe while the fetch
  // thread sends it upstream: the body is never held whole. If the fetch
  // stops taking it (upstream unreachable or hung up), the rest is read and
  // discarded, so that the client, still sending, can read the answer.
  const bool read_whole = read_body([&](const char* data, size_t n) {
    (void)pipe->Write(data, n);  // fails only once the fetch stopped reading
    return true;
  });
  if (read_whole) {
    pipe->Finish();
    InvalidateAfterUnsafe(req, *route, job_target, *entry);
  } else {
    // The client side failed (body too large, cut off, or too slow); the
    // upstream saw an incomplete request and the fetch fails with it.
    pipe->Fail("the client's request body broke off");
    CloseAfterResponse(res);  // part of the body may be unread
    const bool too_large = res.status == 413;
    ReplyError(res, too_large ? 413 : 400,
               too_large ? "fanoutd: request body larger than max_request_body (" +
                               std::to_string(config_.max_request_body) + " bytes)"
                         : "fanoutd: request body incomplete",
               record);
    return;
  }
  ServeEntry(req, res, entry, "BYPASS", record);
}

std::shared_ptr<Entry> FanoutServer::StartPrivateFetch(FetchJob job, httplib::Response& res,
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

void FanoutServer::ServePrivate(const httplib::Request& req, httplib::Response& res,
                                const Route& route, const std::string& target,
                                Record record) {
  auto entry = StartPrivateFetch(MakeJob(req, route, target, /*shared=*/false), res, record);
  if (entry) ServeEntry(req, res, entry, "BYPASS", record);
}

void FanoutServer::ServeEntry(const httplib::Request& req, httplib::Response& res,
                              const std::shared_ptr<Entry>& entry, const char* cache_status,
                              Record record) {
  record->set_cache_status(cache_status);
  stats_.Count(cache_status);
  const auto deadline = std::chrono::steady_clock::now() + config_.upstream_connect_timeout +
                        config_.upstream_read_timeout + std::chrono::seconds(5);
  auto outcome = entry->WaitForHead(deadline);
  if (!outcome) {
    ReplyError(res, 504, "fanoutd: no response from upstream for " + entry->key(), record);
    return;
  }
  if (outcome->error) {
    const bool timed_out = *outcome->error == Entry::UpstreamError::kTimedOut;
    res.set_header("X-Cache", cache_status);
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
      ClientConditionSatisfied(RequestHeaderList(req), head)) {
    ReplyNotModified(res, head, cache_status, record);
    return;
  }
  res.status = head.status;
  record->set_status(head.status);
  std::string content_type;
  for (const auto& [name, value] : head.headers) {
    if (::strcasecmp(name.c_str(), "Content-Type") == 0) {
      content_type = value;
      continue;
    }
    res.headers.emplace(name, value);
  }
  res.set_header("X-Cache", cache_status);
  // Age on everything served from a stored response (RFC 9111 §5.1); on a
  // response still arriving, the upstream's own Age if it sent one.
  if (entry->complete() || entry->stream()->state() == StreamFile::State::kFinished) {
    res.set_header("Age", std::to_string(CurrentAge(head, std::chrono::system_clock::now()).count()));
  } else if (head.upstream_age > 0) {
    res.set_header("Age", std::to_string(head.upstream_age));
  }
  if (from_cache && head.status == 200) {
    res.headers.erase("Accept-Ranges");
    res.set_header("Accept-Ranges", "bytes");
    if (req.method == "GET" && req.has_header("Range") &&
        ServeRange(req, res, entry, head, content_type, record)) {
      return;
    }
  }
  ServeBody(res, entry, head, req.method == "HEAD", content_type, std::move(record));
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

bool FanoutServer::ServeRange(const httplib::Request& req, httplib::Response& res,
                              const std::shared_ptr<Entry>& entry, const ResponseHead& head,
                              const std::string& content_type, const Record& record) {
  const auto specs = ParseRangeHeader(req.get_header_value("Range"));
  // Invalid syntax is ignored (RFC 9110 §14.2); several ranges get the
  // whole body, which the RFC allows, rather than multipart/byteranges.
  if (!specs || specs->size() != 1) return false;
  if (!IfRangeMatches(req.get_header_value("If-Range"), head)) return false;
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
      res.set_header("Content-Range", "bytes */" + std::to_string(*length));
      return true;
    }
    range = *resolved;
    total = std::to_string(*length);
  } else {
    range = ByteRange{*spec.first, *spec.last};  // written already, length still unknown
  }
  res.status = 206;
  record->set_status(206);
  res.set_header("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                      std::to_string(range.last) + "/" + total);
  auto body = NewBodyProvider(entry, record, &stopping_, cache_.get(), sender_.get());
  const std::uint64_t first = range.first;
  res.set_content_provider(range.length(), content_type,
                           [body, first](size_t offset, size_t n, httplib::DataSink& sink) {
                             return body->SendRange(first + offset, n, sink);
                           });
  if (content_type.empty()) res.headers.erase("Content-Type");
  return true;
}

void FanoutServer::ReplyNotModified(httplib::Response& res, const ResponseHead& head,
                                    const char* cache_status, const Record& record) {
  // RFC 9110 §15.4.5: the headers a 200 would carry that describe the
  // representation's validity, and no body.
  res.status = 304;
  record->set_status(304);
  record->set_cache_status(cache_status);
  for (const char* name :
       {"Cache-Control", "Content-Location", "Date", "ETag", "Expires", "Last-Modified", "Vary"}) {
    for (const auto& value : HeaderValues(head.headers, name)) res.headers.emplace(name, value);
  }
  res.set_header("X-Cache", cache_status);
  res.set_header("Age", std::to_string(CurrentAge(head, std::chrono::system_clock::now()).count()));
}

void FanoutServer::ServeBody(httplib::Response& res, const std::shared_ptr<Entry>& entry,
                             const ResponseHead& head, bool head_only,
                             const std::string& content_type, Record record) {
  // RFC 9110 §6.4.1: 1xx, 204 and 304 responses have no body, and no
  // framing for one (a chunked terminator would be read as the start of
  // the next response).
  if (head.status < 200 || head.status == 204 || head.status == 304) {
    res.body.clear();
    if (!content_type.empty()) res.set_header("Content-Type", content_type);
    return;
  }
  // A complete stream's length is known even if the upstream sent none.
  std::optional<std::uint64_t> length = head.content_length;
  if (!length && entry->stream()->state() == StreamFile::State::kFinished) {
    length = entry->stream()->frontier();
  }
  if (length == 0u) {
    // httplib 0.11.4 never answers a response whose content provider has
    // length 0 (the client waits forever): an empty body is sent as one.
    res.body.clear();
    if (!content_type.empty()) res.set_header("Content-Type", content_type);
    return;
  }
  if (head_only) {
    // httplib sends no body for HEAD; the framing headers still say what a
    // GET would carry: the length when known, else chunked (never a
    // Content-Length that is not the body's).
    if (length) {
      res.set_content_provider(*length, content_type,
                               [](size_t, size_t, httplib::DataSink&) { return false; });
    } else {
      res.set_chunked_content_provider(content_type,
                                       [](size_t, httplib::DataSink&) { return false; });
    }
    if (content_type.empty()) res.headers.erase("Content-Type");
    return;
  }
  auto body = NewBodyProvider(entry, std::move(record), &stopping_, cache_.get(), sender_.get());
  if (length) {
    res.set_content_provider(*length, content_type,
                             [body](size_t offset, size_t length, httplib::DataSink& sink) {
                               return body->SendRange(offset, length, sink);
                             });
  } else {
    res.set_chunked_content_provider(content_type,
                                     [body](size_t, httplib::DataSink& sink) {
                                       return body->SendChunk(sink);
                                     });
  }
  // httplib sets the type it is given even when empty; no type is better.
  if (content_type.empty()) res.headers.erase("Content-Type");
}

}  // namespace fanout
