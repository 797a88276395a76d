#include "server/upstream_connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace fanout {
namespace {

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

void SetTimeouts(int fd, std::chrono::milliseconds timeout) {
  const timeval tv = ToTimeval(timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

UpstreamConnection::Result Fail(UpstreamConnection::Error error, std::string message) {
  return UpstreamConnection::Result{error, std::move(message)};
}

bool IsIpLiteral(const std::string& host) {
  in6_addr addr;
  return ::inet_pton(AF_INET, host.c_str(), &addr) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

}  // namespace

std::string UpstreamOrigin::Key() const {
  std::string key = scheme + "://" + host + ":" + std::to_string(port);
  if (is_tls()) key += (tls.verify ? " verify ca=" : " noverify ca=") + tls.ca_file;
  return key;
}

UpstreamConnection::UpstreamConnection() = default;

UpstreamConnection::~UpstreamConnection() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  const int fd = fd_.exchange(-1);
  if (fd >= 0) ::close(fd);
}

void UpstreamConnection::Shutdown() {
  // Set before the descriptor is looked at, and Connect stores the
  // descriptor before it looks at the flag: one of the two sees the other.
  shut_ = true;
  const int fd = fd_.load();
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

UpstreamConnection::Result UpstreamConnection::Connect(const UpstreamOrigin& origin,
                                                       const TlsClientContext* tls,
                                                       std::chrono::milliseconds connect_timeout,
                                                       std::chrono::milliseconds read_timeout) {
  const std::string& host = origin.host;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(origin.port);
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Fail(Error::kConnect, "cannot resolve " + host + ": " + ::gai_strerror(rc));
  }
  const auto deadline = std::chrono::steady_clock::now() + connect_timeout;
  Result last = Fail(Error::kConnect, "no address for " + host);
  // Sockets of addresses that failed: closed only once this is over, so
  // a Shutdown() racing with the next attempt never hits a descriptor
  // number reused meanwhile.
  std::vector<int> spent;
  bool connected = false;
  for (addrinfo* a = found; a != nullptr && !connected; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            a->ai_protocol);
    if (fd < 0) continue;
    if (const int old = fd_.exchange(fd); old >= 0) spent.push_back(old);
    if (shut_) break;
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
    connected = true;
  }
  ::freeaddrinfo(found);
  for (int fd : spent) ::close(fd);
  if (shut_) return Fail(Error::kCancelled, "fanoutd is stopping");
  if (!connected) return last;

  const int fd = fd_.load();
  // Blocking from here on: reads and writes wait in the kernel, bounded
  // by the socket timeouts.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  if (!origin.is_tls()) {
    SetTimeouts(fd, read_timeout);
    return {};
  }

  // The handshake is part of connecting: bounded by connect_timeout.
  SetTimeouts(fd, connect_timeout);
  const std::string where = host + ":" + port;
  ERR_clear_error();
  ssl_ = SSL_new(tls->ctx());
  if (ssl_ == nullptr || SSL_set_fd(ssl_, fd) != 1) {
    return Fail(Error::kConnect, "TLS setup for " + where + " failed: " +
                                     TakeOpenSslError("out of memory"));
  }
  const bool ip = IsIpLiteral(host);
  // SNI carries host names only, never addresses (RFC 6066 §3).
  if (!ip) SSL_set_tlsext_host_name(ssl_, host.c_str());
  if (tls->verify()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    const int named = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                         : SSL_set1_host(ssl_, host.c_str());
    if (named != 1) {
      return Fail(Error::kConnect, "TLS setup for " + where + " failed: cannot check name " +
                                       host);
    }
  }
  const int rc = SSL_connect(ssl_);
  if (rc != 1) {
    const int ssl_error = SSL_get_error(ssl_, rc);
    const int saved_errno = errno;
    if (shut_) return Fail(Error::kCancelled, "fanoutd is stopping");
    const long verified = SSL_get_verify_result(ssl_);
    std::string why;
    if (verified != X509_V_OK) {
      why = std::string("certificate verify failed: ") +
            X509_verify_cert_error_string(verified);
      ERR_clear_error();
    } else if (ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE) {
      ERR_clear_error();
      return Fail(Error::kConnectTimeout, "TLS handshake with " + where + " timed out");
    } else if (ssl_error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
      why = saved_errno != 0 ? std::strerror(saved_errno) : "connection closed by the peer";
    } else {
      why = TakeOpenSslError("unknown TLS error");
    }
    return Fail(Error::kConnect, "TLS handshake with " + where + " failed: " + why);
  }
  SetTimeouts(fd, read_timeout);
  return {};
}

UpstreamConnection::Result UpstreamConnection::Write(std::string_view bytes) {
  const int fd = fd_.load();
  while (!bytes.empty()) {
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int w = SSL_write(ssl_, bytes.data(), static_cast<int>(std::min<std::size_t>(
                                                      bytes.size(), 1 << 30)));
      if (w <= 0) {
        const int ssl_error = SSL_get_error(ssl_, w);
        if (shut_) return Fail(Error::kCancelled, "fanoutd is stopping");
        if (ssl_error == SSL_ERROR_WANT_WRITE || ssl_error == SSL_ERROR_WANT_READ) {
          return Fail(Error::kWrite, "sending the request timed out");
        }
        return Fail(Error::kWrite, "sending the request: " +
                                       TakeOpenSslError(std::strerror(errno)));
      }
      bytes.remove_prefix(static_cast<std::size_t>(w));
      continue;
    }
    const ssize_t w = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (shut_) return Fail(Error::kCancelled, "fanoutd is stopping");
      return Fail(Error::kWrite, std::string("sending the request: ") + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<std::size_t>(w));
  }
  return {};
}

UpstreamConnection::Result UpstreamConnection::Read(char* out, std::size_t n, std::size_t* got) {
  *got = 0;
  if (ssl_ != nullptr) {
    ERR_clear_error();
    const int r = SSL_read(ssl_, out, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
    if (r > 0 && !shut_) {
      *got = static_cast<std::size_t>(r);
      return {};
    }
    const int ssl_error = SSL_get_error(ssl_, r);
    const int saved_errno = errno;
    if (shut_) return Fail(Error::kCancelled, "fanoutd is stopping");
    if (ssl_error == SSL_ERROR_ZERO_RETURN) return Fail(Error::kClosed, "closed");
    if (ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE) {
      return Fail(Error::kReadTimeout, "read timed out");
    }
    if (ssl_error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
      // OpenSSL 3 reports a FIN without close_notify as SSL_ERROR_SSL
      // ("unexpected eof"); older versions as SYSCALL with errno 0.
      if (saved_errno == 0) return Fail(Error::kClosed, "closed");
      if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK) {
        return Fail(Error::kReadTimeout, "read timed out");
      }
      return Fail(Error::kRead, std::string("reading the response: ") +
                                    std::strerror(saved_errno));
    }
    const unsigned long e = ERR_peek_last_error();
    if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
      ERR_clear_error();
      return Fail(Error::kClosed, "closed without close_notify");
    }
    return Fail(Error::kRead, "reading the response: " + TakeOpenSslError("TLS error"));
  }
  const int fd = fd_.load();
  return ReadPlain([&] { return ::recv(fd, out, n, 0); }, got);
}

UpstreamConnection::Result UpstreamConnection::SpliceTo(int pipe_write, std::size_t n,
                                                        std::size_t* got) {
  *got = 0;
  const int fd = fd_.load();
  // Blocking like recv: SO_RCVTIMEO bounds the wait, shutdown(2) ends it.
  return ReadPlain(
      [&] { return ::splice(fd, nullptr, pipe_write, nullptr, n, SPLICE_F_MOVE); }, got);
}

template <typename ReadSome>
UpstreamConnection::Result UpstreamConnection::ReadPlain(const ReadSome& read_some,
                                                         std::size_t* got) {
  for (;;) {
    const ssize_t r = read_some();
    if (r > 0 && !shut_) {
      *got = static_cast<std::size_t>(r);
      return {};
    }
    if (r < 0 && errno == EINTR) continue;
    if (shut_) return Fail(Error::kCancelled, "fanoutd is stopping");
    if (r == 0) return Fail(Error::kClosed, "closed");
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Fail(Error::kReadTimeout, "read timed out");
    return Fail(Error::kRead, std::string("reading the response: ") + std::strerror(errno));
  }
}

bool UpstreamConnection::QuietFor(std::chrono::milliseconds wait) const {
  if (shut_ || (ssl_ != nullptr && SSL_pending(ssl_) > 0)) return false;
  pollfd p{fd_.load(), POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(wait.count()));
  return ready == 0 && IdleAndOpen();
}

bool UpstreamConnection::IdleAndOpen() const {
  if (shut_) return false;
  if (ssl_ != nullptr && SSL_pending(ssl_) > 0) return false;
  char byte;
  const ssize_t r = ::recv(fd_.load(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  // Nothing to read and no end: still open and quiet.
  return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace fanout
