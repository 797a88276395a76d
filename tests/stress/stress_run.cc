#include "tests/stress/stress_run.h"

#include <cstdio>

namespace fanout::stress {
namespace {

// Failures printed as they happen; the rest are only counted (a crash
// makes every client fail at once, and the first lines say it all).
constexpr std::size_t kFailuresPrinted = 8;

}  // namespace

void RunContext::Fail(const std::string& url, const std::string& behaviour,
                      const std::string& what) {
  const std::string line = "FAIL seed=" + std::to_string(seed_) + " url=" + url +
                           " client=" + behaviour + ": " + what;
  std::size_t count;
  {
    std::lock_guard<std::mutex> lock(mu_);
    failures_.push_back(line);
    count = failures_.size();
  }
  failed_.store(true);
  stop_.store(true);
  if (count <= kFailuresPrinted) std::fprintf(stderr, "%s\n", line.c_str());
}

std::vector<std::string> RunContext::Failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

}  // namespace fanout::stress
