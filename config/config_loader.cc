#include "config/config_loader.h"

#include <exception>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/units.h"
#include "core/header_text.h"

namespace fanout {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// ---- bounds of the numeric settings (README "Configuration") ----
// Past these a value can only be a mistake; they also keep every sum and
// conversion the server makes with them far from overflowing.

// The range of a duration setting, both ends included; max_text says max
// in messages.
struct DurationRange {
  milliseconds min;
  milliseconds max;
  const char* max_text;
};
// Timeouts: a peer silent for a day is gone.
constexpr DurationRange kTimeoutRange{milliseconds(1), std::chrono::hours(24), "1d"};
// A route's default_ttl, stale_while_revalidate, stale_if_error: whole
// seconds, and ten years is "forever" for a cache.
constexpr DurationRange kRouteDurationRange{seconds(1), std::chrono::hours(24 * 3650), "3650d"};
// Sizes: whatever fits a signed 64-bit number of bytes (8 EiB).
constexpr std::uint64_t kMaxSize = kMaxParsedSize;
// One thread each while open.
constexpr std::uint64_t kMaxConnections = 100000;

Status KeyError(const std::string& key, const std::string& problem) {
  return Status::InvalidArgument(key + ": " + problem);
}

// The value's type for messages, or the number itself ("got 1.5").
std::string Described(const json& v) {
  if (v.is_number()) return v.dump();
  return v.type_name();
}
const char* TypeName(const json& v) { return v.type_name(); }

// Finds where JSON text stops being valid, as a key path ("routes[1].upstream"),
// for the message: a SAX pass that only tracks the path.
class ErrorLocator : public nlohmann::json_sax<json> {
 public:
  // The path of the value being read when the error came ("" at the top),
  // and nlohmann's message; empty if the text is valid.
  const std::string& path() const { return error_path_; }
  const std::string& error() const { return error_; }
  // The JSON text of the token the error came at.
  const std::string& token() const { return token_; }
  // True if the error is a number too large for a double (1e400).
  bool number_overflow() const { return overflow_; }

  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(number_integer_t) override { return Value(); }
  bool number_unsigned(number_unsigned_t) override { return Value(); }
  bool number_float(number_float_t, const string_t&) override { return Value(); }
  bool string(string_t&) override { return Value(); }
  bool binary(binary_t&) override { return Value(); }
  bool start_object(std::size_t) override {
    frames_.push_back({false, "", 0});
    return true;
  }
  bool key(string_t& name) override {
    frames_.back().key = name;
    return true;
  }
  bool end_object() override { return End(); }
  bool start_array(std::size_t) override {
    frames_.push_back({true, "", 0});
    return true;
  }
  bool end_array() override { return End(); }
  bool parse_error(std::size_t, const std::string& last_token,
                   const nlohmann::detail::exception& e) override {
    error_ = e.what();
    token_ = last_token;
    overflow_ = e.id == 406;  // out_of_range.406: number overflow
    for (const Frame& f : frames_) {
      if (f.array) {
        error_path_ += "[" + std::to_string(f.index) + "]";
      } else if (!f.key.empty()) {
        error_path_ += (error_path_.empty() ? "" : ".") + f.key;
      }
    }
    return false;
  }

 private:
  struct Frame {
    bool array;
    std::string key;    // objects: the key whose value is being read
    std::size_t index;  // arrays: the element being read
  };

  bool Value() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
    return true;
  }
  bool End() {
    frames_.pop_back();
    return Value();
  }

  std::vector<Frame> frames_;
  std::string error_path_, error_, token_;
  bool overflow_ = false;
};

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

// A duration: a whole number of seconds, or a string with a unit
// ("500ms", "30s"), within `limits`.
Status GetDuration(const json& v, const std::string& key, milliseconds* out,
                   const DurationRange& limits = kTimeoutRange) {
  const std::string at_most = std::string(" (at most ") + limits.max_text + ")";
  std::optional<milliseconds> d;
  if (v.is_number_unsigned()) {
    const auto n = v.get<std::uint64_t>();
    if (n > static_cast<std::uint64_t>(std::chrono::duration_cast<seconds>(limits.max).count())) {
      return KeyError(key, "too long: " + v.dump() + " seconds" + at_most);
    }
    d = seconds(n);
  } else if (v.is_number_integer()) {
    return KeyError(key, "must be greater than zero, got " + v.dump());
  } else if (v.is_number_float()) {
    return KeyError(key, "expected a whole number of seconds or a duration string such as "
                         "\"1.5s\", got " + v.dump());
  } else if (v.is_string()) {
    d = ParseDuration(v.get<std::string>());
    if (!d) {
      return KeyError(key, "not a duration: '" + v.get<std::string>() +
                               "' (use e.g. \"500ms\", \"30s\", \"5m\"; at most " +
                               limits.max_text + ")");
    }
    if (*d > limits.max) {
      return KeyError(key, "too long: '" + v.get<std::string>() + "'" + at_most);
    }
  } else {
    return KeyError(key, std::string("expected a duration string such as "
                                     "\"30s\", got ") + TypeName(v));
  }
  if (d->count() <= 0) return KeyError(key, "must be greater than zero");
  if (*d < limits.min) {
    const auto ms = limits.min.count();
    return KeyError(key, ms % 1000 == 0 ? "must be at least " + std::to_string(ms / 1000) + "s"
                                        : "must be at least " + std::to_string(ms) + "ms");
  }
  *out = *d;
  return Status::Ok();
}

// A size: a whole number of bytes, or a string with a unit ("64MiB").
// Greater than zero and at most kMaxSize.
// A whole number from min to max.
Status GetCount(const json& v, const std::string& key, std::uint64_t min, std::uint64_t max,
                int* out) {
  if (!v.is_number_integer()) {
    return KeyError(key, "expected a whole number, got " + Described(v));
  }
  // JSON's non-negative whole numbers parse as unsigned, negative ones
  // as signed.
  if (!v.is_number_unsigned() || v.get<std::uint64_t>() < min || v.get<std::uint64_t>() > max) {
    return KeyError(key, "must be " + std::to_string(min) + " to " + std::to_string(max) +
                             ", got " + v.dump());
  }
  *out = static_cast<int>(v.get<std::uint64_t>());
  return Status::Ok();
}

Status GetSize(const json& v, const std::string& key, std::uint64_t* out) {
  const std::string hint = " (use e.g. \"512KiB\", \"64MiB\", \"10GiB\"; at most 8EiB)";
  std::optional<std::uint64_t> size;
  if (v.is_number_unsigned()) {
    size = v.get<std::uint64_t>();
    if (*size > kMaxSize) return KeyError(key, "too large: " + v.dump() + hint);
  } else if (v.is_number_integer()) {
    return KeyError(key, "must be greater than zero, got " + v.dump());
  } else if (v.is_number_float()) {
    return KeyError(key, "expected a whole number of bytes or a size string such as "
                         "\"1.5MB\", got " + v.dump());
  } else if (v.is_string()) {
    size = ParseSize(v.get<std::string>());
    if (!size) return KeyError(key, "not a size: '" + v.get<std::string>() + "'" + hint);
  } else {
    return KeyError(key, std::string("expected a size such as \"64MiB\", got ") +
                             TypeName(v));
  }
  if (*size == 0) return KeyError(key, "must be greater than zero");
  *out = *size;
  return Status::Ok();
}

Status GetBool(const json& v, const std::string& key, bool* out) {
  if (!v.is_boolean()) {
    return KeyError(key, std::string("expected true or false, got ") + TypeName(v));
  }
  *out = v.get<bool>();
  return Status::Ok();
}

// A JSON array of non-empty strings; `what` describes one in messages.
Status GetStringList(const json& v, const std::string& key, const char* what,
                     std::vector<std::string>* out) {
  if (!v.is_array()) {
    return KeyError(key, std::string("expected an array of ") + what + ", got " + TypeName(v));
  }
  out->clear();
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::string item_key = key + "[" + std::to_string(i) + "]";
    std::string item;
    Status st = GetString(v[i], item_key, &item);
    if (!st.ok()) return st;
    if (item.empty()) return KeyError(item_key, "must not be empty");
    out->push_back(std::move(item));
  }
  return Status::Ok();
}

Status ParsePathRule(const json& v, const std::string& where, PathRule* rule) {
  if (!v.is_object()) {
    return KeyError(where, std::string("expected an object, got ") + TypeName(v));
  }
  Status st = RejectUnknownKeys(v, where,
                                {"match", "ttl", "immutable", "ignore_client_no_cache", "store"});
  if (!st.ok()) return st;
  if (!v.contains("match")) return KeyError(where + ".match", "required");
  std::string match;
  if (!(st = GetString(v["match"], where + ".match", &match)).ok()) return st;
  if (!(st = PathPattern::Compile(match, &rule->match)).ok()) {
    return KeyError(where + ".match", st.message());
  }
  if (v.contains("ttl")) {
    milliseconds d{0};
    if (!(st = GetDuration(v["ttl"], where + ".ttl", &d, kRouteDurationRange)).ok()) return st;
    rule->ttl = std::chrono::duration_cast<seconds>(d);
  }
  if (v.contains("immutable") &&
      !(st = GetBool(v["immutable"], where + ".immutable", &rule->immutable)).ok()) {
    return st;
  }
  if (v.contains("ignore_client_no_cache") &&
      !(st = GetBool(v["ignore_client_no_cache"], where + ".ignore_client_no_cache",
                     &rule->ignore_client_no_cache))
           .ok()) {
    return st;
  }
  if (v.contains("store")) {
    bool store = true;
    if (!(st = GetBool(v["store"], where + ".store", &store)).ok()) return st;
    rule->store = store;
    if (!store && (rule->immutable || rule->ttl)) {
      return KeyError(where, "store: false with immutable or ttl says both to keep and not to keep");
    }
  }
  return Status::Ok();
}

// A route's keys about what it caches and how: targeted_cache_control,
// rules, ignore_query_params, rewrite_redirects.
Status ParseCacheRules(const json& r, const std::string& where, Route* route) {
  Status st;
  if (r.contains("targeted_cache_control")) {
    const std::string key = where + ".targeted_cache_control";
    if (!(st = GetStringList(r["targeted_cache_control"], key, "field names",
                             &route->targeted_cache_control))
             .ok()) {
      return st;
    }
    for (const std::string& name : route->targeted_cache_control) {
      for (char c : name) {
        if (!IsTokenChar(c)) return KeyError(key, "'" + name + "' is not a header field name");
      }
      if (EqualsIgnoreCase(name, "Cache-Control")) {
        return KeyError(key, "Cache-Control is not a targeted field (leave the list empty to use it alone)");
      }
    }
  }
  if (r.contains("rules")) {
    const json& rules = r["rules"];
    if (!rules.is_array()) {
      return KeyError(where + ".rules",
                      std::string("expected an array of rules, got ") + TypeName(rules));
    }
    for (std::size_t i = 0; i < rules.size(); ++i) {
      PathRule rule;
      st = ParsePathRule(rules[i], where + ".rules[" + std::to_string(i) + "]", &rule);
      if (!st.ok()) return st;
      route->rules.push_back(std::move(rule));
    }
  }
  if (r.contains("ignore_query_params") &&
      !(st = GetStringList(r["ignore_query_params"], where + ".ignore_query_params",
                           "parameter names", &route->ignore_query_params))
           .ok()) {
    return st;
  }
  if (r.contains("rewrite_redirects") &&
      !(st = GetBool(r["rewrite_redirects"], where + ".rewrite_redirects",
                     &route->rewrite_redirects))
           .ok()) {
    return st;
  }
  return Status::Ok();
}

// A route's settings beyond where it goes (which a forward proxy's
// per-host rules share): freshness defaults, TLS, verify, cache rules.
Status ParseRouteSettings(const json& r, const std::string& where, Route* route) {
  Status st;
  for (auto [name, field] : {std::pair{"default_ttl", &route->default_ttl},
                             std::pair{"stale_while_revalidate", &route->stale_while_revalidate},
                             std::pair{"stale_if_error", &route->stale_if_error}}) {
    if (!r.contains(name)) continue;
    milliseconds d{0};
    if (!(st = GetDuration(r[name], where + "." + name, &d, kRouteDurationRange)).ok()) {
      return st;
    }
    *field = std::chrono::duration_cast<seconds>(d);
  }
  if (r.contains("tls_ca_file")) {
    const std::string key = where + ".tls_ca_file";
    if (!(st = GetString(r["tls_ca_file"], key, &route->tls_ca_file)).ok()) return st;
    if (route->tls_ca_file.empty()) {
      return KeyError(key, "must not be empty (leave it out for the system's CAs)");
    }
    // Checked now, not at the first fetch: a typo must stop start-up.
    std::error_code ec;
    if (!std::filesystem::is_regular_file(route->tls_ca_file, ec) ||
        !std::ifstream(route->tls_ca_file).good()) {
      return KeyError(key, "cannot read '" + route->tls_ca_file + "' (no such readable file)");
    }
  }
  if (r.contains("tls_verify") &&
      !(st = GetBool(r["tls_verify"], where + ".tls_verify", &route->tls_verify)).ok()) {
    return st;
  }
  if (r.contains("verify") &&
      !(st = GetBool(r["verify"], where + ".verify", &route->verify)).ok()) {
    return st;
  }
  return ParseCacheRules(r, where, route);
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
    Status st = RejectUnknownKeys(
        r, where, {"prefix", "upstream", "host", "default_ttl", "stale_while_revalidate",
                   "stale_if_error", "tls_ca_file", "tls_verify", "targeted_cache_control",
                   "rules", "ignore_query_params", "rewrite_redirects", "verify"});
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
    if (!(st = ParseRouteSettings(r, where, &route)).ok()) return st;
    if ((r.contains("tls_ca_file") || r.contains("tls_verify")) &&
        route.upstream.scheme != "https") {
      return KeyError(where, "tls_ca_file and tls_verify apply to https upstreams only");
    }
    config->routes.push_back(std::move(route));
  }
  return Status::Ok();
}

Status ParseHostPatterns(const json& v, const std::string& key, std::vector<HostPattern>* out) {
  std::vector<std::string> texts;
  Status st = GetStringList(v, key, "host patterns", &texts);
  if (!st.ok()) return st;
  if (texts.empty()) return KeyError(key, "must list at least one host pattern");
  out->clear();
  for (std::size_t i = 0; i < texts.size(); ++i) {
    HostPattern pattern;
    if (!(st = HostPattern::Compile(texts[i], &pattern)).ok()) {
      return KeyError(key + "[" + std::to_string(i) + "]", st.message());
    }
    out->push_back(std::move(pattern));
  }
  return Status::Ok();
}

// forward_proxy: {"allow": [patterns], "connect": bool, "hosts": [{"match":
// [patterns], ...a route's settings}]}.
Status ParseForwardProxy(const json& v, Config* config) {
  if (!v.is_object()) {
    return KeyError("forward_proxy", std::string("expected an object, got ") + TypeName(v));
  }
  Status st = RejectUnknownKeys(v, "forward_proxy", {"allow", "connect", "hosts"});
  if (!st.ok()) return st;
  ForwardProxy& proxy = config->forward_proxy;
  proxy = ForwardProxy{};
  proxy.enabled = true;
  if (!v.contains("allow")) {
    return KeyError("forward_proxy.allow",
                    "required: the hosts fanoutd may fetch from for proxy clients");
  }
  if (!(st = ParseHostPatterns(v["allow"], "forward_proxy.allow", &proxy.allow)).ok()) return st;
  if (v.contains("connect") &&
      !(st = GetBool(v["connect"], "forward_proxy.connect", &proxy.connect)).ok()) {
    return st;
  }
  if (!v.contains("hosts")) return Status::Ok();
  const json& hosts = v["hosts"];
  if (!hosts.is_array()) {
    return KeyError("forward_proxy.hosts",
                    std::string("expected an array of per-host rules, got ") + TypeName(hosts));
  }
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    const std::string where = "forward_proxy.hosts[" + std::to_string(i) + "]";
    const json& h = hosts[i];
    if (!h.is_object()) {
      return KeyError(where, std::string("expected an object, got ") + TypeName(h));
    }
    st = RejectUnknownKeys(h, where,
                           {"match", "default_ttl", "stale_while_revalidate", "stale_if_error",
                            "tls_ca_file", "tls_verify", "targeted_cache_control", "rules",
                            "ignore_query_params", "verify"});
    if (!st.ok()) return st;
    if (!h.contains("match")) return KeyError(where + ".match", "required");
    ProxyHostRules rules;
    if (!(st = ParseHostPatterns(h["match"], where + ".match", &rules.match)).ok()) return st;
    if (!(st = ParseRouteSettings(h, where, &rules.settings)).ok()) return st;
    proxy.hosts.push_back(std::move(rules));
  }
  return Status::Ok();
}

// upstream.stall_timeout: a duration shorter than read_timeout, or "off";
// when absent, 10s if read_timeout is longer, else off.
Status ParseStallTimeout(const json& v, Config* config) {
  constexpr milliseconds kDefaultStall{10000};
  const milliseconds read = config->upstream_read_timeout;
  if (!v.contains("stall_timeout")) {
    config->upstream_stall_timeout = read > kDefaultStall ? kDefaultStall : milliseconds(0);
    return Status::Ok();
  }
  const json& stall = v["stall_timeout"];
  if (stall.is_string() && stall.get<std::string>() == "off") {
    config->upstream_stall_timeout = milliseconds(0);
    return Status::Ok();
  }
  milliseconds d{0};
  if (Status st = GetDuration(stall, "upstream.stall_timeout", &d); !st.ok()) return st;
  if (d >= read) {
    return KeyError("upstream.stall_timeout",
                    "must be shorter than upstream.read_timeout (" +
                        std::to_string(read.count()) + "ms), got " +
                        std::to_string(d.count()) + "ms (\"off\" turns it off)");
  }
  config->upstream_stall_timeout = d;
  return Status::Ok();
}

Status ParseUpstream(const json& v, Config* config) {
  if (!v.is_object()) {
    return KeyError("upstream", std::string("expected an object, got ") + TypeName(v));
  }
  Status st =
      RejectUnknownKeys(v, "upstream", {"connect_timeout", "read_timeout", "resume_attempts",
                                        "stall_timeout", "partial_checkpoint"});
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
  if (v.contains("resume_attempts")) {
    if (!(st = GetCount(v["resume_attempts"], "upstream.resume_attempts", 0, 100,
                        &config->upstream_resume_attempts)).ok()) {
      return st;
    }
  }
  if (v.contains("partial_checkpoint")) {
    const json& every = v["partial_checkpoint"];
    if (every.is_string() && every.get<std::string>() == "off") {
      config->upstream_partial_checkpoint = 0;
    } else if (!(st = GetSize(every, "upstream.partial_checkpoint",
                              &config->upstream_partial_checkpoint)).ok()) {
      return st;
    }
  }
  return ParseStallTimeout(v, config);
}

Status ParseLog(const json& v, Config* config) {
  if (!v.is_object()) {
    return KeyError("log", std::string("expected an object, got ") + TypeName(v));
  }
  Status st =
      RejectUnknownKeys(v, "log", {"level", "access_log", "file", "access_format", "access_file"});
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
  if (v.contains("file")) {
    if (!(st = GetString(v["file"], "log.file", &config->log_file)).ok()) return st;
  }
  if (v.contains("access_file")) {
    if (!(st = GetString(v["access_file"], "log.access_file", &config->access_log_file)).ok()) {
      return st;
    }
  }
  if (v.contains("access_format")) {
    std::string format;
    if (!(st = GetString(v["access_format"], "log.access_format", &format)).ok()) return st;
    if (format != "text" && format != "json") {
      return KeyError("log.access_format", "unknown format '" + format + "' (text, json)");
    }
    config->access_log_json = format == "json";
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
  if (config.routes.empty() && !config.forward_proxy.enabled) {
    return KeyError("routes", "at least one route is required (or pass --upstream URL, or "
                              "set forward_proxy)");
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

namespace {

Status ParseConfigOrThrow(std::string_view json_text, Config* config) {
  json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false,
                          /*ignore_comments=*/true);
  if (root.is_discarded()) {
    // Parse again, as SAX, to learn where and why for the message.
    ErrorLocator locator;
    (void)json::sax_parse(json_text, &locator, json::input_format_t::json, /*strict=*/true,
                          /*ignore_comments=*/true);
    if (locator.number_overflow() && !locator.path().empty()) {
      return KeyError(locator.path(), "number out of range: " + locator.token());
    }
    std::string message = "not valid JSON";
    if (!locator.path().empty()) message += " (in " + locator.path() + ")";
    if (!locator.error().empty()) message += ": " + locator.error();
    return Status::InvalidArgument(message);
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
                                 "max_connections_per_client", "max_uncached_buffer",
                                 "shutdown_grace", "pseudonym", "forward_proxy"});
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
  if (root.contains("forward_proxy") &&
      !(st = ParseForwardProxy(root["forward_proxy"], config)).ok()) {
    return st;
  }
  if (root.contains("max_connections") &&
      !(st = GetCount(root["max_connections"], "max_connections", 1, kMaxConnections,
                      &config->max_connections)).ok()) {
    return st;
  }
  if (root.contains("client_timeout") &&
      !(st = GetDuration(root["client_timeout"], "client_timeout",
                         &config->client_timeout)).ok()) {
    return st;
  }
  if (root.contains("pseudonym")) {
    if (!(st = GetString(root["pseudonym"], "pseudonym", &config->pseudonym)).ok()) return st;
    const std::string& p = config->pseudonym;
    const bool token =
        !p.empty() && p.size() <= 64 &&
        p.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                            "!#$%&'*+-.^_`|~") == std::string::npos;
    if (!token) {
      return KeyError("pseudonym", "must be 1 to 64 letters, digits or !#$%&'*+-.^_`|~ "
                                   "(an HTTP token, as Via needs), got '" + p + "'");
    }
  }
  if (root.contains("shutdown_grace") &&
      !(st = GetDuration(root["shutdown_grace"], "shutdown_grace",
                         &config->shutdown_grace)).ok()) {
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
  if (root.contains("max_connections_per_client") &&
      !(st = GetCount(root["max_connections_per_client"], "max_connections_per_client", 0,
                      kMaxConnections, &config->max_connections_per_client)).ok()) {
    return st;
  }
  if (root.contains("admin_listen")) {
    std::string admin;
    if (!(st = GetString(root["admin_listen"], "admin_listen", &admin)).ok()) return st;
    if (!(st = ParseAdminListen(admin, config)).ok()) return st;
  }
  return Status::Ok();
}

}  // namespace

Status ParseConfig(std::string_view json_text, Config* config) {
  // The edge of nlohmann::json: nothing above is expected to throw (types
  // are checked before every get<>()), but if anything does, it is a config
  // error, never an abort.
  try {
    return ParseConfigOrThrow(json_text, config);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("cannot read the config: ") + e.what());
  }
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
