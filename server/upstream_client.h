// UpstreamClient: fanoutd's own HTTP/1.1 client, which makes every
// upstream exchange of a fetch — any method, any target, plain http or
// TLS, with or without a request body — over connections kept in an
// UpstreamConnectionPool.
//
// Why its own: cpp-httplib 0.11.4's client reads bodies in 4 KiB pieces
// (three system calls each), percent-decodes header values, and cannot
// stream a request body while streaming the response; this one reads with
// 256 KiB buffers, keeps every header value byte for byte, and streams both.
//
// One exchange per Send. The request headers go out exactly as given
// (Host added if missing); the client writes the framing itself, so any
// Connection, Keep-Alive, Content-Length or Transfer-Encoding the caller
// passes is left out: a body string goes with Content-Length (also 0 for
// an empty POST, PUT or PATCH), a body stream with Content-Length when its
// length is known, chunked otherwise. HTTP/1.1 connections persist, so no
// Connection header is sent at all.
//
// The response: interim 1xx heads (not 101) go to on_interim, the final
// head to on_head, the decoded body to on_body in pieces; on_head or
// on_body returning false ends the exchange (kCancelled). The connection
// goes back to the pool only if the response was read whole with known
// framing and neither side asked to close; any failure closes it.
//
// Retry: a connection taken from the pool may have been closed by the
// upstream just as it was reused. If such a connection fails before any
// byte of a response arrived, the request is sent once more on a new
// connection — only for idempotent methods (GET, HEAD, OPTIONS, PUT,
// DELETE, TRACE), and never once bytes of a body stream were consumed
// (they cannot be read again).
//
// Thread-safety: Send runs on the calling thread (one Send at a time);
// Stop may be called from any thread, at any time, to abort a Send in
// progress (it then fails with kCancelled) and every later one.

#ifndef FANOUT_SERVER_UPSTREAM_CLIENT_H_
#define FANOUT_SERVER_UPSTREAM_CLIENT_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/byte_pipe.h"
#include "core/response_head.h"
#include "server/histogram.h"
#include "server/upstream_connection.h"
#include "server/upstream_connection_pool.h"
#include "server/upstream_response_parser.h"

namespace fanout {

class UpstreamClient {
 public:
  struct Options {
    std::chrono::milliseconds connect_timeout{5000};
    // Per read and per write; also how long a body stream may stall.
    std::chrono::milliseconds read_timeout{30000};
    // Where the time each new connection took is observed (may be null).
    Histogram* connect_times = nullptr;
  };

  enum class Error {
    kNone,
    kConnect,         // resolving, connecting or the TLS handshake failed
    kConnectTimeout,  // no connection (or handshake) within connect_timeout
    kWrite,           // the request could not be sent
    kBodySource,      // the request body stream failed, ended short or stalled
    kReadTimeout,     // nothing arrived within read_timeout
    kRead,            // the connection broke or closed early
    kMalformed,       // the response is not valid HTTP/1.1
    kCancelled,       // a callback returned false, or Stop()
  };

  struct Result {
    Error error = Error::kNone;
    std::string message;  // for the log and the client's error page
    bool ok() const { return error == Error::kNone; }
  };

  struct Request {
    std::string method = "GET";
    std::string target;  // path and query
    HeaderList headers;
    // A body already read whole, or (if body_stream is set) one read from
    // the pipe while it is sent; body_length: its length if known.
    std::string body;
    std::shared_ptr<BytePipe> body_stream;
    std::optional<std::uint64_t> body_length;
  };

  using InterimHandler = std::function<void(const UpstreamResponseHead&)>;
  using HeadHandler = std::function<bool(const UpstreamResponseHead&)>;
  using BodyHandler = std::function<bool(const char* data, std::size_t n)>;
  // Given the read end of a pipe holding `n` body bytes: must take them all
  // from it, or return false (which ends the exchange as on_body's false).
  using PipeHandler = std::function<bool(int pipe, std::size_t n)>;

  // REQUIRES: `pool` outlives the client.
  UpstreamClient(UpstreamOrigin origin, UpstreamConnectionPool* pool, Options options);
  ~UpstreamClient();
  UpstreamClient(const UpstreamClient&) = delete;
  UpstreamClient& operator=(const UpstreamClient&) = delete;

  Result Send(const Request& request, const HeadHandler& on_head, const BodyHandler& on_body,
              const InterimHandler& on_interim = nullptr);

  // From now on, the rest of a long body of known length on a plain
  // connection goes from the socket into a pipe inside the kernel and is
  // handed to `on_pipe` instead of on_body: a copy through user space
  // fewer for a fetch that writes it to a file (splice(2)). What arrived
  // with the head, TLS and chunked bodies still go to on_body.
  void TakeBodiesThroughPipe(PipeHandler on_pipe);

  void Stop();

  // How many connections this client took from the pool, and how many it
  // made (tests, logs).
  int reused_connections() const { return reused_; }
  int new_connections() const { return connected_; }

 private:
  // What one attempt on one connection came to.
  struct Attempt {
    Result result;
    bool response_started = false;  // a byte of a response arrived
    bool body_consumed = false;     // bytes were taken from the body stream
    bool reusable = false;          // the connection may go back to the pool
  };
  // A connection for the exchange: from the pool unless `fresh`. Null with
  // *error set if none could be made.
  std::unique_ptr<UpstreamConnection> Open(bool fresh, bool* reused, Result* error);
  Attempt Exchange(UpstreamConnection& conn, const Request& request,
                   const HeadHandler& on_head, const BodyHandler& on_body,
                   const InterimHandler& on_interim);
  Result SendBodyStream(UpstreamConnection& conn, const Request& request, bool* consumed);
  // Reads the body framed by `framing`, buffer_[start, end) already read.
  // *leftover: bytes arrived past the body's end.
  Result ReadBody(UpstreamConnection& conn, const BodyFraming& framing, std::size_t start,
                  std::size_t end, const BodyHandler& on_body, bool* leftover);
  // Splices the last `left` bytes of a body of known length to on_pipe_;
  // *received counts them as they go.
  Result SpliceBody(UpstreamConnection& conn, std::uint64_t left, std::uint64_t* received);
  // Reads more bytes into buffer_ after its first `kept`; 0 at a clean end.
  Result ReadMore(UpstreamConnection& conn, std::size_t kept, std::size_t* got);
  bool stopped() const { return stopped_; }

  const UpstreamOrigin origin_;
  UpstreamConnectionPool* const pool_;
  const Options options_;
  std::vector<char> buffer_;
  PipeHandler on_pipe_;
  int pipe_[2] = {-1, -1};  // made at the first splice
  int reused_ = 0;
  int connected_ = 0;

  std::atomic<bool> stopped_{false};
  std::mutex mu_;
  // The connection Send is using, for Stop() to shut down: set and cleared
  // (before the connection is given back or closed) under mu_, so Stop
  // never touches a connection another fetch owns. Guarded by mu_.
  UpstreamConnection* active_ = nullptr;
};

// True for the methods RFC 9110 §9.2.2 calls idempotent.
bool IsIdempotentMethod(const std::string& method);

}  // namespace fanout

#endif  // FANOUT_SERVER_UPSTREAM_CLIENT_H_
