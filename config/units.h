// Human-unit parsing for config values: sizes ("512", "64KiB", "10GiB",
// "1.5MB") and durations ("250ms", "30s", "5m", "1h"). Plain numbers are
// bytes and seconds. Returns nullopt for anything else; callers name the key.

#ifndef FANOUT_CONFIG_UNITS_H_
#define FANOUT_CONFIG_UNITS_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace fanout {

std::optional<std::uint64_t> ParseSize(std::string_view text);
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);

}  // namespace fanout

#endif  // FANOUT_CONFIG_UNITS_H_
