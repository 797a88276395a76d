// HttpServer: cpp-httplib's Server with fanoutd's connection handling.
//
// cpp-httplib 0.11.4 is compiled with a listen backlog of 5, so a burst of
// new clients is dropped by the kernel and retried a second later; and its
// per-connection stream cannot send file bytes without copying them. This
// subclass raises the backlog after binding and serves each connection with
// a ConnectionStream (write coalescing, fixed send buffers, read-ahead kept across
// keep-alive requests), reusing httplib's request parsing and routing for
// every request the direct path (if set) does not answer. A response
// whose body provider handed the body off (ConnectionStream::HandOff) is
// finished by the BodySender. Between requests a keep-alive connection
// waits in the BodySender's loops (parked), not on a thread; a plain hit
// arriving there is answered on the loop if its answer leaves at once, and
// anything else goes back to a pool thread with the bytes read.
//
// Thread-safety: as httplib::Server.

#ifndef FANOUT_SERVER_HTTP_SERVER_H_
#define FANOUT_SERVER_HTTP_SERVER_H_

#include <httplib.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "server/body_sender.h"
#include "server/client_limit.h"
#include "server/connection_pool.h"
#include "server/connection_stream.h"
#include "server/request_head.h"

namespace fanout {

class HttpServer final : public httplib::Server {
 public:
  // Re-listens on the bound socket with a longer accept queue. Call after
  // bind_to_port / bind_to_any_port. False if the socket refuses.
  bool SetListenBacklog(int backlog);

  // New connections are accepted once their first bytes arrived (up to
  // `seconds` after the handshake), so the thread that takes one finds its
  // request there instead of waking again for it (nginx: "deferred").
  // False if the socket refuses.
  bool DeferAcceptUntilData(int seconds);

  // Offered every request whose head parses as a plain one before httplib
  // sees it (see direct_hit.h); says whether it answered the request, and
  // if so whether the connection closes after it. Set before listening.
  enum class DirectAnswer { kNotAnswered, kAnsweredKeepOpen, kAnsweredThenClose };
  using DirectPath = std::function<DirectAnswer(const RequestHead&, ConnectionStream&)>;
  void SetDirectPath(DirectPath direct) { direct_ = std::move(direct); }

  // Connections run on a ConnectionPool of `workers` (see
  // connection_pool.h); bodies handed off go to `sender` (may be null: no
  // hand-offs), whose connections count against `workers`. The sender
  // must be stopped before the server. Set before listening.
  void UseConnectionPool(std::size_t workers, std::size_t max_overflow, BodySender* sender);
  BodySender* body_sender() const { return sender_; }

  // A request head must arrive whole within `head_timeout` of its first
  // byte (else 408, closed: a client sending a byte at a time cannot hold
  // a connection); heads CheckRequestHead refuses are answered its status
  // and closed; a connection beyond `limit`'s count for its address is
  // answered 503 and closed (`limit` may be null: none). Set before
  // listening; `limit` must outlive the server.
  void SetRequestLimits(std::chrono::milliseconds head_timeout, ClientLimit* limit) {
    head_timeout_ = head_timeout;
    client_limit_ = limit;
  }

 private:
  enum class HandOffResult { kNone, kHandedOff, kFailed };

  bool process_and_close_socket(socket_t sock) override;
  std::shared_ptr<ConnectionStream> NewStream(socket_t sock) const;
  static void CloseConnection(ConnectionStream& stream);
  // Runs the keep-alive loop of one connection on the calling pool thread,
  // for at most `requests_left` requests (0: only sends what is held back);
  // `fresh`: a new connection, whose first request is waited for here.
  bool ServeConnection(const std::shared_ptr<ConnectionStream>& stream,
                       std::size_t requests_left, bool fresh);
  // Hands the connection to a pool thread.
  void Dispatch(std::shared_ptr<ConnectionStream> stream, std::size_t requests_left);
  // Parks an idle connection in the sender's loops until its next request
  // (OnRequest); false if there is no sender or it is stopping.
  bool Park(const std::shared_ptr<ConnectionStream>& stream, std::size_t requests_left);
  // On a loop thread: a parked connection's request arrived.
  void OnRequest(const std::shared_ptr<ConnectionStream>& stream, std::size_t requests_left);
  // Sends the head of a response whose body was handed off and submits
  // the body to the sender; kFailed if the client is gone or the sender
  // refused (the caller closes the connection).
  HandOffResult HandOff(const std::shared_ptr<ConnectionStream>& stream, bool keep_open,
                        std::size_t requests_left);

  // While a connection waits for the rest of a request head, it is listed
  // here, so that a new connection finding every slot taken can close the
  // one that has been sending its head the longest (a slowloris' instead
  // of turning a real client away).
  class ReadingHead;
  // Closes the connection that has been reading its head the longest, if
  // for more than kSlowHead; true if it did.
  bool CloseSlowestHead();

  DirectPath direct_;
  BodySender* sender_ = nullptr;
  std::mutex heads_mu_;
  // guarded by heads_mu_; streams reading a head -> since when
  std::unordered_map<ConnectionStream*, std::chrono::steady_clock::time_point> reading_heads_;
  std::chrono::milliseconds head_timeout_{10000};
  ClientLimit* client_limit_ = nullptr;
  // The pool httplib made with new_task_queue; it lives until listening
  // ends, after the sender stopped.
  std::atomic<ConnectionPool*> pool_{nullptr};
};

}  // namespace fanout

#endif  // FANOUT_SERVER_HTTP_SERVER_H_
