// CacheControl: the directives of Cache-Control header lines (RFC 9111
// §5.2), parsed leniently as a cache must: names are case-insensitive,
// unknown directives are ignored, the first occurrence of a directive
// counts, and a delta-seconds that is not a number is taken as 0 (so a
// damaged max-age makes a response stale, never fresher).

#ifndef FANOUT_CORE_CACHE_CONTROL_H_
#define FANOUT_CORE_CACHE_CONTROL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fanout {

struct CacheControl {
  bool no_store = false;
  bool no_cache = false;  // with or without field names: treated as whole
  bool private_ = false;  // likewise
  bool public_ = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  bool only_if_cached = false;
  std::optional<std::int64_t> max_age;
  std::optional<std::int64_t> s_maxage;
  std::optional<std::int64_t> min_fresh;
  // max-stale without a value: any staleness (INT64_MAX).
  std::optional<std::int64_t> max_stale;
  std::optional<std::int64_t> stale_while_revalidate;
  std::optional<std::int64_t> stale_if_error;

  // Every Cache-Control line of a message, in order.
  static CacheControl Parse(const std::vector<std::string>& lines);

  // A targeted cache-control field's lines (RFC 9213: CDN-Cache-Control and
  // the like), which are a Structured Fields Dictionary (RFC 8941) and read
  // strictly: nullopt if the value is empty or does not parse, and then
  // the field is ignored as if absent. Directives as above; a value of the
  // wrong type (max-age=1.5, max-age="60", a negative number) drops that
  // directive only; no-store=?0 is no directive.
  static std::optional<CacheControl> ParseTargeted(const std::vector<std::string>& lines);
};

}  // namespace fanout

#endif  // FANOUT_CORE_CACHE_CONTROL_H_
