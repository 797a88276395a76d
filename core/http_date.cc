#include "core/http_date.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string_view>
#include <vector>

namespace fanout {
namespace {

constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

// Splits on spaces, commas and dashes ("06-Nov-94" is three tokens), into
// at most 8 views (no allocation: dates are parsed on every cache hit).
struct Tokens {
  std::array<std::string_view, 8> token;
  std::size_t size = 0;
  bool overflow = false;

  explicit Tokens(std::string_view text) {
    std::size_t start = 0;
    for (std::size_t i = 0; i <= text.size(); ++i) {
      if (i < text.size() && text[i] != ' ' && text[i] != ',' && text[i] != '-') continue;
      if (i > start) {
        if (size == token.size()) overflow = true;
        else token[size++] = text.substr(start, i - start);
      }
      start = i + 1;
    }
  }
  std::string_view operator[](std::size_t i) const { return token[i]; }
};

std::optional<int> Number(std::string_view s, std::size_t min_digits, std::size_t max_digits) {
  if (s.size() < min_digits || s.size() > max_digits) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::optional<int> Month(std::string_view s) {
  for (std::size_t i = 0; i < kMonths.size(); ++i) {
    if (s == kMonths[i]) return static_cast<int>(i);
  }
  return std::nullopt;
}

// "08:49:37" into seconds since midnight.
std::optional<int> TimeOfDay(std::string_view s) {
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return std::nullopt;
  auto h = Number(s.substr(0, 2), 2, 2), m = Number(s.substr(3, 2), 2, 2),
       sec = Number(s.substr(6, 2), 2, 2);
  if (!h || !m || !sec || *h > 23 || *m > 59 || *sec > 60) return std::nullopt;
  return *h * 3600 + *m * 60 + *sec;
}

// The last whole second SystemTime can hold (2262-04-11T23:47:16Z with
// libstdc++'s nanoseconds).
constexpr std::int64_t kLastSecond =
    std::chrono::duration_cast<std::chrono::seconds>(SystemTime::duration::max()).count();

std::optional<SystemTime> Make(int year, int month, int day, int seconds) {
  if (day < 1 || day > 31 || year < 1970) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month;
  tm.tm_mday = day;
  const time_t midnight = ::timegm(&tm);
  if (midnight == static_cast<time_t>(-1)) return std::nullopt;
  // A later date ("Expires: Fri, 31 Dec 9999 23:59:59 GMT" is common) is
  // as far ahead as the clock goes; converting it as it is would overflow.
  const std::int64_t t = std::min<std::int64_t>(midnight + seconds, kLastSecond);
  return SystemTime(std::chrono::seconds(t));
}

}  // namespace

std::optional<SystemTime> ParseHttpDate(std::string_view text) {
  const Tokens t(text);
  if (t.overflow) return std::nullopt;
  // IMF-fixdate: Sun 06 Nov 1994 08:49:37 GMT
  // RFC 850:     Sunday 06 Nov 94 08:49:37 GMT
  if (t.size == 6 && t[5] == "GMT") {
    auto day = Number(t[1], 1, 2);
    auto month = Month(t[2]);
    auto year = Number(t[3], 2, 4);
    auto tod = TimeOfDay(t[4]);
    if (!day || !month || !year || !tod) return std::nullopt;
    int y = *year;
    // Two-digit years (RFC 850): 70-99 are 19xx, the rest 20xx, which is
    // RFC 9110 §5.6.7's 50-years-ahead rule for this century.
    if (t[3].size() == 2) y += y < 70 ? 2000 : 1900;
    return Make(y, *month, *day, *tod);
  }
  // asctime: Sun Nov 6 08:49:37 1994
  if (t.size == 5) {
    auto month = Month(t[1]);
    auto day = Number(t[2], 1, 2);
    auto tod = TimeOfDay(t[3]);
    auto year = Number(t[4], 4, 4);
    if (!day || !month || !year || !tod) return std::nullopt;
    return Make(*year, *month, *day, *tod);
  }
  return std::nullopt;
}

std::string FormatHttpDate(SystemTime t) {
  const time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

}  // namespace fanout
