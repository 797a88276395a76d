#include "server/connect_tunnel.h"

#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "server/http1/response_writer.h"
#include "server/upstream_connection.h"

namespace fanout {
namespace {

constexpr std::size_t kRelayBuffer = 64 * 1024;
constexpr int kPollSliceMs = 250;

// One direction of the relay: bytes read from `from`, not yet written to `to`.
struct Direction {
  int from = -1;
  int to = -1;
  std::array<char, kRelayBuffer> buffer;
  std::size_t begin = 0, end = 0;
  bool eof = false;       // `from` has closed its side
  bool shut = false;      // and that was passed on to `to`
  std::uint64_t moved = 0;

  bool empty() const { return begin == end; }
  bool done() const { return shut; }
};

// Reads what `from` has when the buffer is empty; false on an error.
bool Fill(Direction& d) {
  const ssize_t n = ::recv(d.from, d.buffer.data(), d.buffer.size(), MSG_DONTWAIT);
  if (n > 0) {
    d.begin = 0;
    d.end = static_cast<std::size_t>(n);
    return true;
  }
  if (n == 0) {
    d.eof = true;
    return true;
  }
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

// Writes what the socket takes now; false on an error.
bool Drain(Direction& d) {
  const ssize_t n = ::send(d.to, d.buffer.data() + d.begin, d.end - d.begin,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n > 0) {
    d.begin += static_cast<std::size_t>(n);
    d.moved += static_cast<std::uint64_t>(n);
    return true;
  }
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

void Answer(ConnectionStream& client, int status, const std::string& reason) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + std::string(ReasonPhrase(status)) + "\r\n";
  if (status == 200) {
    head += "\r\n";
  } else {
    const std::string body = "fanoutd: " + reason + "\n";
    head += "Content-Type: text/plain; charset=utf-8\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  }
  (void)client.WriteAll(head);
  (void)client.Flush();
}

}  // namespace

TunnelResult RunConnectTunnel(ConnectionStream& client, const std::string& host, int port,
                              const TunnelOptions& options,
                              const std::function<bool()>& keep_going) {
  TunnelResult result;
  UpstreamConnection upstream;
  UpstreamOrigin origin;
  origin.host = host;
  origin.port = port;
  const UpstreamConnection::Result connected =
      upstream.Connect(origin, nullptr, options.connect_timeout, options.idle_timeout);
  if (!connected.ok()) {
    const bool timed_out = connected.error == UpstreamConnection::Error::kConnectTimeout;
    result.status = timed_out ? 504 : 502;
    result.ended = connected.message;
    Answer(client, result.status, "tunnel to " + host + ":" + std::to_string(port) +
                                      " failed: " + connected.message);
    return result;
  }
  result.status = 200;
  Answer(client, 200, "");

  Direction up, down;
  up.from = client.fd();
  up.to = down.from = upstream.socket_fd();
  down.to = client.fd();
  // The client's first bytes (a TLS ClientHello) may have come with the head.
  const std::string_view early = client.BufferedInput();
  std::memcpy(up.buffer.data(), early.data(), std::min(early.size(), kRelayBuffer));
  up.end = std::min(early.size(), kRelayBuffer);
  client.Consume(up.end);

  auto idle_since = std::chrono::steady_clock::now();
  result.ended = "both sides closed";
  while (!(up.done() && down.done())) {
    if (!keep_going()) {
      result.ended = "fanoutd is stopping";
      break;
    }
    std::array<pollfd, 2> fds{pollfd{client.fd(), 0, 0}, pollfd{upstream.socket_fd(), 0, 0}};
    for (Direction* d : {&up, &down}) {
      pollfd& from = d->from == client.fd() ? fds[0] : fds[1];
      pollfd& to = d->to == client.fd() ? fds[0] : fds[1];
      if (!d->empty()) to.events |= POLLOUT;
      else if (!d->eof) from.events |= POLLIN;
    }
    // A socket nothing is waited for is left out: a peer's close would
    // otherwise wake every poll at once while the other side is slow.
    for (pollfd& p : fds) {
      if (p.events == 0) p.fd = -1;
    }
    const int ready = ::poll(fds.data(), fds.size(), kPollSliceMs);
    if (ready < 0 && errno != EINTR) {
      result.ended = std::string("poll: ") + std::strerror(errno);
      break;
    }
    if (ready <= 0) {
      if (std::chrono::steady_clock::now() - idle_since > options.idle_timeout) {
        result.ended = "idle for longer than the client timeout";
        break;
      }
      continue;
    }
    idle_since = std::chrono::steady_clock::now();
    bool failed = false;
    for (Direction* d : {&up, &down}) {
      if (!d->empty()) {
        failed = failed || !Drain(*d);
      } else if (!d->eof) {
        failed = failed || !Fill(*d);
      }
      if (d->eof && d->empty() && !d->shut) {
        ::shutdown(d->to, SHUT_WR);
        d->shut = true;
      }
    }
    if (failed) {
      result.ended = "a side broke off";
      break;
    }
  }
  result.bytes_up = up.moved;
  result.bytes_down = down.moved;
  return result;
}

}  // namespace fanout
