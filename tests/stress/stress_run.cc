#include "tests/stress/stress_run.h"

#include <cstdio>

namespace fanout::stress {
namespace {

// Failures printed as they happen; the rest are only counted (a crash
// makes every client fail at once, and the first lines say it all).
constexpr std::size_t kFailuresPrinted = 8;

}  // namespace

// A failure's kind without what differs between two clients that met the
// same problem: numbers and quoted values.
std::string Normalized(const std::string& text) {
  std::string kind;
  bool quoted = false;
  for (char c : text) {
    if (c == '"' || c == '\'') {
      quoted = !quoted;
      if (quoted) kind += "'...'";
    } else if (quoted) {
      continue;
    } else if (c >= '0' && c <= '9') {
      if (kind.empty() || kind.back() != '#') kind += '#';
    } else {
      kind += c;
    }
  }
  return kind;
}

void RunContext::Fail(const std::string& url, const std::string& behaviour,
                      const std::string& what, const std::string& kind_text) {
  const std::string line = "FAIL seed=" + std::to_string(seed_) + " url=" + url +
                           " client=" + behaviour + ": " + what;
  const std::string kind = Normalized(kind_text.empty() ? what : kind_text);
  bool print;
  {
    std::lock_guard<std::mutex> lock(mu_);
    failures_.push_back(line);
    auto [it, is_new] = kind_index_.emplace(kind, kinds_.size());
    if (is_new) kinds_.emplace_back(0, line);
    ++kinds_[it->second].first;
    print = failures_.size() <= kFailuresPrinted || is_new;
  }
  failed_.store(true);
  if (!keep_going_) stop_.store(true);
  if (print) std::fprintf(stderr, "%s\n", line.c_str());
}

std::vector<std::pair<int, std::string>> RunContext::FailureKinds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kinds_;
}

std::vector<std::string> RunContext::Failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

}  // namespace fanout::stress
