#include "config/units.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>
#include <system_error>

namespace fanout {
namespace {

// Splits "12.5GiB" into 12.5 and "GiB"; nullopt if there is no number.
std::optional<std::pair<double, std::string>> SplitNumber(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) ||
                             text[i] == '.')) {
    ++i;
  }
  const std::string_view number = text.substr(0, i);
  if (number.find('.') != number.rfind('.')) return std::nullopt;
  // from_chars, unlike stod, neither throws (for "." or 1e400's digits)
  // nor depends on the locale's decimal point.
  double value = 0;
  const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (error != std::errc() || end != number.data() + number.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  std::size_t j = i;
  while (j < text.size() && text[j] == ' ') ++j;
  return std::make_pair(value, std::string(text.substr(j)));
}

}  // namespace

std::optional<std::uint64_t> ParseSize(std::string_view text) {
  auto split = SplitNumber(text);
  if (!split) return std::nullopt;
  const auto& [value, unit] = *split;
  double scale;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "KiB") scale = 1024.0;
  else if (unit == "MiB") scale = 1024.0 * 1024;
  else if (unit == "GiB") scale = 1024.0 * 1024 * 1024;
  else if (unit == "TiB") scale = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "KB" || unit == "kB") scale = 1e3;
  else if (unit == "MB") scale = 1e6;
  else if (unit == "GB") scale = 1e9;
  else if (unit == "TB") scale = 1e12;
  else return std::nullopt;
  const double bytes = value * scale;
  // 2^63 is exact in a double; every double below it converts exactly.
  if (!(bytes < 0x1p63) || bytes != std::floor(bytes)) return std::nullopt;
  return static_cast<std::uint64_t>(bytes);
}

std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  auto split = SplitNumber(text);
  if (!split) return std::nullopt;
  const auto& [value, unit] = *split;
  double ms_per_unit;
  if (unit == "ms") ms_per_unit = 1;
  else if (unit.empty() || unit == "s") ms_per_unit = 1000;
  else if (unit == "m" || unit == "min") ms_per_unit = 60 * 1000;
  else if (unit == "h") ms_per_unit = 3600 * 1000;
  else if (unit == "d") ms_per_unit = 86400 * 1000;
  else return std::nullopt;
  const double ms = std::round(value * ms_per_unit);
  if (!(ms <= static_cast<double>(kMaxParsedDuration.count()))) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

}  // namespace fanout
