// Byte ranges (RFC 9110 §14): parsing a Range header and resolving its
// ranges against a representation's length. Pure functions.

#ifndef FANOUT_CORE_BYTE_RANGE_H_
#define FANOUT_CORE_BYTE_RANGE_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace fanout {

// One range-spec: "a-b" (first and last), "a-" (first only) or "-n"
// (suffix: last n bytes, in `suffix`).
struct RangeSpec {
  std::optional<std::uint64_t> first;
  std::optional<std::uint64_t> last;
  std::optional<std::uint64_t> suffix;

  // True if it can be answered before the length is known: "a-b".
  bool closed() const { return first && last; }
};

// A satisfiable range, both ends inclusive.
struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::uint64_t length() const { return last - first + 1; }
};

// The specs of a "bytes=" Range value; nullopt if it is not valid syntax
// (or another unit), in which case RFC 9110 says to ignore the header.
std::optional<std::vector<RangeSpec>> ParseRangeHeader(std::string_view value);

// The part of spec inside a representation of `length` bytes (a last
// position past the end is cut to it); nullopt if unsatisfiable.
std::optional<ByteRange> ResolveRange(const RangeSpec& spec, std::uint64_t length);

}  // namespace fanout

#endif  // FANOUT_CORE_BYTE_RANGE_H_
