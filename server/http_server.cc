#include "server/http_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "server/connection_stream.h"
#include "server/cpu_slice.h"
#include "server/http_headers.h"

namespace fanout {

namespace {

// Whether a '%' stands in the header fields of the request head at the
// start of `bytes` (the request line aside): only then can httplib's
// decoding alter a value.
bool FieldsHoldPercent(std::string_view bytes) {
  const std::size_t fields = bytes.find('\n');
  const std::size_t end = bytes.find("\r\n\r\n");
  if (fields == std::string_view::npos || end == std::string_view::npos || end < fields) {
    return false;
  }
  return bytes.substr(fields, end - fields).find('%') != std::string_view::npos;
}

using Clock = std::chrono::steady_clock;

// A connection whose request head has been arriving for this long may be
// closed to make room for a new one (CloseSlowestHead): a real client
// sends its head in one go.
constexpr auto kSlowHead = std::chrono::milliseconds(500);

// The worker waits for its next connection; it must wake like one.
bool EndConnectionThread(bool ok) {
  UseInteractiveCpuSlice();
  return ok;
}

// The reason phrase of the statuses Refuse sends.
const char* ReasonPhrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

// Answers `status` with a plain-text `reason` and logs it; the caller
// closes the connection.
void Refuse(ConnectionStream& stream, int status, const std::string& reason) {
  const std::string body = "fanoutd: " + reason + "\n";
  const std::string response = "HTTP/1.1 " + std::to_string(status) + " " +
                               ReasonPhrase(status) +
                               "\r\nContent-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: " + std::to_string(body.size()) +
                               "\r\nConnection: close\r\n\r\n" + body;
  std::string ip;
  int port = 0;
  stream.get_remote_ip_and_port(ip, port);
  spdlog::info("refused a request from {}: {} {}", ip, status, reason);
  (void)stream.write(response.data(), response.size());
  (void)stream.Flush();
}

// Answers a request whose head did not arrive whole (or says nothing if
// the client is gone).
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
    case HeadRead::kBareLf:
      Refuse(stream, 400, "request head lines must end with CRLF");
      return;
    case HeadRead::kWhole:
    case HeadRead::kClosed:
      return;
  }
}

}  // namespace

bool HttpServer::SetListenBacklog(int backlog) {
  const socket_t sock = svr_sock_;
  return sock != INVALID_SOCKET && ::listen(sock, backlog) == 0;
}

bool HttpServer::DeferAcceptUntilData(int seconds) {
  const socket_t sock = svr_sock_;
  return sock != INVALID_SOCKET &&
         ::setsockopt(sock, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof seconds) == 0;
}

void HttpServer::UseConnectionPool(std::size_t workers, std::size_t max_overflow,
                                   BodySender* sender) {
  sender_ = sender;
  const std::atomic<std::size_t>* handed_off = sender ? sender->active_counter() : nullptr;
  new_task_queue = [this, workers, max_overflow, handed_off] {
    auto* pool = new ConnectionPool(workers, max_overflow, handed_off);
    pool_.store(pool);
    return pool;
  };
}

std::shared_ptr<ConnectionStream> HttpServer::NewStream(socket_t sock) const {
  using std::chrono::microseconds;
  using std::chrono::seconds;
  return std::make_shared<ConnectionStream>(
      sock, seconds(read_timeout_sec_) + microseconds(read_timeout_usec_),
      seconds(write_timeout_sec_) + microseconds(write_timeout_usec_));
}

void HttpServer::CloseConnection(ConnectionStream& stream) {
  ::shutdown(stream.fd(), SHUT_RDWR);
  ::close(stream.fd());
}

void HttpServer::Dispatch(std::shared_ptr<ConnectionStream> stream, std::size_t requests_left) {
  ConnectionPool* pool = pool_.load();
  if (pool == nullptr) {
    CloseConnection(*stream);
    return;
  }
  pool->enqueue([this, stream = std::move(stream), requests_left] {
    ServeConnection(stream, requests_left, /*fresh=*/false);
  });
}

bool HttpServer::Park(const std::shared_ptr<ConnectionStream>& stream,
                      std::size_t requests_left) {
  if (sender_ == nullptr || requests_left == 0) return false;
  auto job = std::make_unique<BodySender::Job>();
  job->fd = stream->fd();
  job->idle_timeout = std::chrono::seconds(keep_alive_timeout_sec_);
  job->on_readable = [this, stream, requests_left](int) { OnRequest(stream, requests_left); };
  return sender_->Submit(job);
}

void HttpServer::OnRequest(const std::shared_ptr<ConnectionStream>& stream,
                           std::size_t requests_left) {
  ConnectionStream& s = *stream;
  if (!s.ReadAvailable()) {
    // The client closed, or the wake-up was for nothing.
    if (s.peer_closed() || s.read_failed() || !Park(stream, requests_left)) CloseConnection(s);
    return;
  }
  // A plain hit, alone in what arrived, is answered here if the answer
  // leaves at once; anything else goes to a connection thread.
  if (direct_ && requests_left > 1 && svr_sock_ != INVALID_SOCKET) {
    const auto head = ParseRequestHead(s.BufferedInput());
    if (head && head->size == s.BufferedInput().size()) {
      s.set_on_event_loop(true);
      const DirectAnswer answer = direct_(*head, s);
      if (answer != DirectAnswer::kNotAnswered) {
        s.Consume(head->size);
        const bool close = answer == DirectAnswer::kAnsweredThenClose;
        switch (s.FlushWithoutBlocking()) {
          case ConnectionStream::FlushResult::kFailed:
            CloseConnection(s);
            return;
          case ConnectionStream::FlushResult::kWouldBlock:
            // A thread sends the rest (and closes, if asked to).
            Dispatch(stream, close ? 0 : requests_left - 1);
            return;
          case ConnectionStream::FlushResult::kAllSent:
            if (close || !Park(stream, requests_left - 1)) CloseConnection(s);
            return;
        }
      }
    }
  }
  Dispatch(stream, requests_left);
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
  if (keep_open && requests_left > 0) {
    // The next request is waited for in a loop, like any idle connection's.
    job->resume = [this, stream, requests_left](int) {
      if (!Park(stream, requests_left)) CloseConnection(*stream);
    };
  }
  if (sender_ == nullptr || !sender_->Submit(job)) {
    if (job->on_end) job->on_end(Status::Cancelled(), 0);
    return HandOffResult::kFailed;
  }
  return HandOffResult::kHandedOff;
}

// Registers a connection in reading_heads_ for the scope's life.
class HttpServer::ReadingHead {
 public:
  ReadingHead(HttpServer* server, ConnectionStream* stream) : server_(server), stream_(stream) {
    std::lock_guard<std::mutex> lock(server_->heads_mu_);
    server_->reading_heads_.emplace(stream_, Clock::now());
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
  std::string ip;
  int port = 0;
  slowest->first->get_remote_ip_and_port(ip, port);
  spdlog::info("closed a connection from {} still sending its request head after {} ms: "
               "every connection slot was taken",
               ip, std::chrono::duration_cast<std::chrono::milliseconds>(
                       Clock::now() - slowest->second).count());
  ::shutdown(slowest->first->fd(), SHUT_RDWR);
  reading_heads_.erase(slowest);
  return true;
}

bool HttpServer::process_and_close_socket(socket_t sock) {
  std::shared_ptr<ConnectionStream> stream = NewStream(sock);
  if (client_limit_ != nullptr && client_limit_->per_client() > 0) {
    std::string ip;
    int port = 0;
    stream->get_remote_ip_and_port(ip, port);
    auto slot = client_limit_->Acquire(ip);
    if (!slot) {
      Refuse(*stream, 503,
             "too many connections from " + ip + " (max_connections_per_client is " +
                 std::to_string(client_limit_->per_client()) + ")");
      CloseConnection(*stream);
      return EndConnectionThread(false);
    }
    stream->HoldClientSlot(std::move(slot));
  }
  // No room for this connection: one still dawdling over its request head
  // gives way rather than this one being turned away.
  if (ConnectionPool::IsOverflowConnection() && CloseSlowestHead()) {
    ConnectionPool::TreatAsWorkerConnection();
  }
  return ServeConnection(stream, keep_alive_max_count_, /*fresh=*/true);
}

bool HttpServer::ServeConnection(const std::shared_ptr<ConnectionStream>& stream_ptr,
                                 std::size_t requests_left, bool fresh) {
  ConnectionStream& stream = *stream_ptr;
  ConnectionStream::Scope current(&stream);
  stream.set_on_event_loop(false);
  // What an event loop could not send at once goes first.
  bool ok = stream.Flush();
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
        return EndConnectionThread(true);
      }
      const bool request_arrived = stream.WaitForRequest(
          std::chrono::seconds(keep_alive_timeout_sec_),
          [this] { return svr_sock_ != INVALID_SOCKET; });
      if (!request_arrived) break;
    }
    // httplib answers an invalid Range itself (416), where RFC 9110 says to
    // ignore it: it gets the header under another name (see http_headers.h).
    auto head_read = ConnectionStream::HeadRead::kWhole;
    {
      std::optional<ReadingHead> reading;
      if (stream.BufferedInput().find("\r\n\r\n") == std::string_view::npos) {
        reading.emplace(this, &stream);
      }
      head_read = stream.ReadRequestHead(Clock::now() + head_timeout_, HeadMentionsRange,
                                         HideRangeFromHttplib);
    }
    if (head_read != ConnectionStream::HeadRead::kWhole) {
      RefuseIncompleteHead(stream, head_read);
      ok = false;
      break;
    }
    if (const HeadProblem problem = CheckRequestHead(stream.BufferedInput()); problem.status) {
      Refuse(stream, problem.status, problem.reason);
      ok = false;
      break;
    }
    // The last request of a connection is the full path's: it says close.
    if (direct_ && left > 1) {
      const auto head = ParseRequestHead(stream.BufferedInput());
      const DirectAnswer answer = head ? direct_(*head, stream) : DirectAnswer::kNotAnswered;
      if (answer != DirectAnswer::kNotAnswered) {
        stream.Consume(head->size);
        const HandOffResult handed = HandOff(
            stream_ptr, answer == DirectAnswer::kAnsweredKeepOpen, left - 1);
        if (handed == HandOffResult::kHandedOff) return EndConnectionThread(true);
        if (handed == HandOffResult::kFailed) break;
        ok = stream.Flush();
        if (!ok || answer == DirectAnswer::kAnsweredThenClose) break;
        continue;
      }
    }
    // httplib percent-decodes every header value it parses; where that
    // changes something, the raw fields are kept for the handlers to
    // restore (RestoreRawHeaderValues).
    std::vector<std::pair<std::string, std::string>> raw;
    if (FieldsHoldPercent(stream.BufferedInput())) {
      if (auto fields = RawHeaderFields(stream.BufferedInput())) raw = std::move(*fields);
    }
    stream.set_raw_fields(std::move(raw));
    bool connection_closed = false;
    // Closed after the response unless a handler saw the request (the
    // pre-routing handler clears it): httplib answers what it cannot parse
    // with a 400 of its own and would read on.
    stream.set_close_after_response(true);
    ok = process_request(stream, /*close_connection=*/left == 1, connection_closed, nullptr);
    connection_closed = connection_closed || stream.close_after_response();
    // A provider that handed its body off ended httplib's write there
    // (process_request says false); the sender finishes the response.
    const HandOffResult handed = HandOff(stream_ptr, !connection_closed, left - 1);
    if (handed == HandOffResult::kHandedOff) return EndConnectionThread(true);
    if (handed == HandOffResult::kFailed) break;
    ok = stream.Flush() && ok;
    if (!ok || connection_closed) break;
  }
  CloseConnection(stream);
  return EndConnectionThread(ok);
}

}  // namespace fanout
