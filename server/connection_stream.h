// ConnectionStream: one client connection's socket, buffered both ways.
//
//   - Small writes (a response head, chunk framing, a small body) are held
//     back and sent with the next large write in one writev, or at Flush():
//     the connection loop flushes after each response, a body sender before
//     it waits at the frontier, and a read before it blocks.
//   - A send that faulted on its source (EFAULT: bytes of a mapped stream
//     file that was truncated under it) is told apart from a client error.
//   - Bytes read ahead are kept across the requests of a keep-alive
//     connection (pipelining), and a request head is read whole into one
//     contiguous buffer for the parser (ReadRequestHead).
//
// Thread-safety: used by one thread at a time — the pool thread serving the
// connection, or a BodySender loop thread while the connection is parked
// between requests (handed over through the sender's queue, which orders
// the two). Current() is the calling pool thread's stream (null elsewhere).

#ifndef FANOUT_SERVER_CONNECTION_STREAM_H_
#define FANOUT_SERVER_CONNECTION_STREAM_H_

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/body_sender.h"
#include "server/client_limit.h"
#include "server/http1/request_head.h"

namespace fanout {

class ConnectionStream final {
 public:
  ConnectionStream(int fd, std::chrono::microseconds read_timeout,
                   std::chrono::microseconds write_timeout);
  ~ConnectionStream();

  ConnectionStream(const ConnectionStream&) = delete;
  ConnectionStream& operator=(const ConnectionStream&) = delete;

  // The stream of the connection this thread serves, or null.
  static ConnectionStream* Current();

  // Reads up to size bytes (read-ahead first); waits up to the read
  // timeout. 0 once the client closed, -1 on an error or timeout.
  ssize_t read(char* ptr, size_t size);
  // Takes the bytes (held back if small; see above); the count sent, or -1.
  ssize_t write(const char* ptr, size_t size);
  // Writes all of it; false if the client is gone.
  bool WriteAll(std::string_view bytes);
  void get_remote_ip_and_port(std::string& ip, int& port) const;
  void get_local_ip_and_port(std::string& ip, int& port) const;
  // The client's address as text ("" if unknown).
  std::string RemoteAddress() const;

  // The largest body slice a provider hands to one write.
  static constexpr std::size_t kMaxBodyWrite = 1 << 20;

  // True if a write failed because its bytes could not be read (a send from
  // the mapping of a stream file truncated under it), not because of the
  // client.
  bool file_short() const { return file_short_; }

  // Sends the coalesced bytes now. False if the client is gone.
  bool Flush();

  // ---- On an event loop (see HttpServer): nothing may block. ----
  // While on, every write is held back, whatever its size, until
  // FlushWithoutBlocking; a direct hit answers only small bodies.
  void set_on_event_loop(bool on) { on_event_loop_ = on; }
  bool on_event_loop() const { return on_event_loop_; }
  enum class FlushResult { kAllSent, kWouldBlock, kFailed };
  // Sends what the socket takes now; the rest stays held back.
  FlushResult FlushWithoutBlocking();
  // One recv of what has arrived, if the read-ahead buffer is empty. False
  // if nothing came; peer_closed() / read_failed() tell why not.
  bool ReadAvailable() { return HasBufferedInput() || ReadAhead(MSG_DONTWAIT); }
  bool peer_closed() const { return peer_closed_; }
  bool read_failed() const { return read_failed_; }
  int fd() const { return fd_; }

  // Waits up to `timeout` for the start of another request (bytes already
  // read ahead count). False on timeout, close, or when `keep_waiting`
  // returns false (checked every 100 ms, the socket's receive timeout).
  template <typename KeepWaiting>
  bool WaitForRequest(std::chrono::milliseconds timeout, KeepWaiting keep_waiting);

  // Makes sure some input is buffered, reading (after flushing what is
  // held back) for up to the read timeout. False if the client closed, the
  // read failed or timed out.
  bool WaitForInput();

  // Reads until the buffered bytes start with a whole request head —
  // ParseRequestHead then fills *head and says complete or error in
  // *parse — by `deadline` and within kMaxRequestHead bytes.
  static constexpr std::size_t kMaxRequestHead = 64 * 1024;
  enum class HeadRead {
    kParsed,    // *parse holds the parser's verdict (complete or error)
    kTooLarge,  // no blank line within kMaxRequestHead bytes
    kTimedOut,  // the deadline passed first (a client sending too slowly)
    kClosed,    // the client closed or the connection failed first
  };
  HeadRead ReadRequestHead(std::chrono::steady_clock::time_point deadline, RequestHead* head,
                           HeadParse* parse);

  // The bytes read ahead and not yet consumed (after RewriteRequestHead:
  // the next request's whole head, at least). Valid until the next read.
  std::string_view BufferedInput() const {
    return {read_buffer_.data() + read_pos_, read_end_ - read_pos_};
  }
  // Drops the first n buffered bytes (a request head, body bytes read).
  void Consume(std::size_t n) { read_pos_ += std::min(n, read_end_ - read_pos_); }


  // A response body to be sent by the BodySender instead of this thread:
  // set by the response sender, taken by the connection loop once the
  // response head is out. Only when
  // CanHandOff(): no bytes of a later request are read ahead (they would
  // be lost with the thread's buffer).
  bool CanHandOff() const { return !HasBufferedInput() && !handoff_; }
  void HandOff(std::unique_ptr<BodySender::Job> job) { handoff_ = std::move(job); }
  std::unique_ptr<BodySender::Job> TakeHandOff() { return std::move(handoff_); }

  // Keeps the connection's slot of its client's address (ClientLimit)
  // until the stream is destroyed, when the connection is gone.
  void HoldClientSlot(std::unique_ptr<ClientLimit::Slot> slot) { client_slot_ = std::move(slot); }

  // Makes this the calling thread's Current() for the scope's life.
  class Scope {
   public:
    explicit Scope(ConnectionStream* stream);
    ~Scope();
  };

 private:
  bool PollFor(short events, std::chrono::microseconds timeout) const;
  bool SendAll(const char* data, std::size_t n, int flags);
  bool HasBufferedInput() const { return read_pos_ < read_end_; }
  // One recv into the empty read-ahead buffer; false if nothing came
  // (peer_closed_ tells whether the peer closed).
  bool ReadAhead(int flags);

  const int fd_;
  const std::chrono::microseconds read_timeout_;
  const std::chrono::microseconds write_timeout_;

  std::vector<char> read_buffer_;  // read-ahead; allocated on first read
  std::size_t read_pos_ = 0, read_end_ = 0;
  std::string pending_;            // coalesced writes not yet sent
  bool peer_closed_ = false;
  bool read_failed_ = false;  // a read error other than a timeout
  mutable std::string remote_ip_, local_ip_;  // looked up once
  mutable int remote_port_ = -1, local_port_ = -1;

  bool file_short_ = false;
  bool on_event_loop_ = false;
  std::unique_ptr<BodySender::Job> handoff_;
  std::unique_ptr<ClientLimit::Slot> client_slot_;
};

template <typename KeepWaiting>
bool ConnectionStream::WaitForRequest(std::chrono::milliseconds timeout,
                                      KeepWaiting keep_waiting) {
  if (HasBufferedInput() || ReadAhead(MSG_DONTWAIT)) return true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Each ReadAhead(0) blocks for at most one read slice (SO_RCVTIMEO).
  while (!peer_closed_ && !read_failed_ && keep_waiting() &&
         std::chrono::steady_clock::now() < deadline) {
    if (ReadAhead(0)) return true;
  }
  return false;
}

}  // namespace fanout

#endif  // FANOUT_SERVER_CONNECTION_STREAM_H_
