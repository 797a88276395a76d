// Fuzzes HostPattern (config/host_pattern), the forward proxy's allowlist.
//
// Input: a pattern, then optionally a line holding a host and a decimal
// port ("*.example.org\nwww.Example.org 443"). Invariants: a pattern that
// compiles is never a bare "*"; a match always agrees with the rules the
// header states (a named port is matched exactly, no port means the
// scheme's default, a wildcard never matches its own suffix, names compare
// case-insensitively); the pattern's own name (when it is one) matches
// itself.

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/host_pattern.h"
#include "tests/fuzz/fuzz_check.h"

namespace fanout {
namespace {

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

void Check(std::string_view text, std::string_view probe) {
  HostPattern pattern;
  if (!HostPattern::Compile(text, &pattern).ok()) return;
  FUZZ_CHECK(text != "*" && text.substr(0, 2) != "*:");
  FUZZ_CHECK(pattern.text() == text);
  const std::size_t space = probe.rfind(' ');
  if (space == std::string_view::npos || space + 1 >= probe.size() || probe.size() - space > 6) {
    return;
  }
  int port = 0;
  for (char c : probe.substr(space + 1)) {
    if (c < '0' || c > '9') return;
    port = port * 10 + (c - '0');
  }
  const std::string_view host = probe.substr(0, space);
  for (int default_port : {80, 443}) {
    const bool matches = pattern.Matches(host, port, default_port);
    // Case never counts.
    FUZZ_CHECK(matches == pattern.Matches(Upper(host), port, default_port));
    if (!matches) continue;
    const std::string canonical = CanonicalHost(host);
    FUZZ_CHECK(!canonical.empty());
    if (text.substr(0, 2) == "*.") {
      // Under the suffix, never the suffix itself.
      std::string_view suffix = text.substr(1, text.find(':') == std::string_view::npos
                                                   ? std::string_view::npos
                                                   : text.find(':') - 1);
      const std::string lower_suffix = CanonicalHost(suffix);
      FUZZ_CHECK(canonical.size() > lower_suffix.size());
      FUZZ_CHECK(canonical.compare(canonical.size() - lower_suffix.size(), std::string::npos,
                                   lower_suffix) == 0);
    }
    const bool names_port = text.front() == '[' ? text.find("]:") != std::string_view::npos
                                                : text.find(':') != std::string_view::npos;
    if (!names_port) FUZZ_CHECK(port == default_port);
  }
}

}  // namespace
}  // namespace fanout

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  fanout::Check(input.substr(0, newline),
                newline == std::string_view::npos ? "" : input.substr(newline + 1));
  return 0;
}
