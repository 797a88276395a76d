// RequestBody: reads one request's body off its connection, by its
// Content-Length or chunked (RFC 9112 §6, §7.1; trailers read and
// dropped), for the handler that passes it upstream.
//
// A client that sent "Expect: 100-continue" is told "100 Continue" when the
// body is first read, not before: a request refused without reading its
// body (404, 413) never invites it. A chunked body past `max_bytes`, bad
// chunk framing, or a client that closes or stalls (the connection's read
// timeout) ends the body with an error; the connection must then close.
// After the response, the connection loop asks finished(): a body left
// unread (any method) is read and discarded if it is small and already on
// its way, otherwise the connection closes — its bytes must never be taken
// for the next request.
//
// Thread-safety: used by the connection's thread only.

#ifndef FANOUT_SERVER_HTTP1_REQUEST_BODY_H_
#define FANOUT_SERVER_HTTP1_REQUEST_BODY_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "server/http1/request.h"
#include "server/upstream_response_parser.h"

namespace fanout {

class ConnectionStream;

class RequestBody {
 public:
  enum class Error { kNone, kTooLarge, kMalformed, kBroken };

  RequestBody(ConnectionStream* stream, const Request& request, bool expect_continue,
              std::uint64_t max_bytes);

  // Up to n next bytes of the body into buf: > 0 bytes, 0 at its end, -1
  // on an error (error() says which).
  long Read(char* buf, std::size_t n);

  bool finished() const { return finished_; }
  Error error() const { return error_; }
  std::uint64_t bytes_read() const { return read_; }

  // Reads and drops the rest of the body if it takes at most `max` more
  // bytes; true if the body is then finished.
  bool Discard(std::uint64_t max);

 private:
  long Fail(Error error) {
    error_ = error;
    return -1;
  }
  // Makes sure some input is buffered; false if the client closed or stalled.
  bool Input();
  long ReadChunked(char* buf, std::size_t n);

  ConnectionStream* const stream_;
  const RequestHead::Framing framing_;
  const std::uint64_t max_bytes_;
  bool continue_owed_;
  std::uint64_t remaining_ = 0;  // kLength: bytes still to read
  std::uint64_t read_ = 0;
  bool finished_ = false;
  Error error_ = Error::kNone;
  ChunkedDecoder decoder_;
  std::vector<std::string_view> pieces_;  // scratch for the decoder
};

}  // namespace fanout

#endif  // FANOUT_SERVER_HTTP1_REQUEST_BODY_H_
