#include "core/http_date.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string_view>

namespace fanout {
namespace {

constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

constexpr std::array<const char*, 7> kLongDays = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                   "Thursday", "Friday", "Saturday"};

bool SameLetters(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// Reads a date left to right, one grammar element at a time; any mismatch
// makes every later read fail, so a parse is one chain of calls checked
// once at the end.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool ok() const { return ok_; }
  bool at_end() const { return ok_ && pos_ == text_.size(); }

  void Literal(char c) {
    if (ok_ && pos_ < text_.size() && text_[pos_] == c) ++pos_;
    else ok_ = false;
  }
  // Exactly `digits` digits.
  int Number(std::size_t digits) {
    int v = 0;
    for (std::size_t i = 0; i < digits && ok_; ++i, ++pos_) {
      if (pos_ >= text_.size() || !std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
        ok_ = false;
      } else {
        v = v * 10 + (text_[pos_] - '0');
      }
    }
    return v;
  }
  // One of `names`, letters compared case-insensitively (see the header);
  // returns its index.
  template <std::size_t N>
  int Name(const std::array<const char*, N>& names) {
    for (std::size_t i = 0; i < N && ok_; ++i) {
      const std::string_view name = names[i];
      if (SameLetters(text_.substr(pos_, name.size()), name)) {
        pos_ += name.size();
        return static_cast<int>(i);
      }
    }
    ok_ = false;
    return 0;
  }
  // time-of-day = hour ":" minute ":" second, in seconds since midnight.
  int TimeOfDay() {
    const int h = Number(2);
    Literal(':');
    const int m = Number(2);
    Literal(':');
    const int s = Number(2);
    if (h > 23 || m > 59 || s > 60) ok_ = false;  // 60: a leap second
    return h * 3600 + m * 60 + s;
  }
  void Gmt() {
    static constexpr std::array<const char*, 1> kGmt = {"GMT"};
    Name(kGmt);
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

bool IsLeapYear(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int year, int month) {
  static constexpr std::array<int, 12> kDaysIn = {31, 28, 31, 30, 31, 30,
                                                  31, 31, 30, 31, 30, 31};
  return month == 1 && IsLeapYear(year) ? 29 : kDaysIn[month];
}

// The last whole second SystemTime can hold (2262-04-11T23:47:16Z with
// libstdc++'s nanoseconds).
constexpr std::int64_t kLastSecond =
    std::chrono::duration_cast<std::chrono::seconds>(SystemTime::duration::max()).count();

std::optional<SystemTime> Make(int year, int month, int day, int seconds) {
  if (year < 1970 || day < 1 || day > DaysInMonth(year, month)) return std::nullopt;
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

// RFC 9110 §5.6.7: a two-digit year that would be more than 50 years in the
// future is the most recent past year with those digits.
int FullYear(int two_digits) {
  const time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  const int this_year = tm.tm_year + 1900;
  int year = this_year - this_year % 100 + two_digits;
  if (year > this_year + 50) year -= 100;
  return year;
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<SystemTime> ImfFixdate(std::string_view text) {
  Cursor c(text);
  c.Name(kDays);
  c.Literal(',');
  c.Literal(' ');
  const int day = c.Number(2);
  c.Literal(' ');
  const int month = c.Name(kMonths);
  c.Literal(' ');
  const int year = c.Number(4);
  c.Literal(' ');
  const int tod = c.TimeOfDay();
  c.Literal(' ');
  c.Gmt();
  if (!c.at_end()) return std::nullopt;
  return Make(year, month, day, tod);
}

// rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT".
std::optional<SystemTime> Rfc850Date(std::string_view text) {
  Cursor c(text);
  c.Name(kLongDays);
  c.Literal(',');
  c.Literal(' ');
  const int day = c.Number(2);
  c.Literal('-');
  const int month = c.Name(kMonths);
  c.Literal('-');
  const int year = c.Number(2);
  c.Literal(' ');
  const int tod = c.TimeOfDay();
  c.Literal(' ');
  c.Gmt();
  if (!c.at_end()) return std::nullopt;
  return Make(FullYear(year), month, day, tod);
}

// asctime-date: "Sun Nov  6 08:49:37 1994" (the day is two digits, or a
// space and one digit).
std::optional<SystemTime> AsctimeDate(std::string_view text) {
  Cursor c(text);
  c.Name(kDays);
  c.Literal(' ');
  const int month = c.Name(kMonths);
  c.Literal(' ');
  int day = 0;
  if (c.ok() && text.size() > 8 && text[8] == ' ') {
    c.Literal(' ');
    day = c.Number(1);
  } else {
    day = c.Number(2);
  }
  c.Literal(' ');
  const int tod = c.TimeOfDay();
  c.Literal(' ');
  const int year = c.Number(4);
  if (!c.at_end()) return std::nullopt;
  return Make(year, month, day, tod);
}

}  // namespace

std::optional<SystemTime> ParseHttpDate(std::string_view text) {
  if (text.size() == 29) return ImfFixdate(text);
  if (text.size() == 24) return AsctimeDate(text);
  return Rfc850Date(text);
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
