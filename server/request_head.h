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

// The header fields of the head at the start of `bytes` as they were sent
// (name, value without surrounding whitespace), in order, for any request
// line — what cpp-httplib's parser sees before it percent-decodes the
// values. nullopt if the head is incomplete or has a folded line.
std::optional<std::vector<std::pair<std::string, std::string>>> RawHeaderFields(
    std::string_view bytes);

}  // namespace fanout

#endif  // FANOUT_SERVER_REQUEST_HEAD_H_
