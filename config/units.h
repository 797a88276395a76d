// Human-unit parsing for config values: sizes ("512", "64KiB", "10GiB",
// "1.5MB") and durations ("250ms", "30s", "5m", "1h"). Plain numbers are
// bytes and seconds. Returns nullopt for anything else; callers name the key.
// The number is digits with at most one '.', never a sign or an exponent,
// so a result is never negative. Pure functions; nothing throws.

#ifndef FANOUT_CONFIG_UNITS_H_
#define FANOUT_CONFIG_UNITS_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace fanout {

// A whole number of bytes, at most kMaxParsedSize; nullopt for a fraction
// of a byte ("0.5B") or more.
std::optional<std::uint64_t> ParseSize(std::string_view text);
// Rounded to the nearest millisecond, at most kMaxParsedDuration.
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);

// The largest results: 2^63 - 1 bytes (so sizes fit signed arithmetic too)
// and 10^15 ms (~31,700 years; in nanoseconds still far from overflowing a
// 64-bit clock).
inline constexpr std::uint64_t kMaxParsedSize = (std::uint64_t{1} << 63) - 1;
inline constexpr std::chrono::milliseconds kMaxParsedDuration{1'000'000'000'000'000};

}  // namespace fanout

#endif  // FANOUT_CONFIG_UNITS_H_
