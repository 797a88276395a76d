#include "server/http_server.h"

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

}  // namespace

bool HttpServer::SetListenBacklog(int backlog) {
  const socket_t sock = svr_sock_;
  return sock != INVALID_SOCKET && ::listen(sock, backlog) == 0;
}

bool HttpServer::process_and_close_socket(socket_t sock) {
  using std::chrono::microseconds;
  using std::chrono::seconds;
  ConnectionStream stream(sock, seconds(read_timeout_sec_) + microseconds(read_timeout_usec_),
                          seconds(write_timeout_sec_) + microseconds(write_timeout_usec_));
  ConnectionStream::Scope current(&stream);
  bool ok = false;
  for (std::size_t left = keep_alive_max_count_; left > 0; --left) {
    UseInteractiveCpuSlice();
    const bool request_arrived = stream.WaitForRequest(
        std::chrono::seconds(keep_alive_timeout_sec_),
        [this] { return svr_sock_ != INVALID_SOCKET; });
    if (!request_arrived) break;
    // httplib answers an invalid Range itself (416), where RFC 9110 says to
    // ignore it: it gets the header under another name (see http_headers.h).
    const bool whole_head = stream.RewriteRequestHead(HeadMentionsRange, HideRangeFromHttplib);
    // The last request of a connection is the full path's: it says close.
    if (whole_head && direct_ && left > 1) {
      const auto head = ParseRequestHead(stream.BufferedInput());
      const DirectAnswer answer = head ? direct_(*head, stream) : DirectAnswer::kNotAnswered;
      if (answer != DirectAnswer::kNotAnswered) {
        stream.Consume(head->size);
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
    ok = process_request(stream, /*close_connection=*/left == 1, connection_closed, nullptr);
    ok = stream.Flush() && ok;
    if (!ok || connection_closed) break;
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  // The worker waits for its next connection; it must wake like one.
  UseInteractiveCpuSlice();
  return ok;
}

}  // namespace fanout
