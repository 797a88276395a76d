// Request: what a handler is told of one client request — its method, the
// target to route, the header fields as the client sent them (names and
// values byte for byte, in order) and how its body is framed. Made from a
// parsed RequestHead, and owning its strings, so it outlives the read
// buffer the head was parsed from (a handler reads the body through the
// same buffer).
//
// Thread-safety: a value type.

#ifndef FANOUT_SERVER_HTTP1_REQUEST_H_
#define FANOUT_SERVER_HTTP1_REQUEST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/response_head.h"
#include "server/http1/request_head.h"

namespace fanout {

struct Request {
  std::string method;
  std::string target;  // origin-form ("/path?query"), or "*"
  // For an absolute-form target ("GET http://host:81/x", a proxy client's),
  // its scheme ("http" or "https") and authority ("host:81"); target then
  // holds its path and query. Both empty for other forms.
  std::string scheme;
  std::string authority;
  int minor_version = 1;
  HeaderList headers;
  std::string remote_addr;  // the client's IP address
  RequestHead::Framing framing = RequestHead::Framing::kNone;
  std::uint64_t content_length = 0;  // framing kLength

  static Request From(const RequestHead& head, std::string remote_addr);

  bool has_header(std::string_view name) const;
  // "http://host:81/x" for an absolute-form target, else the target.
  std::string url() const { return scheme.empty() ? target : scheme + "://" + authority + target; }
  // The first value of the field (any case), or "".
  std::string header(std::string_view name) const { return HeaderValue(headers, name); }
  bool has_body() const {
    return framing == RequestHead::Framing::kChunked ||
           (framing == RequestHead::Framing::kLength && content_length > 0);
  }
  // The body's length if known (0 without a body), nullopt if chunked.
  std::optional<std::uint64_t> body_length() const {
    if (framing == RequestHead::Framing::kChunked) return std::nullopt;
    return framing == RequestHead::Framing::kLength ? content_length : 0;
  }
};

}  // namespace fanout

#endif  // FANOUT_SERVER_HTTP1_REQUEST_H_
