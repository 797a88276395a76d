#include "config/url.h"

#include <cctype>

namespace fanout {
namespace {

int DefaultPort(const std::string& scheme) { return scheme == "https" ? 443 : 80; }

std::string BracketIfIPv6(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace

std::string Url::Origin() const {
  return scheme + "://" + BracketIfIPv6(host) + ":" + std::to_string(port);
}

std::string Url::HostHeader() const {
  if (port == DefaultPort(scheme)) return BracketIfIPv6(host);
  return BracketIfIPv6(host) + ":" + std::to_string(port);
}

std::optional<Url> ParseUrl(std::string_view text, std::string* error) {
  Url url;
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) {
    *error = "missing scheme (expected http:// or https://)";
    return std::nullopt;
  }
  url.scheme = std::string(text.substr(0, sep));
  if (url.scheme != "http" && url.scheme != "https") {
    *error = "unsupported scheme '" + url.scheme + "' (expected http or https)";
    return std::nullopt;
  }
  std::string_view rest = text.substr(sep + 3);
  const auto path_start = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_start);
  std::string_view path =
      path_start == std::string_view::npos ? "" : rest.substr(path_start);
  if (!path.empty() && (path[0] != '/' || path.find_first_of("?#") != std::string_view::npos)) {
    *error = "query strings and fragments are not allowed in an upstream URL";
    return std::nullopt;
  }
  if (authority.find('@') != std::string_view::npos) {
    *error = "user information is not allowed in an upstream URL";
    return std::nullopt;
  }
  std::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      *error = "unterminated IPv6 address";
      return std::nullopt;
    }
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        *error = "garbage after IPv6 address";
        return std::nullopt;
      }
      port_text = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (url.host.empty()) {
    *error = "missing host";
    return std::nullopt;
  }
  for (char c : url.host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ||
          c == ':' || c == '_')) {
      *error = "invalid character in host";
      return std::nullopt;
    }
  }
  url.port = DefaultPort(url.scheme);
  if (!port_text.empty() || authority.back() == ':') {
    if (port_text.empty() || port_text.size() > 5) {
      *error = "invalid port";
      return std::nullopt;
    }
    int port = 0;
    for (char c : port_text) {
      if (!std::isdigit(static_cast<unsigned char>(c))) {
        *error = "invalid port";
        return std::nullopt;
      }
      port = port * 10 + (c - '0');
    }
    if (port < 1 || port > 65535) {
      *error = "port out of range (1-65535)";
      return std::nullopt;
    }
    url.port = port;
  }
  url.path = std::string(path);
  while (url.path.size() > 1 && url.path.back() == '/') url.path.pop_back();
  if (url.path == "/") url.path.clear();
  return url;
}

}  // namespace fanout
