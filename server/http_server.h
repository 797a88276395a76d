// HttpServer: cpp-httplib's Server with fanoutd's connection handling.
//
// cpp-httplib 0.11.4 is compiled with a listen backlog of 5, so a burst of
// new clients is dropped by the kernel and retried a second later; and its
// per-connection stream cannot send file bytes without copying them. This
// subclass raises the backlog after binding and serves each connection with
// a ConnectionStream (write coalescing, fixed send buffers, read-ahead kept across
// keep-alive requests), reusing httplib's request parsing and routing for
// every request the direct path (if set) does not answer.
//
// Thread-safety: as httplib::Server.

#ifndef FANOUT_SERVER_HTTP_SERVER_H_
#define FANOUT_SERVER_HTTP_SERVER_H_

#include <httplib.h>

#include <functional>

#include "server/connection_stream.h"
#include "server/request_head.h"

namespace fanout {

class HttpServer final : public httplib::Server {
 public:
  // Re-listens on the bound socket with a longer accept queue. Call after
  // bind_to_port / bind_to_any_port. False if the socket refuses.
  bool SetListenBacklog(int backlog);

  // Offered every request whose head parses as a plain one before httplib
  // sees it (see direct_hit.h); says whether it answered the request, and
  // if so whether the connection closes after it. Set before listening.
  enum class DirectAnswer { kNotAnswered, kAnsweredKeepOpen, kAnsweredThenClose };
  using DirectPath = std::function<DirectAnswer(const RequestHead&, ConnectionStream&)>;
  void SetDirectPath(DirectPath direct) { direct_ = std::move(direct); }

 private:
  // Runs the keep-alive loop of one connection on the calling pool thread.
  bool process_and_close_socket(socket_t sock) override;

  DirectPath direct_;
};

}  // namespace fanout

#endif  // FANOUT_SERVER_HTTP_SERVER_H_
