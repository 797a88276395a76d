// Config: everything fanoutd can be told, with its defaults.
//
// Read from a JSON file (see config/fanout.json and README "Configuration")
// by LoadConfigFile(), then overridden by command-line flags. Plain data;
// copy freely.

#ifndef FANOUT_CONFIG_CONFIG_H_
#define FANOUT_CONFIG_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/host_pattern.h"
#include "config/path_pattern.h"
#include "config/url.h"

namespace fanout {

// One of a route's per-path rules (README "Per-path rules"): what it sets
// for requests whose path, after the route's prefix, matches. The first
// matching rule of the route applies.
struct PathRule {
  PathPattern match;
  // Freshness for responses that state none, instead of the route's
  // default_ttl or the heuristic. Range: 1s to 3650d.
  std::optional<std::chrono::seconds> ttl;
  // The object never changes (content-addressed files: a Debian pool's
  // .deb, by-hash indexes, npm tarballs): a 200 is stored whatever its
  // freshness says, never revalidated, and a client's no-cache or
  // max-age=0 does not send it upstream. A response's no-store or private
  // still counts; other statuses (a 404) follow the usual rules.
  bool immutable = false;
  // A client's Cache-Control no-cache / max-age and Pragma: no-cache do
  // not force a revalidation of a fresh entry.
  bool ignore_client_no_cache = false;
  // false: never stored. true: a 200 is stored even without freshness or
  // a validator. Unset: RFC 9111 decides.
  std::optional<bool> store;
};

struct Route {
  // Request path prefix, matched segment-wise ("/deb" matches "/deb" and
  // "/deb/x", not "/debian"). The longest matching prefix wins. "/" matches
  // everything. Stored without a trailing slash (except "/").
  std::string prefix;
  // Upstream origin. The request path minus the prefix is appended to its
  // path: prefix "/deb" + upstream "http://h/debian" maps "/deb/a" to
  // "http://h/debian/a".
  Url upstream;
  // Host header sent upstream. Default: empty, meaning the upstream's host.
  std::string host_override;
  // Freshness for responses that state none (no max-age, s-maxage or
  // Expires), used instead of RFC 9111's heuristic — a deliberate
  // deviation, off by default. Range (this and the next two): 1s to 3650d.
  std::optional<std::chrono::seconds> default_ttl;
  // Serve a stale entry while it is revalidated in the background, for up
  // to this long past its freshness. Off by default (a response's own
  // stale-while-revalidate directive still counts).
  std::optional<std::chrono::seconds> stale_while_revalidate;
  // Serve a stale entry when revalidating it fails (upstream unreachable,
  // 5xx), for up to this long past its freshness. Off by default (a
  // response's own stale-if-error directive still counts).
  std::optional<std::chrono::seconds> stale_if_error;
  // For an https upstream: a PEM file of CA certificates to trust instead
  // of the system's (e.g. a private CA). Must be readable at start-up.
  // Default: empty, meaning the system's default CA paths.
  std::string tls_ca_file;
  // For an https upstream: verify its certificate chain and that the
  // certificate names the upstream's host (or IP address). false is an
  // explicit opt-out, warned about at start-up. Default: true.
  bool tls_verify = true;
  // Targeted cache-control fields (RFC 9213), highest precedence first: the
  // first a response carries with a valid value replaces its Cache-Control
  // and Expires for fanoutd's own decisions. All but CDN-Cache-Control
  // (aimed at every CDN on the path) are kept from clients. Empty:
  // Cache-Control only.
  std::vector<std::string> targeted_cache_control = {"Fanout-Cache-Control",
                                                     "CDN-Cache-Control"};
  // Per-path rules, first match wins. Default: none.
  std::vector<PathRule> rules;
  // Query parameters left out of the cache key (tracking parameters such as
  // "utm_source"): requests differing only in them share one entry. They
  // are still sent upstream. Default: none.
  std::vector<std::string> ignore_query_params;
  // A Location or Content-Location that points into this route's upstream
  // is rewritten to the same resource through fanoutd, so clients stay on
  // the cache (as nginx's proxy_redirect default). Default: true.
  bool rewrite_redirects = true;
  // Store only responses whose body was checked against a digest they
  // announced (Repr-Digest or Content-Digest, sha-256 or sha-512): others
  // are still served to the clients waiting for them, but not kept.
  // Default: false (a digest a response announces is checked either way).
  bool verify = false;
};

// Per-host caching rules of the forward proxy: a Route's cache settings
// (default_ttl, stale_*, tls_*, targeted_cache_control, rules,
// ignore_query_params, verify) for the hosts it matches. Its prefix,
// upstream and host are unused.
struct ProxyHostRules {
  std::vector<HostPattern> match;
  Route settings;
};

// Forward-proxy mode (README "Forward proxy"): requests with an absolute
// URL as their target ("GET http://host/path", what clients set up with
// http_proxy send) are fetched from that URL's host, through the cache,
// if the host is allowed; anything else gets 403 and is never fetched.
struct ForwardProxy {
  bool enabled = false;  // the config has a forward_proxy object
  // Hosts fanoutd fetches from for proxy clients (config/host_pattern.h).
  std::vector<HostPattern> allow;
  // CONNECT to an allowed host (port 443 unless the pattern names
  // another) is tunnelled, uncached; false: CONNECT gets 405.
  bool connect = false;
  // First match wins; a host no entry matches gets the route defaults.
  std::vector<ProxyHostRules> hosts;
};

struct Config {
  // ---- Listening ----
  // Address and port clients connect to ("host:port", "[::1]:port").
  // Default: 0.0.0.0:8080. Port 0 picks a free port (logged at start-up).
  std::string listen_host = "0.0.0.0";
  int listen_port = 8080;
  // Most client connections served at once; further ones get 503.
  // Each costs one thread while open. Default: 512. Range: 1 to 100000.
  int max_connections = 512;
  // A client that accepts no bytes for this long is dropped. Default: 30s.
  // Range: 1ms to 1d.
  std::chrono::milliseconds client_timeout{30000};
  // On SIGTERM or SIGINT, responses under way get this long to finish
  // (no new connections are taken meanwhile); then fanoutd stops. A second
  // signal stops it at once. Default: 30s. Range: 1ms to 1d.
  std::chrono::milliseconds shutdown_grace{30000};
  // A request head must arrive whole within this long of its first byte;
  // a slower client gets 408 and is closed. Default: 10s.
  std::chrono::milliseconds request_head_timeout{10000};
  // Most connections one client address may hold at once; more get 503.
  // 0: no limit beyond max_connections. Default: 0.
  int max_connections_per_client = 0;
  // Largest request body passed through to an upstream. Default: 64 MiB.
  // Sizes here range from 1 byte to 2^63-1 bytes.
  std::uint64_t max_request_body = 64ull << 20;

  // ---- Cache ----
  // Where stream files and entries live. Created if missing.
  // Default: /var/cache/fanout.
  std::string cache_dir = "/var/cache/fanout";
  // Most bytes of stored bodies; past it the least recently used entries
  // are removed down to 90%. Default: 10 GiB.
  std::uint64_t max_cache_size = 10ull << 30;
  // Larger responses are streamed to their clients but not kept.
  // Default: no limit beyond 90% of max_cache_size.
  std::uint64_t max_object_size = 0;
  // Disk a response that is not kept may take at once: it is fetched at
  // most this far ahead of its slowest client, and the bytes every client
  // has read are freed. Its fetch stops when its last client leaves.
  // Default: 256 MiB.
  std::uint64_t max_uncached_buffer = 256ull << 20;

  // ---- Admin interface (entry list, purge) ----
  // "host:port"; empty: none. Default: 127.0.0.1:8081 (loopback only).
  std::string admin_host = "127.0.0.1";
  int admin_port = 8081;
  bool admin_enabled = true;

  // ---- Upstreams ----
  // At least one route is required, unless forward_proxy is on.
  std::vector<Route> routes;
  // Time allowed to establish an upstream connection. Default: 5s.
  // Range (both upstream timeouts): 1ms to 1d.
  std::chrono::milliseconds upstream_connect_timeout{5000};
  // Time allowed between upstream bytes (and for the response headers).
  // Default: 30s.
  std::chrono::milliseconds upstream_read_timeout{30000};
  // How many times one fetch whose upstream broke off mid-body asks again
  // for the rest (Range from the frontier, If-Range the validator), with a
  // growing pause between attempts. 0: never. Default: 3. Range: 0 to 100.
  int upstream_resume_attempts = 3;
  // A resumable body that brings no byte for this long while readers wait
  // gets a request for the rest raced beside it; 0: never. Must be shorter
  // than upstream_read_timeout. Default: 10s when read_timeout is longer,
  // else 0 (the read timeout and a resume come as soon).
  std::chrono::milliseconds upstream_stall_timeout{10000};
  // A resumable body of known length that will be kept is made durable and
  // recorded every this many bytes, so that what was fetched outlives a
  // restart or a crash (the next request asks only for the rest); 0:
  // never. Default: 64MiB.
  std::uint64_t upstream_partial_checkpoint = 64ull << 20;

  // ---- Forward proxy ----
  ForwardProxy forward_proxy;

  // ---- Tiers ----
  // How this fanoutd names itself in Via (and in X-Cache across tiers): an
  // HTTP token, at most 64 characters. Every fanoutd of a chain (child,
  // parent) needs its own: a request whose Via already holds this one has
  // come round a loop and is refused. Empty: this host's name.
  std::string pseudonym;

  // ---- Logs ----
  // trace, debug, info, warn, error, critical or off. Default: info.
  std::string log_level = "info";
  // Where the log goes: a file path (opened for appending, reopened on
  // SIGUSR1 after a rotation), or empty for standard output. Default: empty.
  std::string log_file;
  // One line per request. Default: true.
  bool access_log = true;
  // The access log's lines: text (a readable line among the others) or
  // JSON (one object per line: time, client, method, target, status,
  // cache, bytes, duration_ms, ttfb_ms, upstream_status, upstream_ms,
  // incomplete). Default: text.
  bool access_log_json = false;
  // Where the access log goes, if not with the rest of the log (log_file):
  // a file path. Default: empty (with the rest).
  std::string access_log_file;
};

}  // namespace fanout

#endif  // FANOUT_CONFIG_CONFIG_H_
