#include "tests/stress/stress_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "bench/origin/origin_server.h"
#include "tests/stress/stress_response_parser.h"

namespace fanout::stress {
namespace {

using Clock = std::chrono::steady_clock;

// Largest single read of a client at full speed.
constexpr std::size_t kMaxRecv = 256 * 1024;
// A slow reader reads at most this many body bytes slowly, then at full
// speed: slow enough to keep fanoutd's sends blocked, bounded in time.
constexpr std::uint64_t kMaxSlowBytes = 1 << 20;
// Longest pause a client makes on purpose; well under the daemon's
// client_timeout, so a pause never gets a client dropped.
constexpr int kMaxPauseMs = 1000;
// Bytes of unexpected data quoted in a report.
constexpr std::size_t kQuoteBytes = 60;

// Printable quote of raw bytes for a report.
std::string Quote(std::string_view bytes) {
  std::string out;
  for (char c : bytes.substr(0, kQuoteBytes)) {
    if (c == '\r') out += "\\r";
    else if (c == '\n') out += "\\n";
    else if (std::isprint(static_cast<unsigned char>(c))) out += c;
    else out += '.';
  }
  return "'" + out + (bytes.size() > kQuoteBytes ? "...'" : "'");
}

// ---- One TCP connection to fanoutd. ----

class Connection {
 public:
  Connection() = default;
  ~Connection() { Close(false); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects to 127.0.0.1:port; receive_buffer > 0 shrinks SO_RCVBUF first.
  bool Open(int port, int receive_buffer, std::chrono::milliseconds timeout) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      error_ = std::string("socket: ") + std::strerror(errno);
      return false;
    }
    if (receive_buffer > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    const timeval tv{static_cast<time_t>(timeout.count() / 1000),
                     static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      error_ = std::string("connect: ") + std::strerror(errno);
      return false;
    }
    return true;
  }

  bool Send(const std::string& bytes) {
    std::size_t at = 0;
    while (at < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error_ = std::string("send: ") + std::strerror(errno);
        return false;
      }
      at += static_cast<std::size_t>(n);
    }
    return true;
  }

  // > 0: bytes received; 0: the peer closed; -1: errno says why.
  ssize_t Receive(char* buf, std::size_t n) {
    for (;;) {
      const ssize_t r = ::recv(fd_, buf, n, 0);
      if (r < 0 && errno == EINTR) continue;
      return r;
    }
  }

  // reset: RST instead of FIN.
  void Close(bool reset) {
    if (fd_ < 0) return;
    if (reset) {
      const linger l{1, 0};
      ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    ::close(fd_);
    fd_ = -1;
  }

  const std::string& error() const { return error_; }

 private:
  int fd_ = -1;
  std::string error_;
};

// ---- Requests and what they should get. ----

enum class RangeKind { kNone, kInside, kAhead, kSuffix, kOpen, kUnsatisfiable, kSeveral };

struct Request {
  std::string method = "GET";
  RangeKind range_kind = RangeKind::kNone;
  std::string range;  // the Range header's value
  std::optional<std::uint64_t> first, last, suffix;
  // If-None-Match: the ETag the connection saw last (or the origin's), or
  // a wrong one.
  bool conditional = false;
  bool wrong_etag = false;
  std::string if_none_match;  // filled in when sent
  bool close = false;

  std::string Describe() const {
    std::string d = method;
    if (!range.empty()) d += " Range: " + range;
    if (conditional) d += " If-None-Match: " + if_none_match;
    if (close) d += " (close)";
    return d;
  }

  std::string Wire(const std::string& path) const {
    std::string w = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!range.empty()) w += "Range: " + range + "\r\n";
    if (conditional) w += "If-None-Match: " + if_none_match + "\r\n";
    if (close) w += "Connection: close\r\n";
    return w + "\r\n";
  }

  // The bytes a single range asks of an object of `size` bytes (RFC 9110
  // §14.1.2); nullopt if unsatisfiable.
  std::optional<std::pair<std::uint64_t, std::uint64_t>> Resolve(std::uint64_t size) const {
    if (suffix) {
      if (*suffix == 0 || size == 0) return std::nullopt;
      return std::pair{size - std::min(*suffix, size), size - 1};
    }
    if (!first || *first >= size) return std::nullopt;
    return std::pair{*first, last ? std::min(*last, size - 1) : size - 1};
  }
};

Request RandomRange(StressRng& rng, std::uint64_t size) {
  Request r;
  r.range_kind = static_cast<RangeKind>(rng.Between(1, 6));
  const std::uint64_t top = size == 0 ? 0 : size - 1;
  switch (r.range_kind) {
    case RangeKind::kInside:
      r.first = rng.Between(0, top);
      r.last = std::min(top, *r.first + rng.Between(0, 2 << 20));
      break;
    case RangeKind::kAhead:  // likely past the frontier of a fetch in flight
      r.first = rng.Between(size / 2, top);
      r.last = *r.first + rng.Between(0, size);  // may run past the end
      break;
    case RangeKind::kSuffix:
      r.suffix = rng.Between(rng.Chance(0.1) ? 0 : 1, size + 10);
      break;
    case RangeKind::kOpen:
      r.first = rng.Between(0, top);
      break;
    case RangeKind::kUnsatisfiable:
      r.first = size + rng.Between(0, 1000);
      if (rng.Chance(0.5)) r.last = *r.first + rng.Between(0, 1000);
      break;
    default:
      r.range_kind = RangeKind::kSeveral;
      r.range = "bytes=0-0,2-3";
      return r;
  }
  if (r.suffix) {
    r.range = "bytes=-" + std::to_string(*r.suffix);
  } else {
    r.range = "bytes=" + std::to_string(*r.first) + "-" + (r.last ? std::to_string(*r.last) : "");
  }
  return r;
}

// A random request of the kinds that can share a connection.
Request RandomRequest(StressRng& rng, std::uint64_t size) {
  switch (rng.Between(0, 4)) {
    case 0: {
      Request r;
      r.method = "HEAD";
      return r;
    }
    case 1:
      return RandomRange(rng, size);
    case 2: {
      Request r;
      r.conditional = true;
      r.wrong_etag = rng.Chance(0.2);
      return r;
    }
    default:
      return Request{};
  }
}

// ---- Reading one response. ----

// How a client reads.
struct ReadStyle {
  std::size_t recv_bytes = kMaxRecv;
  // The first slow_bytes body bytes, or those of the first slow_for, are
  // read slow_recv_bytes at a time, with slow_pause after each read.
  std::uint64_t slow_bytes = 0;
  std::chrono::milliseconds slow_for{0};
  std::size_t slow_recv_bytes = 2048;
  std::chrono::microseconds slow_pause{0};
  // Once this many body bytes arrived, stop reading for pause_for.
  std::optional<std::uint64_t> pause_at;
  std::chrono::milliseconds pause_for{0};
  // The pause is longer than fanoutd's client_timeout: a cut after it is
  // fanoutd's right.
  bool pause_past_timeout = false;
  // Once this many body bytes arrived, close the connection.
  std::optional<std::uint64_t> close_at;
  bool reset_on_close = false;
};

enum class Ending {
  kComplete,       // the response ended where its framing says
  kClientClosed,   // the client stopped on purpose
  kPeerClosed,     // fanoutd closed the connection (FIN)
  kPeerReset,      // fanoutd reset it (RST)
  kTimedOut,       // nothing arrived for read_timeout
  kSocketError,    // another receive error
  kProtocolError,  // the bytes broke HTTP/1.1 (parser error)
};

const char* EndingName(Ending e) {
  switch (e) {
    case Ending::kComplete: return "complete";
    case Ending::kClientClosed: return "closed by the client";
    case Ending::kPeerClosed: return "connection closed by fanoutd";
    case Ending::kPeerReset: return "connection reset by fanoutd";
    case Ending::kTimedOut: return "timed out";
    case Ending::kSocketError: return "socket error";
    case Ending::kProtocolError: return "protocol error";
  }
  return "?";
}

// A response as received, with its body compared to the origin's bytes.
struct Received {
  explicit Received(bool head_request) : parser(head_request) {}
  ResponseParser parser;
  Ending ending = Ending::kComplete;
  std::string socket_error;
  bool stalled_past_timeout = false;    // the client paused past client_timeout
  bool compared_body = false;           // the body was compared (200 GET or a sound 206)
  std::uint64_t body_origin_offset = 0; // origin offset of body byte 0
  std::optional<std::uint64_t> mismatch_at;  // first body offset that differs
  std::string wrong_bytes;                    // what came there (up to 32 bytes)
  std::uint64_t bytes_in_wrong_pieces = 0;    // of reads that held a wrong byte
  std::uint64_t bytes_compared = 0;
};

// The range a 206's Content-Range names: "bytes a-b/total" (total "*" gives nullopt).
struct ContentRange {
  std::uint64_t first = 0, last = 0;
  std::optional<std::uint64_t> total;
};
std::optional<ContentRange> ParseContentRange(const std::string& value) {
  unsigned long long a, b, t;
  char tail;
  ContentRange cr;
  if (std::sscanf(value.c_str(), "bytes %llu-%llu/%llu%c", &a, &b, &t, &tail) == 3) {
    cr.total = t;
  } else if (std::sscanf(value.c_str(), "bytes %llu-%llu/*%c", &a, &b, &tail) != 2 ||
             value.back() != '*') {
    return std::nullopt;
  }
  if (b < a) return std::nullopt;
  cr.first = a;
  cr.last = b;
  // Round-trip: no leading zeros, spaces or signs that sscanf forgives.
  const std::string again = "bytes " + std::to_string(a) + "-" + std::to_string(b) + "/" +
                            (cr.total ? std::to_string(*cr.total) : "*");
  if (again != value) return std::nullopt;
  return cr;
}

class Reader {
 public:
  Reader(Connection* conn, const UrlFacts& url, const Request& request)
      : conn_(conn), url_(url), request_(request) {}

  // Reads one response (bytes left over from the previous one first).
  void Read(std::string* carry, const ReadStyle& style, Received* out) {
    auto sink = [&](std::uint64_t offset, const char* data, std::size_t n) {
      Check(out, offset, data, n);
    };
    if (!carry->empty()) {
      const std::size_t used = out->parser.Feed(carry->data(), carry->size(), sink);
      carry->erase(0, used);
    }
    std::vector<char> buf(std::max(style.recv_bytes, style.slow_recv_bytes));
    bool paused = false;
    const auto slow_until = Clock::now() + style.slow_for;
    while (out->parser.state() == ResponseParser::State::kHead ||
           out->parser.state() == ResponseParser::State::kBody) {
      const std::uint64_t have = out->parser.head_done() ? out->parser.body_bytes() : 0;
      if (style.close_at && out->parser.head_done() && have >= *style.close_at) {
        conn_->Close(style.reset_on_close);
        out->ending = Ending::kClientClosed;
        return;
      }
      if (style.pause_at && !paused && out->parser.head_done() && have >= *style.pause_at) {
        paused = true;
        std::this_thread::sleep_for(style.pause_for);  // the behaviour, not a synchronisation
        out->stalled_past_timeout = style.pause_past_timeout;
      }
      const bool slow = have < style.slow_bytes && Clock::now() < slow_until;
      std::size_t want = slow ? style.slow_recv_bytes : style.recv_bytes;
      if (style.close_at && out->parser.head_done()) {
        want = static_cast<std::size_t>(
            std::clamp<std::uint64_t>(*style.close_at - have, 1, want));
      }
      const ssize_t n = conn_->Receive(buf.data(), want);
      if (n <= 0) {
        out->ending = n == 0                                           ? Ending::kPeerClosed
                      : errno == ECONNRESET                            ? Ending::kPeerReset
                      : (errno == EAGAIN || errno == EWOULDBLOCK)      ? Ending::kTimedOut
                                                                       : Ending::kSocketError;
        if (n < 0) out->socket_error = std::strerror(errno);
        return;
      }
      const auto got = static_cast<std::size_t>(n);
      const std::size_t used = out->parser.Feed(buf.data(), got, sink);
      if (used < got) carry->append(buf.data() + used, got - used);
      if (slow && style.slow_pause.count() > 0) std::this_thread::sleep_for(style.slow_pause);
    }
    out->ending = out->parser.complete() ? Ending::kComplete : Ending::kProtocolError;
  }

 private:
  // Compares body bytes with the origin's, once the head says where they sit.
  void Check(Received* out, std::uint64_t offset, const char* data, std::size_t n) {
    if (!decided_) {
      decided_ = true;
      const auto& head = out->parser.head();
      if (request_.method == "GET" && head.status == 200) {
        out->compared_body = true;
      } else if (head.status == 206) {
        if (auto cr = ParseContentRange(head.Field("Content-Range").value_or(""))) {
          out->compared_body = true;
          out->body_origin_offset = cr->first;
        }
      }
    }
    if (!out->compared_body) return;
    const std::uint64_t at = out->body_origin_offset + offset;
    out->bytes_compared += n;
    if (OriginServer::MatchesOrigin(url_.path, at, data, n)) return;
    out->bytes_in_wrong_pieces += n;
    if (out->mismatch_at) return;
    for (std::size_t i = 0; i < n; ++i) {
      if (data[i] != OriginServer::OriginByte(url_.path, at + i)) {
        out->mismatch_at = offset + i;
        out->wrong_bytes.assign(data + i, std::min<std::size_t>(n - i, 32));
        break;
      }
    }
  }

  Connection* const conn_;
  const UrlFacts& url_;
  const Request& request_;
  bool decided_ = false;
};

// ---- Judging a response. ----

std::string Hex(std::string_view bytes, std::size_t max) {
  std::string out;
  char buf[4];
  for (std::size_t i = 0; i < bytes.size() && i < max; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned char>(bytes[i]));
    out += buf;
  }
  return out;
}

// What wrong bytes are: zeros, or the origin's bytes from elsewhere (the
// body repeats every kBodyWindowBytes, so the offset is known modulo that).
std::string DescribeWrongBytes(const std::string& path, std::uint64_t origin_offset,
                               const std::string& got) {
  const std::string expected(OriginServer::BodyWindow(path, origin_offset), got.size());
  std::string text = "got " + Hex(got, 16) + ", expected " + Hex(expected, 16);
  if (std::all_of(got.begin(), got.end(), [](char c) { return c == 0; })) {
    return text + " (zeros)";
  }
  if (got.size() < 16) return text;
  constexpr std::uint64_t kPeriod = OriginServer::kBodyWindowBytes;
  for (std::uint64_t candidate = 0; candidate < kPeriod; ++candidate) {
    if (OriginServer::MatchesOrigin(path, candidate, got.data(), got.size())) {
      const std::uint64_t here = origin_offset % kPeriod;
      const std::uint64_t shift = (candidate + kPeriod - here) % kPeriod;
      return text + " (the origin's bytes from offset " + std::to_string(origin_offset) + " + " +
             std::to_string(shift) + " (mod " + std::to_string(kPeriod) + "))";
    }
  }
  return text + " (not the origin's bytes at any offset)";
}

// What a response turned out to be, for the tallies.
enum class Verdict {
  kBad,
  kWhole,
  kClosedByClient,
  kDroppedStalled,  // cut by fanoutd after the client stalled past client_timeout
  kCutAfterFault,
  kUpstreamError,
  kNoBody,
};

struct Judgement {
  Verdict verdict = Verdict::kBad;
  std::string problem;  // set for kBad
};

class Judge {
 public:
  Judge(const UrlFacts& url, const StressOrigin& origin) : url_(url), origin_(origin) {}

  Judgement Of(const Request& req, const Received& got) const {
    const ResponseParser& p = got.parser;
    if (got.ending == Ending::kProtocolError || p.state() == ResponseParser::State::kError) {
      return Bad("malformed response: " + p.error());
    }
    if (!p.head_done()) {
      if (got.ending == Ending::kClientClosed) return {Verdict::kClosedByClient, ""};
      return Unfinished(got, "before a complete response head");
    }
    const auto& head = p.head();
    const int status = head.status;
    // Read after the response was seen: a fault that explains it is counted already.
    if (status == 502 || status == 504) {
      if (!FailureExplained()) {
        return Bad("status " + std::to_string(status) + " without an upstream fault");
      }
      return Framed(got, Verdict::kUpstreamError);
    }
    const bool bypass = head.Field("X-Cache") == "BYPASS";
    if (std::string problem = CheckStatus(req, head.status, bypass); !problem.empty()) {
      return Bad(problem);
    }
    const std::string x_cache = head.Field("X-Cache").value_or("(none)");
    if (url_.no_store) {
      // Fetched by the first request, joined while its head is awaited,
      // then fetched by each request alone; never kept.
      if (x_cache != "MISS" && x_cache != "JOIN" && x_cache != "BYPASS") {
        return Bad("X-Cache: " + x_cache + " for a no-store response (expected MISS, JOIN or BYPASS)");
      }
    } else if (x_cache != "MISS" && x_cache != "JOIN" && x_cache != "HIT") {
      return Bad("X-Cache: " + x_cache + " (expected MISS, JOIN or HIT: nothing here is private, "
                 "and nothing can go stale within max-age=3600)");
    }
    if (status == 416) return CheckUnsatisfiable(req, got, Lengths());
    const std::string etag = head.Field("ETag").value_or("(none)");
    if (etag != url_.etag) return Bad("ETag " + etag + ", the origin's is " + url_.etag);
    if (status == 304) return {Verdict::kNoBody, ""};
    const std::vector<std::uint64_t> lengths = Lengths();
    std::uint64_t expected_bytes = url_.size;
    if (status == 206) {
      const auto cr = ParseContentRange(head.Field("Content-Range").value_or(""));
      if (std::string problem = CheckContentRange(req, cr, lengths); !problem.empty()) {
        return Bad(problem);
      }
      expected_bytes = cr->last - cr->first + 1;
    }
    // A 200 may announce a length the origin lied about; it can then never
    // complete (the check of complete bodies below sees to that).
    if (p.content_length() && *p.content_length() != expected_bytes &&
        !(status == 200 && Contains(lengths, *p.content_length()))) {
      return Bad("Content-Length " + std::to_string(*p.content_length()) + ", expected " +
                 std::to_string(expected_bytes));
    }
    if (req.method == "HEAD") return {Verdict::kNoBody, ""};
    if (got.mismatch_at) {
      const std::uint64_t origin_offset = got.body_origin_offset + *got.mismatch_at;
      return Bad("body byte " + std::to_string(*got.mismatch_at) + " (origin offset " +
                 std::to_string(origin_offset) + ") differs from the origin's: " +
                 DescribeWrongBytes(url_.path, origin_offset, got.wrong_bytes) + "; " +
                 std::to_string(got.bytes_in_wrong_pieces) + " of " +
                 std::to_string(got.bytes_compared) + " bytes came in reads holding wrong bytes");
    }
    if (p.complete()) {
      if (p.body_bytes() != expected_bytes) {
        return Bad("body looks complete with " + std::to_string(p.body_bytes()) +
                   " bytes, expected " + std::to_string(expected_bytes));
      }
      return {Verdict::kWhole, ""};
    }
    if (got.ending == Ending::kClientClosed) return {Verdict::kClosedByClient, ""};
    return Unfinished(got, "after " + std::to_string(p.body_bytes()) + " of " +
                               std::to_string(expected_bytes) + " body bytes");
  }

 private:
  static Judgement Bad(std::string problem) { return {Verdict::kBad, std::move(problem)}; }

  // Read after the response was seen: a fault that explains it is counted already.
  bool FailureExplained() const { return origin_.Faults(url_.path) > 0; }

  static bool Contains(const std::vector<std::uint64_t>& v, std::uint64_t x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  }

  // The lengths fanoutd may have been told: the size, and any
  // Content-Length the origin lied with (a fetch may have announced it
  // before failing).
  std::vector<std::uint64_t> Lengths() const {
    std::vector<std::uint64_t> lengths = {url_.size};
    for (std::uint64_t l : origin_.CountsFor(url_.path).false_lengths) lengths.push_back(l);
    return lengths;
  }

  // A response that ended early without the client's doing: acceptable only
  // as a visible cut after an upstream fault on this URL.
  Judgement Unfinished(const Received& got, const std::string& where) const {
    const std::string how = std::string(EndingName(got.ending)) +
                            (got.socket_error.empty() ? "" : " (" + got.socket_error + ")");
    if (got.ending == Ending::kTimedOut || got.ending == Ending::kSocketError) {
      return Bad(how + " " + where);
    }
    if (got.stalled_past_timeout) return {Verdict::kDroppedStalled, ""};
    if (!FailureExplained()) {
      return Bad(how + " " + where + ", and the origin injected no fault on this URL");
    }
    return {Verdict::kCutAfterFault, ""};
  }

  // An error page's body is not the origin's; it must still be framed whole.
  Judgement Framed(const Received& got, Verdict verdict) const {
    if (got.parser.complete() || got.ending == Ending::kClientClosed) return {verdict, ""};
    return Unfinished(got, "inside an error page");
  }

  // bypass: the origin's own answer, relayed (the stress origin ignores
  // Range, so a range gets the whole body).
  std::string CheckStatus(const Request& req, int status, bool bypass) const {
    std::vector<int> allowed;
    if (req.method == "HEAD") {
      allowed = {200};
    } else if (req.conditional) {
      allowed = req.wrong_etag ? std::vector<int>{200} : std::vector<int>{304, 200};
    } else if (req.range_kind == RangeKind::kNone || req.range_kind == RangeKind::kSeveral) {
      allowed = {200};
    } else {
      for (std::uint64_t length : Lengths()) allowed.push_back(req.Resolve(length) ? 206 : 416);
      // Without a known length a range may wait for the end of the fetch;
      // if that takes longer than the read timeout, the whole body comes.
      if (url_.chunked || bypass) allowed.push_back(200);
    }
    if (std::find(allowed.begin(), allowed.end(), status) != allowed.end()) return "";
    std::sort(allowed.begin(), allowed.end());
    allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
    std::string list;
    for (int s : allowed) list += (list.empty() ? "" : " or ") + std::to_string(s);
    return "status " + std::to_string(status) + ", expected " + list;
  }

  std::string CheckContentRange(const Request& req, const std::optional<ContentRange>& cr,
                                const std::vector<std::uint64_t>& lengths) const {
    if (!cr) return "206 without a valid Content-Range";
    if (!cr->total) {
      // "bytes a-b/*": only while the length is unknown, for a closed range
      // already written: exactly the bytes asked for.
      if (url_.chunked && req.first && req.last && *req.last < url_.size &&
          cr->first == *req.first && cr->last == *req.last) {
        return "";
      }
      return "Content-Range " + Text(*cr) + " for Range: " + req.range;
    }
    if (!Contains(lengths, *cr->total)) {
      return "Content-Range " + Text(*cr) + ", but the object has " + std::to_string(url_.size) +
             " bytes";
    }
    const auto want = req.Resolve(*cr->total);
    if (!want || want->first != cr->first || want->second != cr->last) {
      return "Content-Range " + Text(*cr) + " for Range: " + req.range;
    }
    return "";
  }

  static std::string Text(const ContentRange& cr) {
    return "bytes " + std::to_string(cr.first) + "-" + std::to_string(cr.last) + "/" +
           (cr.total ? std::to_string(*cr.total) : "*");
  }

  Judgement CheckUnsatisfiable(const Request& req, const Received& got,
                               const std::vector<std::uint64_t>& lengths) const {
    const std::string cr = got.parser.head().Field("Content-Range").value_or("(none)");
    for (std::uint64_t length : lengths) {
      if (cr == "bytes */" + std::to_string(length) && !req.Resolve(length)) {
        return Framed(got, Verdict::kNoBody);
      }
    }
    return Bad("416 with Content-Range " + cr + " for Range: " + req.range + " (the object has " +
               std::to_string(url_.size) + " bytes)");
  }

  const UrlFacts& url_;
  const StressOrigin& origin_;
};

// ---- Running a client's exchange. ----

class Client {
 public:
  Client(const ClientEnv& env, const UrlFacts& url, std::string behaviour)
      : env_(env), url_(url), behaviour_(std::move(behaviour)), judge_(url, *env.origin) {}

  bool Connect(int receive_buffer = 0) {
    ++env_.run->clients;
    if (conn_.Open(env_.port, receive_buffer, env_.read_timeout)) return true;
    return Fail(nullptr, "cannot connect: " + conn_.error());
  }

  // Sends the requests in one write (pipelined), then reads each answer.
  bool Pipeline(std::vector<Request> requests, const ReadStyle& style) {
    std::string wire;
    for (auto& r : requests) {
      Prepare(&r);
      wire += r.Wire(Target());
    }
    if (!Send(wire, requests.size())) return false;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      if (!ReadAndJudge(requests[i], style, i + 1 == requests.size())) return ok_;
    }
    return ok_;
  }

  // Sends one request and reads its answer; false when the connection is
  // done (it failed, or ended early).
  bool Exchange(Request request, const ReadStyle& style, bool last) {
    Prepare(&request);
    if (!Send(request.Wire(Target()), 1)) return false;
    return ReadAndJudge(request, style, last);
  }

  // Sends a request and closes without reading.
  void SendAndClose(Request request, bool reset) {
    Prepare(&request);
    if (Send(request.Wire(Target()), 1)) {
      conn_.Close(reset);
      ++env_.run->closed_by_client;
    }
  }

  bool ok() const { return ok_; }
  // The last response's body came whole.
  bool whole() const { return whole_; }

 private:
  // The next request's target: the path, or every other time the
  // absolute URL a proxy client sends.
  std::string Target() {
    if (env_.proxy_authority.empty() || ++targets_ % 2 == 1) return url_.path;
    return "http://" + env_.proxy_authority + url_.path;
  }

  void Prepare(Request* r) {
    if (r->conditional) r->if_none_match = r->wrong_etag ? "\"not-the-etag\"" : seen_etag_;
  }

  bool Send(const std::string& wire, std::size_t requests) {
    env_.run->requests += requests;
    if (conn_.Send(wire)) return true;
    return Fail(nullptr, "cannot send the request: " + conn_.error());
  }

  bool ReadAndJudge(const Request& request, const ReadStyle& style, bool last) {
    whole_ = false;
    Received got(request.method == "HEAD");
    Reader(&conn_, url_, request).Read(&carry_, style, &got);
    ++env_.run->responses;
    env_.run->bytes_checked += got.bytes_compared;
    const Judgement j = judge_.Of(request, got);
    if (got.parser.head_done()) {
      const auto& head = got.parser.head();
      if (auto etag = head.Field("ETag")) seen_etag_ = *etag;
      last_head_ = " [after a " + std::to_string(head.status) + " X-Cache " +
                   head.Field("X-Cache").value_or("-") + "]";
    }
    switch (j.verdict) {
      case Verdict::kBad:
        return Fail(&request, j.problem, Context(got));
      case Verdict::kWhole:
        ++env_.run->complete_bodies;
        whole_ = true;
        break;
      case Verdict::kClosedByClient:
        ++env_.run->closed_by_client;
        return false;
      case Verdict::kDroppedStalled:
        ++env_.run->dropped_stalled;
        return false;
      case Verdict::kCutAfterFault:
        ++env_.run->cut_after_fault;
        return false;
      case Verdict::kUpstreamError:
        ++env_.run->upstream_errors;
        break;
      case Verdict::kNoBody:
        break;
    }
    const int status = got.parser.head().status;
    if (status == 304) ++env_.run->not_modified;
    if (status == 206 || status == 416) ++env_.run->ranges;
    if (got.ending != Ending::kComplete) return false;
    if (last && request.close) return ExpectClose(request);
    return true;
  }

  // After the last response of a connection the client asked to close:
  // nothing more may come (a body after a HEAD or a 304, say), then EOF.
  bool ExpectClose(const Request& request) {
    if (!carry_.empty()) {
      return Fail(&request, std::to_string(carry_.size()) + " bytes after the last response: " +
                                Quote(carry_), last_head_);
    }
    char buf[4096];
    const ssize_t n = conn_.Receive(buf, sizeof buf);
    if (n > 0) {
      return Fail(&request,
                  "bytes after the last response: " +
                      Quote(std::string_view(buf, static_cast<std::size_t>(n))),
                  last_head_);
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return Fail(&request,
                  "connection still open " + std::to_string(env_.read_timeout.count()) +
                      " ms after the last response to 'Connection: close'",
                  last_head_);
    }
    return true;  // FIN (or RST after the response: nothing was left unread)
  }

  std::string Context(const Received& got) const {
    std::string c = " [" + std::string(EndingName(got.ending));
    if (got.parser.head_done()) {
      const auto& h = got.parser.head();
      c += "; status " + std::to_string(h.status) + " X-Cache " +
           h.Field("X-Cache").value_or("-") + ", " + std::to_string(got.parser.body_bytes()) +
           " body bytes";
    }
    c += "; object " + std::to_string(url_.size) + " bytes " +
         (url_.chunked ? "chunked" : "with length") + ", origin faults on it: " +
         std::to_string(env_.origin->Faults(url_.path)) + "]";
    return c;
  }

  // Records a failure of request (null: of the connection). Its kind is
  // the method and the problem: the same for every client that met it.
  bool Fail(const Request* request, const std::string& problem, const std::string& context = "") {
    ok_ = false;
    const std::string what = (request ? request->Describe() + ": " : "") + problem + context;
    const std::string kind = (request ? request->method + ": " : "") + problem;
    env_.run->Fail(url_.path, env_.label + " " + behaviour_, what, kind);
    return false;
  }

  const ClientEnv& env_;
  const UrlFacts& url_;
  const std::string behaviour_;
  const Judge judge_;
  Connection conn_;
  std::string carry_;  // bytes received past the current response
  std::string seen_etag_ = url_.etag;
  std::uint64_t targets_ = 0;  // requests given a target so far
  std::string last_head_;  // the last response's status and X-Cache, for reports
  bool ok_ = true;
  bool whole_ = false;
};

std::uint64_t BodyLength(const Request& r, const UrlFacts& url) {
  if (r.range_kind != RangeKind::kNone && r.range_kind != RangeKind::kSeveral) {
    if (auto range = r.Resolve(url.size)) return range->second - range->first + 1;
  }
  return url.size;
}

ReadStyle FullSpeed(StressRng& rng) {
  ReadStyle s;
  s.recv_bytes = static_cast<std::size_t>(rng.Between(4096, kMaxRecv));
  return s;
}

void LastClose(std::vector<Request>& requests) { requests.back().close = true; }

}  // namespace

const char* BehaviourName(Behaviour behaviour) {
  switch (behaviour) {
    case Behaviour::kFullGet: return "full-get";
    case Behaviour::kRange: return "range";
    case Behaviour::kHead: return "head";
    case Behaviour::kKeepAlive: return "keep-alive";
    case Behaviour::kPipeline: return "pipeline";
    case Behaviour::kSlowReader: return "slow-reader";
    case Behaviour::kStopAndResume: return "stop-and-resume";
    case Behaviour::kCloseMidBody: return "close-mid-body";
    case Behaviour::kConditional: return "conditional";
    case Behaviour::kStallPastTimeout: return "stall-past-timeout";
  }
  return "?";
}

bool RunClient(const ClientEnv& env, const UrlFacts& url, Behaviour behaviour, StressRng rng) {
  Client client(env, url, BehaviourName(behaviour));
  switch (behaviour) {
    case Behaviour::kFullGet: {
      Request r;
      r.close = true;
      return client.Connect() && client.Exchange(r, FullSpeed(rng), true) && client.ok();
    }
    case Behaviour::kRange: {
      Request r = RandomRange(rng, url.size);
      r.close = true;
      return client.Connect() && client.Exchange(r, FullSpeed(rng), true) && client.ok();
    }
    case Behaviour::kHead: {
      Request r;
      r.method = "HEAD";
      r.close = true;
      return client.Connect() && client.Exchange(r, FullSpeed(rng), true) && client.ok();
    }
    case Behaviour::kKeepAlive: {
      std::vector<Request> requests(rng.Between(2, 5));
      for (auto& r : requests) r = RandomRequest(rng, url.size);
      LastClose(requests);
      if (!client.Connect()) return false;
      for (std::size_t i = 0; i < requests.size(); ++i) {
        if (!client.Exchange(requests[i], FullSpeed(rng), i + 1 == requests.size())) break;
        if (rng.Chance(0.3)) {
          std::this_thread::sleep_for(std::chrono::milliseconds(rng.Between(1, 200)));
        }
      }
      return client.ok();
    }
    case Behaviour::kPipeline: {
      std::vector<Request> requests(rng.Between(2, 3));
      for (auto& r : requests) r = RandomRequest(rng, url.size);
      LastClose(requests);
      return client.Connect() && client.Pipeline(requests, FullSpeed(rng));
    }
    case Behaviour::kSlowReader: {
      Request r = rng.Chance(0.25) ? RandomRange(rng, url.size) : Request{};
      r.close = true;
      ReadStyle s;
      s.recv_bytes = static_cast<std::size_t>(rng.Between(512, 16384));
      s.slow_bytes = std::min<std::uint64_t>(BodyLength(r, url), kMaxSlowBytes);
      s.slow_recv_bytes = static_cast<std::size_t>(rng.Between(256, 4096));
      s.slow_pause = std::chrono::microseconds(rng.Between(200, 5000));
      s.slow_for = std::chrono::milliseconds(rng.Between(200, 3000));
      const int buffer = static_cast<int>(rng.Between(2048, 16384));
      return client.Connect(buffer) && client.Exchange(r, s, true) && client.ok();
    }
    case Behaviour::kStopAndResume: {
      Request r;
      r.close = true;
      ReadStyle s = FullSpeed(rng);
      s.pause_at = rng.Between(0, url.size);
      s.pause_for = std::chrono::milliseconds(rng.Between(100, kMaxPauseMs));
      return client.Connect(static_cast<int>(rng.Between(0, 1) * 16384)) &&
             client.Exchange(r, s, true) && client.ok();
    }
    case Behaviour::kCloseMidBody: {
      Request r = rng.Chance(0.3) ? RandomRange(rng, url.size) : Request{};
      r.close = rng.Chance(0.5);
      const bool reset = rng.Chance(0.5);
      if (!client.Connect()) return false;
      if (rng.Chance(0.2)) {
        client.SendAndClose(r, reset);  // gone before the head
        return client.ok();
      }
      ReadStyle s = FullSpeed(rng);
      s.close_at = rng.Between(0, BodyLength(r, url));
      s.reset_on_close = reset;
      return client.Exchange(r, s, true) && client.ok();
    }
    case Behaviour::kStallPastTimeout: {
      Request r;
      r.close = true;
      ReadStyle s = FullSpeed(rng);
      s.pause_at = rng.Between(0, url.size);
      s.pause_for = env.daemon_client_timeout + std::chrono::milliseconds(rng.Between(500, 1500));
      s.pause_past_timeout = true;
      return client.Connect(static_cast<int>(rng.Between(0, 1) * 16384)) &&
             client.Exchange(r, s, true) && client.ok();
    }
    case Behaviour::kConditional: {
      Request head;
      head.method = "HEAD";
      Request get;
      get.conditional = true;
      get.wrong_etag = rng.Chance(0.2);
      get.close = true;
      return client.Connect() && client.Exchange(head, FullSpeed(rng), false) &&
             client.Exchange(get, FullSpeed(rng), true) && client.ok();
    }
  }
  return false;
}

bool GetAndCloseAt(const ClientEnv& env, const UrlFacts& url, std::uint64_t close_at,
                   bool reset, bool* whole) {
  Client client(env, url,
                close_at < url.size ? "get-and-close-at-" + std::to_string(close_at) : "full-get");
  Request r;
  r.close = true;
  ReadStyle s;
  if (close_at < url.size) s.close_at = close_at;
  s.reset_on_close = reset;
  const bool ok = client.Connect() && client.Exchange(r, s, true) && client.ok();
  if (whole != nullptr) *whole = ok && client.whole();
  return ok;
}

namespace {

// POSTs target to the admin port; true if answered with one of `accepted`.
bool AdminPost(const ClientEnv& env, int admin_port, const std::string& target,
               const std::string& about, std::initializer_list<int> accepted) {
  auto fail = [&](const std::string& what) {
    env.run->Fail(about, env.label + " admin POST " + target, what);
    return false;
  };
  Connection conn;
  if (!conn.Open(admin_port, 0, env.read_timeout)) return fail(conn.error());
  const std::string wire = "POST " + target +
                           " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
                           "Connection: close\r\n\r\n";
  if (!conn.Send(wire)) return fail(conn.error());
  ResponseParser parser(false);
  char buf[4096];
  while (!parser.complete() && parser.state() != ResponseParser::State::kError) {
    const ssize_t n = conn.Receive(buf, sizeof buf);
    if (n <= 0) return fail("the answer ended early");
    parser.Feed(buf, static_cast<std::size_t>(n), nullptr);
  }
  if (!parser.complete()) return fail("malformed answer: " + parser.error());
  const int status = parser.head().status;
  for (int ok : accepted) {
    if (status == ok) return true;
  }
  return fail("answered " + std::to_string(status));
}

}  // namespace

bool PurgeThroughAdmin(const ClientEnv& env, int admin_port, const std::string& path) {
  ++env.run->purges;
  return AdminPost(env, admin_port, "/purge?url=" + path, path, {200, 404});
}

bool PurgeAllThroughAdmin(const ClientEnv& env, int admin_port) {
  ++env.run->purges;
  return AdminPost(env, admin_port, "/purge-all", "(all)", {200});
}

}  // namespace fanout::stress
