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
  r.head.status = static_cast<int>(*code);
  if (status_line.size() > 13) r.head.reason = std::string(status_line.substr(13));
  while (!rest.empty()) {
    const std::string_view line = next_line();
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

std::optional<BodyFraming> FramingOf(const UpstreamResponseHead& head) {
  BodyFraming f;
  if ((head.status >= 100 && head.status < 200) || head.status == 204 || head.status == 304) {
    f.kind = BodyFraming::Kind::kNone;
    return f;
  }
  bool transfer_encoded = false;
  std::string_view last_coding;
  std::optional<std::uint64_t> length;
  for (const auto& [name, value] : head.headers) {
    if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      transfer_encoded = true;
      std::string_view v = value;
      const std::size_t comma = v.rfind(',');
      last_coding = TrimOws(comma == std::string_view::npos ? v : v.substr(comma + 1));
    } else if (EqualsIgnoreCase(name, "Content-Length")) {
      // A list of identical values counts as one (RFC 9110 §8.6).
      std::string_view v = value;
      while (!v.empty()) {
        const std::size_t comma = v.find(',');
        const auto n = ParseDecimal(TrimOws(v.substr(0, comma)));
        if (!n || (length && *length != *n)) return std::nullopt;
        length = n;
        v.remove_prefix(comma == std::string_view::npos ? v.size() : comma + 1);
      }
      if (!length) return std::nullopt;
    }
  }
  if (transfer_encoded) {
    // Transfer-Encoding overrides Content-Length; a final coding other than
    // chunked means the body runs until the connection closes.
    f.kind = EqualsIgnoreCase(last_coding, "chunked") ? BodyFraming::Kind::kChunked
                                                      : BodyFraming::Kind::kUntilClose;
    return f;
  }
  if (length) {
    f.kind = BodyFraming::Kind::kLength;
    f.length = *length;
  }
  return f;
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
  while (pos < in.size() && state_ != State::kDone) {
    switch (state_) {
      case State::kSize: {
        if (!take_line()) {
          if (line_.size() > kMaxLine) return Result::kMalformed;
          break;
        }
        std::string_view size = TrimCr(line_);
        size = TrimOws(size.substr(0, size.find(';')));  // chunk extensions ignored
        if (size.empty() || size.size() > 15) return Result::kMalformed;
        std::uint64_t n = 0;
        for (char c : size) {
          int d;
          if (c >= '0' && c <= '9') d = c - '0';
          else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
          else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
          else return Result::kMalformed;
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
        if (!TrimCr(line_).empty()) return Result::kMalformed;  // data longer than its size
        line_.clear();
        state_ = State::kSize;
        break;
      }
      case State::kTrailer: {
        if (!take_line()) {
          if (line_.size() > kMaxLine) return Result::kMalformed;
          break;
        }
        const bool blank = TrimCr(line_).empty();
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
