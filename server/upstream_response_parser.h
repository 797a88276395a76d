// The HTTP/1.1 response syntax fanoutd's own upstream client reads
// (plain_http_client.h): the response head, and the chunked transfer coding.
//
// Both are pure and incremental: the caller feeds bytes as they arrive.
// Header values are kept exactly as the upstream sent them (cpp-httplib's
// client percent-decodes them, which alters Location, Link and
// Content-Disposition on their way to the client).
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
// is replaced by a space (RFC 9112 §5.2).
ParsedResponseHead ParseResponseHead(std::string_view bytes);

// How the body of a response to a GET is delimited (RFC 9112 §6.3).
struct BodyFraming {
  enum class Kind { kNone, kLength, kChunked, kUntilClose } kind = Kind::kUntilClose;
  std::uint64_t length = 0;  // kLength
};
// nullopt if the framing headers are invalid (e.g. two different
// Content-Lengths), which makes the response unusable.
std::optional<BodyFraming> FramingOf(const UpstreamResponseHead& head);

// Decodes the chunked transfer coding, fed in any slices.
class ChunkedDecoder {
 public:
  enum class Result { kMore, kDone, kMalformed };

  // Consumes bytes from `in`, appending decoded body bytes to *out (as
  // views into `in`). Stops at the end of the body (kDone: *consumed tells
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
