#include "server/upstream_response_parser.h"

#include "core/header_text.h"

namespace fanout {
namespace {

constexpr std::size_t kMaxLine = 16 * 1024;  // a chunk-size or trailer line

ParsedResponseHead Malformed(std::string problem) {
  ParsedResponseHead r;
  r.state = ParsedResponseHead::State::kMalformed;
  r.problem = std::move(problem);
  return r;
}

// Lines end with CRLF; a bare LF is accepted too (RFC 9112 §2.2).
std::string_view TrimCr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// Calls f(element) for each element of a comma-separated list, trimmed.
template <typename F>
void ForEachListElement(std::string_view v, F f) {
  while (true) {
    const std::size_t comma = v.find(',');
    f(TrimOws(v.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    v.remove_prefix(comma + 1);
  }
}

std::optional<std::uint64_t> ParseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

}  // namespace

ParsedResponseHead ParseResponseHead(std::string_view bytes) {
  constexpr std::size_t kMaxHead = 64 * 1024;
  // The head ends at the first empty line.
  std::size_t end = std::string_view::npos;
  std::size_t blank_len = 0;
  for (std::size_t i = bytes.find('\n'); i != std::string_view::npos;
       i = bytes.find('\n', i + 1)) {
    if (i + 1 < bytes.size() && bytes[i + 1] == '\n') {
      end = i + 1, blank_len = 1;
      break;
    }
    if (i + 2 < bytes.size() && bytes[i + 1] == '\r' && bytes[i + 2] == '\n') {
      end = i + 1, blank_len = 2;
      break;
    }
  }
  if (end == std::string_view::npos) {
    if (bytes.size() > kMaxHead) return Malformed("response head larger than 64 KiB");
    return {};
  }
  ParsedResponseHead r;
  r.size = end + blank_len;
  std::string_view rest = bytes.substr(0, end);
  auto next_line = [&rest] {
    const std::size_t nl = rest.find('\n');
    std::string_view line = TrimCr(rest.substr(0, nl));
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    return line;
  };
  // status-line = HTTP-version SP status-code SP [ reason-phrase ]
  const std::string_view status_line = next_line();
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." ||
      status_line[7] < '0' || status_line[7] > '9' || status_line[8] != ' ') {
    return Malformed("not an HTTP/1.x status line");
  }
  const auto code = ParseDecimal(status_line.substr(9, 3));
  if (!code || *code < 100 || *code > 999 ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    return Malformed("bad status code");
  }
  r.head.minor_version = status_line[7] - '0';
  r.head.status = static_cast<int>(*code);
  if (status_line.size() > 13) r.head.reason = std::string(status_line.substr(13));
  if (!IsFieldValueText(r.head.reason)) return Malformed("control byte in the reason phrase");
  while (!rest.empty()) {
    const std::string_view line = next_line();
    if (!IsFieldValueText(line)) return Malformed("control byte (CR, NUL, ...) in a header line");
    if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
      // obs-fold: the line continues the previous field's value.
      if (r.head.headers.empty()) return Malformed("folded line before any field");
      r.head.headers.back().second.append(" ").append(TrimOws(line));
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return Malformed("bad header line");
    const std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!IsTokenChar(c)) return Malformed("bad header name");
    }
    r.head.headers.emplace_back(std::string(name), std::string(TrimOws(line.substr(colon + 1))));
  }
  r.state = ParsedResponseHead::State::kComplete;
  return r;
}

std::optional<BodyFraming> FramingOf(const UpstreamResponseHead& head,
                                     std::string_view request_method, std::string* problem) {
  auto malformed = [problem](const char* why) -> std::optional<BodyFraming> {
    if (problem != nullptr) *problem = why;
    return std::nullopt;
  };
  BodyFraming f;
  if (request_method == "HEAD" || (head.status >= 100 && head.status < 200) ||
      head.status == 204 || head.status == 304) {
    f.kind = BodyFraming::Kind::kNone;
    return f;
  }
  bool transfer_encoded = false;
  bool chunked_seen = false;     // some coding so far was chunked
  bool chunked_last = false;     // the last coding so far is chunked
  bool length_seen = false;
  std::optional<std::uint64_t> length;
  bool bad_length = false;
  bool chunked_twice = false;
  bool chunked_not_last = false;
  for (const auto& [name, value] : head.headers) {
    if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      transfer_encoded = true;
      ForEachListElement(value, [&](std::string_view coding) {
        if (coding.empty()) return;  // empty list elements do not count (RFC 9110 §5.6.1)
        if (chunked_last) chunked_not_last = true;  // something follows chunked
        const bool chunked = EqualsIgnoreCase(coding, "chunked");
        if (chunked && chunked_seen) chunked_twice = true;
        chunked_seen = chunked_seen || chunked;
        chunked_last = chunked;
      });
    } else if (EqualsIgnoreCase(name, "Content-Length")) {
      // A list of identical values counts as one (RFC 9110 §8.6).
      length_seen = true;
      ForEachListElement(value, [&](std::string_view element) {
        const auto n = ParseDecimal(element);
        if (!n || (length && *length != *n)) bad_length = true;
        else length = n;
      });
    }
  }
  if (transfer_encoded && length_seen) {
    // RFC 9112 §6.3: a server must not send both; as a sender of the
    // message on to clients (and a cache of it), fanoutd refuses it.
    return malformed("both Transfer-Encoding and Content-Length");
  }
  if (transfer_encoded) {
    if (chunked_twice) return malformed("chunked applied twice");
    if (chunked_not_last) return malformed("chunked is not the last transfer coding");
    // A final coding other than chunked: the body runs until the
    // connection closes.
    f.kind = chunked_last ? BodyFraming::Kind::kChunked : BodyFraming::Kind::kUntilClose;
    return f;
  }
  if (length_seen) {
    if (bad_length || !length) return malformed("invalid or conflicting Content-Length");
    f.kind = BodyFraming::Kind::kLength;
    f.length = *length;
  }
  return f;
}

bool ResponseAllowsReuse(const UpstreamResponseHead& head) {
  if (head.status == 101) return false;
  bool close = false, keep_alive = false;
  for (const auto& [name, value] : head.headers) {
    if (!EqualsIgnoreCase(name, "Connection")) continue;
    ForEachListElement(value, [&](std::string_view option) {
      close = close || EqualsIgnoreCase(option, "close");
      keep_alive = keep_alive || EqualsIgnoreCase(option, "keep-alive");
    });
  }
  if (close) return false;
  // A 204 must carry no framing (RFC 9110 §8.6): one that announces a body
  // may well send it, and its bytes would be read as the next response.
  if (head.status == 204) {
    for (const auto& [name, value] : head.headers) {
      if (EqualsIgnoreCase(name, "Transfer-Encoding") ||
          (EqualsIgnoreCase(name, "Content-Length") && TrimOws(value) != "0")) {
        return false;
      }
    }
  }
  return head.minor_version >= 1 || keep_alive;
}

ChunkedDecoder::Result ChunkedDecoder::Feed(std::string_view in,
                                            std::vector<std::string_view>* out,
                                            std::size_t* consumed) {
  std::size_t pos = 0;
  // Collects a line into line_; true once its LF arrived.
  auto take_line = [&]() -> bool {
    const std::size_t nl = in.find('\n', pos);
    const std::size_t upto = nl == std::string_view::npos ? in.size() : nl;
    line_.append(in.substr(pos, upto - pos));
    pos = nl == std::string_view::npos ? in.size() : nl + 1;
    return nl != std::string_view::npos;
  };
  // RFC 9112 §7.1: every line of the coding ends with CRLF; a bare LF, or
  // a CR or NUL inside a line, is a framing another parser may read
  // otherwise (a smuggling vector), so it is malformed.
  auto line_well_formed = [&]() {
    if (line_.empty() || line_.back() != '\r') return false;
    return line_.find_first_of(std::string_view("\r\0", 2)) == line_.size() - 1;
  };
  while (pos < in.size() && state_ != State::kDone) {
    switch (state_) {
      case State::kSize: {
        if (!take_line()) {
          if (line_.size() > kMaxLine) return Result::kMalformed;
          break;
        }
        if (!line_well_formed()) return Result::kMalformed;
        std::string_view size = TrimCr(line_);
        size = TrimOws(size.substr(0, size.find(';')));  // chunk extensions ignored
        if (size.empty()) return Result::kMalformed;
        // Below 2^63: no body is larger, and a size that wraps around
        // would make the decoder read body bytes as chunk headers.
        constexpr std::uint64_t kMaxChunk = (std::uint64_t{1} << 63) - 1;
        std::uint64_t n = 0;
        for (char c : size) {
          int d;
          if (c >= '0' && c <= '9') d = c - '0';
          else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
          else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
          else return Result::kMalformed;
          if (n > (kMaxChunk - static_cast<std::uint64_t>(d)) / 16) return Result::kMalformed;
          n = n * 16 + static_cast<std::uint64_t>(d);
        }
        line_.clear();
        remaining_ = n;
        state_ = n == 0 ? State::kTrailer : State::kData;
        break;
      }
      case State::kData: {
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size() - pos));
        out->push_back(in.substr(pos, n));
        pos += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kDataEnd;
        break;
      }
      case State::kDataEnd: {
        if (!take_line()) {
          if (line_.size() > 1) return Result::kMalformed;
          break;
        }
        if (line_ != "\r") return Result::kMalformed;  // data longer than its size, or no CR
        line_.clear();
        state_ = State::kSize;
        break;
      }
      case State::kTrailer: {
        if (!take_line()) {
          if (line_.size() > kMaxLine) return Result::kMalformed;
          break;
        }
        if (!line_well_formed()) return Result::kMalformed;
        const bool blank = line_ == "\r";
        line_.clear();
        if (blank) state_ = State::kDone;  // trailer fields are dropped
        break;
      }
      case State::kDone:
        break;
    }
  }
  *consumed = pos;
  return state_ == State::kDone ? Result::kDone : Result::kMore;
}

}  // namespace fanout
