// PathPattern: the "match" of a route's per-path rule, compiled once at
// start-up. A glob by default: "*" matches any characters but '/', "**"
// any characters at all, "?" one character but '/'; everything else
// matches itself. A pattern starting with "~" is an ECMAScript regular
// expression (after the "~"), searched for anywhere in the path unless
// anchored. Either is matched against the whole path after the route's
// prefix (starting with '/', without the query).
//
// Immutable once compiled; Matches may be called from any thread.

#ifndef FANOUT_CONFIG_PATH_PATTERN_H_
#define FANOUT_CONFIG_PATH_PATTERN_H_

#include <memory>
#include <regex>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fanout {

class PathPattern {
 public:
  PathPattern() = default;

  // kInvalidArgument naming the problem for an empty pattern or a regular
  // expression that does not compile.
  static Status Compile(const std::string& text, PathPattern* out);

  bool Matches(std::string_view path) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::shared_ptr<const std::regex> regex_;  // null for a glob
};

}  // namespace fanout

#endif  // FANOUT_CONFIG_PATH_PATTERN_H_
