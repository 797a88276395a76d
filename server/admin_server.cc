#include "server/admin_server.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "core/cache_policy.h"
#include "server/cache_key.h"
#include "server/request_target.h"

namespace fanout {

AdminServer::AdminServer(Cache* cache, const Router* router, std::vector<Route> routes,
                         const ServerStats* stats, const BodySender* sender)
    : cache_(cache),
      router_(router),
      routes_(std::move(routes)),
      stats_(stats),
      sender_(sender) {
  Install();
}

Status AdminServer::Start(const std::string& host, int port) {
  port_ = port == 0 ? http_.bind_to_any_port(host) : (http_.bind_to_port(host, port) ? port : -1);
  if (port_ <= 0) {
    return Status::IOError("cannot listen on " + host + ":" + std::to_string(port) +
                           " for the admin interface (admin_listen)");
  }
  return Status::Ok();
}

bool AdminServer::Run() { return http_.listen_after_bind(); }

void AdminServer::Stop() { http_.stop(); }

std::string AdminServer::KeyOf(const std::string& url) const {
  if (url.empty() || url[0] != '/') return url;
  // The key a client request for this path would have (request_target.h).
  std::string target;
  if (!NormalizeRequestTarget(url, &target).ok()) return url;
  const Route* route = router_->Match(target);
  if (route == nullptr) return url;
  return CacheKey(*route, Router::UpstreamTarget(*route, target));
}

CachePolicyOptions AdminServer::PolicyForKey(const std::string& key) const {
  const Route* best = nullptr;
  std::size_t best_length = 0;
  for (const Route& r : routes_) {
    const std::string base = r.upstream.Origin() + r.upstream.path;
    if (key.rfind(base, 0) == 0 && base.size() >= best_length) {
      best = &r;
      best_length = base.size();
    }
  }
  if (best == nullptr) return CachePolicyOptions{};
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
  http_.Get("/entries", [this, reply](const httplib::Request&, httplib::Response& res) {
    const auto now = std::chrono::system_clock::now();
    json list = json::array();
    for (const auto& e : cache_->List()) {
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
    reply(res, list);
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
  http_.Get("/fetches", [this, reply](const httplib::Request&, httplib::Response& res) {
    json list = json::array();
    for (const auto& f : cache_->ListFetches()) {
      list.push_back({{"key", f.key},
                      {"written", f.written},
                      {"length", f.length ? json(*f.length) : json(nullptr)},
                      {"joins", f.joins},
                      {"head", f.has_head}});
    }
    reply(res, list);
  });
  auto purge = [this, reply](const httplib::Request& req, httplib::Response& res) {
    const std::string url = req.get_param_value("url");
    if (url.empty()) {
      res.status = 400;
      reply(res, {{"error", "url= is required (a client path or an upstream URL)"}});
      return;
    }
    const std::string key = KeyOf(url);
    const bool purged = cache_->Purge(key);
    spdlog::info("admin: purge {}: {}", key, purged ? "removed" : "not stored");
    res.status = purged ? 200 : 404;
    reply(res, {{"key", key}, {"purged", purged}});
  };
  http_.Post("/purge", purge);
  http_.Delete("/entries", purge);
  http_.Post("/purge-all", [this, reply](const httplib::Request&, httplib::Response& res) {
    const std::size_t n = cache_->PurgeAll();
    spdlog::info("admin: purged all ({} entries)", n);
    reply(res, {{"purged", n}});
  });
}

}  // namespace fanout
