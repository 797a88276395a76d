#include "server/forward_proxy.h"

#include "config/url.h"

namespace fanout {
namespace {

constexpr const char* kHowToAllow =
    "; fanoutd fetches only from the hosts listed in forward_proxy.allow";

}  // namespace

bool ProxyRoutes::Allowed(const std::string& host, int port, int default_port) const {
  for (const HostPattern& pattern : config_.allow) {
    if (pattern.Matches(host, port, default_port)) return true;
  }
  return false;
}

const Route& ProxyRoutes::SettingsFor(const std::string& host, int port, int default_port) const {
  static const Route kDefaults;
  for (const ProxyHostRules& rules : config_.hosts) {
    for (const HostPattern& pattern : rules.match) {
      if (pattern.Matches(host, port, default_port)) return rules.settings;
    }
  }
  return kDefaults;
}

ProxyRoutes::Decision ProxyRoutes::RouteFor(std::string_view scheme,
                                            std::string_view authority) const {
  Decision d;
  std::string error;
  const std::string text = std::string(scheme) + "://" + std::string(authority);
  std::optional<Url> url = ParseUrl(text, &error);
  if (!url) {
    d.status = 400;
    d.reason = "fanoutd: bad URL " + text + ": " + error;
    return d;
  }
  url->host = CanonicalHost(url->host);
  const int default_port = url->scheme == "https" ? 443 : 80;
  if (!Allowed(url->host, url->port, default_port)) {
    d.status = 403;
    d.reason = "fanoutd: forward proxy: " + url->Origin() + " is not an allowed host" + kHowToAllow;
    return d;
  }
  const std::string origin = url->Origin();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = routes_.find(origin);
  if (it == routes_.end()) {
    if (routes_.size() >= kMaxOrigins) {
      d.status = 503;
      d.reason = "fanoutd: forward proxy: more than " + std::to_string(kMaxOrigins) +
                 " distinct origins since the config was loaded; reload it to start again";
      return d;
    }
    auto route = std::make_unique<Route>(SettingsFor(url->host, url->port, default_port));
    route->prefix = "/";
    route->upstream = std::move(*url);
    // The client names absolute URLs itself: its Locations need no rewriting.
    route->rewrite_redirects = false;
    it = routes_.emplace(origin, std::move(route)).first;
  }
  d.route = it->second.get();
  return d;
}

ProxyRoutes::Tunnel ProxyRoutes::TunnelTo(std::string_view authority) const {
  Tunnel t;
  std::string error;
  // RFC 9112 §3.2.3: authority-form is host ":" port, the port required.
  const std::size_t colon = authority.rfind(':');
  const std::size_t bracket = authority.rfind(']');
  if (colon == std::string_view::npos || (bracket != std::string_view::npos && colon < bracket)) {
    t.status = 400;
    t.reason = "fanoutd: CONNECT needs host:port, got '" + std::string(authority) + "'";
    return t;
  }
  std::optional<Url> url = ParseUrl("https://" + std::string(authority), &error);
  if (!url) {
    t.status = 400;
    t.reason = "fanoutd: bad CONNECT target '" + std::string(authority) + "': " + error;
    return t;
  }
  url->host = CanonicalHost(url->host);
  if (!Allowed(url->host, url->port, 443)) {
    t.status = 403;
    t.reason = "fanoutd: forward proxy: no tunnel to " + std::string(authority) +
               ": not an allowed host and port" + kHowToAllow + " (port 443 unless a pattern names another)";
    return t;
  }
  t.host = url->host;
  t.port = url->port;
  return t;
}

}  // namespace fanout
