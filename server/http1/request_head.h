// RequestHead: one HTTP/1.1 request head, parsed in place, strictly per
// RFC 9112 — the only request parser of fanoutd's data plane.
//
// ParseRequestHead looks at the bytes a connection has read ahead and says
// that the head is not whole yet, or gives the parsed head (views into the
// caller's buffer, valid as long as it is), or the error to answer. Every
// error answer is the connection's last: after a head that breaks the
// rules, the bytes that follow cannot be trusted to start a request.
//
// The rules (each is a test in tests/request_head_test.cc):
//   request line  `token SP target SP HTTP/1.x`, the target visible ASCII;
//                 longer than kMaxRequestLine → 414; another version → 505;
//                 otherwise malformed → 400.
//   field lines   CRLF-terminated; a bare CR or LF, obs-fold, no colon,
//                 whitespace before the colon, a name that is not a token,
//                 a control byte (other than HTAB) or DEL in a value → 400;
//                 more than kMaxFields → 431. Bytes 0x80-0xFF (obs-text)
//                 are allowed in values.
//   Host          exactly one in HTTP/1.1 (none or several → 400), its
//                 value a valid uri-host[:port] (→ 400 otherwise).
//   framing       Content-Length: one decimal number, or a list of
//                 identical ones (else 400); Transfer-Encoding only in
//                 HTTP/1.1 (else 400), exactly `chunked` (other codings →
//                 501, `chunked` not last or twice → 400); both → 400.
//   target forms  origin-form; absolute-form (http/https: its path and
//                 query become the target, its authority the host);
//                 asterisk-form for OPTIONS only; authority-form for
//                 CONNECT only (405 unless forward-proxy tunnels are on).
//
// Thread-safety: a value type; ParseRequestHead is a pure function.

#ifndef FANOUT_SERVER_HTTP1_REQUEST_HEAD_H_
#define FANOUT_SERVER_HTTP1_REQUEST_HEAD_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace fanout {

inline constexpr std::size_t kMaxRequestLine = 8 * 1024;
inline constexpr std::size_t kMaxFields = 100;

struct RequestHead {
  enum class TargetForm { kOrigin, kAbsolute, kAsterisk, kAuthority };
  enum class Framing { kNone, kLength, kChunked };

  std::string_view method;
  // The target to route: for absolute-form its path and query ("/" if it
  // had no path), otherwise the request-target as sent.
  std::string_view target;
  TargetForm form = TargetForm::kOrigin;
  // absolute-form: the URL's scheme, lower case ("http" or "https").
  std::string_view scheme;
  int minor_version = 1;  // HTTP/1.minor_version
  std::array<std::pair<std::string_view, std::string_view>, kMaxFields> headers;
  std::size_t header_count = 0;
  std::size_t size = 0;  // bytes of the head, up to and including the blank line

  // From the fields, checked:
  std::string_view host;  // the Host field (or absolute-form authority); may be empty in 1.0
  Framing framing = Framing::kNone;
  std::uint64_t content_length = 0;  // kLength
  bool connection_close = false;     // "Connection: close" (or 1.0 without keep-alive)
  bool expect_continue = false;      // "Expect: 100-continue"

  bool has_body() const {
    return framing == Framing::kChunked || (framing == Framing::kLength && content_length > 0);
  }
  // The first field named `name` (any case), or nullopt.
  std::optional<std::string_view> Find(std::string_view name) const;
};

struct HeadParse {
  enum class State { kIncomplete, kComplete, kError } state = State::kIncomplete;
  int status = 0;      // kError: the status to answer (400, 414, 431, 501, 505)
  std::string reason;  // kError: what is wrong, for the client and the log
};

// Parses the head at the start of `bytes` (which may hold more: a body,
// pipelined requests) into *head. kIncomplete if no blank line ends it yet
// (the caller bounds how long it waits and how many bytes it reads).
HeadParse ParseRequestHead(std::string_view bytes, RequestHead* head);

}  // namespace fanout

#endif  // FANOUT_SERVER_HTTP1_REQUEST_HEAD_H_
