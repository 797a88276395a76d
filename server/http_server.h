// HttpServer: fanoutd's client-facing HTTP/1.1 server — the accept loop and
// the connection loop of the data plane.
//
// It listens (a long accept queue; connections accepted once their first
// bytes arrive), runs each connection on a ConnectionPool thread, and per
// request: reads the head whole (request_head_timeout; 431 past
// ConnectionStream::kMaxRequestHead), parses it strictly
// (http1/request_head.h), offers a plain one to the direct path, and gives
// any other to the handler with its body (http1/request_body.h); the
// handler's Response goes out through SendResponse (response_sender.h).
// Every error answer of its own closes the connection; a body the handler
// left unread is read and dropped if small, or the connection closes.
// Keep-alive and pipelining: requests are answered in order; between
// requests an idle connection waits in the BodySender's loops (parked),
// not on a thread; a plain hit arriving there is answered on the loop if
// its answer leaves at once, anything else goes back to a pool thread.
//
// Draining (Drain(), before Stop()): no new connection is accepted (the
// listening socket closes, so clients are refused rather than queued),
// every response from then on says Connection: close, and no connection
// waits for another request; responses already under way go on. InFlight()
// tells when nothing is left.
//
// Thread-safety: Bind() then Run() on one thread; Drain(), InFlight() and
// Stop() from any thread.

#ifndef FANOUT_SERVER_HTTP_SERVER_H_
#define FANOUT_SERVER_HTTP_SERVER_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/status.h"
#include "server/body_sender.h"
#include "server/client_limit.h"
#include "server/connection_pool.h"
#include "server/connection_stream.h"
#include "server/http1/request.h"
#include "server/http1/request_body.h"
#include "server/http1/request_head.h"
#include "server/response.h"
#include "server/response_sender.h"

namespace fanout {

class HttpServer {
 public:
  struct Options {
    std::string host = "0.0.0.0";
    int port = 0;  // 0: any free port
    int backlog = 4096;
    // New connections are accepted once their first bytes arrived (up to
    // this long after the handshake), so the thread that takes one finds
    // its request there instead of waking again for it.
    int defer_accept_sec = 5;
    // Connections served at once, and overflow threads answering 503
    // beyond them (connection_pool.h).
    std::size_t workers = 512;
    std::size_t max_overflow = 64;
    std::chrono::milliseconds read_timeout{30000};
    std::chrono::milliseconds write_timeout{30000};
    std::chrono::seconds keep_alive_timeout{5};
    std::size_t keep_alive_max_requests = 100000;
    // A request head must arrive whole within this long of its first byte.
    std::chrono::milliseconds head_timeout{10000};
    std::uint64_t max_request_body = 64ull << 20;
    ClientLimit* client_limit = nullptr;  // may be null: no per-address limit
    // Where bodies are handed off and idle connections parked (may be
    // null: neither). It must be stopped before the server.
    SendContext send;
    // Offered every CONNECT (its authority-form target, "host:port"), on
    // the connection's pool thread with the head consumed; true if it
    // answered (the connection closes after it). Null, or false: 405.
    std::function<bool(const std::string& authority, ConnectionStream&)> tunnel;
  };

  // Offered every plain request (origin-form, no body) before the handler,
  // on a pool thread or a loop thread; says whether it answered, and if so
  // whether the connection closes after it.
  enum class DirectAnswer { kNotAnswered, kAnsweredKeepOpen, kAnsweredThenClose };
  using DirectPath = std::function<DirectAnswer(const RequestHead&, ConnectionStream&)>;
  // Answers one request: fills the response (reading the body if it
  // wants it). Runs on a pool thread.
  using Handler = std::function<void(const Request&, RequestBody&, Response&)>;

  HttpServer(Options options, Handler handler, DirectPath direct);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens. kIOError if the address cannot be used.
  Status Bind();
  int port() const { return port_; }
  // Accepts connections until Stop(); false if not bound.
  bool Run();
  void Drain();
  // Connections being served or sent to: 0 once a drain has nothing left.
  std::size_t InFlight() const;
  // Client connections open now (served, parked or sending).
  std::size_t open_connections() const { return open_connections_->load(); }
  void Stop();

 private:
  enum class HandOffResult { kNone, kHandedOff, kFailed };

  void Accept(int fd);
  std::shared_ptr<ConnectionStream> NewStream(int fd) const;
  static void CloseConnection(ConnectionStream& stream);
  // Closes after an error answer, reading what the client still sends for
  // a while first (so that it can read the answer).
  void LingeringClose(ConnectionStream& stream);
  // Runs the keep-alive loop of one connection on the calling pool thread,
  // for at most `requests_left` requests (0: only sends what is held back);
  // `fresh`: a new connection, whose first request is waited for here;
  // `accepted`: when it was accepted (its head has been on its way since,
  // however long it waited for a thread).
  void ServeConnection(const std::shared_ptr<ConnectionStream>& stream,
                       std::size_t requests_left, bool fresh,
                       std::chrono::steady_clock::time_point accepted = {});
  // One request whose head is parsed: answers it. False if the connection
  // must close (*linger: after an error, with bytes possibly unread), or
  // was handed on (*handed_on).
  bool ServeRequest(const std::shared_ptr<ConnectionStream>& stream, const RequestHead& head,
                    std::size_t requests_left, bool* handed_on, bool* linger);
  // Hands the connection to a pool thread.
  void Dispatch(std::shared_ptr<ConnectionStream> stream, std::size_t requests_left);
  // Parks an idle connection in the sender's loops until its next request
  // (OnRequest); false if there is no sender or it is stopping.
  bool Park(const std::shared_ptr<ConnectionStream>& stream, std::size_t requests_left);
  // A parked connection, shared by its park's callbacks (on its loop's
  // thread only).
  struct ParkedConnection {
    std::shared_ptr<ConnectionStream> stream;
    std::size_t requests_left = 0;
    bool close = false;  // once taken back: closed, or served by a thread
  };
  // On a loop thread: bytes for a parked connection arrived. True if a hit
  // was answered in full (or the wake-up was for nothing) and it stays
  // parked; false if it must be taken back (then Resume closes it or hands
  // it to a thread, as `parked.close` says).
  bool OnRequest(ParkedConnection& parked);
  void Resume(const ParkedConnection& parked);
  // Flushes the head of a response whose body was handed off and submits
  // the body to the sender; kFailed if the client is gone or the sender
  // refused (the caller closes the connection).
  HandOffResult HandOff(const std::shared_ptr<ConnectionStream>& stream, bool keep_open,
                        std::size_t requests_left);
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

  // While a connection waits for the rest of a request head, it is listed
  // here, so that a new connection finding every slot taken can close the
  // one that has been sending its head the longest (a slowloris' instead
  // of turning a real client away).
  class ReadingHead;
  // Closes the connection that has been reading its head the longest, if
  // for more than kSlowHead; true if it did.
  bool CloseSlowestHead();

  const Options options_;
  const Handler handler_;
  const DirectPath direct_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> draining_{false};
  std::unique_ptr<ConnectionPool> pool_;
  // Counts the connection streams alive; shared with their deleters, which
  // may run after this server is gone (a body sender's last connection).
  const std::shared_ptr<std::atomic<std::size_t>> open_connections_ =
      std::make_shared<std::atomic<std::size_t>>(0);
  std::mutex heads_mu_;
  // guarded by heads_mu_; streams reading a head -> since when
  std::unordered_map<ConnectionStream*, std::chrono::steady_clock::time_point> reading_heads_;
};

}  // namespace fanout

#endif  // FANOUT_SERVER_HTTP_SERVER_H_
