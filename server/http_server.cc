#include "server/http_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <spdlog/spdlog.h>

#include "server/cpu_slice.h"
#include "server/http1/response_writer.h"

namespace fanout {

namespace {

using Clock = std::chrono::steady_clock;

// A connection whose request head has been arriving for this long may be
// closed to make room for a new one (CloseSlowestHead): a real client
// sends its head in one go.
constexpr auto kSlowHead = std::chrono::milliseconds(500);

// A request body the handler did not read (a GET's, an upload refused) is
// read and dropped if it is at most this long; a longer one closes the
// connection instead.
constexpr std::uint64_t kDiscardBodyBytes = 64 * 1024;

// After an error answer, how long and how many bytes a client still sending
// is read for before its connection closes (LingeringClose).
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::uint64_t kLingerBytes = 64ull << 20;

// How often the accept loop looks at whether the server is stopping.
constexpr int kAcceptPollMs = 100;

// The worker waits for its next connection; it must wake like one.
void EndConnectionThread() { UseInteractiveCpuSlice(); }

// Whether a request may be offered to the direct path: a path or an
// absolute URL (a proxy client's), no body.
bool MayGoDirect(const RequestHead& head) {
  return (head.form == RequestHead::TargetForm::kOrigin ||
          head.form == RequestHead::TargetForm::kAbsolute) &&
         !head.has_body();
}

// Answers `status` with a plain-text `reason` and logs it; the caller
// closes the connection (every error of the HTTP layer is the
// connection's last answer).
void Refuse(ConnectionStream& stream, int status, const std::string& reason,
            HeaderList extra = {}) {
  Response res;
  res.headers = std::move(extra);
  res.SetText(status, "fanoutd: " + reason + "\n");
  spdlog::info("refused a request from {}: {} {}", stream.RemoteAddress(), status, reason);
  (void)SendResponse(res, stream, ConnectionAfter::kClose, SendContext{});
  (void)stream.Flush();
}

// Answers a request whose head could not be read whole.
void RefuseIncompleteHead(ConnectionStream& stream, ConnectionStream::HeadRead read) {
  using HeadRead = ConnectionStream::HeadRead;
  switch (read) {
    case HeadRead::kTooLarge:
      Refuse(stream, 431,
             "request head larger than " +
                 std::to_string(ConnectionStream::kMaxRequestHead / 1024) + " KiB");
      return;
    case HeadRead::kTimedOut:
      Refuse(stream, 408, "request head not received in time");
      return;
    case HeadRead::kParsed:
    case HeadRead::kClosed:
      return;
  }
}

}  // namespace

HttpServer::HttpServer(Options options, Handler handler, DirectPath direct)
    : options_(std::move(options)), handler_(std::move(handler)), direct_(std::move(direct)) {}

HttpServer::~HttpServer() {
  Stop();
  if (pool_) pool_->shutdown();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

Status HttpServer::Bind() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(options_.port);
  const std::string where = options_.host + ":" + port;
  if (const int rc = ::getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Status::IOError("cannot listen on " + where + ": " + ::gai_strerror(rc));
  }
  std::string why = "no address";
  for (addrinfo* a = found; a != nullptr && listen_fd_ < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, options_.backlog) != 0) {
      why = std::strerror(errno);
      ::close(fd);
      continue;
    }
    listen_fd_ = fd;
  }
  ::freeaddrinfo(found);
  if (listen_fd_ < 0) return Status::IOError("cannot listen on " + where + ": " + why);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  const int defer = options_.defer_accept_sec;
  if (::setsockopt(listen_fd_, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer) != 0) {
    spdlog::warn("cannot defer accepting connections until their request arrives: {}",
                 std::strerror(errno));
  }
  const std::atomic<std::size_t>* handed_off =
      options_.send.sender ? options_.send.sender->active_counter() : nullptr;
  pool_ = std::make_unique<ConnectionPool>(options_.workers, options_.max_overflow, handed_off);
  return Status::Ok();
}

bool HttpServer::Run() {
  if (listen_fd_ < 0) return false;
  while (!stopping()) {
    if (draining()) {
      // Closed, not just left alone: connections queued in it would wait
      // for an accept that never comes; refused, clients try elsewhere.
      if (listen_fd_ >= 0) {
        ::close(listen_fd_);
        listen_fd_ = -1;
      }
      ::poll(nullptr, 0, kAcceptPollMs);
      continue;
    }
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, kAcceptPollMs) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        spdlog::warn("cannot accept a connection: {}", std::strerror(errno));
        ::poll(nullptr, 0, 10);  // let connections end before trying again
      }
      continue;
    }
    Accept(fd);
  }
  // Connections still open see the server stopping and end.
  pool_->shutdown();
  return true;
}

void HttpServer::Stop() { stopping_.store(true); }

void HttpServer::Drain() { draining_.store(true); }

std::size_t HttpServer::InFlight() const {
  std::size_t n = pool_ ? pool_->busy_workers() : 0;
  if (options_.send.sender != nullptr) n += options_.send.sender->active();
  return n;
}

void HttpServer::Accept(int fd) {
  const int yes = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
  const auto accepted = Clock::now();
  pool_->enqueue([this, fd, accepted] {
    std::shared_ptr<ConnectionStream> stream = NewStream(fd);
    if (ClientLimit* limit = options_.client_limit; limit != nullptr && limit->per_client() > 0) {
      const std::string ip = stream->RemoteAddress();
      auto slot = limit->Acquire(ip);
      if (!slot) {
        Refuse(*stream, 503,
               "too many connections from " + ip + " (max_connections_per_client is " +
                   std::to_string(limit->per_client()) + ")");
        CloseConnection(*stream);
        EndConnectionThread();
        return;
      }
      stream->HoldClientSlot(std::move(slot));
    }
    // No room for this connection: one still dawdling over its request
    // head gives way rather than this one being turned away.
    if (ConnectionPool::IsOverflowConnection() && CloseSlowestHead()) {
      ConnectionPool::TreatAsWorkerConnection();
    }
    ServeConnection(stream, options_.keep_alive_max_requests, /*fresh=*/true, accepted);
  });
}

std::shared_ptr<ConnectionStream> HttpServer::NewStream(int fd) const {
  open_connections_->fetch_add(1, std::memory_order_relaxed);
  return std::shared_ptr<ConnectionStream>(
      new ConnectionStream(fd, options_.read_timeout, options_.write_timeout),
      [open = open_connections_](ConnectionStream* stream) {
        delete stream;
        open->fetch_sub(1, std::memory_order_relaxed);
      });
}

void HttpServer::CloseConnection(ConnectionStream& stream) {
  ::shutdown(stream.fd(), SHUT_RDWR);
  ::close(stream.fd());
}

void HttpServer::LingeringClose(ConnectionStream& stream) {
  // A client still sending (a body refused with 413, bytes after a bad
  // head) would get a reset for them if the socket closed now, and could
  // lose the answer before reading it: the sending side is shut, and what
  // arrives is read and dropped until the client closes, for a while.
  ::shutdown(stream.fd(), SHUT_WR);
  const auto deadline = Clock::now() + kLingerTime;
  std::uint64_t dropped = 0;
  char scratch[16 * 1024];
  while (Clock::now() < deadline && dropped < kLingerBytes && !stopping()) {
    // Each recv waits at most one read slice (the socket's SO_RCVTIMEO).
    const ssize_t n = ::recv(stream.fd(), scratch, sizeof scratch, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
    if (n > 0) dropped += static_cast<std::uint64_t>(n);
  }
  ::close(stream.fd());
}

void HttpServer::Dispatch(std::shared_ptr<ConnectionStream> stream, std::size_t requests_left) {
  if (!pool_ || stopping()) {
    CloseConnection(*stream);
    return;
  }
  pool_->enqueue([this, stream = std::move(stream), requests_left] {
    ServeConnection(stream, requests_left, /*fresh=*/false);
  });
}

bool HttpServer::Park(const std::shared_ptr<ConnectionStream>& stream,
                      std::size_t requests_left) {
  BodySender* sender = options_.send.sender;
  if (sender == nullptr || requests_left == 0 || stopping() || draining()) return false;
  auto parked = std::make_shared<ParkedConnection>();
  parked->stream = stream;
  parked->requests_left = requests_left;
  auto job = std::make_unique<BodySender::Job>();
  job->fd = stream->fd();
  job->idle_timeout = options_.keep_alive_timeout;
  job->on_readable = [this, parked](int) { return OnRequest(*parked); };
  job->resume = [this, parked](int) { Resume(*parked); };
  return sender->Submit(job);
}

bool HttpServer::OnRequest(ParkedConnection& parked) {
  ConnectionStream& s = *parked.stream;
  if (!s.ReadAvailable()) {
    // The client closed, or the wake-up was for nothing.
    parked.close = s.peer_closed() || s.read_failed() || stopping() || draining();
    return !parked.close;
  }
  // A plain hit, alone in what arrived, is answered here if the answer
  // leaves at once; anything else goes to a connection thread.
  if (!direct_ || parked.requests_left <= 1 || stopping()) return false;
  RequestHead head;
  const HeadParse parsed = ParseRequestHead(s.BufferedInput(), &head);
  if (parsed.state != HeadParse::State::kComplete || head.size != s.BufferedInput().size() ||
      !MayGoDirect(head)) {
    return false;
  }
  s.set_on_event_loop(true);
  const DirectAnswer answer = direct_(head, s);
  if (answer == DirectAnswer::kNotAnswered) return false;
  s.Consume(head.size);
  const bool close = answer == DirectAnswer::kAnsweredThenClose;
  --parked.requests_left;
  switch (s.FlushWithoutBlocking()) {
    case ConnectionStream::FlushResult::kFailed:
      parked.close = true;
      return false;
    case ConnectionStream::FlushResult::kWouldBlock:
      // A thread sends the rest (and closes, if asked to).
      if (close) parked.requests_left = 0;
      return false;
    case ConnectionStream::FlushResult::kAllSent:
      parked.close = close;
      return !close;
  }
  return false;
}

void HttpServer::Resume(const ParkedConnection& parked) {
  if (parked.close) {
    CloseConnection(*parked.stream);
  } else {
    Dispatch(parked.stream, parked.requests_left);
  }
}

HttpServer::HandOffResult HttpServer::HandOff(const std::shared_ptr<ConnectionStream>& stream,
                                              bool keep_open, std::size_t requests_left) {
  std::unique_ptr<BodySender::Job> job = stream->TakeHandOff();
  if (!job) return HandOffResult::kNone;
  // The head leaves from here, so the client has its first byte without
  // waiting for a loop's turn.
  if (!stream->Flush()) {
    if (job->on_end) job->on_end(Status::IOError("client went away"), 0);
    return HandOffResult::kFailed;
  }
  job->fd = stream->fd();
  job->owner = stream;
  if (keep_open && requests_left > 0) {
    // The next request is waited for in a loop, like any idle connection's.
    job->resume = [this, stream, requests_left](int) {
      if (!Park(stream, requests_left)) CloseConnection(*stream);
    };
  }
  BodySender* sender = options_.send.sender;
  if (sender == nullptr || !sender->Submit(job)) {
    if (job->on_end) job->on_end(Status::Cancelled(), 0);
    return HandOffResult::kFailed;
  }
  return HandOffResult::kHandedOff;
}

// Registers a connection in reading_heads_ for the scope's life.
class HttpServer::ReadingHead {
 public:
  // `since`: when the head started on its way.
  ReadingHead(HttpServer* server, ConnectionStream* stream, Clock::time_point since)
      : server_(server), stream_(stream) {
    std::lock_guard<std::mutex> lock(server_->heads_mu_);
    server_->reading_heads_.emplace(stream_, since);
  }
  ~ReadingHead() {
    std::lock_guard<std::mutex> lock(server_->heads_mu_);
    server_->reading_heads_.erase(stream_);
  }

 private:
  HttpServer* const server_;
  ConnectionStream* const stream_;
};

bool HttpServer::CloseSlowestHead() {
  std::lock_guard<std::mutex> lock(heads_mu_);
  auto slowest = reading_heads_.end();
  for (auto it = reading_heads_.begin(); it != reading_heads_.end(); ++it) {
    if (slowest == reading_heads_.end() || it->second < slowest->second) slowest = it;
  }
  if (slowest == reading_heads_.end() || Clock::now() - slowest->second < kSlowHead) return false;
  // Its thread sees the connection end and closes it (the stream stays
  // alive while listed: its thread unlists it under heads_mu_ first).
  spdlog::info("closed a connection from {} still sending its request head after {} ms: "
               "every connection slot was taken",
               slowest->first->RemoteAddress(),
               std::chrono::duration_cast<std::chrono::milliseconds>(
                   Clock::now() - slowest->second).count());
  ::shutdown(slowest->first->fd(), SHUT_RDWR);
  reading_heads_.erase(slowest);
  return true;
}

void HttpServer::ServeConnection(const std::shared_ptr<ConnectionStream>& stream_ptr,
                                 std::size_t requests_left, bool fresh,
                                 Clock::time_point accepted) {
  ConnectionStream& stream = *stream_ptr;
  ConnectionStream::Scope current(&stream);
  stream.set_on_event_loop(false);
  // What an event loop could not send at once goes first.
  bool ok = stream.Flush();
  bool linger = false;  // closed after an error answer: the client may still be sending
  for (std::size_t left = requests_left; ok && left > 0; --left) {
    UseInteractiveCpuSlice();
    // A connection whose next request is not here yet waits in a loop, not
    // on this thread. Not a new one: its first request is on its way, and
    // a loop busy sending bodies would answer it later than this thread
    // (nor an overflow connection, answered here).
    const bool first = fresh && left == requests_left;
    if (!stream.ReadAvailable()) {
      if (stream.peer_closed() || stream.read_failed()) break;
      if (!first && !ConnectionPool::IsOverflowConnection() && Park(stream_ptr, left)) {
        EndConnectionThread();
        return;
      }
      const bool request_arrived = stream.WaitForRequest(
          std::chrono::duration_cast<std::chrono::milliseconds>(options_.keep_alive_timeout),
          [this] { return !stopping() && !draining(); });
      if (!request_arrived) break;
    }
    RequestHead head;
    HeadParse parse;
    ConnectionStream::HeadRead read;
    {
      std::optional<ReadingHead> reading;
      if (stream.BufferedInput().find("\r\n\r\n") == std::string_view::npos) {
        // A new connection's first head has been on its way since the
        // accept, even while the connection waited for a thread (many at
        // once, a loaded machine): that time counts as slow too.
        reading.emplace(this, &stream, first ? accepted : Clock::now());
      }
      read = stream.ReadRequestHead(Clock::now() + options_.head_timeout, &head, &parse);
    }
    if (read != ConnectionStream::HeadRead::kParsed) {
      RefuseIncompleteHead(stream, read);
      linger = read != ConnectionStream::HeadRead::kClosed;
      break;
    }
    if (parse.state == HeadParse::State::kError) {
      Refuse(stream, parse.status, parse.reason);
      linger = true;
      break;
    }
    bool handed_on = false;
    ok = ServeRequest(stream_ptr, head, left, &handed_on, &linger);
    if (handed_on) {
      EndConnectionThread();
      return;
    }
  }
  if (linger && !stream.peer_closed()) LingeringClose(stream);
  else CloseConnection(stream);
  EndConnectionThread();
}

bool HttpServer::ServeRequest(const std::shared_ptr<ConnectionStream>& stream_ptr,
                              const RequestHead& head, std::size_t left, bool* handed_on,
                              bool* linger) {
  ConnectionStream& stream = *stream_ptr;
  // Every answer that ends the connection below may leave bytes unread.
  *linger = true;
  if (ConnectionPool::IsOverflowConnection()) {
    Refuse(stream, 503,
           "too many connections (max_connections is " + std::to_string(options_.workers) + ")",
           {{"Retry-After", "1"}});
    return false;
  }
  if (head.form == RequestHead::TargetForm::kAuthority) {
    const std::string authority(head.target);
    if (options_.tunnel && !head.has_body()) {
      stream.Consume(head.size);
      if (options_.tunnel(authority, stream)) {
        *linger = false;
        return false;
      }
    }
    Refuse(stream, 405,
           "CONNECT is not allowed: fanoutd tunnels only when forward_proxy.connect is on",
           {{"Allow", "GET, HEAD, OPTIONS, POST, PUT, DELETE, PATCH"}});
    return false;
  }
  // The last request of a connection is the full path's: it says close.
  if (direct_ && left > 1 && MayGoDirect(head)) {
    *linger = false;
    const DirectAnswer answer = direct_(head, stream);
    if (answer != DirectAnswer::kNotAnswered) {
      stream.Consume(head.size);
      const HandOffResult handed =
          HandOff(stream_ptr, answer == DirectAnswer::kAnsweredKeepOpen, left - 1);
      if (handed == HandOffResult::kHandedOff) {
        *handed_on = true;
        return true;
      }
      if (handed == HandOffResult::kFailed) return false;
      return stream.Flush() && answer != DirectAnswer::kAnsweredThenClose;
    }
  }
  Request request = Request::From(head, stream.RemoteAddress());
  const bool expect_continue = head.expect_continue;
  bool close = left == 1 || head.connection_close || stopping();
  stream.Consume(head.size);  // the head's views are not used past here
  if (request.framing == RequestHead::Framing::kLength &&
      request.content_length > options_.max_request_body) {
    Refuse(stream, 413,
           "request body larger than max_request_body (" +
               std::to_string(options_.max_request_body) + " bytes)");
    return false;
  }
  *linger = false;
  RequestBody body(&stream, request, expect_continue, options_.max_request_body);
  Response res;
  if (request.target == "*") {
    // OPTIONS * asks about the server itself (RFC 9110 §9.3.7).
    res.status = 200;
    res.Set("Allow", "GET, HEAD, OPTIONS, POST, PUT, DELETE, PATCH");
  } else {
    handler_(request, body, res);
  }
  // A HEAD is answered with the head a GET would get, whatever the
  // handler answered (an error's text included), and never a body.
  if (request.method == "HEAD") res.head_only = true;
  // An HTTP/1.0 client knows no chunked coding: a body of unknown length
  // goes to it unframed, and the connection's close ends it.
  if (request.minor_version == 0 && res.entry && !res.length && !res.head_only) {
    res.until_close = true;
    close = true;
  }
  // The rest of a body the handler did not read must not be taken for
  // the next request: read and dropped if small, or the connection closes.
  if (body.error() != RequestBody::Error::kNone ||
      (!body.finished() && !body.Discard(kDiscardBodyBytes))) {
    close = true;
    *linger = true;
  }
  close = close || res.close || draining();
  const ConnectionAfter after = close                        ? ConnectionAfter::kClose
                                : request.minor_version == 0 ? ConnectionAfter::kKeepOpenHttp10
                                                             : ConnectionAfter::kKeepOpen;
  const SendResult sent = SendResponse(res, stream, after, options_.send);
  if (sent == SendResult::kFailed) return false;
  if (sent == SendResult::kHandedOff) {
    const HandOffResult handed = HandOff(stream_ptr, !close, left - 1);
    if (handed == HandOffResult::kHandedOff) {
      *handed_on = true;
      return true;
    }
    return false;
  }
  return stream.Flush() && !close;
}

}  // namespace fanout
