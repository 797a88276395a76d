#include "tests/stress/stress_response_parser.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace fanout::stress {
namespace {

// Larger heads are refused (fanoutd's are a few hundred bytes).
constexpr std::size_t kMaxHeadBytes = 64 * 1024;
// Longest chunk-size or trailer line accepted.
constexpr std::size_t kMaxLineBytes = 1024;

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A field line "name: value"; false if it breaks the rules.
bool SplitField(std::string_view line, std::string* name, std::string* value) {
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view n = line.substr(0, colon);
  if (!std::all_of(n.begin(), n.end(), IsTokenChar)) return false;
  const std::string_view v = TrimOws(line.substr(colon + 1));
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  *name = std::string(n);
  *value = std::string(v);
  return true;
}

}  // namespace

std::optional<std::string> ResponseParser::Head::Field(std::string_view name) const {
  std::optional<std::string> out;
  for (const auto& [n, v] : fields) {
    if (!EqualsIgnoreCase(n, name)) continue;
    out = out ? *out + ", " + v : v;
  }
  return out;
}

ResponseParser::ResponseParser(bool is_head_request) : is_head_request_(is_head_request) {}

std::size_t ResponseParser::Feed(const char* data, std::size_t n, const BodySink& sink) {
  std::size_t used = 0;
  if (state_ == State::kHead) {
    used = FeedHead(data, n);
  }
  if (state_ == State::kBody && used < n) {
    used += FeedBody(data + used, n - used, sink);
  }
  return used;
}

std::size_t ResponseParser::Fail(std::string why, std::size_t consumed) {
  state_ = State::kError;
  error_ = std::move(why);
  return consumed;
}

std::size_t ResponseParser::FeedHead(const char* data, std::size_t n) {
  const std::size_t before = head_text_.size();
  head_text_.append(data, n);
  const std::size_t from = before >= 3 ? before - 3 : 0;
  const std::size_t end = head_text_.find("\r\n\r\n", from);
  if (end == std::string::npos) {
    if (head_text_.size() > kMaxHeadBytes) return Fail("response head larger than 64 KiB", n);
    return n;
  }
  head_text_.resize(end + 4);
  const std::size_t used = head_text_.size() - before;
  for (std::size_t i = 0; i < head_text_.size(); ++i) {
    if (head_text_[i] == '\n' && (i == 0 || head_text_[i - 1] != '\r')) {
      return Fail("bare LF in the response head", used);
    }
    if (head_text_[i] == '\r' && (i + 1 == head_text_.size() || head_text_[i + 1] != '\n')) {
      return Fail("bare CR in the response head", used);
    }
  }
  if (!ParseHead(std::string_view(head_text_).substr(0, end)) || !DecideFraming()) return used;
  return used;
}

bool ResponseParser::ParseHead(std::string_view text) {
  auto line_end = text.find("\r\n");
  const std::string_view status_line = text.substr(0, line_end);
  if (status_line.size() < 13 || status_line.substr(0, 9) != "HTTP/1.1 " ||
      !std::isdigit(static_cast<unsigned char>(status_line[9])) ||
      !std::isdigit(static_cast<unsigned char>(status_line[10])) ||
      !std::isdigit(static_cast<unsigned char>(status_line[11])) || status_line[12] != ' ') {
    Fail("bad status line '" + std::string(status_line.substr(0, 80)) + "'", 0);
    return false;
  }
  head_.status = (status_line[9] - '0') * 100 + (status_line[10] - '0') * 10 +
                 (status_line[11] - '0');
  head_.reason = std::string(status_line.substr(13));
  while (line_end != std::string_view::npos) {
    const std::size_t start = line_end + 2;
    line_end = text.find("\r\n", start);
    const std::string_view line = text.substr(start, line_end == std::string_view::npos
                                                         ? std::string_view::npos
                                                         : line_end - start);
    if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
      Fail("obsolete line folding in the response head", 0);
      return false;
    }
    std::string name, value;
    if (!SplitField(line, &name, &value)) {
      Fail("bad header field '" + std::string(line.substr(0, 80)) + "'", 0);
      return false;
    }
    head_.fields.emplace_back(std::move(name), std::move(value));
  }
  return true;
}

bool ResponseParser::DecideFraming() {
  int lengths = 0, encodings = 0;
  for (const auto& [name, value] : head_.fields) {
    if (EqualsIgnoreCase(name, "Content-Length")) {
      ++lengths;
      if (value.empty() || value.size() > 19 ||
          !std::all_of(value.begin(), value.end(),
                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
        Fail("bad Content-Length '" + value + "'", 0);
        return false;
      }
      content_length_ = std::stoull(value);
    } else if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      ++encodings;
      if (!EqualsIgnoreCase(value, "chunked")) {
        Fail("Transfer-Encoding '" + value + "' (only chunked is expected)", 0);
        return false;
      }
      chunked_ = true;
    }
  }
  if (lengths > 1) {
    Fail("Content-Length given " + std::to_string(lengths) + " times", 0);
    return false;
  }
  if (encodings > 1) {
    Fail("Transfer-Encoding given " + std::to_string(encodings) + " times", 0);
    return false;
  }
  if (lengths == 1 && chunked_) {
    Fail("both Content-Length and Transfer-Encoding", 0);
    return false;
  }
  if (head_.status < 200) {
    Fail("unexpected interim response " + std::to_string(head_.status), 0);
    return false;
  }
  if (is_head_request_ || head_.status == 204 || head_.status == 304) {
    state_ = State::kComplete;
    return true;
  }
  if (lengths == 0 && !chunked_) {
    Fail("no Content-Length and not chunked: the body's end could not be told from a cut", 0);
    return false;
  }
  state_ = content_length_ == 0u ? State::kComplete : State::kBody;
  return true;
}

std::size_t ResponseParser::FeedBody(const char* data, std::size_t n, const BodySink& sink) {
  if (chunked_) return FeedChunked(data, n, sink);
  const auto take =
      static_cast<std::size_t>(std::min<std::uint64_t>(n, *content_length_ - body_bytes_));
  Deliver(data, take, sink);
  if (body_bytes_ == *content_length_) state_ = State::kComplete;
  return take;
}

void ResponseParser::Deliver(const char* data, std::size_t n, const BodySink& sink) {
  if (n == 0) return;
  if (sink) sink(body_bytes_, data, n);
  body_bytes_ += n;
}

bool ResponseParser::TakeLine(const char* data, std::size_t n, std::size_t* used) {
  for (std::size_t i = 0; i < n; ++i) {
    const char c = data[i];
    if (c == '\n') {
      if (line_.empty() || line_.back() != '\r') {
        Fail("bare LF in chunked framing", 0);
        *used = i + 1;
        return false;
      }
      line_.pop_back();
      *used = i + 1;
      return true;
    }
    line_.push_back(c);
    if (line_.size() > kMaxLineBytes) {
      Fail("chunked framing line longer than 1 KiB", 0);
      *used = i + 1;
      return false;
    }
  }
  *used = n;
  return false;
}

std::size_t ResponseParser::FeedChunked(const char* data, std::size_t n, const BodySink& sink) {
  std::size_t at = 0;
  while (at < n && state_ == State::kBody) {
    if (chunk_state_ == ChunkState::kData) {
      const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(n - at, chunk_left_));
      Deliver(data + at, take, sink);
      at += take;
      chunk_left_ -= take;
      if (chunk_left_ == 0) chunk_state_ = ChunkState::kDataEnd;
      continue;
    }
    std::size_t used = 0;
    const bool line_done = TakeLine(data + at, n - at, &used);
    at += used;
    if (state_ == State::kError || !line_done) continue;
    const std::string line = std::move(line_);
    line_.clear();
    switch (chunk_state_) {
      case ChunkState::kSizeLine: {
        if (line.empty() || line.size() > 16 ||
            !std::all_of(line.begin(), line.end(),
                         [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
          return Fail("bad chunk size line '" + line.substr(0, 40) + "'", at);
        }
        chunk_left_ = std::stoull(line, nullptr, 16);
        chunk_state_ = chunk_left_ == 0 ? ChunkState::kTrailer : ChunkState::kData;
        break;
      }
      case ChunkState::kDataEnd:
        if (!line.empty()) return Fail("chunk data not followed by CRLF", at);
        chunk_state_ = ChunkState::kSizeLine;
        break;
      case ChunkState::kTrailer: {
        if (line.empty()) {
          state_ = State::kComplete;
          break;
        }
        std::string name, value;
        if (!SplitField(line, &name, &value)) return Fail("bad trailer field", at);
        break;
      }
      case ChunkState::kData:
        break;
    }
  }
  return at;
}

}  // namespace fanout::stress
