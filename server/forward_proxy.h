// ProxyRoutes: forward-proxy mode's decisions (README "Forward proxy").
//
// A proxy client names the resource by its absolute URL ("GET
// http://deb.debian.org/debian/x"), or asks for a tunnel ("CONNECT
// host:443"). Only hosts on the config's allowlist are ever contacted:
// everything else is refused with 403 before any upstream connection, so
// fanoutd is never an open proxy. An allowed origin gets a Route of its
// own (prefix "/", upstream scheme://host:port, the first matching
// per-host rules' cache settings), so a proxied request goes through the
// same cache path as a routed one, and its cache key is the absolute URL.
//
// The Routes made are kept for the object's life (and a reload keeps the
// object: route_table.h), because fetches hold on to their route's
// settings; at most kMaxOrigins distinct origins get one.
//
// Thread-safety: every method from any thread.

#ifndef FANOUT_SERVER_FORWARD_PROXY_H_
#define FANOUT_SERVER_FORWARD_PROXY_H_

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "config/config.h"

namespace fanout {

class ProxyRoutes {
 public:
  static constexpr std::size_t kMaxOrigins = 10000;

  explicit ProxyRoutes(ForwardProxy config) : config_(std::move(config)) {}

  bool enabled() const { return config_.enabled; }
  bool tunnels() const { return config_.enabled && config_.connect; }

  // What to do with a proxy request: its route, or the status (400, 403,
  // 503) and a message saying why not.
  struct Decision {
    const Route* route = nullptr;
    int status = 0;
    std::string reason;
  };

  // `scheme` "http" or "https"; `authority` "host[:port]" as sent.
  Decision RouteFor(std::string_view scheme, std::string_view authority) const;

  // Where a CONNECT may go: `host` and `port` set when allowed (status 0).
  struct Tunnel {
    std::string host;
    int port = 0;
    int status = 0;
    std::string reason;
  };
  Tunnel TunnelTo(std::string_view authority) const;

 private:
  bool Allowed(const std::string& host, int port, int default_port) const;
  const Route& SettingsFor(const std::string& host, int port, int default_port) const;

  const ForwardProxy config_;
  mutable std::mutex mu_;
  // One per origin ("http://host:80") asked for so far; never removed, so
  // the pointers handed out stay valid. Guarded by mu_.
  mutable std::map<std::string, std::unique_ptr<const Route>> routes_;
};

}  // namespace fanout

#endif  // FANOUT_SERVER_FORWARD_PROXY_H_
