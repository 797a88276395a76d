// Fuzzes ParseRangeHeader and ResolveRange (core/byte_range).
//
// Input: a Range header value, optionally after a first line holding a
// representation length in decimal ("1000\nbytes=0-499"). Every parsed spec
// is resolved against that length and against edge lengths (0, 1, 2^64-1).
// Invariants: a spec has exactly one of its three forms; a resolved range
// lies inside the length and agrees with its spec; writing the specs back
// as a header and parsing that gives the same specs.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "core/byte_range.h"
#include "tests/fuzz/fuzz_check.h"

namespace fanout {
namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

// Digits of the first line, saturating; nullopt if it is not all digits.
std::optional<std::uint64_t> LengthLine(std::string_view line) {
  if (line.empty() || line.size() > 20) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : line) {
    if (c < '0' || c > '9') return std::nullopt;
    const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    n = n > (kMax - digit) / 10 ? kMax : n * 10 + digit;
  }
  return n;
}

std::string Write(const std::vector<RangeSpec>& specs) {
  std::string out = "bytes=";
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (i > 0) out += ",";
    const RangeSpec& s = specs[i];
    if (s.suffix) {
      out += "-" + std::to_string(*s.suffix);
    } else {
      out += std::to_string(*s.first) + "-";
      if (s.last) out += std::to_string(*s.last);
    }
  }
  return out;
}

bool Same(const RangeSpec& a, const RangeSpec& b) {
  return a.first == b.first && a.last == b.last && a.suffix == b.suffix;
}

void CheckResolved(const RangeSpec& spec, std::uint64_t length) {
  const std::optional<ByteRange> r = ResolveRange(spec, length);
  if (!r) {
    // Unsatisfiable only for an empty representation, an empty suffix, or
    // a first position at or past the end.
    FUZZ_CHECK(length == 0 || (spec.suffix && *spec.suffix == 0) ||
               (spec.first && *spec.first >= length));
    return;
  }
  FUZZ_CHECK(length > 0);
  FUZZ_CHECK(r->first <= r->last);
  FUZZ_CHECK(r->last < length);
  FUZZ_CHECK(r->length() >= 1 && r->length() <= length);
  if (spec.suffix) {
    FUZZ_CHECK(r->last == length - 1);
    FUZZ_CHECK(r->length() == std::min(*spec.suffix, length));
  } else {
    FUZZ_CHECK(r->first == *spec.first);
    FUZZ_CHECK(r->last == (spec.last ? std::min(*spec.last, length - 1) : length - 1));
  }
}

}  // namespace
}  // namespace fanout

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fanout;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::uint64_t> lengths = {0, 1, 2, 100, kMax - 1, kMax};
  const auto newline = input.find('\n');
  if (newline != std::string_view::npos) {
    if (auto n = LengthLine(input.substr(0, newline))) lengths.push_back(*n);
    input.remove_prefix(newline + 1);
  }

  const auto specs = ParseRangeHeader(input);
  if (!specs) return 0;
  FUZZ_CHECK(!specs->empty());
  for (const RangeSpec& spec : *specs) {
    const bool suffix_form = spec.suffix && !spec.first && !spec.last;
    const bool first_form = !spec.suffix && spec.first && (!spec.last || *spec.last >= *spec.first);
    FUZZ_CHECK(suffix_form != first_form);
    FUZZ_CHECK(spec.closed() == (spec.first && spec.last));
    for (std::uint64_t length : lengths) CheckResolved(spec, length);
  }
  // The canonical form of the same specs parses back to them.
  const auto again = ParseRangeHeader(Write(*specs));
  FUZZ_CHECK(again && again->size() == specs->size());
  for (std::size_t i = 0; i < specs->size(); ++i) FUZZ_CHECK(Same((*again)[i], (*specs)[i]));
  return 0;
}
