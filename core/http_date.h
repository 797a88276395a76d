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

// "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT" or
// "Sun Nov  6 08:49:37 1994". nullopt for anything else, and for dates
// before 1970 (an invalid date is treated by callers as RFC 9111 says: e.g.
// an invalid Expires means already expired). A date past the end of
// SystemTime's range (2262 with nanosecond clocks) is taken as its last
// second. The result is in whole seconds.
std::optional<SystemTime> ParseHttpDate(std::string_view text);

// IMF-fixdate, whole seconds.
std::string FormatHttpDate(SystemTime t);

}  // namespace fanout

#endif  // FANOUT_CORE_HTTP_DATE_H_
