#include "core/cache_control.h"

#include "core/header_text.h"

#include <cctype>
#include <algorithm>
#include <limits>
#include <string_view>

namespace fanout {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// delta-seconds; quoted values are accepted (a common sender error). Too
// large saturates (RFC 9111 §1.2.2: 2^31 "or the greatest ... integer").
std::int64_t DeltaSeconds(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty()) return 0;
  std::int64_t n = 0;
  for (char c : v) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return 0;
    if (n > (std::int64_t{1} << 31)) return std::int64_t{1} << 31;
    n = n * 10 + (c - '0');
  }
  return std::min<std::int64_t>(n, std::int64_t{1} << 31);
}

// Splits a line into directives on commas outside quoted strings (RFC 9110
// §5.6.4: inside one, a backslash quotes the next character, '"' too).
std::vector<std::string_view> Directives(std::string_view line) {
  std::vector<std::string_view> out;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= line.size(); ++i) {
    if (quoted && i + 1 < line.size() && line[i] == '\\') {
      ++i;  // the quoted character, whatever it is
      continue;
    }
    if (i < line.size() && line[i] == '"') quoted = !quoted;
    if (i == line.size() || (line[i] == ',' && !quoted)) {
      auto d = TrimOws(line.substr(start, i - start));
      if (!d.empty()) out.push_back(d);
      start = i + 1;
    }
  }
  return out;
}

void SetOnce(std::optional<std::int64_t>& field, std::int64_t value) {
  if (!field) field = value;
}

}  // namespace

CacheControl CacheControl::Parse(const std::vector<std::string>& lines) {
  CacheControl cc;
  for (const std::string& line : lines) {
    for (std::string_view d : Directives(line)) {
      const auto eq = d.find('=');
      const std::string name = Lower(TrimOws(d.substr(0, eq)));
      const bool has_value = eq != std::string_view::npos;
      const std::string_view value = has_value ? TrimOws(d.substr(eq + 1)) : std::string_view();
      if (name == "no-store") cc.no_store = true;
      else if (name == "no-cache") cc.no_cache = true;
      else if (name == "private") cc.private_ = true;
      else if (name == "public") cc.public_ = true;
      else if (name == "must-revalidate") cc.must_revalidate = true;
      else if (name == "proxy-revalidate") cc.proxy_revalidate = true;
      else if (name == "only-if-cached") cc.only_if_cached = true;
      else if (name == "max-age") SetOnce(cc.max_age, DeltaSeconds(value));
      else if (name == "s-maxage") SetOnce(cc.s_maxage, DeltaSeconds(value));
      else if (name == "min-fresh") SetOnce(cc.min_fresh, DeltaSeconds(value));
      else if (name == "max-stale") {
        SetOnce(cc.max_stale, has_value ? DeltaSeconds(value)
                                        : std::numeric_limits<std::int64_t>::max());
      } else if (name == "stale-while-revalidate") {
        SetOnce(cc.stale_while_revalidate, DeltaSeconds(value));
      } else if (name == "stale-if-error") {
        SetOnce(cc.stale_if_error, DeltaSeconds(value));
      }
    }
  }
  return cc;
}

}  // namespace fanout
