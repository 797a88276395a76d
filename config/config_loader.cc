#include "config/config_loader.h"

#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "config/units.h"

namespace fanout {
namespace {

using json = nlohmann::json;

Status KeyError(const std::string& key, const std::string& problem) {
  return Status::InvalidArgument(key + ": " + problem);
}

const char* TypeName(const json& v) { return v.type_name(); }

Status RejectUnknownKeys(const json& object, const std::string& where,
                         const std::set<std::string>& known) {
  for (const auto& [key, value] : object.items()) {
    if (!known.count(key)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      return KeyError(where.empty() ? key : where + "." + key,
                      "unknown key (known keys here: " + list + ")");
    }
  }
  return Status::Ok();
}

Status GetString(const json& v, const std::string& key, std::string* out) {
  if (!v.is_string()) {
    return KeyError(key, std::string("expected a string, got ") + TypeName(v));
  }
  *out = v.get<std::string>();
  return Status::Ok();
}

Status GetDuration(const json& v, const std::string& key,
                   std::chrono::milliseconds* out) {
  std::optional<std::chrono::milliseconds> d;
  if (v.is_number_unsigned() || v.is_number_integer()) {
    if (v.get<std::int64_t>() > 0) d = std::chrono::seconds(v.get<std::int64_t>());
  } else if (v.is_string()) {
    d = ParseDuration(v.get<std::string>());
    if (!d) {
      return KeyError(key, "not a duration: '" + v.get<std::string>() +
                               "' (use e.g. \"500ms\", \"30s\", \"5m\")");
    }
  } else {
    return KeyError(key, std::string("expected a duration string such as "
                                     "\"30s\", got ") + TypeName(v));
  }
  if (!d || d->count() <= 0) return KeyError(key, "must be greater than zero");
  *out = *d;
  return Status::Ok();
}

Status GetSize(const json& v, const std::string& key, std::uint64_t* out) {
  std::optional<std::uint64_t> size;
  if (v.is_number_unsigned()) {
    size = v.get<std::uint64_t>();
  } else if (v.is_string()) {
    size = ParseSize(v.get<std::string>());
    if (!size) {
      return KeyError(key, "not a size: '" + v.get<std::string>() +
                               "' (use e.g. \"512KiB\", \"64MiB\", \"10GiB\")");
    }
  } else {
    return KeyError(key, std::string("expected a size such as \"64MiB\", got ") +
                             TypeName(v));
  }
  if (*size == 0) return KeyError(key, "must be greater than zero");
  *out = *size;
  return Status::Ok();
}

Status ParseRoutes(const json& v, Config* config) {
  if (!v.is_array()) {
    return KeyError("routes", std::string("expected an array of routes, got ") +
                                  TypeName(v));
  }
  config->routes.clear();
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::string where = "routes[" + std::to_string(i) + "]";
    const json& r = v[i];
    if (!r.is_object()) {
      return KeyError(where, std::string("expected an object, got ") + TypeName(r));
    }
    Status st = RejectUnknownKeys(r, where, {"prefix", "upstream", "host", "default_ttl",
                                             "stale_while_revalidate", "stale_if_error"});
    if (!st.ok()) return st;
    if (!r.contains("prefix")) return KeyError(where + ".prefix", "required");
    if (!r.contains("upstream")) return KeyError(where + ".upstream", "required");
    std::string prefix, upstream;
    if (!(st = GetString(r["prefix"], where + ".prefix", &prefix)).ok()) return st;
    if (!(st = GetString(r["upstream"], where + ".upstream", &upstream)).ok()) {
      return st;
    }
    Route route;
    if (!(st = MakeRoute(prefix, upstream, where, &route)).ok()) return st;
    if (r.contains("host")) {
      if (!(st = GetString(r["host"], where + ".host", &route.host_override)).ok()) {
        return st;
      }
      if (route.host_override.empty()) {
        return KeyError(where + ".host", "must not be empty (leave it out instead)");
      }
    }
    for (auto [name, field] : {std::pair{"default_ttl", &route.default_ttl},
                               std::pair{"stale_while_revalidate", &route.stale_while_revalidate},
                               std::pair{"stale_if_error", &route.stale_if_error}}) {
      if (!r.contains(name)) continue;
      std::chrono::milliseconds d{0};
      if (!(st = GetDuration(r[name], where + "." + name, &d)).ok()) return st;
      *field = std::chrono::duration_cast<std::chrono::seconds>(d);
      if (field->value().count() == 0) {
        return KeyError(where + "." + name, "must be at least one second");
      }
    }
    config->routes.push_back(std::move(route));
  }
  return Status::Ok();
}

Status ParseUpstream(const json& v, Config* config) {
  if (!v.is_object()) {
    return KeyError("upstream", std::string("expected an object, got ") + TypeName(v));
  }
  Status st = RejectUnknownKeys(v, "upstream", {"connect_timeout", "read_timeout"});
  if (!st.ok()) return st;
  if (v.contains("connect_timeout") &&
      !(st = GetDuration(v["connect_timeout"], "upstream.connect_timeout",
                         &config->upstream_connect_timeout)).ok()) {
    return st;
  }
  if (v.contains("read_timeout") &&
      !(st = GetDuration(v["read_timeout"], "upstream.read_timeout",
                         &config->upstream_read_timeout)).ok()) {
    return st;
  }
  return Status::Ok();
}

Status ParseLog(const json& v, Config* config) {
  if (!v.is_object()) {
    return KeyError("log", std::string("expected an object, got ") + TypeName(v));
  }
  Status st = RejectUnknownKeys(v, "log", {"level", "access_log"});
  if (!st.ok()) return st;
  if (v.contains("level")) {
    if (!(st = GetString(v["level"], "log.level", &config->log_level)).ok()) return st;
    static const std::set<std::string> kLevels = {
        "trace", "debug", "info", "warn", "error", "critical", "off"};
    if (!kLevels.count(config->log_level)) {
      return KeyError("log.level", "unknown level '" + config->log_level +
                                       "' (trace, debug, info, warn, error, "
                                       "critical, off)");
    }
  }
  if (v.contains("access_log")) {
    if (!v["access_log"].is_boolean()) {
      return KeyError("log.access_log", std::string("expected true or false, got ") +
                                            TypeName(v["access_log"]));
    }
    config->access_log = v["access_log"].get<bool>();
  }
  return Status::Ok();
}

}  // namespace

Status MakeRoute(std::string_view prefix, std::string_view upstream,
                 std::string_view what, Route* route) {
  const std::string where(what);
  if (prefix.empty() || prefix[0] != '/') {
    return KeyError(where + ".prefix", "must start with '/'");
  }
  std::string p(prefix);
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  std::string error;
  auto url = ParseUrl(upstream, &error);
  if (!url) {
    return KeyError(where + ".upstream",
                    "not a valid URL '" + std::string(upstream) + "': " + error);
  }
  route->prefix = std::move(p);
  route->upstream = std::move(*url);
  return Status::Ok();
}

Status ParseListen(std::string_view text, Config* config) {
  return ParseHostPort(text, "listen", &config->listen_host, &config->listen_port);
}

Status ParseAdminListen(std::string_view text, Config* config) {
  config->admin_enabled = !text.empty();
  if (text.empty()) return Status::Ok();
  return ParseHostPort(text, "admin_listen", &config->admin_host, &config->admin_port);
}

Status ParseHostPort(std::string_view text, const std::string& key, std::string* host_out,
                     int* port_out) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) {
    return KeyError(key, "expected \"host:port\", got '" + std::string(text) + "'");
  }
  std::string host(text.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) {
    return KeyError(key, "missing host in '" + std::string(text) +
                                  "' (use 0.0.0.0 for every address)");
  }
  int port = 0;
  const std::string_view port_text = text.substr(colon + 1);
  if (port_text.size() > 5) return KeyError(key, "port out of range (0-65535)");
  for (char c : port_text) {
    if (c < '0' || c > '9') {
      return KeyError(key, "port is not a number in '" + std::string(text) + "'");
    }
    port = port * 10 + (c - '0');
  }
  if (port > 65535) return KeyError(key, "port out of range (0-65535)");
  *host_out = std::move(host);
  *port_out = port;
  return Status::Ok();
}

Status ValidateConfig(const Config& config) {
  if (config.routes.empty()) {
    return KeyError("routes", "at least one route is required (or pass --upstream URL)");
  }
  std::set<std::string> seen;
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    if (!seen.insert(config.routes[i].prefix).second) {
      return KeyError("routes[" + std::to_string(i) + "].prefix",
                      "duplicate prefix '" + config.routes[i].prefix + "'");
    }
  }
  if (config.cache_dir.empty()) return KeyError("cache_dir", "must not be empty");
  return Status::Ok();
}

Status ParseConfig(std::string_view json_text, Config* config) {
  json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false,
                          /*ignore_comments=*/true);
  if (root.is_discarded()) {
    // Parse again with exceptions only to get the position for the message.
    try {
      json again = json::parse(json_text, nullptr, true, true);
      (void)again;
    } catch (const json::parse_error& e) {
      return Status::InvalidArgument(std::string("not valid JSON: ") + e.what());
    }
    return Status::InvalidArgument("not valid JSON");
  }
  if (!root.is_object()) {
    return Status::InvalidArgument(std::string("the config must be a JSON object, got ") +
                                   TypeName(root));
  }
  Status st = RejectUnknownKeys(root, "",
                                {"listen", "cache_dir", "routes", "upstream",
                                 "max_connections", "client_timeout",
                                 "max_request_body", "log", "max_cache_size",
                                 "max_object_size", "admin_listen", "request_head_timeout",
                                 "max_connections_per_client", "max_uncached_buffer"});
  if (!st.ok()) return st;
  if (root.contains("listen")) {
    std::string listen;
    if (!(st = GetString(root["listen"], "listen", &listen)).ok()) return st;
    if (!(st = ParseListen(listen, config)).ok()) return st;
  }
  if (root.contains("cache_dir") &&
      !(st = GetString(root["cache_dir"], "cache_dir", &config->cache_dir)).ok()) {
    return st;
  }
  if (root.contains("routes") && !(st = ParseRoutes(root["routes"], config)).ok()) {
    return st;
  }
  if (root.contains("upstream") && !(st = ParseUpstream(root["upstream"], config)).ok()) {
    return st;
  }
  if (root.contains("max_connections")) {
    const json& v = root["max_connections"];
    if (!v.is_number_integer()) {
      return KeyError("max_connections",
                      std::string("expected a whole number, got ") + TypeName(v));
    }
    const auto n = v.get<std::int64_t>();
    if (n < 1 || n > 100000) return KeyError("max_connections", "must be 1 to 100000");
    config->max_connections = static_cast<int>(n);
  }
  if (root.contains("client_timeout") &&
      !(st = GetDuration(root["client_timeout"], "client_timeout",
                         &config->client_timeout)).ok()) {
    return st;
  }
  if (root.contains("max_request_body") &&
      !(st = GetSize(root["max_request_body"], "max_request_body",
                     &config->max_request_body)).ok()) {
    return st;
  }
  if (root.contains("log") && !(st = ParseLog(root["log"], config)).ok()) return st;
  if (root.contains("max_cache_size") &&
      !(st = GetSize(root["max_cache_size"], "max_cache_size", &config->max_cache_size)).ok()) {
    return st;
  }
  if (root.contains("max_object_size") &&
      !(st = GetSize(root["max_object_size"], "max_object_size", &config->max_object_size))
           .ok()) {
    return st;
  }
  if (root.contains("max_uncached_buffer") &&
      !(st = GetSize(root["max_uncached_buffer"], "max_uncached_buffer",
                     &config->max_uncached_buffer)).ok()) {
    return st;
  }
  if (root.contains("request_head_timeout") &&
      !(st = GetDuration(root["request_head_timeout"], "request_head_timeout",
                         &config->request_head_timeout)).ok()) {
    return st;
  }
  if (root.contains("max_connections_per_client")) {
    const json& v = root["max_connections_per_client"];
    if (!v.is_number_integer()) {
      return KeyError("max_connections_per_client",
                      std::string("expected a whole number, got ") + TypeName(v));
    }
    const auto n = v.get<std::int64_t>();
    if (n < 0 || n > 100000) {
      return KeyError("max_connections_per_client", "must be 0 (no limit) to 100000");
    }
    config->max_connections_per_client = static_cast<int>(n);
  }
  if (root.contains("admin_listen")) {
    std::string admin;
    if (!(st = GetString(root["admin_listen"], "admin_listen", &admin)).ok()) return st;
    if (!(st = ParseAdminListen(admin, config)).ok()) return st;
  }
  return Status::Ok();
}

Status LoadConfigFile(const std::string& path, Config* config) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IOError("error reading config file " + path);
  Status st = ParseConfig(text.str(), config);
  if (!st.ok()) return Status::InvalidArgument(path + ": " + st.message());
  return Status::Ok();
}

}  // namespace fanout
