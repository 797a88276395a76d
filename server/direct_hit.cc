#include "server/direct_hit.h"

#include <array>
#include <chrono>
#include <memory>

#include "core/cache_policy.h"
#include "core/header_text.h"
#include "server/access_log.h"
#include "server/cache_key.h"
#include "server/relayed_headers.h"
#include "server/connection_pool.h"
#include "server/request_target.h"
#include "server/entry_body_job.h"
#include "server/http1/response_writer.h"
#include "server/metrics.h"
#include "server/recent_requests.h"

namespace fanout {
namespace {

// Request headers that can change the answer or the connection; any of
// them sends the request down the full path.
// (Via: a request from another proxy names this hop in X-Cache.)
constexpr std::array<std::string_view, 17> kRulesOut = {
    "Range",          "If-Range",          "If-None-Match",     "If-Modified-Since",
    "If-Match",       "If-Unmodified-Since", "Cache-Control",    "Pragma",
    "Cookie",         "Authorization",     "Content-Length",    "Transfer-Encoding",
    "Expect",         "Upgrade",           "TE",                "Proxy-Authorization",
    "Via"};

// A request with no Cache-Control, Pragma, credentials or conditionals.
const RequestFacts& PlainRequest() {
  static const RequestFacts facts = RequestFacts::From(HeaderList{});
  return facts;
}

// Writes all of data; false if the client is gone.
bool WriteAll(ConnectionStream& stream, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = stream.write(data, n);
    if (w <= 0) return false;
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

DirectHit::DirectHit(Options options, Cache* cache, const RouteTable* routes, ServerStats* stats,
                     BodySender* sender)
    : options_(options),
      cache_(cache),
      routes_(routes),
      stats_(stats),
      sender_(sender) {}

bool DirectHit::RulesOut(std::string_view name, std::string_view value, bool* close) {
  if (EqualsIgnoreCase(name, "Connection")) {
    if (EqualsIgnoreCase(value, "close")) *close = true;
    return !*close && !EqualsIgnoreCase(value, "keep-alive");
  }
  for (std::string_view rule : kRulesOut) {
    if (EqualsIgnoreCase(name, rule)) return true;
  }
  return false;
}

HttpServer::DirectAnswer DirectHit::TryServe(const RequestHead& head,
                                             ConnectionStream& stream) const {
  using Answer = HttpServer::DirectAnswer;
  constexpr Answer kNotAnswered = Answer::kNotAnswered;
  // HTTP/1.0 clients, and every form of target but a path or a forward
  // proxy's absolute URL, take the full path.
  const Router& router = routes_->current();
  const bool proxied =
      head.form == RequestHead::TargetForm::kAbsolute && router.proxy().enabled();
  if (head.method != "GET" || head.minor_version != 1 ||
      (head.form != RequestHead::TargetForm::kOrigin && !proxied)) {
    return kNotAnswered;
  }
  bool close = false;
  for (std::size_t i = 0; i < head.header_count; ++i) {
    if (RulesOut(head.headers[i].first, head.headers[i].second, &close)) return kNotAnswered;
  }
  // An overflow connection gets its 503 from the full path.
  if (ConnectionPool::IsOverflowConnection()) return kNotAnswered;
  // A target not in its normal form (request_target.h) takes the full
  // path, which normalizes it or answers 400.
  std::string normal;
  if (!NormalizeRequestTarget(head.target, &normal).ok() || normal != head.target) {
    return kNotAnswered;
  }
  // A host the proxy does not allow gets its 403 from the full path.
  const Route* route = proxied ? router.proxy().RouteFor(head.scheme, head.host).route
                               : router.Match(head.target);
  if (route == nullptr) return kNotAnswered;
  const std::string upstream_target =
      proxied ? std::string(head.target) : Router::UpstreamTarget(*route, head.target);
  const std::string logged_target =
      proxied ? std::string(head.scheme) + "://" + std::string(head.host) + std::string(head.target)
              : std::string(head.target);
  const std::string key = CacheKey(*route, upstream_target);
  const CachePolicyOptions policy = CachePolicyOf(*route, upstream_target);
  const auto now = std::chrono::system_clock::now();
  // A large body goes to the sender, which needs the connection to itself.
  const bool may_hand_off = sender_ != nullptr && !stream.on_event_loop() &&
                            stream.BufferedInput().size() == head.size;
  // Anything but a plain fresh hit is judged "revalidate": with may_fetch
  // false that changes nothing in the cache, and the full path takes over.
  auto judge = [&](const ResponseHead& stored, const HeaderList& vary) {
    const bool plain = vary.empty() && stored.status == 200 && stored.content_length &&
                       (*stored.content_length <= kMaxBody || may_hand_off);
    return plain && DecideReuse(PlainRequest(), stored, policy, now) == Reuse::kFresh
               ? Reuse::kFresh
               : Reuse::kRevalidate;
  };
  const auto started = std::chrono::steady_clock::now();
  const Cache::Acquired acquired = cache_->Acquire(key, judge, /*may_fetch=*/false);
  if (acquired.lookup != Cache::Lookup::kHit || !acquired.entry) return kNotAnswered;
  const std::shared_ptr<const ResponseHead> stored = acquired.entry->head();
  if (!stored || !stored->content_length) return kNotAnswered;
  // A response from another cache (X-Cache) or proxy (Via): its hops are
  // merged with this one's on the full path.
  for (const auto& [name, value] : stored->headers) {
    if (EqualsIgnoreCase(name, "X-Cache") || EqualsIgnoreCase(name, "Via")) return kNotAnswered;
  }
  const std::uint64_t length = *stored->content_length;

  // A small body first: if it cannot be read whole, nothing has been
  // written. Per request, not per thread: a thread that once sent a 64 KiB
  // hit should not keep 64 KiB (there may be thousands of connection
  // threads).
  const bool hand_off = length > kMaxBody;
  std::string body(hand_off ? 0 : length, '\0');
  if (length > 0 && !hand_off) {
    const auto read = acquired.entry->stream()->OpenReader()->ReadAt(0, body.data(), length);
    if (!read.status.ok() || read.bytes != length) {
      cache_->DropDamaged(acquired.entry,
                          read.status.ok() ? "short body" : read.status.message());
      return kNotAnswered;
    }
  }

  // The head, as the full path writes it for a hit (see ServeEntry).
  std::string out;
  out.reserve(512);
  const std::string age = std::to_string(CurrentAge(*stored, now).count());
  const std::pair<std::string_view, std::string_view> own[] = {
      {"Accept-Ranges", "bytes"}, {"X-Cache", "HIT"}, {"Age", age}, {"Via", options_.via_entry}};
  // Fields the route keeps from clients or rewrites: rare, so copied only
  // when there are any.
  HeaderList relayed;
  const bool changed = NeedsRelayChanges(*route, stored->headers);
  if (changed) {
    relayed = stored->headers;
    RelayedForClients(*route, &relayed);
  }
  AppendResponseHead(200, changed ? relayed : stored->headers, own, ResponseFraming{length},
                     close ? ConnectionAfter::kClose : ConnectionAfter::kKeepOpen, &out);

  stats_->hit.fetch_add(1, std::memory_order_relaxed);
  stats_->direct_hits.fetch_add(1, std::memory_order_relaxed);
  const AccessLog* log = options_.access_log;
  const bool log_line = log != nullptr && log->enabled();
  std::shared_ptr<AccessLogRecord> record;
  if (log_line || hand_off) {
    std::string ip;
    int port = 0;
    if (log_line) stream.get_remote_ip_and_port(ip, port);
    record = std::make_shared<AccessLogRecord>(log, ip, "GET", logged_target);
    record->set_status(200);
    record->set_cache_status("HIT");
  }
  if (hand_off) {
    record->MarkHeadSent();  // written just below, before any body byte
    stream.HandOff(NewEntryBodyJob(std::shared_ptr<StreamReader>(acquired.entry->stream()->OpenReader()),
                                   length, std::move(record), acquired.entry, cache_));
    if (!WriteAll(stream, out.data(), out.size())) {
      stream.TakeHandOff()->on_end(Status::IOError("client went away"), 0);
    }
    return close ? Answer::kAnsweredThenClose : Answer::kAnsweredKeepOpen;
  }
  const bool head_sent = WriteAll(stream, out.data(), out.size());
  const auto head_at = std::chrono::steady_clock::now();
  if (record) record->MarkHeadSent();
  const bool sent = head_sent && WriteAll(stream, body.data(), length);
  if (record) {
    if (sent) record->AddBytes(length);
    else record->MarkIncomplete("client went away");
  } else if (log != nullptr && log->metrics() != nullptr) {
    // No record for a small hit without a log line: counted here, cheaper.
    const auto end = std::chrono::steady_clock::now();
    log->metrics()->CountRequest(Metrics::Outcome::kHit, 200, sent ? length : 0,
                                 head_at - started, end - started);
    if (log->recent() != nullptr) {
      log->recent()->Add("GET", logged_target, 200, "HIT", sent ? length : 0,
                         std::chrono::duration<double, std::milli>(end - started).count());
    }
  }
  return close ? Answer::kAnsweredThenClose : Answer::kAnsweredKeepOpen;
}

}  // namespace fanout
