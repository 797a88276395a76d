#include "server/via.h"

#include <unistd.h>

#include "core/header_text.h"

namespace fanout {
namespace {

// The received-by of one Via entry: "[protocol-name/]version received-by
// [comment]" -> received-by.
std::string_view ReceivedBy(std::string_view entry) {
  entry = TrimOws(entry);
  const std::size_t space = entry.find_first_of(" \t");
  if (space == std::string_view::npos) return {};
  entry = TrimOws(entry.substr(space + 1));
  const std::size_t end = entry.find_first_of(" \t(");
  return end == std::string_view::npos ? entry : entry.substr(0, end);
}

}  // namespace

std::string ViaEntry(std::string_view pseudonym) { return "1.1 " + std::string(pseudonym); }

bool ViaHolds(const HeaderList& headers, std::string_view pseudonym) {
  for (const auto& [name, value] : headers) {
    if (!EqualsIgnoreCase(name, "Via")) continue;
    std::string_view rest = value;
    for (;;) {
      const std::size_t comma = rest.find(',');
      if (ReceivedBy(rest.substr(0, comma)) == pseudonym) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

std::string ViaWith(const HeaderList& headers, std::string_view entry) {
  std::string out;
  for (const auto& [name, value] : headers) {
    if (EqualsIgnoreCase(name, "Via")) out.append(value).append(", ");
  }
  return out.append(entry);
}

std::string XCacheValue(std::string_view own, std::string_view pseudonym,
                        const HeaderList& upstream, bool request_has_via) {
  std::string from_upstream;
  for (const auto& [name, value] : upstream) {
    if (!EqualsIgnoreCase(name, "X-Cache")) continue;
    from_upstream.append(from_upstream.empty() ? "" : ", ").append(value);
  }
  if (from_upstream.empty() && !request_has_via) return std::string(own);
  std::string out = std::string(own) + " from " + std::string(pseudonym);
  if (!from_upstream.empty()) out.append(", ").append(from_upstream);
  return out;
}

std::string DefaultPseudonym() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "fanoutd";
  std::string name(host);
  if (name.size() > 64) name.resize(64);
  for (char& c : name) {
    if (!IsTokenChar(c)) c = '-';
  }
  return name;
}

}  // namespace fanout
