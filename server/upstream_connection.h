// UpstreamConnection: one TCP connection to an upstream origin, with TLS
// on top for https origins — the byte pipe UpstreamClient speaks HTTP/1.1
// over, and what UpstreamConnectionPool keeps between fetches.
//
// The socket is blocking once connected: reads and writes wait in the
// kernel, bounded by the read timeout (SO_RCVTIMEO / SO_SNDTIMEO), so a
// fetch costs a few system calls per arriving burst. For TLS, certificate
// and host-name checks are made during Connect unless the origin opted out
// (tls_verify false); SNI names the host unless it is an IP literal.
//
// Thread-safety: one thread uses a connection at a time (the fetch that
// holds it). Shutdown() alone may be called from any other thread, at any
// time while the object lives: it wakes a Connect, Read or Write blocked
// in the kernel (shutdown(2) under SSL_read too), which then fail.

#ifndef FANOUT_SERVER_UPSTREAM_CONNECTION_H_
#define FANOUT_SERVER_UPSTREAM_CONNECTION_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "server/tls_client_context.h"

typedef struct ssl_st SSL;

namespace fanout {

// Where a connection goes, and how it is secured: connections are pooled
// and reused by this (Key()).
struct UpstreamOrigin {
  std::string scheme = "http";  // "http" or "https"
  std::string host;
  int port = 80;
  TlsClientOptions tls;         // https only

  bool is_tls() const { return scheme == "https"; }
  // Different keys never share a connection.
  std::string Key() const;
};

class UpstreamConnection {
 public:
  enum class Error {
    kNone,
    kConnect,         // resolving, connecting or the TLS handshake failed
    kConnectTimeout,  // no connection within connect_timeout
    kWrite,           // bytes could not be sent
    kReadTimeout,     // nothing arrived within read_timeout
    kRead,            // the connection broke (reset, TLS error)
    kClosed,          // Read only: the peer closed cleanly
    kCancelled,       // Shutdown() was called
  };
  struct Result {
    Error error = Error::kNone;
    std::string message;  // for the log and the client's error page
    bool ok() const { return error == Error::kNone; }
  };

  UpstreamConnection();
  ~UpstreamConnection();  // closes the socket
  UpstreamConnection(const UpstreamConnection&) = delete;
  UpstreamConnection& operator=(const UpstreamConnection&) = delete;

  // Connects to `origin` (trying each address in turn), and for https
  // makes the TLS handshake with `tls` (REQUIRES: non-null for https).
  // A TLS failure is kConnect with OpenSSL's reason, e.g. "TLS handshake
  // with h:443 failed: certificate verify failed: self-signed certificate".
  // Call once.
  Result Connect(const UpstreamOrigin& origin, const TlsClientContext* tls,
                 std::chrono::milliseconds connect_timeout,
                 std::chrono::milliseconds read_timeout);

  // Sends all of `bytes`.
  Result Write(std::string_view bytes);
  // Reads up to `n` bytes into `out`; *got > 0 on success. kClosed at the
  // peer's clean end of the stream (for TLS, a close_notify or a FIN).
  Result Read(char* out, std::size_t n, std::size_t* got);

  // Whether SpliceTo may be used: a plain connection's bytes are the
  // body's own (TLS ones must be decrypted in user space).
  bool can_splice() const { return ssl_ == nullptr; }
  // Plain connections only: moves up to `n` bytes from the socket into the
  // pipe `pipe_write` inside the kernel, never copying them to user space;
  // errors and *got as for Read.
  Result SpliceTo(int pipe_write, std::size_t n, std::size_t* got);

  // For a connection that waited idle in the pool: true if it may carry a
  // request — the peer has not closed it, and nothing arrived unasked
  // (a non-blocking peek; bytes an HTTP/1.1 peer sends unasked mean the
  // connection cannot be trusted with another response).
  bool IdleAndOpen() const;
  // Like IdleAndOpen, after waiting up to `wait` for bytes to arrive: an
  // origin that sends bytes past the end of a response sends them right
  // after it, and a connection taken again at once would read them as the
  // next response.
  bool QuietFor(std::chrono::milliseconds wait) const;

  // Wakes any blocked call; every later one fails with kCancelled.
  void Shutdown();

  // The socket, for a caller that relays raw bytes itself (a CONNECT
  // tunnel: plain connections only); -1 before Connect.
  int socket_fd() const { return fd_.load(); }

 private:
  // A plain socket read (recv or splice) with Read's errors.
  template <typename ReadSome>
  Result ReadPlain(const ReadSome& read_some, std::size_t* got);

  std::atomic<int> fd_{-1};
  std::atomic<bool> shut_{false};
  SSL* ssl_ = nullptr;  // for TLS; owned
};

}  // namespace fanout

#endif  // FANOUT_SERVER_UPSTREAM_CONNECTION_H_
