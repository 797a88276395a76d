#include "server/upstream_client.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/header_text.h"

namespace fanout {
namespace {

// Large reads: at 100 MB/s a burst is often hundreds of KiB.
constexpr std::size_t kReadBufferBytes = 256 * 1024;
// How long a connection must stay quiet after a response before it is
// pooled (UpstreamConnection::QuietFor).
constexpr std::chrono::milliseconds kQuietBeforeReuse{1};
// A body with at least this much left goes through the pipe (when asked):
// below it, making the pipe costs more than the copy it saves.
constexpr std::uint64_t kSpliceFrom = 1 << 20;
// The pipe's capacity (Linux's default ceiling for a process that is not
// privileged); a splice moves at most this much.
constexpr int kPipeBytes = 1 << 20;
// Bytes of a streamed request body sent upstream per write.
constexpr std::size_t kRequestBodyChunkBytes = 64 * 1024;
// How long one wait for body-stream bytes lasts before the client looks
// again at whether it was stopped.
constexpr auto kBodyWaitSlice = std::chrono::milliseconds(100);

UpstreamClient::Result Fail(UpstreamClient::Error error, std::string message) {
  return UpstreamClient::Result{error, std::move(message)};
}

// The client's error for a connection's.
UpstreamClient::Result FromConnection(const UpstreamConnection::Result& r) {
  using E = UpstreamConnection::Error;
  using C = UpstreamClient::Error;
  switch (r.error) {
    case E::kNone: return {};
    case E::kConnect: return Fail(C::kConnect, r.message);
    case E::kConnectTimeout: return Fail(C::kConnectTimeout, r.message);
    case E::kWrite: return Fail(C::kWrite, r.message);
    case E::kReadTimeout: return Fail(C::kReadTimeout, r.message);
    case E::kRead: return Fail(C::kRead, r.message);
    case E::kClosed: return Fail(C::kRead, "connection closed");
    case E::kCancelled: return Fail(C::kCancelled, r.message);
  }
  return Fail(C::kRead, r.message);
}

// Framing and connection management are this client's to write.
bool IsClientsHeader(const std::string& name) {
  return EqualsIgnoreCase(name, "Connection") || EqualsIgnoreCase(name, "Keep-Alive") ||
         EqualsIgnoreCase(name, "Content-Length") ||
         EqualsIgnoreCase(name, "Transfer-Encoding");
}

}  // namespace

bool IsIdempotentMethod(const std::string& method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
         method == "DELETE" || method == "TRACE";
}

UpstreamClient::UpstreamClient(UpstreamOrigin origin, UpstreamConnectionPool* pool,
                               Options options)
    : origin_(std::move(origin)), pool_(pool), options_(options) {}

UpstreamClient::~UpstreamClient() {
  for (int fd : pipe_) {
    if (fd >= 0) ::close(fd);
  }
}

void UpstreamClient::TakeBodiesThroughPipe(PipeHandler on_pipe) { on_pipe_ = std::move(on_pipe); }

void UpstreamClient::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  if (active_ != nullptr) active_->Shutdown();
}

std::unique_ptr<UpstreamConnection> UpstreamClient::Open(bool fresh, bool* reused,
                                                         Result* error) {
  *reused = false;
  std::unique_ptr<UpstreamConnection> conn;
  std::shared_ptr<const TlsClientContext> tls;
  if (!fresh) conn = pool_->Take(origin_);
  if (conn) {
    *reused = true;
    ++reused_;
  } else {
    if (origin_.is_tls()) {
      std::string why;
      tls = pool_->TlsContext(origin_.tls, &why);
      if (!tls) {
        *error = Fail(Error::kConnect, why);
        return nullptr;
      }
    }
    conn = std::make_unique<UpstreamConnection>();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) {
      *error = Fail(Error::kCancelled, "fanoutd is stopping");
      return nullptr;
    }
    active_ = conn.get();
  }
  if (!*reused) {
    const auto connect_started = std::chrono::steady_clock::now();
    const UpstreamConnection::Result r = conn->Connect(origin_, tls.get(),
                                                       options_.connect_timeout,
                                                       options_.read_timeout);
    if (!r.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        active_ = nullptr;
      }
      *error = FromConnection(r);
      return nullptr;
    }
    ++connected_;
    if (options_.connect_times != nullptr) {
      options_.connect_times->Observe(std::chrono::steady_clock::now() - connect_started);
    }
  }
  return conn;
}

UpstreamClient::Result UpstreamClient::Send(const Request& request, const HeadHandler& on_head,
                                            const BodyHandler& on_body,
                                            const InterimHandler& on_interim) {
  buffer_.resize(kReadBufferBytes);
  bool fresh = false;
  for (;;) {
    bool reused = false;
    Result error;
    std::unique_ptr<UpstreamConnection> conn = Open(fresh, &reused, &error);
    if (!conn) return error;
    const Attempt attempt = Exchange(*conn, request, on_head, on_body, on_interim);
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_ = nullptr;
    }
    // Pooled only if the origin sent nothing past the response for a
    // moment: the client has its whole answer already, so the wait delays
    // no one, and junk past the end is never read as another response.
    if (attempt.result.ok() && attempt.reusable && !stopped() && conn->QuietFor(kQuietBeforeReuse)) {
      pool_->GiveBack(origin_, std::move(conn));
    }
    conn.reset();  // closed: failed, or not reusable
    const Error e = attempt.result.error;
    const bool connection_failed = e == Error::kWrite || e == Error::kRead;
    if (reused && connection_failed && !attempt.response_started && !attempt.body_consumed &&
        IsIdempotentMethod(request.method) && !stopped()) {
      // The upstream closed the idle connection as it was reused: once
      // more, on a connection of its own.
      fresh = true;
      continue;
    }
    return attempt.result;
  }
}

UpstreamClient::Attempt UpstreamClient::Exchange(UpstreamConnection& conn,
                                                 const Request& request,
                                                 const HeadHandler& on_head,
                                                 const BodyHandler& on_body,
                                                 const InterimHandler& on_interim) {
  Attempt attempt;
  std::string head = request.method + " " + request.target + " HTTP/1.1\r\n";
  bool has_host = false;
  for (const auto& [name, value] : request.headers) {
    if (IsClientsHeader(name)) continue;
    has_host = has_host || EqualsIgnoreCase(name, "Host");
    head.append(name).append(": ").append(value).append("\r\n");
  }
  if (!has_host) {
    const std::string& host = origin_.host;
    const bool v6 = host.find(':') != std::string::npos;
    head.append("Host: ").append(v6 ? "[" + host + "]" : host);
    if (origin_.port != (origin_.is_tls() ? 443 : 80)) {
      head.append(":").append(std::to_string(origin_.port));
    }
    head.append("\r\n");
  }
  const bool streamed = request.body_stream != nullptr;
  if (streamed && !request.body_length) {
    head.append("Transfer-Encoding: chunked\r\n");
  } else if (streamed) {
    head.append("Content-Length: ").append(std::to_string(*request.body_length)).append("\r\n");
  } else if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
             request.method == "PATCH") {
    head.append("Content-Length: ").append(std::to_string(request.body.size())).append("\r\n");
  }
  head.append("\r\n");
  // A small body goes in the head's write.
  const bool body_with_head = !streamed && request.body.size() <= kRequestBodyChunkBytes;
  if (body_with_head) head.append(request.body);
  if (UpstreamConnection::Result r = conn.Write(head); !r.ok()) {
    attempt.result = FromConnection(r);
    return attempt;
  }
  if (!streamed && !body_with_head) {
    if (UpstreamConnection::Result r = conn.Write(request.body); !r.ok()) {
      attempt.result = FromConnection(r);
      return attempt;
    }
  }
  if (streamed) {
    attempt.result = SendBodyStream(conn, request, &attempt.body_consumed);
    if (!attempt.result.ok()) return attempt;
  }

  std::size_t have = 0;
  for (;;) {
    ParsedResponseHead parsed = ParseResponseHead(std::string_view(buffer_.data(), have));
    if (parsed.state == ParsedResponseHead::State::kMalformed) {
      attempt.result = Fail(Error::kMalformed, "malformed response head: " + parsed.problem);
      return attempt;
    }
    if (parsed.state == ParsedResponseHead::State::kIncomplete) {
      if (have == buffer_.size()) {
        attempt.result = Fail(Error::kMalformed, "response head too large");
        return attempt;
      }
      std::size_t got = 0;
      attempt.result = ReadMore(conn, have, &got);
      if (!attempt.result.ok()) return attempt;
      if (got == 0) {
        attempt.result = Fail(Error::kRead, "connection closed before the response head");
        return attempt;
      }
      attempt.response_started = true;
      have += got;
      continue;
    }
    if (parsed.head.status < 200 && parsed.head.status != 101) {
      // An interim response (100, 103): the final one follows.
      if (on_interim) on_interim(parsed.head);
      std::memmove(buffer_.data(), buffer_.data() + parsed.size, have - parsed.size);
      have -= parsed.size;
      continue;
    }
    std::string problem;
    const auto framing = FramingOf(parsed.head, request.method, &problem);
    if (!framing) {
      attempt.result = Fail(Error::kMalformed, "malformed response: " + problem);
      return attempt;
    }
    // Judged on the head as received (before its Content-Length may go).
    const bool allows_reuse = ResponseAllowsReuse(parsed.head);
    if (framing->kind != BodyFraming::Kind::kLength) {
      // The length is the transfer's, not the representation's, unless
      // the body is delimited by it.
      std::erase_if(parsed.head.headers,
                    [](const auto& h) { return EqualsIgnoreCase(h.first, "Content-Length"); });
    }
    if (!on_head(parsed.head)) {
      attempt.result = Fail(Error::kCancelled, "response not wanted");
      return attempt;
    }
    bool leftover = false;
    attempt.result = ReadBody(conn, *framing, parsed.size, have, on_body, &leftover);
    attempt.reusable = attempt.result.ok() && !leftover &&
                       framing->kind != BodyFraming::Kind::kUntilClose && allows_reuse;
    return attempt;
  }
}

UpstreamClient::Result UpstreamClient::SendBodyStream(UpstreamConnection& conn,
                                                      const Request& request, bool* consumed) {
  BytePipe& pipe = *request.body_stream;
  const bool chunked = !request.body_length;
  std::vector<char> chunk(kRequestBodyChunkBytes);
  std::uint64_t sent = 0;
  for (;;) {
    // Waits in slices, so that Stop() is seen within one.
    const auto stall_deadline = std::chrono::steady_clock::now() + options_.read_timeout;
    BytePipe::ReadResult r;
    for (;;) {
      if (stopped()) return Fail(Error::kCancelled, "fanoutd is stopping");
      const auto now = std::chrono::steady_clock::now();
      r = pipe.Read(chunk.data(), chunk.size(), std::min(stall_deadline, now + kBodyWaitSlice));
      if (r.status.code() != Status::Code::kDeadlineExceeded) break;
      if (std::chrono::steady_clock::now() >= stall_deadline) {
        return Fail(Error::kBodySource, "the request body stalled");
      }
    }
    if (r.status.code() == Status::Code::kEndOfStream) break;
    if (!r.status.ok()) {
      return Fail(Error::kBodySource, "the request body broke off: " + r.status.message());
    }
    *consumed = true;
    if (!chunked && sent + r.bytes > *request.body_length) {
      return Fail(Error::kBodySource, "the request body is longer than its Content-Length");
    }
    sent += r.bytes;
    std::string_view bytes(chunk.data(), r.bytes);
    std::string framed;
    if (chunked) {
      char size[32];
      const int n = std::snprintf(size, sizeof size, "%zx\r\n", r.bytes);
      framed.reserve(r.bytes + 40);
      framed.append(size, static_cast<std::size_t>(n)).append(bytes).append("\r\n");
      bytes = framed;
    }
    if (UpstreamConnection::Result w = conn.Write(bytes); !w.ok()) return FromConnection(w);
  }
  if (chunked) {
    if (UpstreamConnection::Result w = conn.Write("0\r\n\r\n"); !w.ok()) return FromConnection(w);
  } else if (sent != *request.body_length) {
    return Fail(Error::kBodySource, "the request body ended after " + std::to_string(sent) +
                                        " of " + std::to_string(*request.body_length) + " bytes");
  }
  return {};
}

UpstreamClient::Result UpstreamClient::ReadMore(UpstreamConnection& conn, std::size_t kept,
                                                std::size_t* got) {
  *got = 0;
  const UpstreamConnection::Result r =
      conn.Read(buffer_.data() + kept, buffer_.size() - kept, got);
  if (r.error == UpstreamConnection::Error::kClosed) return {};
  return FromConnection(r);
}

UpstreamClient::Result UpstreamClient::ReadBody(UpstreamConnection& conn,
                                                const BodyFraming& framing, std::size_t start,
                                                std::size_t end, const BodyHandler& on_body,
                                                bool* leftover) {
  using Kind = BodyFraming::Kind;
  const Result cancelled = Fail(Error::kCancelled, "body not wanted");
  *leftover = false;
  if (framing.kind == Kind::kNone) {
    *leftover = end > start;
    return {};
  }
  std::uint64_t received = 0;
  ChunkedDecoder chunks;
  std::vector<std::string_view> pieces;
  // Hands over buffer_[from, to); true while the body goes on.
  auto deliver = [&](std::size_t from, std::size_t to, Result* outcome) -> bool {
    const std::string_view bytes(buffer_.data() + from, to - from);
    switch (framing.kind) {
      case Kind::kLength: {
        const auto n = static_cast<std::size_t>(
            std::min<std::uint64_t>(bytes.size(), framing.length - received));
        received += n;
        *leftover = n < bytes.size();
        if (n > 0 && !on_body(bytes.data(), n)) *outcome = cancelled;
        else *outcome = {};
        return outcome->ok() && received < framing.length;
      }
      case Kind::kChunked: {
        pieces.clear();
        std::size_t used = 0;
        const auto state = chunks.Feed(bytes, &pieces, &used);
        *outcome = {};
        for (std::string_view piece : pieces) {
          if (!on_body(piece.data(), piece.size())) {
            *outcome = cancelled;
            return false;
          }
        }
        if (state == ChunkedDecoder::Result::kMalformed) {
          *outcome = Fail(Error::kMalformed, "malformed chunked body");
        }
        *leftover = state == ChunkedDecoder::Result::kDone && used < bytes.size();
        return state == ChunkedDecoder::Result::kMore;
      }
      default:
        *outcome = (bytes.empty() || on_body(bytes.data(), bytes.size())) ? Result{} : cancelled;
        return outcome->ok();
    }
  };
  Result outcome;
  bool more = framing.kind == Kind::kLength && framing.length == 0
                  ? false
                  : deliver(start, end, &outcome);
  if (framing.kind == Kind::kLength && framing.length == 0) *leftover = end > start;
  if (more && framing.kind == Kind::kLength && on_pipe_ && conn.can_splice() &&
      framing.length - received >= kSpliceFrom) {
    return SpliceBody(conn, framing.length - received, &received);
  }
  while (more) {
    std::size_t got = 0;
    if (Result r = ReadMore(conn, 0, &got); !r.ok()) return r;
    if (got == 0) {
      if (framing.kind == Kind::kUntilClose) return {};
      return Fail(Error::kRead, framing.kind == Kind::kLength
                                    ? "connection closed after " + std::to_string(received) +
                                          " of " + std::to_string(framing.length) + " bytes"
                                    : "connection closed inside the chunked body");
    }
    more = deliver(0, got, &outcome);
  }
  return outcome;
}

UpstreamClient::Result UpstreamClient::SpliceBody(UpstreamConnection& conn, std::uint64_t left,
                                                  std::uint64_t* received) {
  const std::uint64_t length = *received + left;
  if (pipe_[0] < 0) {
    if (::pipe2(pipe_, O_CLOEXEC) != 0) {
      return Fail(Error::kRead, std::string("no pipe for the body: ") + std::strerror(errno));
    }
    // Smaller if refused: the pipe then moves less at a time.
    (void)::fcntl(pipe_[1], F_SETPIPE_SZ, kPipeBytes);
  }
  while (left > 0) {
    std::size_t got = 0;
    const UpstreamConnection::Result r = conn.SpliceTo(
        pipe_[1], static_cast<std::size_t>(std::min<std::uint64_t>(left, kPipeBytes)), &got);
    if (r.error == UpstreamConnection::Error::kClosed) {
      return Fail(Error::kRead, "connection closed after " + std::to_string(*received) + " of " +
                                    std::to_string(length) + " bytes");
    }
    if (!r.ok()) return FromConnection(r);
    *received += got;
    left -= got;
    if (!on_pipe_(pipe_[0], got)) {
      // Whatever the handler left in the pipe must not reach the next body.
      for (int& fd : pipe_) {
        ::close(fd);
        fd = -1;
      }
      return Fail(Error::kCancelled, "body not wanted");
    }
  }
  return {};
}

}  // namespace fanout
