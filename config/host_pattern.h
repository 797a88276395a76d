// HostPattern: one item of forward_proxy's allowlist, compiled once when
// the config is read, saying which hosts and ports fanoutd will fetch from
// (or tunnel to) for a proxy client.
//
//   "deb.debian.org"        that host, on the scheme's default port only
//                           (80 for http://, 443 for https:// and CONNECT)
//   "deb.debian.org:8080"   that host, on that port only
//   "deb.debian.org:*"      that host, on any port
//   "*.debian.org"          any name ending in ".debian.org" (not
//                           "debian.org" itself: list it too), ports as above
//   "127.0.0.1:8000", "[::1]:8000"   addresses, written as in a URL
// Names compare without regard to case and to one trailing dot. A bare "*"
// (every host) is refused: fanoutd is never an open proxy.
//
// Immutable once compiled; Matches may be called from any thread.

#ifndef FANOUT_CONFIG_HOST_PATTERN_H_
#define FANOUT_CONFIG_HOST_PATTERN_H_

#include <string>
#include <string_view>

#include "core/status.h"

namespace fanout {

class HostPattern {
 public:
  HostPattern() = default;

  // kInvalidArgument naming the problem ("empty", "a bare '*' would make
  // fanoutd an open proxy", "invalid port", ...).
  static Status Compile(std::string_view text, HostPattern* out);

  // `host` as in a URL's authority without brackets, any case; `port` the
  // port asked for; `default_port` the one its scheme implies.
  bool Matches(std::string_view host, int port, int default_port) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::string name_;      // lower case, no trailing dot; for a wildcard ".suffix"
  bool wildcard_ = false;
  int port_ = 0;          // 0: the scheme's default port; -1: any port
};

// The name as patterns compare it: lower case, one trailing dot removed.
std::string CanonicalHost(std::string_view host);

}  // namespace fanout

#endif  // FANOUT_CONFIG_HOST_PATTERN_H_
