#include "server/connection_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

namespace fanout {
namespace {

thread_local ConnectionStream* t_current = nullptr;

// Writes below this size are held back and sent with the next one.
constexpr std::size_t kCoalesceBytes = 16 * 1024;
constexpr std::size_t kReadBufferBytes = 8 * 1024;
constexpr std::chrono::microseconds kReadSlice(100000);
constexpr std::size_t kSendBufferBytes = 512 * 1024;

void AddressOf(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  const int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len)
                      : ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (rc != 0) return;
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
    port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
    port = ntohs(a->sin6_port);
  }
  ip = text;
}

}  // namespace

ConnectionStream::ConnectionStream(int fd, std::chrono::microseconds read_timeout,
                                   std::chrono::microseconds write_timeout)
    : fd_(fd), read_timeout_(read_timeout), write_timeout_(write_timeout) {
  // A send that cannot progress for write_timeout gives up, so
  // a client that stops reading cannot hold its thread forever.
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(write_timeout.count() / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(write_timeout.count() % 1000000);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  // A fixed send buffer instead of the kernel's autotuning, which lets every
  // connection queue megabytes: 500 slow clients then pushed the host's TCP
  // memory into pressure (TcpExtTCPMemoryPressures), stalling every other
  // connection for about a second. The kernel doubles the value given.
  const int sndbuf = static_cast<int>(kSendBufferBytes);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  // Waiting reads block in recv itself (no poll(2) first), in slices, so a
  // waiting connection still notices the server stopping.
  timeval slice{};
  slice.tv_usec = static_cast<suseconds_t>(kReadSlice.count());
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &slice, sizeof(slice));
}

ConnectionStream::~ConnectionStream() = default;

ConnectionStream* ConnectionStream::Current() { return t_current; }

ConnectionStream::Scope::Scope(ConnectionStream* stream) { t_current = stream; }
ConnectionStream::Scope::~Scope() { t_current = nullptr; }

bool ConnectionStream::PollFor(short events, std::chrono::microseconds timeout) const {
  pollfd p{fd_, events, 0};
  for (;;) {
    const int rc = ::poll(&p, 1, static_cast<int>((timeout.count() + 999) / 1000));
    if (rc < 0 && errno == EINTR) continue;
    return rc > 0 && (p.revents & (events | POLLHUP | POLLERR)) != 0;
  }
}

bool ConnectionStream::ReadAhead(int flags) {
  if (read_buffer_.empty()) read_buffer_.resize(kReadBufferBytes);
  ssize_t n;
  do {
    n = ::recv(fd_, read_buffer_.data(), read_buffer_.size(), flags);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) {
    peer_closed_ = n == 0;
    read_failed_ = n < 0 && errno != EAGAIN && errno != EWOULDBLOCK;
    return false;
  }
  read_pos_ = 0;
  read_end_ = static_cast<std::size_t>(n);
  return true;
}

namespace {

// Whether the bytes of a head read so far, of which the first `scanned`
// were looked at before, may now be enough for the parser to decide: a
// blank line, a bare line end, or a request line past its limit. A client
// sending a byte at a time then costs a scan of its new bytes, not a parse
// of the whole head, per read.
bool ParserMayDecide(std::string_view bytes, std::size_t scanned) {
  const std::size_t from = scanned < 3 ? 0 : scanned - 3;
  const std::string_view fresh = bytes.substr(from);
  if (fresh.find("\r\n\r\n") != std::string_view::npos) return true;
  for (std::size_t i = from; i < bytes.size(); ++i) {
    if (bytes[i] == '\n' && (i == 0 || bytes[i - 1] != '\r')) return true;
    if (bytes[i] == '\r' && i + 1 < bytes.size() && bytes[i + 1] != '\n') return true;
  }
  return bytes.size() > kMaxRequestLine && bytes.find("\r\n") == std::string_view::npos;
}

}  // namespace

bool ConnectionStream::WaitForInput() {
  if (HasBufferedInput() || ReadAhead(MSG_DONTWAIT)) return true;
  if (peer_closed_ || read_failed_) return false;
  // The peer may be waiting for what we hold back (e.g. 100 Continue).
  if (!Flush()) return false;
  const auto deadline = std::chrono::steady_clock::now() + read_timeout_;
  while (!ReadAhead(0)) {
    if (peer_closed_ || read_failed_ || std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
  }
  return true;
}

ConnectionStream::HeadRead ConnectionStream::ReadRequestHead(
    std::chrono::steady_clock::time_point deadline, RequestHead* head, HeadParse* parse) {
  // The common case: the whole head is buffered already, parsed once.
  std::size_t scanned = 0;
  for (;;) {
    const std::string_view buffered = BufferedInput();
    if (ParserMayDecide(buffered, scanned)) {
      *parse = ParseRequestHead(buffered.substr(0, kMaxRequestHead), head);
      if (parse->state != HeadParse::State::kIncomplete) return HeadRead::kParsed;
    }
    scanned = buffered.size();
    if (buffered.size() >= kMaxRequestHead) return HeadRead::kTooLarge;
    if (peer_closed_ || read_failed_) return HeadRead::kClosed;
    if (std::chrono::steady_clock::now() >= deadline) return HeadRead::kTimedOut;
    // Room after the buffered bytes, moved to the front.
    if (read_pos_ > 0) {
      std::memmove(read_buffer_.data(), read_buffer_.data() + read_pos_, read_end_ - read_pos_);
      read_end_ -= read_pos_;
      read_pos_ = 0;
    }
    if (read_buffer_.size() < read_end_ + 4096) {
      read_buffer_.resize(std::min(kMaxRequestHead + 4096, 2 * read_buffer_.size() + 4096));
    }
    // Each recv waits at most one read slice (SO_RCVTIMEO), so the
    // deadline is checked at least that often.
    const ssize_t n = ::recv(fd_, read_buffer_.data() + read_end_,
                             read_buffer_.size() - read_end_, 0);
    if (n > 0) read_end_ += static_cast<std::size_t>(n);
    else if (n == 0) peer_closed_ = true;
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) read_failed_ = true;
  }
}

ssize_t ConnectionStream::read(char* ptr, size_t size) {
  if (size == 0) return 0;
  if (!WaitForInput()) return peer_closed_ ? 0 : -1;
  const std::size_t n = std::min(size, read_end_ - read_pos_);
  std::memcpy(ptr, read_buffer_.data() + read_pos_, n);
  read_pos_ += n;
  return static_cast<ssize_t>(n);
}

bool ConnectionStream::WriteAll(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t w = write(bytes.data(), bytes.size());
    if (w <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(w));
  }
  return true;
}

std::string ConnectionStream::RemoteAddress() const {
  std::string ip;
  int port = 0;
  get_remote_ip_and_port(ip, port);
  return ip;
}

bool ConnectionStream::SendAll(const char* data, std::size_t n, int flags) {
  while (n > 0) {
    const ssize_t w = ::send(fd_, data, n, flags | MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool ConnectionStream::Flush() {
  if (pending_.empty()) return true;
  const bool ok = SendAll(pending_.data(), pending_.size(), 0);
  pending_.clear();
  return ok;
}

ConnectionStream::FlushResult ConnectionStream::FlushWithoutBlocking() {
  std::size_t sent = 0;
  FlushResult result = FlushResult::kAllSent;
  while (sent < pending_.size()) {
    const ssize_t w = ::send(fd_, pending_.data() + sent, pending_.size() - sent,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      result = FlushResult::kWouldBlock;
      break;
    }
    if (w <= 0) return FlushResult::kFailed;
    sent += static_cast<std::size_t>(w);
  }
  pending_.erase(0, sent);
  return result;
}

ssize_t ConnectionStream::write(const char* ptr, size_t size) {
  if (on_event_loop_ || pending_.size() + size <= kCoalesceBytes) {
    pending_.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  // Held-back bytes and this write leave in one writev; returns how much of
  // this write was sent (the caller writes the rest again).
  while (!pending_.empty()) {
    iovec iov[2] = {{pending_.data(), pending_.size()},
                    {const_cast<char*>(ptr), size}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    ssize_t w;
    do {
      w = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    if (w <= 0) {
      if (w < 0 && errno == EFAULT) file_short_ = true;
      return -1;
    }
    const auto sent = static_cast<std::size_t>(w);
    if (sent < pending_.size()) {
      pending_.erase(0, sent);
      continue;
    }
    const std::size_t of_this = sent - pending_.size();
    pending_.clear();
    return static_cast<ssize_t>(of_this);
  }
  ssize_t w;
  do {
    w = ::send(fd_, ptr, size, MSG_NOSIGNAL);
  } while (w < 0 && errno == EINTR);
  if (w < 0 && errno == EFAULT) file_short_ = true;
  return w <= 0 ? -1 : w;
}

void ConnectionStream::get_remote_ip_and_port(std::string& ip, int& port) const {
  if (remote_port_ < 0) AddressOf(fd_, /*peer=*/true, remote_ip_, remote_port_);
  ip = remote_ip_;
  port = remote_port_;
}

void ConnectionStream::get_local_ip_and_port(std::string& ip, int& port) const {
  if (local_port_ < 0) AddressOf(fd_, /*peer=*/false, local_ip_, local_port_);
  ip = local_ip_;
  port = local_port_;
}

}  // namespace fanout
