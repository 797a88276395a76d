// PlainHttpClient: fanoutd's own HTTP/1.1 client for GET fetches from
// plain-http upstreams.
//
// cpp-httplib 0.11.4's client (compiled with 4 KiB reads) hands a body to
// its receiver in 4 KiB pieces, each after a poll(2) and a recv(2): three
// system calls per 4 KiB including the stream file's write. Under S1's
// load the fetch thread was fanoutd's busiest thread and fell behind a
// 100 MB/s origin. This client reads with 256 KiB buffers and blocks in
// recv with a receive timeout, so the fetch costs a few system calls per
// arriving burst; and it keeps header values exactly as the upstream sent
// them (httplib percent-decodes them). TLS upstreams and requests with
// bodies stay with httplib.
//
// One request per connection ("Connection: close"). The response head goes
// to on_head, the decoded body to on_body in pieces; either returning
// false ends the transfer (Result::kCancelled).
//
// Thread-safety: Get runs on the calling thread; Stop may be called from
// any thread to abort a Get in progress (it then fails with kCancelled).

#ifndef FANOUT_SERVER_PLAIN_HTTP_CLIENT_H_
#define FANOUT_SERVER_PLAIN_HTTP_CLIENT_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/upstream_response_parser.h"

namespace fanout {

class PlainHttpClient {
 public:
  struct Options {
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds read_timeout{30000};  // per read, as httplib's
  };

  enum class Error {
    kNone,
    kConnect,         // resolving or connecting failed
    kConnectTimeout,  // no connection within connect_timeout
    kWrite,           // the request could not be sent
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

  using HeadHandler = std::function<bool(const UpstreamResponseHead&)>;
  using BodyHandler = std::function<bool(const char* data, std::size_t n)>;

  PlainHttpClient(std::string host, int port, Options options);
  ~PlainHttpClient();
  PlainHttpClient(const PlainHttpClient&) = delete;
  PlainHttpClient& operator=(const PlainHttpClient&) = delete;

  // Sends "GET target" with `headers` (Host added if missing) and streams
  // the response. Interim 1xx responses are skipped.
  Result Get(const std::string& target,
             const std::vector<std::pair<std::string, std::string>>& headers,
             const HeadHandler& on_head, const BodyHandler& on_body);

  void Stop();

 private:
  Result Connect();
  Result SendAll(std::string_view bytes);
  // Reads more bytes into buffer_ (after its first `kept` bytes). 0 at a
  // clean end of the stream; -1 with *error set otherwise.
  long ReadMore(std::size_t kept, Result* error);
  Result ReadBody(const BodyFraming& framing, std::size_t start, std::size_t end,
                  const BodyHandler& on_body);

  const std::string host_;
  const int port_;
  const Options options_;
  std::atomic<int> fd_{-1};
  // Sockets of addresses that failed to connect: closed only on
  // destruction, so Stop() can never shut down a reused descriptor number.
  std::vector<int> spent_fds_;
  std::atomic<bool> stopped_{false};
  std::vector<char> buffer_;
};

}  // namespace fanout

#endif  // FANOUT_SERVER_PLAIN_HTTP_CLIENT_H_
