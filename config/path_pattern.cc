#include "config/path_pattern.h"

namespace fanout {
namespace {

// Whether glob matches all of path: literal characters and '?' consumed
// in a loop, each star tried at every length it may take ("**" crosses
// '/', "*" does not). Patterns come from the operator's config and paths
// are short, so plain backtracking is enough.
bool GlobMatches(std::string_view glob, std::string_view path) {
  while (!glob.empty() && glob[0] != '*') {
    if (path.empty()) return false;
    if (glob[0] == '?' ? path[0] == '/' : glob[0] != path[0]) return false;
    glob.remove_prefix(1);
    path.remove_prefix(1);
  }
  if (glob.empty()) return path.empty();
  const bool crosses_slash = glob.substr(0, 2) == "**";
  const std::string_view rest = glob.substr(crosses_slash ? 2 : 1);
  for (std::size_t i = 0; i <= path.size(); ++i) {
    if (GlobMatches(rest, path.substr(i))) return true;
    if (!crosses_slash && i < path.size() && path[i] == '/') break;
  }
  return false;
}

}  // namespace

Status PathPattern::Compile(const std::string& text, PathPattern* out) {
  if (text.empty() || text == "~") return Status::InvalidArgument("must not be empty");
  out->text_ = text;
  out->regex_.reset();
  if (text[0] != '~') {
    if (text[0] != '/' && text[0] != '*') {
      return Status::InvalidArgument("a glob must start with '/' or '*' (a regular expression with '~'): '" + text + "'");
    }
    return Status::Ok();
  }
  try {
    out->regex_ = std::make_shared<const std::regex>(text.substr(1), std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return Status::InvalidArgument("not a regular expression: '" + text.substr(1) + "' (" +
                                   e.what() + ")");
  }
  return Status::Ok();
}

bool PathPattern::Matches(std::string_view path) const {
  if (regex_) return std::regex_search(path.begin(), path.end(), *regex_);
  return GlobMatches(text_, path);
}

}  // namespace fanout
