// The HTTP/1.1 response syntax fanoutd's own upstream client reads
// (upstream_client.h): the response head, how its body is delimited, and
// the chunked transfer coding — strictly, per RFC 9112: anything that
// could be read two ways (two lengths, a length beside a transfer coding,
// control bytes in a field) is refused as malformed rather than guessed at,
// since a cache that guesses differently from the origin stores the wrong
// bytes for everyone (response splitting, request smuggling).
//
// All are pure and incremental: the caller feeds bytes as they arrive.
// Header values are kept exactly as the upstream sent them (never
// percent-decoded: Location, Link and Content-Disposition reach the client
// as the origin wrote them); the one rewrite is
// obsolete line folding, which becomes a single space (RFC 9112 §5.2
// allows either that or refusing; folded values are rare but legal in old
// servers, so they are accepted).
//
// Thread-safety: values owned by one fetch thread.

#ifndef FANOUT_SERVER_UPSTREAM_RESPONSE_PARSER_H_
#define FANOUT_SERVER_UPSTREAM_RESPONSE_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fanout {

struct UpstreamResponseHead {
  int minor_version = 1;  // HTTP/1.<minor_version>
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Outcome of looking for a response head at the start of a buffer.
struct ParsedResponseHead {
  enum class State { kIncomplete, kComplete, kMalformed } state = State::kIncomplete;
  UpstreamResponseHead head;
  std::size_t size = 0;   // bytes of the head, blank line included (kComplete)
  std::string problem;    // what is wrong (kMalformed)
};

// Parses the response head at the start of `bytes`. Obsolete line folding
// is replaced by a space (RFC 9112 §5.2). Malformed: a status line that is
// not HTTP/1.x, a field line without a colon or with a bad name, and a
// field value (or reason phrase) holding a control byte — NUL, a bare CR,
// anything below 0x20 but HTAB, or DEL.
ParsedResponseHead ParseResponseHead(std::string_view bytes);

// How the body of a response is delimited (RFC 9112 §6.3).
struct BodyFraming {
  enum class Kind {
    kNone,        // no body: HEAD, 1xx, 204, 304
    kLength,      // exactly `length` bytes (Content-Length)
    kChunked,     // the chunked coding is the last transfer coding
    kUntilClose,  // the body ends when the connection closes
  } kind = Kind::kUntilClose;
  std::uint64_t length = 0;  // kLength
};
// The framing of `head`, a response to a `request_method` request; nullopt
// (with the reason in *problem, if given) if the framing headers are
// invalid, which makes the response unusable:
//   - Content-Length beside Transfer-Encoding;
//   - a Content-Length that is not one decimal number, or a comma list of
//     identical ones ("5, 5"): "+5", "0x5", "-1", "", "5, 6" are refused;
//   - "chunked" anywhere but as the last transfer coding, or twice.
// A Transfer-Encoding whose last coding is not chunked is read until the
// connection closes (and the connection is never reused).
std::optional<BodyFraming> FramingOf(const UpstreamResponseHead& head,
                                     std::string_view request_method = "GET",
                                     std::string* problem = nullptr);

// Whether the connection may carry another request after this response
// (read whole): not if the response said "Connection: close", nor if it is
// HTTP/1.0 without "Connection: keep-alive", nor after a 101 (the
// connection has changed protocols). The framing must be known as well:
// that is the caller's to check.
bool ResponseAllowsReuse(const UpstreamResponseHead& head);

// Decodes the chunked transfer coding, fed in any slices.
class ChunkedDecoder {
 public:
  enum class Result { kMore, kDone, kMalformed };

  // Consumes bytes from `in`, appending decoded body bytes to *out (as
  // views into `in`). A chunk size must be hex digits (leading zeros
  // allowed, below 2^63); chunk extensions and trailer fields are dropped. Stops at the end of the body (kDone: *consumed tells
  // how many bytes of `in` belonged to it), at malformed input, or when
  // `in` is used up (kMore).
  Result Feed(std::string_view in, std::vector<std::string_view>* out, std::size_t* consumed);

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kDone };
  State state_ = State::kSize;
  std::string line_;           // the chunk-size or trailer line so far
  std::uint64_t remaining_ = 0;  // bytes left in the current chunk
};

}  // namespace fanout

#endif  // FANOUT_SERVER_UPSTREAM_RESPONSE_PARSER_H_
