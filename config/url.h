// Url: an upstream origin as written in the config: scheme://host[:port][/path].
// Only http and https are accepted; the port defaults from the scheme.

#ifndef FANOUT_CONFIG_URL_H_
#define FANOUT_CONFIG_URL_H_

#include <optional>
#include <string>
#include <string_view>

namespace fanout {

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // name, IPv4, or IPv6 without brackets
  int port = 0;
  std::string path;    // "" or starts with '/'; no query

  // "scheme://host:port" (IPv6 hosts in brackets): what an HTTP client
  // connects to.
  std::string Origin() const;
  // The Host header value: the port is left out when it is the scheme's.
  std::string HostHeader() const;
  std::string ToString() const { return Origin() + path; }
};

// Parses an absolute http(s) URL. On failure returns nullopt and sets
// *error to a short reason ("missing scheme", "port out of range", ...).
std::optional<Url> ParseUrl(std::string_view text, std::string* error);

}  // namespace fanout

#endif  // FANOUT_CONFIG_URL_H_
