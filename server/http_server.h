// HttpServer: cpp-httplib's Server with fanoutd's connection handling.
//
// cpp-httplib 0.11.4 is compiled with a listen backlog of 5, so a burst of
// new clients is dropped by the kernel and retried a second later; and its
// per-connection stream cannot send file bytes without copying them. This
// subclass raises the backlog after binding and serves each connection with
// a ConnectionStream (write coalescing, fixed send buffers, read-ahead kept across
// keep-alive requests), reusing httplib's request parsing and routing.
//
// Thread-safety: as httplib::Server.

#ifndef FANOUT_SERVER_HTTP_SERVER_H_
#define FANOUT_SERVER_HTTP_SERVER_H_

#include <httplib.h>

namespace fanout {

class HttpServer final : public httplib::Server {
 public:
  // Re-listens on the bound socket with a longer accept queue. Call after
  // bind_to_port / bind_to_any_port. False if the socket refuses.
  bool SetListenBacklog(int backlog);

 private:
  // Runs the keep-alive loop of one connection on the calling pool thread.
  bool process_and_close_socket(socket_t sock) override;
};

}  // namespace fanout

#endif  // FANOUT_SERVER_HTTP_SERVER_H_
