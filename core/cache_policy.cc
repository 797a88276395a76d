#include "core/cache_policy.h"

#include "core/header_text.h"

#include <strings.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace fanout {
namespace {

using std::chrono::seconds;

// RFC 9110 §15.1: statuses a cache may give heuristic freshness.
bool HeuristicallyCacheable(int status) {
  static constexpr std::array<int, 11> kStatuses = {200, 203, 204, 300, 301, 308,
                                                    404, 405, 410, 414, 501};
  return std::find(kStatuses.begin(), kStatuses.end(), status) != kStatuses.end();
}

// Heuristic freshness never exceeds a day, however old Last-Modified is.
constexpr seconds kMaxHeuristic{24 * 3600};

// How long an immutable object stays fresh: the longest TTL a route may set.
constexpr seconds kImmutableLifetime{3650LL * 24 * 3600};

// Whether a rule's immutable / store: true speaks for this response: only
// for the object itself. A 404 from a mirror still syncing, or a 5xx, must
// not be kept for ten years.
bool RuleCoversStatus(const ResponseHead& r) { return r.status == 200 || r.status == 203; }

// The response's Date, or when it arrived (RFC 9110 §6.6.1: a recipient
// with a clock treats a missing Date as the time of receipt).
SystemTime DateValue(const ResponseHead& r) {
  if (auto d = ParseHttpDate(r.Header("Date"))) return *d;
  return r.received_at;
}

seconds ToSeconds(std::chrono::system_clock::duration d) {
  return std::max(seconds(0), std::chrono::duration_cast<seconds>(d));
}

// Serving stale is forbidden outright (RFC 9111 §5.2.2.2, .8, .10).
bool NeverServeStale(const CacheControl& cc) {
  return cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage.has_value();
}

// The entity-tags of an If-None-Match value.
std::vector<std::string> EntityTags(const std::string& value) {
  std::vector<std::string> tags;
  std::size_t i = 0;
  while (i < value.size()) {
    while (i < value.size() && (value[i] == ' ' || value[i] == ',' || value[i] == '\t')) ++i;
    if (i >= value.size()) break;
    std::size_t start = i;
    if (value.compare(i, 2, "W/") == 0) i += 2;
    if (i < value.size() && value[i] == '"') {
      const auto close = value.find('"', i + 1);
      i = close == std::string::npos ? value.size() : close + 1;
    } else {
      while (i < value.size() && value[i] != ',') ++i;
    }
    tags.push_back(value.substr(start, i - start));
  }
  return tags;
}

// Weak comparison (RFC 9110 §8.8.3.2): equal opaque tags, W/ ignored.
bool WeakMatch(std::string a, std::string b) {
  if (a.rfind("W/", 0) == 0) a.erase(0, 2);
  if (b.rfind("W/", 0) == 0) b.erase(0, 2);
  return !a.empty() && a == b;
}

}  // namespace

CacheControl GoverningCacheControl(const ResponseHead& r, const CachePolicyOptions& options,
                                   bool* targeted) {
  for (const std::string& field : options.targeted_fields) {
    const auto lines = HeaderValues(r.headers, field);
    if (lines.empty()) continue;
    if (auto cc = CacheControl::ParseTargeted(lines)) {
      if (targeted) *targeted = true;
      return *cc;
    }
  }
  if (targeted) *targeted = false;
  return CacheControl::Parse(HeaderValues(r.headers, "Cache-Control"));
}

RequestFacts RequestFacts::From(const HeaderList& h) {
  RequestFacts f;
  const auto cc_lines = HeaderValues(h, "Cache-Control");
  f.cache_control = CacheControl::Parse(cc_lines);
  if (cc_lines.empty()) {
    for (std::string p : HeaderValues(h, "Pragma")) {
      for (char& c : p) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (p.find("no-cache") != std::string::npos) f.pragma_no_cache = true;
    }
  }
  for (const auto& [name, value] : h) {
    (void)value;
    if (EqualsIgnoreCase(name, "Authorization")) f.has_authorization = true;
    if (EqualsIgnoreCase(name, "If-None-Match") || EqualsIgnoreCase(name, "If-Modified-Since") ||
        EqualsIgnoreCase(name, "If-Match") || EqualsIgnoreCase(name, "If-Unmodified-Since") ||
        EqualsIgnoreCase(name, "If-Range")) {
      f.has_conditionals = true;
    }
  }
  return f;
}

bool MayShare(const ResponseHead& r, bool request_had_credentials,
              const CachePolicyOptions& options) {
  const CacheControl cc = GoverningCacheControl(r, options, nullptr);
  if (cc.private_ || cc.no_store || !HeaderValues(r.headers, "Set-Cookie").empty()) return false;
  const auto vary = VaryNames(r);
  if (std::find(vary.begin(), vary.end(), "*") != vary.end()) return false;
  return !request_had_credentials || AllowsAuthorizedReuse(r, options);
}

bool MayStore(const RequestFacts& request, const ResponseHead& r,
              const CachePolicyOptions& options, std::string* why) {
  bool targeted = false;
  const CacheControl cc = GoverningCacheControl(r, options, &targeted);
  auto no = [&](std::string reason) {
    if (why) *why = std::move(reason);
    return false;
  };
  if (r.status < 200 || r.status == 206 || r.status == 304) {
    return no("status " + std::to_string(r.status) + " is never stored");
  }
  if (options.store == false) return no("a rule of its route says store: false");
  if (request.cache_control.no_store) return no("the request said no-store");
  if (cc.no_store) return no("no-store");
  if (cc.private_) return no("private");
  if (request.has_authorization && !AllowsAuthorizedReuse(r, options)) {
    return no("answer to an authorized request, not marked public");
  }
  for (const auto& v : HeaderValues(r.headers, "Vary")) {
    if (v.find('*') != std::string::npos) return no("Vary: *");
  }
  if (!HeaderValues(r.headers, "Set-Cookie").empty()) return no("sets a cookie");
  // A rule that says the object is immutable, or to store it, stands for
  // the freshness and validator it may lack.
  if ((options.immutable || options.store == true) && RuleCoversStatus(r)) return true;
  const bool explicit_freshness =
      cc.max_age || cc.s_maxage || cc.public_ ||
      (!targeted && !HeaderValues(r.headers, "Expires").empty());
  if (!explicit_freshness && !HeuristicallyCacheable(r.status)) {
    return no("status " + std::to_string(r.status) + " without explicit freshness");
  }
  // Stale at once (or always revalidated) and nothing to revalidate with:
  // every use would fetch it whole again, so storing it only costs disk.
  if ((cc.no_cache || FreshnessLifetime(r, options) == seconds(0)) && !HasValidator(r)) {
    return no("no freshness and no validator");
  }
  return true;
}

bool AllowsAuthorizedReuse(const ResponseHead& r, const CachePolicyOptions& options) {
  const CacheControl cc = GoverningCacheControl(r, options, nullptr);
  return cc.public_ || cc.s_maxage.has_value() || cc.must_revalidate;
}

namespace {

// FreshnessLifetime with the response's governing directives already
// parsed (`targeted`: from a targeted field, so Expires does not count),
// and its Date value if known (`date` null: parsed if needed). A hit needs
// both the lifetime and the age: each is parsed once (every hit pays).
seconds LifetimeOf(const ResponseHead& r, const CachePolicyOptions& options,
                   const CacheControl& cc, bool targeted, const SystemTime* date) {
  if (options.immutable && RuleCoversStatus(r)) return kImmutableLifetime;
  if (cc.s_maxage) return seconds(*cc.s_maxage);
  if (cc.max_age) return seconds(*cc.max_age);
  auto date_value = [&] { return date != nullptr ? *date : DateValue(r); };
  const auto expires = targeted ? std::vector<std::string>() : HeaderValues(r.headers, "Expires");
  if (!expires.empty()) {
    // An invalid Expires (e.g. "0") means already expired.
    const auto at = ParseHttpDate(expires.front());
    return at ? ToSeconds(*at - date_value()) : seconds(0);
  }
  if (options.default_ttl) return *options.default_ttl;
  // RFC 9111 §4.2.2: heuristics for heuristically cacheable statuses, and
  // for responses of any status marked explicitly cacheable (public).
  if (HeuristicallyCacheable(r.status) || cc.public_) {
    if (auto lm = ParseHttpDate(r.Header("Last-Modified"))) {
      return std::min(kMaxHeuristic, ToSeconds(date_value() - *lm) / 10);
    }
  }
  return seconds(0);
}

// CurrentAge with the response's Date value already parsed.
seconds AgeOf(const ResponseHead& r, SystemTime date, SystemTime now) {
  const seconds apparent_age = ToSeconds(r.received_at - date);
  const seconds response_delay = ToSeconds(r.received_at - r.requested_at);
  const seconds corrected_age_value = seconds(r.upstream_age) + response_delay;
  const seconds corrected_initial_age = std::max(apparent_age, corrected_age_value);
  return corrected_initial_age + ToSeconds(now - r.received_at);
}

}  // namespace

seconds FreshnessLifetime(const ResponseHead& r, const CachePolicyOptions& options) {
  bool targeted = false;
  const CacheControl cc = GoverningCacheControl(r, options, &targeted);
  return LifetimeOf(r, options, cc, targeted, nullptr);
}

seconds CurrentAge(const ResponseHead& r, SystemTime now) { return AgeOf(r, DateValue(r), now); }

Reuse DecideReuse(const RequestFacts& request, const ResponseHead& stored,
                  const CachePolicyOptions& options, SystemTime now) {
  // An immutable object is never revalidated, whoever asks.
  if (options.immutable && RuleCoversStatus(stored)) return Reuse::kFresh;
  bool targeted = false;
  const CacheControl cc = GoverningCacheControl(stored, options, &targeted);
  const CacheControl& rcc = request.cache_control;
  const bool client_may_force = !options.ignore_client_no_cache;
  if (cc.no_cache) return Reuse::kRevalidate;
  if (client_may_force && (rcc.no_cache || request.pragma_no_cache)) return Reuse::kRevalidate;
  const SystemTime date = DateValue(stored);
  const seconds lifetime = LifetimeOf(stored, options, cc, targeted, &date);
  const seconds age = AgeOf(stored, date, now);
  // Ages are whole seconds, rounded down: a stored response's true age is
  // more than that, so "max-age=N" (at most N seconds old) is not met at N.
  // max-age=0 thus always revalidates, as clients sending it mean.
  if (client_may_force && rcc.max_age && age.count() >= *rcc.max_age) return Reuse::kRevalidate;
  if (lifetime > age) {
    if (rcc.min_fresh && (lifetime - age).count() < *rcc.min_fresh) return Reuse::kRevalidate;
    return Reuse::kFresh;
  }
  if (NeverServeStale(cc)) return Reuse::kRevalidate;
  const std::int64_t staleness = (age - lifetime).count();
  if (rcc.max_stale && staleness <= *rcc.max_stale) return Reuse::kFresh;
  std::optional<std::int64_t> swr = cc.stale_while_revalidate;
  if (!swr && options.stale_while_revalidate) swr = options.stale_while_revalidate->count();
  if (swr && staleness <= *swr) return Reuse::kStaleWhileRevalidate;
  return Reuse::kRevalidate;
}

bool MayServeStaleOnError(const ResponseHead& stored, const CachePolicyOptions& options,
                          SystemTime now) {
  bool targeted = false;
  const CacheControl cc = GoverningCacheControl(stored, options, &targeted);
  if (NeverServeStale(cc)) return false;
  std::optional<std::int64_t> sie = cc.stale_if_error;
  if (!sie && options.stale_if_error) sie = options.stale_if_error->count();
  if (!sie) return false;
  const SystemTime date = DateValue(stored);
  const seconds staleness =
      AgeOf(stored, date, now) - LifetimeOf(stored, options, cc, targeted, &date);
  return staleness.count() <= *sie;
}

bool HasValidator(const ResponseHead& stored) {
  return !stored.Header("ETag").empty() ||
         ParseHttpDate(stored.Header("Last-Modified")).has_value();
}

HeaderList ConditionalHeaders(const ResponseHead& stored) {
  HeaderList h;
  if (auto etag = stored.Header("ETag"); !etag.empty()) h.emplace_back("If-None-Match", etag);
  if (auto lm = stored.Header("Last-Modified"); ParseHttpDate(lm)) {
    h.emplace_back("If-Modified-Since", lm);
  }
  return h;
}

ResponseHead Refreshed(const ResponseHead& stored, const ResponseHead& not_modified) {
  ResponseHead out = stored;
  for (const auto& field : not_modified.headers) {
    const std::string& name = field.first;
    if (EqualsIgnoreCase(name, "Content-Length")) continue;
    std::erase_if(out.headers, [&](const auto& h) { return EqualsIgnoreCase(h.first, name); });
  }
  for (const auto& h : not_modified.headers) {
    if (!EqualsIgnoreCase(h.first, "Content-Length")) out.headers.push_back(h);
  }
  out.requested_at = not_modified.requested_at;
  out.received_at = not_modified.received_at;
  out.upstream_age = not_modified.upstream_age;
  return out;
}

std::vector<std::string> VaryNames(const ResponseHead& response) {
  std::vector<std::string> names;
  for (const auto& line : HeaderValues(response.headers, "Vary")) {
    std::string name;
    for (std::size_t i = 0; i <= line.size(); ++i) {
      if (i == line.size() || line[i] == ',') {
        if (!name.empty()) names.push_back(name);
        name.clear();
      } else if (line[i] != ' ' && line[i] != '\t') {
        name.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(line[i]))));
      }
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

namespace {

// Headers whose values are case-insensitive tokens and language tags, in
// lists whose order means nothing (RFC 9110 §12.5.3, §12.5.4: preferences
// are q-values): "GZIP, br" and "br, gzip" select one variant.
bool CaseInsensitiveValues(const std::string& lower_name) {
  return lower_name == "accept-encoding" || lower_name == "accept-language";
}

// Appends the list elements of one field line to *out (separated by ","):
// each trimmed, runs of spaces and tabs inside one made a single space,
// empty elements dropped.
void AppendNormalisedElements(std::string_view line, bool fold_case, std::string* out) {
  std::size_t start = 0;
  for (std::size_t i = 0; i <= line.size(); ++i) {
    if (i < line.size() && line[i] != ',') continue;
    const std::string_view element = TrimOws(line.substr(start, i - start));
    start = i + 1;
    if (element.empty()) continue;
    if (!out->empty()) out->push_back(',');
    bool in_space = false;
    for (char c : element) {
      if (c == ' ' || c == '\t') {
        in_space = true;
        continue;
      }
      if (in_space) out->push_back(' ');
      in_space = false;
      out->push_back(fold_case ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c);
    }
  }
}

// The elements of a normalised list, sorted: a list whose order carries no
// meaning (preferences are q-values) compares alike in any order.
std::string SortedElements(const std::string& list) {
  std::vector<std::string_view> elements;
  std::string_view rest = list;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    elements.push_back(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  std::sort(elements.begin(), elements.end());
  std::string out;
  for (const auto e : elements) {
    if (!out.empty()) out.push_back(',');
    out += e;
  }
  return out;
}

}  // namespace

HeaderList SelectingValues(const std::vector<std::string>& names, const HeaderList& request) {
  HeaderList out;
  for (const auto& name : names) {
    const bool unordered = CaseInsensitiveValues(name);
    std::string value;
    for (const auto& line : HeaderValues(request, name)) {
      AppendNormalisedElements(line, unordered, &value);
    }
    out.emplace_back(name, unordered ? SortedElements(value) : std::move(value));
  }
  return out;
}

bool VaryMatches(const HeaderList& stored_selecting, const HeaderList& request) {
  std::vector<std::string> names;
  for (const auto& [name, value] : stored_selecting) {
    (void)value;
    if (name == "*") return false;
    names.push_back(name);
  }
  return SelectingValues(names, request) == stored_selecting;
}

std::string VariantKey(const std::string& base, const HeaderList& selecting) {
  // A newline occurs in no request target and no field value, and '=' in
  // no field name: no two (URL, values) give one key.
  std::string key = base + "\nvary";
  for (const auto& [name, value] : selecting) key += "\n" + name + "=" + value;
  return key;
}

bool ClientConditionSatisfied(const HeaderList& request_headers, const ResponseHead& stored) {
  if (stored.status != 200) return false;
  const auto inm = HeaderValues(request_headers, "If-None-Match");
  if (!inm.empty()) {
    const std::string etag = stored.Header("ETag");
    for (const auto& line : inm) {
      for (const auto& tag : EntityTags(line)) {
        if (tag == "*" || WeakMatch(tag, etag)) return true;
      }
    }
    return false;  // If-Modified-Since is ignored when If-None-Match is sent
  }
  const auto ims = ParseHttpDate(HeaderValue(request_headers, "If-Modified-Since"));
  if (!ims) return false;
  auto last_modified = ParseHttpDate(stored.Header("Last-Modified"));
  if (!last_modified) last_modified = ParseHttpDate(stored.Header("Date"));
  return last_modified && *last_modified <= *ims;
}

}  // namespace fanout
