#include "core/byte_range.h"

#include "core/header_text.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace fanout {
namespace {

// Digits only, no overflow.
std::optional<std::uint64_t> Number(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

}  // namespace

std::optional<std::vector<RangeSpec>> ParseRangeHeader(std::string_view value) {
  value = TrimOws(value);
  const std::string_view unit = "bytes=";
  if (value.size() < unit.size()) return std::nullopt;
  for (std::size_t i = 0; i < unit.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != unit[i]) return std::nullopt;
  }
  value.remove_prefix(unit.size());
  std::vector<RangeSpec> specs;
  while (true) {
    const auto comma = value.find(',');
    const std::string_view part = TrimOws(value.substr(0, comma));
    if (!part.empty()) {
      const auto dash = part.find('-');
      if (dash == std::string_view::npos) return std::nullopt;
      const std::string_view a = TrimOws(part.substr(0, dash)), b = TrimOws(part.substr(dash + 1));
      RangeSpec spec;
      if (a.empty()) {
        spec.suffix = Number(b);
        if (!spec.suffix) return std::nullopt;
      } else {
        spec.first = Number(a);
        if (!spec.first) return std::nullopt;
        if (!b.empty()) {
          spec.last = Number(b);
          if (!spec.last || *spec.last < *spec.first) return std::nullopt;
        }
      }
      specs.push_back(spec);
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  if (specs.empty()) return std::nullopt;
  return specs;
}

std::optional<ByteRange> ResolveRange(const RangeSpec& spec, std::uint64_t length) {
  if (spec.suffix) {
    if (*spec.suffix == 0 || length == 0) return std::nullopt;
    const std::uint64_t n = std::min(*spec.suffix, length);
    return ByteRange{length - n, length - 1};
  }
  if (!spec.first || *spec.first >= length) return std::nullopt;
  const std::uint64_t last = spec.last ? std::min(*spec.last, length - 1) : length - 1;
  return ByteRange{*spec.first, last};
}

}  // namespace fanout
