#include "server/plain_http_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/header_text.h"

namespace fanout {
namespace {

// Large reads: at 100 MB/s a burst is often hundreds of KiB.
constexpr std::size_t kReadBufferBytes = 256 * 1024;

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

PlainHttpClient::Result Fail(PlainHttpClient::Error error, std::string message) {
  return PlainHttpClient::Result{error, std::move(message)};
}

}  // namespace

PlainHttpClient::PlainHttpClient(std::string host, int port, Options options)
    : host_(std::move(host)), port_(port), options_(options) {}

PlainHttpClient::~PlainHttpClient() {
  const int fd = fd_.exchange(-1);
  if (fd >= 0) ::close(fd);
  for (int spent : spent_fds_) ::close(spent);
}

void PlainHttpClient::Stop() {
  stopped_ = true;
  // Wakes a Get blocked in connect's poll, send or recv. Descriptors stay
  // open until the client is destroyed, so this never touches another
  // socket.
  const int fd = fd_.load();
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

PlainHttpClient::Result PlainHttpClient::Connect() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(port_);
  if (const int rc = ::getaddrinfo(host_.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Fail(Error::kConnect, "cannot resolve " + host_ + ": " + ::gai_strerror(rc));
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.connect_timeout;
  Result last = Fail(Error::kConnect, "no address for " + host_);
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            a->ai_protocol);
    if (fd < 0) continue;
    if (const int old = fd_.exchange(fd); old >= 0) spent_fds_.push_back(old);
    if (stopped_) break;
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLOUT, 0};
      const int ready = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
      if (ready == 0) {
        last = Fail(Error::kConnectTimeout, "connection timed out");
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = ready < 0 ? -1 : (err == 0 ? 0 : -1);
      if (err != 0) errno = err;
    }
    if (rc != 0) {
      last = Fail(Error::kConnect, std::string("connect: ") + std::strerror(errno));
      continue;
    }
    // Blocking from here on: reads and writes wait in the kernel, bounded
    // by the socket timeouts.
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    const int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    const timeval tv = ToTimeval(options_.read_timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ::freeaddrinfo(found);
    return {};
  }
  ::freeaddrinfo(found);
  if (stopped_) return Fail(Error::kCancelled, "fanoutd is stopping");
  return last;
}

PlainHttpClient::Result PlainHttpClient::SendAll(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t w = ::send(fd_.load(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (stopped_) return Fail(Error::kCancelled, "fanoutd is stopping");
      return Fail(Error::kWrite, std::string("sending the request: ") + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<std::size_t>(w));
  }
  return {};
}

long PlainHttpClient::ReadMore(std::size_t kept, Result* error) {
  for (;;) {
    const ssize_t r = ::recv(fd_.load(), buffer_.data() + kept, buffer_.size() - kept, 0);
    if (r > 0 && !stopped_) return static_cast<long>(r);
    if (r < 0 && errno == EINTR) continue;
    if (stopped_) {
      *error = Fail(Error::kCancelled, "fanoutd is stopping");
      return -1;
    }
    if (r == 0) return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      *error = Fail(Error::kReadTimeout, "read timed out");
    } else {
      *error = Fail(Error::kRead, std::string("reading the response: ") + std::strerror(errno));
    }
    return -1;
  }
}

PlainHttpClient::Result PlainHttpClient::Get(
    const std::string& target, const std::vector<std::pair<std::string, std::string>>& headers,
    const HeadHandler& on_head, const BodyHandler& on_body) {
  buffer_.resize(kReadBufferBytes);
  if (Result r = Connect(); !r.ok()) return r;

  std::string request = "GET " + target + " HTTP/1.1\r\n";
  bool has_host = false;
  for (const auto& [name, value] : headers) {
    if (EqualsIgnoreCase(name, "Connection")) continue;  // this client's to say
    has_host = has_host || EqualsIgnoreCase(name, "Host");
    request.append(name).append(": ").append(value).append("\r\n");
  }
  if (!has_host) {
    const bool v6 = host_.find(':') != std::string::npos;
    request.append("Host: ").append(v6 ? "[" + host_ + "]" : host_);
    if (port_ != 80) request.append(":").append(std::to_string(port_));
    request.append("\r\n");
  }
  request.append("Connection: close\r\n\r\n");
  if (Result r = SendAll(request); !r.ok()) return r;

  std::size_t have = 0;
  for (;;) {
    ParsedResponseHead parsed = ParseResponseHead(std::string_view(buffer_.data(), have));
    if (parsed.state == ParsedResponseHead::State::kMalformed) {
      return Fail(Error::kMalformed, "malformed response head: " + parsed.problem);
    }
    if (parsed.state == ParsedResponseHead::State::kIncomplete) {
      if (have == buffer_.size()) return Fail(Error::kMalformed, "response head too large");
      Result error;
      const long n = ReadMore(have, &error);
      if (n < 0) return error;
      if (n == 0) return Fail(Error::kRead, "connection closed before the response head");
      have += static_cast<std::size_t>(n);
      continue;
    }
    if (parsed.head.status < 200 && parsed.head.status != 101) {
      // An interim response (100, 103): the real one follows.
      std::memmove(buffer_.data(), buffer_.data() + parsed.size, have - parsed.size);
      have -= parsed.size;
      continue;
    }
    const auto framing = FramingOf(parsed.head);
    if (!framing) {
      return Fail(Error::kMalformed, "malformed response: invalid or conflicting Content-Length");
    }
    if (framing->kind != BodyFraming::Kind::kLength) {
      // The length is the transfer's, not the representation's, unless
      // the body is delimited by it.
      std::erase_if(parsed.head.headers,
                    [](const auto& h) { return EqualsIgnoreCase(h.first, "Content-Length"); });
    }
    if (!on_head(parsed.head)) return Fail(Error::kCancelled, "response not wanted");
    return ReadBody(*framing, parsed.size, have, on_body);
  }
}

PlainHttpClient::Result PlainHttpClient::ReadBody(const BodyFraming& framing, std::size_t start,
                                                  std::size_t end, const BodyHandler& on_body) {
  using Kind = BodyFraming::Kind;
  const Result cancelled = Fail(Error::kCancelled, "body not wanted");
  if (framing.kind == Kind::kNone) return {};
  std::uint64_t received = 0;
  ChunkedDecoder chunks;
  std::vector<std::string_view> pieces;
  // Hands over buffer_[start, end); true while the body goes on.
  auto deliver = [&](std::size_t from, std::size_t to, Result* outcome) -> bool {
    const std::string_view bytes(buffer_.data() + from, to - from);
    switch (framing.kind) {
      case Kind::kLength: {
        const auto n = static_cast<std::size_t>(
            std::min<std::uint64_t>(bytes.size(), framing.length - received));
        received += n;
        if (n > 0 && !on_body(bytes.data(), n)) *outcome = cancelled;
        else *outcome = {};
        return outcome->ok() && received < framing.length;
      }
      case Kind::kChunked: {
        pieces.clear();
        std::size_t used = 0;
        const auto state = chunks.Feed(bytes, &pieces, &used);
        *outcome = {};
        for (std::string_view piece : pieces) {
          if (!on_body(piece.data(), piece.size())) {
            *outcome = cancelled;
            return false;
          }
        }
        if (state == ChunkedDecoder::Result::kMalformed) {
          *outcome = Fail(Error::kMalformed, "malformed chunked body");
        }
        return state == ChunkedDecoder::Result::kMore;
      }
      default:
        *outcome = (bytes.empty() || on_body(bytes.data(), bytes.size())) ? Result{} : cancelled;
        return outcome->ok();
    }
  };
  Result outcome;
  bool more = framing.kind == Kind::kLength && framing.length == 0
                  ? false
                  : deliver(start, end, &outcome);
  while (more) {
    Result error;
    const long n = ReadMore(0, &error);
    if (n < 0) return error;
    if (n == 0) {
      if (framing.kind == Kind::kUntilClose) return {};
      return Fail(Error::kRead, framing.kind == Kind::kLength
                                    ? "connection closed after " + std::to_string(received) +
                                          " of " + std::to_string(framing.length) + " bytes"
                                    : "connection closed inside the chunked body");
    }
    more = deliver(0, static_cast<std::size_t>(n), &outcome);
  }
  return outcome;
}

}  // namespace fanout
