#include "server/admin_server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/cache_policy.h"
#include "server/cache_key.h"
#include "server/request_target.h"
#include "server/status_page.h"

namespace fanout {

AdminServer::AdminServer(Cache* cache, const RouteTable* routes, const ServerStats* stats,
                         const BodySender* sender)
    : cache_(cache),
      routes_(routes),
      stats_(stats),
      sender_(sender) {
  Install();
}

Status AdminServer::Start(const std::string& host, int port) {
  // cpp-httplib's default sets SO_REUSEPORT, with which a second fanoutd
  // would share this port (the kernel splitting connections between the
  // two) instead of being told it is taken.
  http_.set_socket_options([](socket_t fd) {
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  errno = 0;
  port_ = port == 0 ? http_.bind_to_any_port(host) : (http_.bind_to_port(host, port) ? port : -1);
  if (port_ <= 0) {
    const int err = errno;
    return Status::IOError("cannot listen on " + host + ":" + std::to_string(port) +
                           " for the admin interface (admin_listen)" +
                           (err != 0 ? std::string(": ") + std::strerror(err) : ""));
  }
  return Status::Ok();
}

bool AdminServer::Run() { return http_.listen_after_bind(); }

void AdminServer::Stop() { http_.stop(); }

std::optional<std::string> AdminServer::AbsoluteKeyOf(const std::string& url, bool prefix) const {
  const std::size_t sep = url.find("://");
  if (sep == std::string::npos) return std::nullopt;
  const std::size_t authority_end = url.find_first_of("/?", sep + 3);
  std::string error;
  const std::optional<Url> origin = ParseUrl(url.substr(0, authority_end), &error);
  if (!origin) return std::nullopt;
  std::string target;
  const std::string path = authority_end == std::string::npos ? "/" : url.substr(authority_end);
  if (!NormalizeRequestTarget(path, &target).ok()) return std::nullopt;
  // Keys spell the origin one way ("http://h/x" is "http://h:80/x"); a
  // forward proxy's per-host rules may leave query parameters out.
  const Router& router = routes_->current();
  if (!prefix && router.proxy().enabled()) {
    const std::string authority = url.substr(sep + 3, authority_end - sep - 3);
    const ProxyRoutes::Decision proxied = router.proxy().RouteFor(origin->scheme, authority);
    if (proxied.route != nullptr) return CacheKey(*proxied.route, target);
  }
  Url canonical = *origin;
  canonical.host = CanonicalHost(canonical.host);
  return canonical.Origin() + target;
}

std::string AdminServer::KeyOf(const std::string& url) const {
  if (auto absolute = AbsoluteKeyOf(url, /*prefix=*/false)) return *absolute;
  if (url.empty() || url[0] != '/') return url;
  // The key a client request for this path would have (request_target.h).
  std::string target;
  if (!NormalizeRequestTarget(url, &target).ok()) return url;
  const Route* route = routes_->current().Match(target);
  if (route == nullptr) return url;
  return CacheKey(*route, Router::UpstreamTarget(*route, target));
}

std::string AdminServer::KeyPrefixOf(const std::string& prefix) const {
  if (auto absolute = AbsoluteKeyOf(prefix, /*prefix=*/true)) return *absolute;
  if (prefix.empty() || prefix[0] != '/') return prefix;
  // A client path prefix: the key prefix its route maps it to, normalised
  // like a path ("/deb/pool/" -> "http://mirror:80/debian/pool/").
  std::string target;
  if (!NormalizeRequestTarget(prefix, &target).ok()) return prefix;
  const Route* route = routes_->current().Match(target);
  if (route == nullptr) return prefix;
  return route->upstream.Origin() + Router::UpstreamTarget(*route, target);
}

CachePolicyOptions AdminServer::PolicyForKey(const std::string& key) const {
  const Route* best = nullptr;
  std::size_t best_length = 0;
  for (const Route& r : routes_->current().routes()) {
    const std::string base = r.upstream.Origin() + r.upstream.path;
    if (key.rfind(base, 0) == 0 && base.size() >= best_length) {
      best = &r;
      best_length = base.size();
    }
  }
  if (best == nullptr) {
    // A forward proxy's entry: its host's rules ("http://h:80/x").
    const ProxyRoutes& proxy = routes_->current().proxy();
    const std::size_t sep = key.find("://");
    if (!proxy.enabled() || sep == std::string::npos) return CachePolicyOptions{};
    const std::size_t path = std::min(key.find('/', sep + 3), key.size());
    const ProxyRoutes::Decision proxied =
        proxy.RouteFor(key.substr(0, sep), key.substr(sep + 3, path - sep - 3));
    if (proxied.route == nullptr) return CachePolicyOptions{};
    return CachePolicyOf(*proxied.route, std::string_view(key).substr(path));
  }
  return CachePolicyOf(*best, std::string_view(key).substr(best->upstream.Origin().size()));
}

void AdminServer::Install() {
  using nlohmann::json;
  auto reply = [](httplib::Response& res, const json& body) {
    // Keys and header values are bytes from the network: any that are not
    // UTF-8 are shown as U+FFFD rather than failing the answer.
    res.set_content(body.dump(2, ' ', false, json::error_handler_t::replace) + "\n",
                    "application/json");
  };
  // GET /entries?limit=N&after=KEY: one page, in key order. Without
  // limit, the first kDefaultPage; X-Next-After names the key to pass as
  // after= for the next page, when there is one.
  http_.Get("/entries", [this, reply](const httplib::Request& req, httplib::Response& res) {
    constexpr std::size_t kDefaultPage = 1000;
    std::size_t limit = kDefaultPage;
    if (req.has_param("limit")) {
      const std::string text = req.get_param_value("limit");
      char* end = nullptr;
      const unsigned long long n = std::strtoull(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || n == 0 || n > 100000) {
        res.status = 400;
        reply(res, {{"error", "limit= must be a number from 1 to 100000"}});
        return;
      }
      limit = static_cast<std::size_t>(n);
    }
    const auto now = std::chrono::system_clock::now();
    const auto page = cache_->ListPage(req.get_param_value("after"), limit + 1);
    json list = json::array();
    for (std::size_t i = 0; i < page.size() && i < limit; ++i) {
      const auto& e = page[i];
      const auto age = CurrentAge(e.head, now).count();
      const auto lifetime = FreshnessLifetime(e.head, PolicyForKey(e.key)).count();
      list.push_back({{"key", e.key},
                      {"status", e.status},
                      {"size", e.body_length},
                      {"age", age},
                      {"fresh_for", lifetime - age},
                      {"etag", e.head.Header("ETag")},
                      {"hits", e.hits}});
    }
    if (page.size() > limit) res.set_header("X-Next-After", page[limit - 1].key);
    reply(res, list);
  });
  http_.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  // Ready: the index is loaded (it is, once this listener runs) and the
  // cache directory takes a new file.
  http_.Get("/readyz", [this, reply](const httplib::Request&, httplib::Response& res) {
    if (draining_.load()) {
      res.status = 503;
      reply(res, {{"ready", false}, {"why", "draining: fanoutd is stopping"}});
      return;
    }
    const Status writable = cache_->CheckWritable();
    if (!writable.ok()) {
      res.status = 503;
      reply(res, {{"ready", false}, {"why", writable.message()}});
      return;
    }
    reply(res, {{"ready", true}, {"entries", cache_->stored_count()}});
  });
  http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    if (!render_metrics_) {
      res.status = 404;
      res.set_content("no metrics here\n", "text/plain");
      return;
    }
    res.set_content(render_metrics_(), "text/plain; version=0.0.4; charset=utf-8");
  });
  http_.Get("/stats", [this, reply](const httplib::Request&, httplib::Response& res) {
    json body = {{"entries", cache_->stored_count()},
                 {"stored_bytes", cache_->stored_bytes()},
                 {"fetches", cache_->in_flight_count()}};
    if (stats_ != nullptr) {
      body["hit"] = stats_->hit.load();
      body["miss"] = stats_->miss.load();
      body["join"] = stats_->join.load();
      body["revalidate"] = stats_->revalidate.load();
      body["stale"] = stats_->stale.load();
      body["bypass"] = stats_->bypass.load();
      body["direct_hits"] = stats_->direct_hits.load();
    }
    if (sender_ != nullptr) {
      body["bodies_handed_off"] = sender_->submitted();
      body["bodies_sending"] = sender_->active();
      body["connections_idle"] = sender_->parked();
    }
    reply(res, body);
  });
  auto fetches = [this] {
    json list = json::array();
    for (const auto& f : cache_->ListFetches()) {
      list.push_back({{"key", f.key},
                      {"written", f.written},
                      {"length", f.length ? json(*f.length) : json(nullptr)},
                      {"joins", f.joins},
                      {"readers", f.readers},
                      {"head", f.has_head}});
    }
    return list;
  };
  http_.Get("/fetches", [fetches, reply](const httplib::Request&, httplib::Response& res) {
    reply(res, fetches());
  });
  http_.Get("/", [](const httplib::Request&, httplib::Response& res) {
    const std::string_view page = StatusPageHtml();
    res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
  });
  http_.Get("/status.json", [this, fetches, reply](const httplib::Request&,
                                                   httplib::Response& res) {
    json totals = json::object();
    if (stats_ != nullptr) {
      totals = {{"HIT", stats_->hit.load()},         {"MISS", stats_->miss.load()},
                {"JOIN", stats_->join.load()},       {"REVALIDATE", stats_->revalidate.load()},
                {"STALE", stats_->stale.load()},     {"BYPASS", stats_->bypass.load()}};
    }
    json recent = json::array();
    if (recent_ != nullptr) {
      for (const RecentRequests::Request& r : recent_->Newest()) {
        recent.push_back(
            {{"ended", std::chrono::duration_cast<std::chrono::milliseconds>(
                           r.ended.time_since_epoch())
                           .count()},
             {"method", r.method},
             {"target", r.target},
             {"status", r.status},
             {"cache", r.cache},
             {"bytes", r.bytes},
             {"ms", r.milliseconds}});
      }
    }
    reply(res, {{"fetches", fetches()},
                {"totals", totals},
                {"entries", cache_->stored_count()},
                {"stored_bytes", cache_->stored_bytes()},
                {"max_cache_size", max_cache_size_},
                {"recent", recent}});
  });
  // POST /purge?url=PATH-OR-URL (one entry and its variants) or
  // ?prefix=PATH-OR-URL (every entry whose key starts so); POST
  // /purge-all. Answered before cpp-httplib reads a body: curl -X POST
  // sends none, and no Content-Length either.
  auto purge = [this, reply](const httplib::Request& req, httplib::Response& res) {
    const std::string url = req.get_param_value("url");
    const std::string prefix = req.get_param_value("prefix");
    if (url.empty() == prefix.empty()) {
      res.status = 400;
      reply(res, {{"error", "one of url= or prefix= is required (a client path or an upstream URL)"}});
      return;
    }
    if (!prefix.empty()) {
      const std::string key_prefix = KeyPrefixOf(prefix);
      const std::size_t n = cache_->PurgePrefix(key_prefix);
      spdlog::info("admin: purge prefix {}: {} entries", key_prefix, n);
      reply(res, {{"prefix", key_prefix}, {"purged", n}});
      return;
    }
    const std::string key = KeyOf(url);
    const bool purged = cache_->Purge(key);
    spdlog::info("admin: purge {}: {}", key, purged ? "removed" : "not stored");
    res.status = purged ? 200 : 404;
    reply(res, {{"key", key}, {"purged", purged}});
  };
  auto purge_all = [this, reply](const httplib::Request&, httplib::Response& res) {
    const std::size_t n = cache_->PurgeAll();
    spdlog::info("admin: purged all ({} entries)", n);
    reply(res, {{"purged", n}});
  };
  http_.set_pre_routing_handler([purge, purge_all](const httplib::Request& req,
                                                   httplib::Response& res) {
    using Handled = httplib::Server::HandlerResponse;
    if ((req.method == "POST" && req.path == "/purge") ||
        (req.method == "DELETE" && req.path == "/entries")) {
      purge(req, res);
      return Handled::Handled;
    }
    if (req.method == "POST" && req.path == "/purge-all") {
      purge_all(req, res);
      return Handled::Handled;
    }
    return Handled::Unhandled;
  });
}

}  // namespace fanout
