// ResponseParser: a strict, incremental HTTP/1.1 response parser for the
// stress clients, written to catch a server that frames a response wrongly
// rather than to be forgiving.
//
// It accepts exactly: "HTTP/1.1 NNN reason" CRLF, header fields
// "name: value" CRLF (name a token, no obsolete line folding, no bare LF),
// CRLF; then a body framed by one Content-Length (digits only, given once)
// or by "Transfer-Encoding: chunked" (never both), with chunk sizes in hex,
// each chunk's data followed by CRLF, and the last chunk followed by
// trailer fields and CRLF. Responses to HEAD, and 1xx, 204 and 304
// responses, have no body whatever their headers say. Any other response
// without a framing header is an error: a body that only ends when the
// connection closes can never be told apart from a truncated one.
//
// Feed() consumes the bytes of one response and returns how many it took;
// what is left belongs to the next response on the connection (pipelining).
// Body bytes are handed to the sink with their offset in the body.
//
// Thread-safety: none (one per response, owned by one client thread).

#ifndef FANOUT_TESTS_STRESS_STRESS_RESPONSE_PARSER_H_
#define FANOUT_TESTS_STRESS_STRESS_RESPONSE_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fanout::stress {

class ResponseParser {
 public:
  // Called with body bytes in order: (offset in the body, data, n).
  using BodySink = std::function<void(std::uint64_t offset, const char* data, std::size_t n)>;

  enum class State {
    kHead,      // reading the status line and header fields
    kBody,      // reading body bytes (or chunk framing)
    kComplete,  // the response ended where its framing says
    kError,     // the bytes broke the rules; see error()
  };

  struct Head {
    int status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> fields;  // in order, as sent
    // The value of the one field called name (any case); nullopt if absent.
    // A field given more than once is joined with ", ".
    std::optional<std::string> Field(std::string_view name) const;
  };

  // is_head_request: the response answers a HEAD (no body).
  explicit ResponseParser(bool is_head_request);

  // Consumes bytes of this response from data[0, n); returns how many.
  // Stops at the end of the response or at the first error.
  std::size_t Feed(const char* data, std::size_t n, const BodySink& sink);

  State state() const { return state_; }
  bool complete() const { return state_ == State::kComplete; }
  bool head_done() const { return state_ == State::kBody || state_ == State::kComplete; }
  const std::string& error() const { return error_; }
  const Head& head() const { return head_; }
  // Body bytes received so far (excluding chunk framing).
  std::uint64_t body_bytes() const { return body_bytes_; }
  // Framing of the body (once the head is done).
  bool chunked() const { return chunked_; }
  std::optional<std::uint64_t> content_length() const { return content_length_; }

 private:
  enum class ChunkState { kSizeLine, kData, kDataEnd, kTrailer };

  std::size_t FeedHead(const char* data, std::size_t n);
  bool ParseHead(std::string_view text);
  bool DecideFraming();
  std::size_t FeedBody(const char* data, std::size_t n, const BodySink& sink);
  std::size_t FeedChunked(const char* data, std::size_t n, const BodySink& sink);
  // Takes a CRLF-terminated line from data into line_; true once complete.
  bool TakeLine(const char* data, std::size_t n, std::size_t* used);
  void Deliver(const char* data, std::size_t n, const BodySink& sink);
  std::size_t Fail(std::string why, std::size_t consumed);

  const bool is_head_request_;
  State state_ = State::kHead;
  std::string error_;
  std::string head_text_;
  Head head_;
  bool chunked_ = false;
  std::optional<std::uint64_t> content_length_;
  std::uint64_t body_bytes_ = 0;
  ChunkState chunk_state_ = ChunkState::kSizeLine;
  std::uint64_t chunk_left_ = 0;
  std::string line_;
};

}  // namespace fanout::stress

#endif  // FANOUT_TESTS_STRESS_STRESS_RESPONSE_PARSER_H_
