// RequestHead: a view of one plain HTTP/1.1 request head, parsed in place.
//
// The connection loop uses it to recognise requests it can answer from a
// stored entry without going through cpp-httplib (see hit_path.h). The
// parser is deliberately narrow: anything it is not sure about — another
// HTTP version, an absolute-form target, a header line with odd syntax,
// obs-folding, a bare LF, more than kMaxHeaders fields — makes it return
// nullopt, and the request takes the full path, whose parser decides.
//
// The views point into the caller's buffer and live as long as it does.
// Thread-safety: a value type; ParseRequestHead is a pure function.

#ifndef FANOUT_SERVER_REQUEST_HEAD_H_
#define FANOUT_SERVER_REQUEST_HEAD_H_

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

namespace fanout {

struct RequestHead {
  static constexpr std::size_t kMaxHeaders = 32;

  std::string_view method;
  std::string_view target;  // origin-form: starts with '/'
  std::array<std::pair<std::string_view, std::string_view>, kMaxHeaders> headers;
  std::size_t header_count = 0;
  std::size_t size = 0;  // bytes of the head, up to and including the blank line
};

// Parses the head at the start of `bytes` (which may hold more: a body or
// pipelined requests). nullopt if the head is incomplete or not one this
// parser accepts.
std::optional<RequestHead> ParseRequestHead(std::string_view bytes);

// What is wrong with the whole request head at the start of `bytes` (which
// may hold more: a body, pipelined requests), judged before any handler
// sees it: status 0 if nothing, else the
// status to answer (the connection then closes) and why.
//   400  a request line that is not `token SP target SP HTTP/1.x` (the
//        target visible ASCII), a field
//        line with a bare CR, obs-folding, no colon, whitespace before the
//        colon or a name that is not a token, a control character (other
//        than HTAB) in a field value (RFC 9112 §2.2, §5);
//   414  a request line longer than kMaxRequestLine;
//   431  more than kMaxFields field lines;
//   505  an HTTP version other than 1.0 and 1.1.
// Bytes 0x80-0xFF are allowed in field values (obs-text); the target's own
// rules are request_target.h's.
struct HeadProblem {
  int status = 0;
  std::string reason;
};
inline constexpr std::size_t kMaxRequestLine = 8 * 1024;
inline constexpr std::size_t kMaxFields = 100;
HeadProblem CheckRequestHead(std::string_view bytes);

// The header fields of the head at the start of `bytes` as they were sent
// (name, value without surrounding whitespace), in order, for any request
// line — what cpp-httplib's parser sees before it percent-decodes the
// values. nullopt if the head is incomplete or has a folded line.
std::optional<std::vector<std::pair<std::string, std::string>>> RawHeaderFields(
    std::string_view bytes);

}  // namespace fanout

#endif  // FANOUT_SERVER_REQUEST_HEAD_H_
