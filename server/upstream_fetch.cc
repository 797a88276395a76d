#include "server/upstream_fetch.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "server/http_headers.h"
#include "server/upstream_client.h"

namespace fanout {
namespace {

// Bodies this long or longer that will be kept have their disk space
// reserved when their length is known (StreamFile::Reserve); a smaller one
// is written before the reservation would pay for its system call.
constexpr std::uint64_t kReserveFrom = 1 << 20;

}  // namespace

UpstreamFetcher::UpstreamFetcher(const Options& options, Cache* cache)
    : options_(options), cache_(cache) {}

UpstreamFetcher::~UpstreamFetcher() {
  std::unique_lock<std::mutex> lock(mu_);
  stopping_ = true;
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

  // Held here: a revalidated entry swaps its stream for the stored body.
  const std::shared_ptr<StreamFile> own_stream = entry->stream();
  StreamFile& stream = *own_stream;
  bool head_published = false;
  bool keep = job.keep;
  // What a revalidation turned into, if not a new response.
  enum class Revalidation { kNone, kNotModified, kServedStale } revalidation =
      Revalidation::kNone;
  int status = 0;
  const auto requested_at = std::chrono::system_clock::now();
  auto on_head = [&](const UpstreamResponseHead& response) {
    ResponseHead head = MakeResponseHead(response);
    head.requested_at = requested_at;
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
  auto after_append = [&] {
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
  auto on_body = [&](const char* data, std::size_t n) {
    return admit(n) && stream.Append(data, n).ok() && after_append();
  };
  auto on_pipe = [&](int pipe, std::size_t n) {
    return admit(n) && stream.AppendFromPipe(pipe, n).ok() && after_append();
  };
  const Transfer transfer = Send(job, on_head, on_body, on_pipe);
  if (transfer.not_started) {
    entry->FailBeforeHead(Entry::UpstreamError::kUnreachable, "fanoutd is stopping");
    cache_->Drop(entry);
    return;
  }
  // Whatever is left of the request body will not be sent: let the client's
  // thread stop reading it.
  if (job.body_stream) job.body_stream->CloseReader();

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (revalidation == Revalidation::kNotModified) {
    const Status refreshed = cache_->Refresh(entry, job.revalidates);
    spdlog::info("fetch done {} 304: entry refreshed in {:.3f}s{}", url, seconds,
                 refreshed.ok() ? "" : " (" + refreshed.message() + ")");
    return;
  }
  if (revalidation == Revalidation::kServedStale) {
    spdlog::warn("revalidation of {} got {}: serving the stored entry (stale-if-error)", url,
                 status);
    cache_->Drop(entry);
    return;
  }
  if (!stopped_why.empty()) {
    spdlog::info("fetch stopped {} after {} bytes: {}", url, stream.frontier(), stopped_why);
    stream.Fail("upstream " + url + ": " + stopped_why);
    cache_->Drop(entry);
    return;
  }
  if (!transfer.ok || (head_published && stream.state() == StreamFile::State::kFailed)) {
    const std::string why = transfer.ok ? stream.failure() : transfer.why;
    const std::string message = "upstream " + url + ": " + why;
    // Logged before the clients are told, so that the line is there by the
    // time any of them sees the failure.
    if (head_published) {
      spdlog::warn("fetch failed {} after {} bytes in {:.3f}s: {}", url, stream.frontier(),
                   seconds, why);
      stream.Fail(message);
    } else if (ServeStaleOnError(job, entry)) {
      spdlog::warn("revalidation of {} failed ({}): serving the stored entry "
                   "(stale-if-error)", url, why);
    } else {
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

  const Status finished = stream.Finish();
  const double mib = static_cast<double>(stream.frontier()) / (1 << 20);
  if (!finished.ok()) {
    spdlog::warn("fetch failed {}: {}", url, finished.message());
    cache_->Drop(entry);
    return;
  }
  spdlog::info("fetch done {} status {} {} bytes in {:.3f}s ({:.1f} MiB/s){}", url, status,
               stream.frontier(), seconds, seconds > 0 ? mib / seconds : 0.0,
               keep ? "" : ", not kept");
  if (!keep) {
    cache_->Drop(entry);
    return;
  }
  const Status committed = cache_->Complete(entry);
  if (!committed.ok()) spdlog::warn("entry {} not kept: {}", url, committed.message());
}

UpstreamFetcher::Transfer UpstreamFetcher::Send(
    const FetchJob& job, const std::function<bool(const UpstreamResponseHead&)>& on_head,
    const std::function<bool(const char*, std::size_t)>& on_body,
    const UpstreamClient::PipeHandler& on_pipe) {
  UpstreamOrigin origin;
  origin.scheme = job.origin.scheme;
  origin.host = job.origin.host;
  origin.port = job.origin.port;
  origin.tls = job.tls;
  UpstreamClient client(std::move(origin), &pool_,
                        {options_.connect_timeout, options_.read_timeout});
  Transfer transfer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      transfer.not_started = true;
      return transfer;
    }
    stoppers_.emplace(&client, [&client] { client.Stop(); });
  }
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    stoppers_.erase(&client);
  }
  transfer.ok = result.ok();
  transfer.why = result.message;
  transfer.timed_out = result.error == UpstreamClient::Error::kConnectTimeout ||
                       result.error == UpstreamClient::Error::kReadTimeout;
  return transfer;
}

bool UpstreamFetcher::stopping() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
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
