#include "config/host_pattern.h"

#include <cctype>

namespace fanout {
namespace {

bool IsHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

}  // namespace

std::string CanonicalHost(std::string_view host) {
  std::string out(host);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (out.size() > 1 && out.back() == '.') out.pop_back();
  return out;
}

Status HostPattern::Compile(std::string_view text, HostPattern* out) {
  HostPattern p;
  p.text_ = std::string(text);
  if (text.empty()) return Status::InvalidArgument("empty host pattern");
  std::string_view host = text;
  std::string_view port;
  if (text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) return Status::InvalidArgument("unterminated IPv6 address");
    host = text.substr(1, close - 1);
    const std::string_view after = text.substr(close + 1);
    if (!after.empty() && after.front() != ':') {
      return Status::InvalidArgument("expected ':port' after the IPv6 address");
    }
    if (!after.empty()) port = after.substr(1);
    if (host.empty() || host.find_first_not_of("0123456789abcdefABCDEF:.") != host.npos) {
      return Status::InvalidArgument("invalid IPv6 address");
    }
  } else {
    const std::size_t colon = text.find(':');
    if (colon != std::string_view::npos) {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (port.empty()) return Status::InvalidArgument("invalid port (empty after ':')");
    }
    if (host == "*") {
      return Status::InvalidArgument(
          "a bare '*' allows every host and would make fanoutd an open proxy; list the hosts "
          "(or '*.domain' suffixes) to fetch from");
    }
    if (host.substr(0, 2) == "*.") {
      p.wildcard_ = true;
      host.remove_prefix(1);  // keeps the '.'
    }
    const std::string_view name = p.wildcard_ ? host.substr(1) : host;
    if (name.empty() || name.front() == '.') return Status::InvalidArgument("missing host name");
    for (char c : name) {
      if (!IsHostChar(c)) {
        return Status::InvalidArgument(std::string("invalid character '") + c +
                                       "' in a host name (only '*.' at the start may be a wildcard)");
      }
    }
  }
  if (port == "*") {
    p.port_ = -1;
  } else if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != port.npos) {
      return Status::InvalidArgument("invalid port '" + std::string(port) + "' (a number or '*')");
    }
    p.port_ = std::stoi(std::string(port));
    if (p.port_ < 1 || p.port_ > 65535) return Status::InvalidArgument("port out of range (1-65535)");
  }
  p.name_ = CanonicalHost(host);
  *out = std::move(p);
  return Status::Ok();
}

bool HostPattern::Matches(std::string_view host, int port, int default_port) const {
  if (port_ == 0 ? port != default_port : (port_ > 0 && port != port_)) return false;
  const std::string name = CanonicalHost(host);
  if (!wildcard_) return name == name_;
  return name.size() > name_.size() &&
         name.compare(name.size() - name_.size(), name_.size(), name_) == 0;
}

}  // namespace fanout
