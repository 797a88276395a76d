// Fuzzes CacheControl::Parse and CacheControl::ParseTargeted
// (core/cache_control).
//
// Input: Cache-Control header lines, one per line of the input.
// Invariants: a delta-seconds value is 0 to 2^31 (max-stale without a value:
// INT64_MAX); the first occurrence of a directive wins, so the lines twice
// over parse as the lines once; names are case-insensitive (and values are
// digits), so the lines in upper case parse the same. A targeted field
// (a Structured Fields Dictionary) that parses has bounded values too, and
// its lines joined into one line parse the same.

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/cache_control.h"
#include "core/header_text.h"
#include "tests/fuzz/fuzz_check.h"

namespace fanout {
namespace {

bool Same(const CacheControl& a, const CacheControl& b) {
  return a.no_store == b.no_store && a.no_cache == b.no_cache && a.private_ == b.private_ &&
         a.public_ == b.public_ && a.must_revalidate == b.must_revalidate &&
         a.proxy_revalidate == b.proxy_revalidate && a.only_if_cached == b.only_if_cached &&
         a.max_age == b.max_age && a.s_maxage == b.s_maxage && a.min_fresh == b.min_fresh &&
         a.max_stale == b.max_stale && a.stale_while_revalidate == b.stale_while_revalidate &&
         a.stale_if_error == b.stale_if_error;
}

void CheckDelta(const std::optional<std::int64_t>& v, bool may_be_unbounded) {
  if (!v) return;
  if (may_be_unbounded && *v == std::numeric_limits<std::int64_t>::max()) return;
  FUZZ_CHECK(*v >= 0 && *v <= (std::int64_t{1} << 31));
}

}  // namespace
}  // namespace fanout

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fanout;
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= input.size(); ++i) {
    if (i == input.size() || input[i] == '\n') {
      lines.push_back(input.substr(start, i - start));
      start = i + 1;
    }
  }

  const CacheControl cc = CacheControl::Parse(lines);
  CheckDelta(cc.max_age, false);
  CheckDelta(cc.s_maxage, false);
  CheckDelta(cc.min_fresh, false);
  CheckDelta(cc.max_stale, true);
  CheckDelta(cc.stale_while_revalidate, false);
  CheckDelta(cc.stale_if_error, false);

  std::vector<std::string> twice = lines;
  twice.insert(twice.end(), lines.begin(), lines.end());
  FUZZ_CHECK(Same(CacheControl::Parse(twice), cc));

  std::vector<std::string> upper = lines;
  for (std::string& line : upper) {
    for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  FUZZ_CHECK(Same(CacheControl::Parse(upper), cc));

  const std::optional<CacheControl> targeted = CacheControl::ParseTargeted(lines);
  if (targeted) {
    CheckDelta(targeted->max_age, false);
    CheckDelta(targeted->s_maxage, false);
    CheckDelta(targeted->stale_while_revalidate, false);
    CheckDelta(targeted->stale_if_error, false);
    FUZZ_CHECK(!targeted->min_fresh && !targeted->max_stale && !targeted->only_if_cached);
    std::string joined;
    for (const std::string& line : lines) {
      if (!joined.empty()) joined += ", ";
      joined += TrimOws(line);
    }
    const auto once = CacheControl::ParseTargeted({joined});
    FUZZ_CHECK(once && Same(*once, *targeted));
  }
  return 0;
}
