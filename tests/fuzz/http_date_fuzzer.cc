// Fuzzes ParseHttpDate and FormatHttpDate (core/http_date).
//
// Input: a date text. Invariants: a parsed date is at or after the Unix
// epoch and in whole seconds; it formats as a 29-character IMF-fixdate that
// parses back to the same time and formats the same again. The first 8
// bytes are also read as a time (nanoseconds since the epoch) to format:
// any time formats, and a time at or after the epoch parses back to its
// whole second.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "core/http_date.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fanout;
  using std::chrono::seconds;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (const auto t = ParseHttpDate(text)) {
    FUZZ_CHECK(t->time_since_epoch().count() >= 0);
    FUZZ_CHECK(std::chrono::time_point_cast<seconds>(*t) == *t);
    const std::string formatted = FormatHttpDate(*t);
    FUZZ_CHECK(formatted.size() == 29);
    const auto again = ParseHttpDate(formatted);
    FUZZ_CHECK(again && *again == *t);
    FUZZ_CHECK(FormatHttpDate(*again) == formatted);
  }

  if (size >= 8) {
    std::int64_t ns = 0;
    std::memcpy(&ns, data, sizeof ns);
    const SystemTime t{std::chrono::nanoseconds(ns)};
    const std::string formatted = FormatHttpDate(t);
    if (ns >= 0) {
      const auto again = ParseHttpDate(formatted);
      FUZZ_CHECK(again && *again == std::chrono::floor<seconds>(t));
    }
  }
  return 0;
}
