#include "server/upstream_fetch.h"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cerrno>
#include <thread>
#include <vector>

#include "core/body_digest.h"
#include "core/header_text.h"
#include "server/fetch_race.h"
#include "server/fetch_resume.h"
#include "server/http_headers.h"
#include "server/upstream_client.h"

namespace fanout {
namespace {

// Bodies this long or longer that will be kept have their disk space
// reserved when their length is known (StreamFile::Reserve); a smaller one
// is written before the reservation would pay for its system call.
constexpr std::uint64_t kReserveFrom = 1 << 20;
// Bytes copied out of the body pipe at a time when they must be hashed.
constexpr std::size_t kPipeCopyBytes = 256 * 1024;
// The longest pause before a resume, however many came before.
constexpr std::chrono::milliseconds kMaxResumePause{8000};

// Takes `n` bytes out of `pipe` (they are there: the client just spliced
// them in), handing each piece to `take`; false if a read fails or `take`
// says so.
template <typename Take>
bool DrainPipe(int pipe, std::size_t n, std::vector<char>& buffer, const Take& take) {
  buffer.resize(kPipeCopyBytes);
  while (n > 0) {
    const ssize_t got = ::read(pipe, buffer.data(), std::min(n, buffer.size()));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    if (!take(buffer.data(), static_cast<std::size_t>(got))) return false;
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

// The response a partial body was recorded with, as its resumed fetch
// publishes it: the recorded head and length, with the Date and Age of the
// origin's `answer` (its 206 confirmed the representation now) if given.
UpstreamResponseHead RecordedResponse(const EntryMeta& meta, const UpstreamResponseHead* answer) {
  UpstreamResponseHead head;
  head.status = 200;
  head.reason = "OK";
  auto dated = [](const std::string& name) {
    return EqualsIgnoreCase(name, "Date") || EqualsIgnoreCase(name, "Age");
  };
  for (const auto& [name, value] : meta.head.headers) {
    if (answer == nullptr || !dated(name)) head.headers.emplace_back(name, value);
  }
  if (answer != nullptr) {
    for (const auto& [name, value] : answer->headers) {
      if (dated(name)) head.headers.emplace_back(name, value);
    }
  }
  head.headers.emplace_back("Content-Length", std::to_string(meta.head.content_length.value_or(0)));
  return head;
}

}  // namespace

UpstreamFetcher::UpstreamFetcher(const Options& options, Cache* cache)
    : options_(options), cache_(cache) {}

UpstreamFetcher::~UpstreamFetcher() {
  std::unique_lock<std::mutex> lock(mu_);
  stopping_ = true;
  stop_requested_.notify_all();
  for (auto& [client, stop] : stoppers_) stop();
  all_done_.wait(lock, [this] { return running_ == 0; });
}

std::size_t UpstreamFetcher::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

void UpstreamFetcher::Start(FetchJob job, std::shared_ptr<Entry> entry) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++running_;
  }
  // One thread per fetch: it blocks in the upstream socket, never on a client.
  std::thread([this, job = std::move(job), entry = std::move(entry)]() mutable {
    {
      // Owned by this scope, not the lambda: the entry (its stream file,
      // the memory it drew) is let go before running_ says the fetch is
      // done. Once it is 0 the cache and the budgets may be gone, and a
      // detached thread's captures die only after it returns.
      const FetchJob own_job = std::move(job);
      const std::shared_ptr<Entry> own_entry = std::move(entry);
      Run(own_job, own_entry);
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (--running_ == 0) all_done_.notify_all();
  }).detach();
}

void UpstreamFetcher::Run(const FetchJob& job, const std::shared_ptr<Entry>& entry) {
  const std::string url = job.origin.Origin() + job.target;
  const auto started = std::chrono::steady_clock::now();
  spdlog::info("fetch start {} {}", job.method, url);
  Metrics* const metrics = options_.metrics;
  if (metrics != nullptr) metrics->CountFetchStarted();
  // Counts how the fetch ended, once, wherever it returns.
  auto failed = [metrics](Metrics::FetchFailure why) {
    if (metrics != nullptr) metrics->CountFetchFailed(why);
  };
  auto revalidated = [metrics, &job](Metrics::Revalidation result) {
    if (metrics != nullptr && job.revalidates) metrics->CountRevalidation(result);
  };

  // Held here: a revalidated entry swaps its stream for the stored body.
  const std::shared_ptr<StreamFile> own_stream = entry->stream();
  StreamFile& stream = *own_stream;
  bool head_published = false;
  bool keep = job.keep;
  // What a revalidation turned into, if not a new response.
  enum class Revalidation { kNone, kNotModified, kServedStale } revalidation =
      Revalidation::kNone;
  int status = 0;
  // Set for a 200 that may be resumed if its body breaks off; else why not.
  std::optional<ResumeValidator> resume_validator;
  std::string not_resumable = "not a 200 to a GET";
  // Set for a 200 that announced a digest of its body.
  std::optional<BodyDigest> digest;
  // Set for a body checkpointed as it is written, to outlive a restart.
  std::optional<PartialRecord> record;
  const auto requested_at = std::chrono::system_clock::now();
  auto on_head = [&](const UpstreamResponseHead& response) {
    ResponseHead head = MakeResponseHead(response);
    head.requested_at = requested_at;
    if (metrics != nullptr) {
      metrics->upstream_first_byte().Observe(std::chrono::steady_clock::now() - started);
    }
    status = head.status;
    if (job.revalidates) {
      const auto stored = job.revalidates->head();
      if (stored && head.status == 304) {
        // Still good: everyone waiting gets the stored body, refreshed.
        entry->AdoptBody(job.revalidates->stream());
        entry->PublishHead(Refreshed(*stored, head), /*shareable=*/true,
                           job.revalidates->vary());
        head_published = true;
        revalidation = Revalidation::kNotModified;
        return true;
      }
      if (head.status >= 500 && ServeStaleOnError(job, entry)) {
        head_published = true;
        revalidation = Revalidation::kServedStale;
        return false;  // the error's body is not wanted
      }
    }
    if (job.method == "GET" && head.status == 200) {
      resume_validator = ResumeValidatorOf(response, &not_resumable);
      if (std::optional<AnnouncedDigest> announced = ChooseDigest(head.headers)) {
        digest.emplace(std::move(*announced));
      }
    }
    const bool shareable = MayShare(head, job.facts.has_authorization, job.policy);
    std::string why;
    if (keep && !MayStore(job.facts, head, job.policy, &why)) {
      spdlog::debug("not storing {}: {}", url, why);
      keep = false;
    }
    if (keep && job.max_object_size > 0 && head.content_length &&
        *head.content_length > job.max_object_size) {
      spdlog::info("not storing {}: {} bytes, more than max_object_size", url,
                   *head.content_length);
      keep = false;
    }
    if (keep && job.verify && !digest) {
      spdlog::info("not storing {}: the route verifies bodies, and the response has no "
                   "Repr-Digest or Content-Digest (sha-256, sha-512)", url);
      keep = false;
    }
    keep = keep && shareable;
    if (head.content_length) {
      (void)stream.SetExpectedLength(*head.content_length);
      // A large body that will be kept gets its disk space in one piece.
      if (keep && *head.content_length >= kReserveFrom) stream.Reserve(*head.content_length);
    }
    // Vary: the values of the request this fetch sent, for the headers the
    // response varies on; requests with others must not be served it.
    HeaderList selecting;
    if (const auto names = VaryNames(head); !names.empty()) {
      selecting = SelectingValues(names, job.headers);
    }
    if (keep && resume_validator && head.content_length && options_.partial_checkpoint > 0 &&
        !stream.has_spilled() && !stream.path().empty()) {
      record.emplace(stream.path(), EntryMeta{entry->key(), head, "", 0, selecting});
    }
    entry->PublishHead(std::move(head), shareable, std::move(selecting));
    head_published = true;
    // A response that will not be kept leaves the index now: requests that
    // arrive later fetch for themselves instead of joining it (and never
    // one that is not theirs to share); those already waiting get it.
    if (!keep) cache_->Drop(entry);
    return true;
  };
  std::string stopped_why;    // set when the fetch stops itself
  bool spill_logged = false;  // the disk refused bytes, and the log said so
  // Whether n more bytes may be appended now (paced by the readers of a
  // body that will not be kept).
  auto admit = [&](std::size_t n) {
    if (keep && job.max_object_size > 0 && stream.frontier() + n > job.max_object_size) {
      // Streamed on to its readers, but too large to keep.
      spdlog::info("not storing {}: more than max_object_size", url);
      keep = false;
      cache_->Drop(entry);
    }
    return keep || PaceUncached(*entry, stream, n, &stopped_why);
  };
  // Every partial_checkpoint bytes of a body being recorded: makes them
  // durable, then records them.
  auto checkpoint = [&] {
    if (record && !keep) record.reset();
    if (!record || stream.frontier() < record->recorded() + options_.partial_checkpoint) return;
    const std::uint64_t at = stream.frontier();
    // A whole body is committed next, not recorded: a record must leave
    // something to ask for.
    if (const auto total = stream.expected_length(); total && at >= *total) return;
    Status st = stream.Sync();
    if (st.ok()) st = record->Write(at);
    if (!st.ok()) {
      spdlog::warn("cannot checkpoint {} ({}): it will not outlive a restart", url, st.message());
      record.reset();
    }
  };
  auto after_append = [&] {
    checkpoint();
    if (!spill_logged && stream.has_spilled()) {
      // The clients still get every byte (from memory); the store fails.
      spill_logged = true;
      const auto spill = stream.spilled();
      spdlog::warn("cannot write to the cache ({}): {} goes on from memory after {} bytes{}",
                   spill->why, url, spill->disk_bytes, keep ? " and will not be kept" : "");
      if (keep) {
        keep = false;
        cache_->Drop(entry);
      }
    }
    return true;
  };
  // With a digest to check, the body's last byte is held back until it
  // matched: readers of a body of known length would otherwise have all of
  // it, and take it as whole, before a mismatch could fail the stream.
  std::string held_back;
  // Appends bytes the fetch has in hand, hashing them if a digest is due.
  auto append = [&](const char* data, std::size_t n) {
    if (!digest) return stream.Append(data, n).ok();
    digest->Update(data, n);
    const std::optional<std::uint64_t> length = stream.expected_length();
    std::size_t now = n;
    if (n > 0 && length && stream.frontier() + n == *length) {
      held_back.assign(data + n - 1, 1);
      now = n - 1;
    }
    return now == 0 || stream.Append(data, now).ok();
  };
  auto on_body = [&](const char* data, std::size_t n) {
    if (metrics != nullptr) metrics->AddUpstreamBytes(n);
    return admit(n) && append(data, n) && after_append();
  };
  std::vector<char> pipe_copy;  // for bytes that must be hashed
  auto on_pipe = [&](int pipe, std::size_t n) {
    if (metrics != nullptr) metrics->AddUpstreamBytes(n);
    if (!admit(n)) return false;
    // A digest needs the bytes themselves: through user space then.
    const bool appended = digest ? DrainPipe(pipe, n, pipe_copy, append)
                                 : stream.AppendFromPipe(pipe, n).ok();
    return appended && after_append();
  };
  // Where the rest of the body would be asked from now, if it may be.
  auto rest_from = [&]() -> std::optional<std::uint64_t> {
    if (!head_published || revalidation != Revalidation::kNone || !stopped_why.empty() ||
        !resume_validator || stream.state() != StreamFile::State::kWriting) {
      return std::nullopt;
    }
    const std::uint64_t from = stream.frontier() + held_back.size();
    const std::optional<std::uint64_t> total = stream.expected_length();
    if (total && from >= *total) return std::nullopt;
    return from;
  };
  // The request for the rest from byte `from`, and the check of its answer.
  auto rest_request = [&](std::uint64_t from) {
    RestRequest rest;
    rest.from = from;
    rest.job = job;
    rest.job.headers = ResumeRequestHeaders(job.headers, from, *resume_validator);
    rest.job.interim = nullptr;
    rest.job.body.clear();
    rest.job.body_stream = nullptr;
    rest.job.body_length.reset();
    rest.on_head = [&stream, from, total = stream.expected_length(),
                    validator = *resume_validator, refused = rest.refused,
                    accepted = rest.accepted](const UpstreamResponseHead& response) {
      std::uint64_t length = 0;
      *refused = CheckResumeResponse(response, from, total, validator, &length);
      if (!refused->empty()) return false;
      if (!total) (void)stream.SetExpectedLength(length);
      *accepted = true;
      return true;
    };
    return rest;
  };
  // A hedge is for readers waiting at the frontier of a resumable body.
  auto plan_hedge = [&]() -> std::optional<RestRequest> {
    const std::optional<std::uint64_t> from = rest_from();
    if (!from || stream.open_readers() == 0) return std::nullopt;
    return rest_request(*from);
  };
  // A partial body an earlier run kept: ask only for the rest, and take
  // the kept bytes once the origin confirms they are still its body.
  std::shared_ptr<PartialBody> partial = job.method == "GET" ? job.partial : nullptr;
  std::optional<ResumeValidator> partial_validator;
  if (partial) {
    std::string why_not;
    const UpstreamResponseHead recorded = RecordedResponse(partial->meta(), nullptr);
    partial_validator = ResumeValidatorOf(recorded, &why_not);
    if (!partial_validator) {
      spdlog::warn("discarding the partial body of {} an earlier run kept: {}", url, why_not);
      partial.reset();
    }
  }
  std::optional<FetchJob> ranged;
  if (partial) {
    ranged.emplace(job);
    ranged->headers = ResumeRequestHeaders(job.headers, partial->length(), *partial_validator);
  }
  bool refetch_whole = false;  // the origin's answer to the ranged request was no use
  auto copy_partial = [&](const PartialBody& kept) {
    std::vector<char> buffer(kPipeCopyBytes);
    for (std::uint64_t at = 0; at < kept.length();) {
      std::size_t got = 0;
      const Status read = kept.Read(
          at, buffer.data(), std::min<std::uint64_t>(buffer.size(), kept.length() - at), &got);
      if (!read.ok()) {
        spdlog::warn("fetch of {}: cannot take up the partial body: {}", url, read.message());
        return false;
      }
      if (!(admit(got) && append(buffer.data(), got) && after_append())) return false;
      at += got;
    }
    return true;
  };
  auto on_first_head = [&](const UpstreamResponseHead& response) {
    if (!partial) return on_head(response);
    const std::shared_ptr<PartialBody> kept = std::move(partial);  // taken up once
    std::uint64_t length = 0;
    const std::string refused = CheckResumeResponse(
        response, kept->length(), kept->meta().head.content_length, *partial_validator, &length);
    if (refused.empty()) {
      spdlog::info("fetch of {} goes on from the {} bytes an earlier run kept; the origin sends "
                   "the rest", url, kept->length());
      return on_head(RecordedResponse(kept->meta(), &response)) && copy_partial(*kept);
    }
    spdlog::warn("discarding the partial body of {} an earlier run kept ({} bytes): {}", url,
                 kept->length(), refused);
    if (response.status == 206 || response.status == 416) {
      refetch_whole = true;  // an answer to a range that is not ours: ask for the whole
      return false;
    }
    return on_head(response);  // the whole body, as for any miss
  };
  Transfer transfer = SendRacingStalls(url, ranged ? *ranged : job, on_first_head, on_body,
                                       on_pipe, plan_hedge);
  if (refetch_whole && !head_published && !transfer.not_started) {
    transfer = SendRacingStalls(url, job, on_head, on_body, on_pipe, plan_hedge);
  }
  if (transfer.not_started) {
    entry->FailBeforeHead(Entry::UpstreamError::kUnreachable, "fanoutd is stopping");
    cache_->Drop(entry);
    failed(Metrics::FetchFailure::kAbandoned);
    return;
  }
  // Whatever is left of the request body will not be sent: let the client's
  // thread stop reading it.
  if (job.body_stream) job.body_stream->CloseReader();

  // A body that broke off: ask for the rest while that may work.
  for (int attempt = 1; !transfer.ok && attempt <= options_.resume_attempts; ++attempt) {
    const std::optional<std::uint64_t> rest_at = rest_from();
    if (!rest_at || !transfer.connection_failed) break;
    const std::uint64_t from = *rest_at;
    const auto pause = std::min<std::chrono::milliseconds>(
        options_.resume_backoff * (1 << std::min(attempt - 1, 16)), kMaxResumePause);
    spdlog::warn("fetch of {} broke off after {} bytes ({}): asking for the rest in {} ms, "
                 "attempt {} of {}", url, from, transfer.why, pause.count(), attempt,
                 options_.resume_attempts);
    if (!PauseUnlessStopping(pause)) {
      transfer.why = "fanoutd is stopping";
      break;
    }
    const RestRequest rest = rest_request(from);
    const std::string broke_off = transfer.why;
    transfer = Send(rest.job, rest.on_head, on_body, on_pipe);
    const bool accepted = *rest.accepted;
    const std::string& refused = *rest.refused;
    if (metrics != nullptr) {
      metrics->CountResume(accepted           ? Metrics::Resume::kResumed
                           : !refused.empty() ? Metrics::Resume::kRefused
                                              : Metrics::Resume::kFailed);
    }
    if (transfer.not_started) {
      transfer.why = "fanoutd is stopping";
      break;
    }
    if (!refused.empty()) {
      transfer.why = broke_off + "; the request for the rest was refused: " + refused;
      break;
    }
    if (transfer.ok) {
      spdlog::info("fetch of {} resumed from byte {} and finished", url, from);
    }
  }

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (revalidation == Revalidation::kNotModified) {
    const Status refreshed = cache_->Refresh(entry, job.revalidates);
    spdlog::info("fetch done {} 304: entry refreshed in {:.3f}s{}", url, seconds,
                 refreshed.ok() ? "" : " (" + refreshed.message() + ")");
    if (metrics != nullptr) metrics->CountFetchCompleted();
    revalidated(Metrics::Revalidation::kNotModified);
    return;
  }
  if (revalidation == Revalidation::kServedStale) {
    spdlog::warn("revalidation of {} got {}: serving the stored entry (stale-if-error)", url,
                 status);
    cache_->Drop(entry);
    if (metrics != nullptr) metrics->CountFetchCompleted();
    revalidated(Metrics::Revalidation::kStaleIfError);
    return;
  }
  if (!stopped_why.empty()) {
    spdlog::info("fetch stopped {} after {} bytes: {}", url, stream.frontier(), stopped_why);
    cache_->Drop(entry);  // first: a request that sees the failure must not join it
    stream.Fail("upstream " + url + ": " + stopped_why);
    failed(Metrics::FetchFailure::kAbandoned);
    revalidated(Metrics::Revalidation::kFailed);
    return;
  }
  if (!transfer.ok || (head_published && stream.state() == StreamFile::State::kFailed)) {
    const std::string why = transfer.ok ? stream.failure() : transfer.why;
    const std::string message = "upstream " + url + ": " + why;
    // Logged before the clients are told, so that the line is there by the
    // time any of them sees the failure.
    failed(transfer.timed_out ? Metrics::FetchFailure::kTimeout
           : head_published   ? Metrics::FetchFailure::kBroken
           : stopping()         ? Metrics::FetchFailure::kAbandoned
                              : Metrics::FetchFailure::kConnect);
    if (head_published) {
      KeepPartialIfStopping(url, stream, keep ? &record : nullptr);
      spdlog::warn("fetch failed {} after {} bytes in {:.3f}s: {}{}", url, stream.frontier(),
                   seconds, why,
                   transfer.connection_failed && !resume_validator
                       ? " (not resumable: " + not_resumable + ")"
                       : "");
      // Out of the index first: a request that arrives once the clients
      // saw the failure starts a new fetch instead of joining this one.
      cache_->Drop(entry);
      stream.Fail(message);
      revalidated(Metrics::Revalidation::kFailed);
    } else if (ServeStaleOnError(job, entry)) {
      spdlog::warn("revalidation of {} failed ({}): serving the stored entry "
                   "(stale-if-error)", url, why);
      revalidated(Metrics::Revalidation::kStaleIfError);
    } else {
      revalidated(Metrics::Revalidation::kFailed);
      spdlog::warn("fetch failed {} before response headers after {:.3f}s: {}", url,
                   seconds, why);
      entry->FailBeforeHead(
          transfer.timed_out ? Entry::UpstreamError::kTimedOut
                             : Entry::UpstreamError::kUnreachable,
          message);
    }
    cache_->Drop(entry);
    return;
  }

  const std::optional<std::uint64_t> announced_length = stream.expected_length();
  if (digest && (!announced_length ||
                 *announced_length == stream.frontier() + held_back.size())) {
    Status verified = digest->Verify();
    const bool mismatch = !verified.ok();
    if (!mismatch && !held_back.empty()) {
      verified = stream.Append(held_back.data(), held_back.size());
    }
    if (!verified.ok()) {
      spdlog::warn("fetch failed {} after {} bytes: {}; nothing kept", url, stream.frontier(),
                   verified.message());
      cache_->Drop(entry);  // first, as above
      stream.Fail("upstream " + url + ": " + verified.message());
      failed(mismatch ? Metrics::FetchFailure::kIntegrity : Metrics::FetchFailure::kStore);
      revalidated(Metrics::Revalidation::kFailed);
      return;
    }
  }
  const Status finished = stream.Finish();
  const double mib = static_cast<double>(stream.frontier()) / (1 << 20);
  if (!finished.ok()) {
    spdlog::warn("fetch failed {}: {}", url, finished.message());
    cache_->Drop(entry);
    failed(Metrics::FetchFailure::kStore);
    revalidated(Metrics::Revalidation::kFailed);
    return;
  }
  if (metrics != nullptr) metrics->CountFetchCompleted();
  revalidated(Metrics::Revalidation::kModified);
  spdlog::info("fetch done {} status {} {} bytes in {:.3f}s ({:.1f} MiB/s){}{}", url, status,
               stream.frontier(), seconds, seconds > 0 ? mib / seconds : 0.0,
               digest ? ", " + digest->expected().field + " " +
                            digest->expected().algorithm_name() + " verified"
                      : "",
               keep ? "" : ", not kept");
  if (!keep) {
    cache_->Drop(entry);
    return;
  }
  record.reset();  // the body is whole: no partial of it may outlive this
  const Status committed = cache_->Complete(entry);
  if (!committed.ok()) spdlog::warn("entry {} not kept: {}", url, committed.message());
}

UpstreamFetcher::Transfer UpstreamFetcher::Send(
    const FetchJob& job, const std::function<bool(const UpstreamResponseHead&)>& on_head,
    const std::function<bool(const char*, std::size_t)>& on_body,
    const UpstreamClient::PipeHandler& on_pipe,
    const std::function<void(std::function<void()>)>& expose_stop) {
  UpstreamOrigin origin;
  origin.scheme = job.origin.scheme;
  origin.host = job.origin.host;
  origin.port = job.origin.port;
  origin.tls = job.tls;
  UpstreamClient client(std::move(origin), &pool_,
                        {options_.connect_timeout, options_.read_timeout,
                         options_.metrics != nullptr ? &options_.metrics->upstream_connect()
                                                     : nullptr});
  Transfer transfer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      transfer.not_started = true;
      return transfer;
    }
    stoppers_.emplace(&client, [&client] { client.Stop(); });
  }
  if (expose_stop) expose_stop([&client] { client.Stop(); });
  UpstreamClient::Request request;
  request.method = job.method;
  request.target = job.target;
  request.headers = job.headers;
  request.body = job.body;
  request.body_stream = job.body_stream;
  request.body_length = job.body_length;
  UpstreamClient::InterimHandler on_interim;
  if (job.interim) {
    on_interim = [&job](const UpstreamResponseHead& head) {
      job.interim->Push(head.status, head.headers);
    };
  }
  client.TakeBodiesThroughPipe(on_pipe);
  const UpstreamClient::Result result = client.Send(request, on_head, on_body, on_interim);
  if (expose_stop) expose_stop({});
  {
    std::lock_guard<std::mutex> lock(mu_);
    stoppers_.erase(&client);
  }
  transfer.ok = result.ok();
  transfer.why = result.message;
  using E = UpstreamClient::Error;
  transfer.timed_out = result.error == E::kConnectTimeout || result.error == E::kReadTimeout;
  transfer.connection_failed = transfer.timed_out || result.error == E::kConnect ||
                               result.error == E::kWrite || result.error == E::kRead;
  return transfer;
}

UpstreamFetcher::Transfer UpstreamFetcher::SendRacingStalls(
    const std::string& url, const FetchJob& job,
    const std::function<bool(const UpstreamResponseHead&)>& on_head,
    const std::function<bool(const char*, std::size_t)>& on_body,
    const UpstreamClient::PipeHandler& on_pipe,
    const std::function<std::optional<RestRequest>()>& plan_hedge) {
  if (options_.stall_timeout.count() <= 0) return Send(job, on_head, on_body, on_pipe);
  using Leg = FetchRace::Leg;
  FetchRace race;
  std::optional<RestRequest> hedge;  // set when the hedge starts
  Transfer hedged;
  // Watches the first transfer; once it stalls, becomes the hedge.
  std::thread watcher([&] {
    for (;;) {
      if (race.first_ended()) return;
      if (!race.WaitForStall(options_.stall_timeout)) continue;
      if (race.StartHedge([&] { return (hedge = plan_hedge()).has_value(); })) break;
    }
    spdlog::warn("fetch of {} stalled after {} bytes (no byte for {} ms while readers wait): "
                 "asking for the rest beside it", url, hedge->from,
                 options_.stall_timeout.count());
    hedged = Send(
        hedge->job,
        [&](const UpstreamResponseHead& head) {
          return race.Locked([&] { return hedge->on_head(head); });
        },
        [&](const char* data, std::size_t n) {
          return race.Deliver(Leg::kHedge, [&] { return on_body(data, n); });
        },
        [&](int pipe, std::size_t n) {
          return race.Deliver(Leg::kHedge, [&] { return on_pipe(pipe, n); });
        },
        [&](std::function<void()> stop) { race.SetStopper(Leg::kHedge, std::move(stop)); });
  });
  const Transfer first = Send(
      job,
      [&](const UpstreamResponseHead& head) { return race.Locked([&] { return on_head(head); }); },
      [&](const char* data, std::size_t n) {
        return race.Deliver(Leg::kFirst, [&] { return on_body(data, n); });
      },
      [&](int pipe, std::size_t n) {
        return race.Deliver(Leg::kFirst, [&] { return on_pipe(pipe, n); });
      },
      [&](std::function<void()> stop) { race.SetStopper(Leg::kFirst, std::move(stop)); });
  race.FirstEnded();
  // A hedge that has not delivered yet may still carry a first transfer
  // that failed; after one that succeeded or won, it is not wanted.
  if (first.ok || race.winner() == FetchRace::Winner::kFirst) race.Close(Leg::kHedge);
  watcher.join();
  if (!race.hedge_started()) return first;
  Metrics* const metrics = options_.metrics;
  const FetchRace::Winner winner = race.winner();
  if (winner == FetchRace::Winner::kHedge) {
    if (metrics != nullptr) metrics->CountHedge(Metrics::Hedge::kWon);
    spdlog::info("fetch of {}: the request for the rest from byte {} delivered first; the "
                 "stalled connection is closed", url, hedge->from);
    return hedged;
  }
  if (winner == FetchRace::Winner::kFirst || first.ok) {
    if (metrics != nullptr) metrics->CountHedge(Metrics::Hedge::kLost);
    spdlog::info("fetch of {}: the stalled transfer delivered first; the request for the rest "
                 "is closed", url);
    return first;
  }
  if (metrics != nullptr) metrics->CountHedge(Metrics::Hedge::kFailed);
  spdlog::warn("fetch of {}: the request for the rest from byte {} {}", url, hedge->from,
               !hedge->refused->empty() ? "was refused: " + *hedge->refused
                                        : "failed: " + hedged.why);
  return first;
}

void UpstreamFetcher::KeepPartialIfStopping(const std::string& url, StreamFile& stream,
                                            std::optional<PartialRecord>* record) {
  if (record == nullptr || !*record || !stopping()) return;
  PartialRecord& kept = **record;
  const std::uint64_t at = stream.frontier();
  const auto total = stream.expected_length();
  if (at > kept.recorded() && (!total || at < *total) && stream.Sync().ok()) {
    const Status st = kept.Write(at);
    if (!st.ok()) spdlog::warn("cannot checkpoint {} ({})", url, st.message());
  }
  if (!kept.written()) return;
  kept.Keep();
  stream.KeepFile();
  spdlog::info("fanoutd is stopping: keeping the first {} bytes of {} for the next run to "
               "resume", kept.recorded(), url);
}

bool UpstreamFetcher::stopping() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

bool UpstreamFetcher::PauseUnlessStopping(std::chrono::milliseconds pause) {
  std::unique_lock<std::mutex> lock(mu_);
  return !stop_requested_.wait_for(lock, pause, [this] { return stopping_; });
}

bool UpstreamFetcher::PaceUncached(const Entry& entry, StreamFile& stream, std::size_t n,
                                   std::string* why) {
  // How long one wait for the readers lasts before the fetch looks again
  // at whether anyone is left and whether fanoutd is stopping.
  constexpr auto kPaceCheck = std::chrono::milliseconds(50);
  for (;;) {
    if (entry.interested() == 0) {
      *why = "no client is left and the response is not kept";
      return false;
    }
    // Only once every interested request has opened its reader: a request
    // still to open one starts at byte 0. (The reading count drops with
    // the interest, never after it, so a finished request's reader still
    // open cannot stand in for one still to come.)
    if (entry.reading() == entry.interested()) {
      stream.ReleasePassedBytes(/*slack=*/StreamFile::kMaxSendExtent);  // may still be sent
    }
    const StreamFile::ReaderProgress progress = stream.Progress();
    const std::uint64_t limit = options_.max_uncached_buffer;
    if (limit == 0 || !progress.slowest || stream.frontier() + n <= *progress.slowest + limit) {
      return true;
    }
    if (stopping()) {
      *why = "fanoutd is stopping";
      return false;
    }
    stream.WaitForReaderProgress(std::chrono::steady_clock::now() + kPaceCheck);
  }
}

bool UpstreamFetcher::ServeStaleOnError(const FetchJob& job,
                                        const std::shared_ptr<Entry>& entry) const {
  if (!job.revalidates) return false;
  const auto stored = job.revalidates->head();
  if (!stored || !MayServeStaleOnError(*stored, job.policy, std::chrono::system_clock::now())) {
    return false;
  }
  entry->AdoptBody(job.revalidates->stream());
  entry->PublishHead(*stored, /*shareable=*/true, job.revalidates->vary());
  return true;
}

}  // namespace fanout
