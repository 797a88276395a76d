// Fuzzes ParseResponseHead and FramingOf (server/upstream_response_parser),
// which read every upstream response head.
//
// Input: a response head and whatever follows it.
// Invariants: a complete head lies inside the input and ends with a blank
// line; its status is three digits; its fields have token names and values
// without CR, LF or NUL; parsing a longer input that starts with a complete
// head gives the same head; a framing, if any, is one of the kinds.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/upstream_response_parser.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fanout;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const ParsedResponseHead parsed = ParseResponseHead(input);
  if (parsed.state == ParsedResponseHead::State::kMalformed) {
    FUZZ_CHECK(!parsed.problem.empty());
    return 0;
  }
  if (parsed.state == ParsedResponseHead::State::kIncomplete) return 0;
  FUZZ_CHECK(parsed.size >= 4 && parsed.size <= input.size());
  FUZZ_CHECK(input.compare(parsed.size - 2, 2, "\r\n") == 0 ||
             input.compare(parsed.size - 1, 1, "\n") == 0);
  FUZZ_CHECK(parsed.head.status >= 100 && parsed.head.status <= 999);
  for (const auto& [name, value] : parsed.head.headers) {
    FUZZ_CHECK(!name.empty());
    FUZZ_CHECK(name.find_first_of(std::string_view(":\r\n \t\0", 6)) == std::string::npos);
    FUZZ_CHECK(value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
  }
  const ParsedResponseHead again = ParseResponseHead(input.substr(0, parsed.size) + "trailing");
  FUZZ_CHECK(again.state == ParsedResponseHead::State::kComplete && again.size == parsed.size);
  FUZZ_CHECK(again.head.headers == parsed.head.headers);
  if (const auto framing = FramingOf(parsed.head)) {
    if (framing->kind != BodyFraming::Kind::kLength) FUZZ_CHECK(framing->length == 0);
  }
  return 0;
}
