#include "server/http_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// The worker waits for its next connection; it must wake like one.
bool EndConnectionThread(bool ok) {
  UseInteractiveCpuSlice();
  return ok;
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

bool HttpServer::process_and_close_socket(socket_t sock) {
  return ServeConnection(NewStream(sock), keep_alive_max_count_, /*fresh=*/true);
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
    const bool whole_head = stream.RewriteRequestHead(HeadMentionsRange, HideRangeFromHttplib);
    // The last request of a connection is the full path's: it says close.
    if (whole_head && direct_ && left > 1) {
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
    if (whole_head && FieldsHoldPercent(stream.BufferedInput())) {
      if (auto fields = RawHeaderFields(stream.BufferedInput())) raw = std::move(*fields);
    }
    stream.set_raw_fields(std::move(raw));
    bool connection_closed = false;
    stream.set_close_after_response(false);
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
