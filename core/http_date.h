// HTTP dates (RFC 9110 §5.6.7): parsing the three formats a recipient must
// accept, and writing the one a sender must use (IMF-fixdate, always GMT).
// Pure functions, independent of the process's locale and time zone.

#ifndef FANOUT_CORE_HTTP_DATE_H_
#define FANOUT_CORE_HTTP_DATE_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace fanout {

using SystemTime = std::chrono::system_clock::time_point;

// Exactly one of the three formats, nothing around it:
//   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT" (two-digit day, four-digit
//                year, single spaces, a comma after the day name);
//   RFC 850      "Sunday, 06-Nov-94 08:49:37 GMT" (a two-digit year more
//                than 50 years ahead is the last century's);
//   asctime      "Sun Nov  6 08:49:37 1994".
// Day names, months and "GMT" are matched case-insensitively, as RFC 9111
// §4.2 asks of a cache; the day name is not checked against the date. Any
// other zone, a one-digit hour, a missing comma, doubled spaces, dashes in
// the IMF form or a day past its month's end give nullopt, as do dates
// before 1970. Callers treat an invalid date as RFC 9111 says (an invalid
// Expires means already expired). A date past the end of SystemTime's
// range (2262 with nanosecond clocks) is taken as its last second. The
// result is in whole seconds.
std::optional<SystemTime> ParseHttpDate(std::string_view text);

// IMF-fixdate, whole seconds.
std::string FormatHttpDate(SystemTime t);

}  // namespace fanout

#endif  // FANOUT_CORE_HTTP_DATE_H_
