// FanoutLedger: checks fanoutd's fan-out promise from the origin's side.
//
// The rule, per URL:
//
//   whole requests   <=  1 + faults injected on it + purges sent for it
//   ranged requests  <=  faults injected on it
//
// and no conditional request reaches the origin at all.
//
// Why it is sound: fanoutd starts a fetch for a key only when the key has
// neither a fetch in flight nor a fresh stored entry (Cache::Acquire,
// atomic per key). The key starts in that state once; afterwards only three
// things put it back there: a fetch that fails (a fault the origin injected
// on that very request: every fault is counted before its response starts,
// and one fault fails at most one fetch), a purge (counted here before it
// is sent, and one purge forgets at most the one fetch or entry the key
// had), and an entry going stale or being evicted — which cannot happen in
// a stress run: responses carry max-age=3600 and the cache is configured far
// larger than a run ever stores. Each of these events lets at most one new
// fetch start, because that fetch puts the key back in flight for everyone
// after it. A purge that races a fetch needs no extra allowance: the purge
// makes the key empty once (allowing one fetch), and the fetch it forgot
// can no longer be installed (Cache::Complete refuses an entry that is not
// the key's fetch any more), so it frees nothing a second time.
// A ranged request is fanoutd resuming a fetch that broke off: each fault
// breaks at most one transfer, which asks for the rest at most once (a
// resume that fails again is a fault of its own). A fetch whose resume is
// refused fails, and that fault's allowance above covers the fetch after it.
// The count of fetches only grows, and each allowance is counted before the
// fetch it allows can start, so the rule holds at every instant; the runs
// check it when a URL's clients are done and again at the end.
// With max-age=3600 nothing is ever revalidated, so a conditional request
// upstream is itself a failure (fanoutd must not forward the client's
// If-None-Match on a shared fetch either).
//
// Thread-safety: every method may be called from any thread.

#ifndef FANOUT_TESTS_STRESS_STRESS_FANOUT_LEDGER_H_
#define FANOUT_TESTS_STRESS_STRESS_FANOUT_LEDGER_H_

#include <map>
#include <mutex>
#include <string>

#include "tests/stress/stress_origin.h"

namespace fanout::stress {

class FanoutLedger {
 public:
  explicit FanoutLedger(const StressOrigin* origin) : origin_(origin) {}

  // Call before sending a purge of path (so the allowance precedes its
  // effect). Paths the rule does not cover (never AddUrl'd) are ignored.
  void AddPurge(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = purges_.find(path); it != purges_.end()) ++it->second;
  }

  // Call before sending a purge of everything (POST /purge-all).
  void AddPurgeAll() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [path, purges] : purges_) ++purges;
  }

  // Puts a URL under the rule (for CheckAll).
  void AddUrl(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    purges_.emplace(path, 0);
  }

  // Empty if path keeps the rule; otherwise what is wrong.
  std::string Check(const std::string& path) const {
    const StressOrigin::Counts c = origin_->CountsFor(path);
    int purges;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = purges_.find(path);
      purges = it == purges_.end() ? 0 : it->second;
    }
    if (c.conditional_requests > 0) {
      return std::to_string(c.conditional_requests) +
             " conditional request(s) reached the origin, though nothing can be stale";
    }
    const int whole = c.requests - c.ranged_requests;
    const int allowed = 1 + c.faults + purges;
    if (whole > allowed) {
      return "fan-out broken: " + std::to_string(whole) +
             " whole upstream requests, at most " + std::to_string(allowed) + " allowed (1 + " +
             std::to_string(c.faults) + " faults + " + std::to_string(purges) + " purges)";
    }
    if (c.ranged_requests > c.faults) {
      return "fan-out broken: " + std::to_string(c.ranged_requests) +
             " ranged upstream requests (resumes), more than the " + std::to_string(c.faults) +
             " faults that could cause them";
    }
    return "";
  }

  // The first URL that breaks the rule and why; empty strings if none.
  std::pair<std::string, std::string> CheckAll() const {
    std::map<std::string, int> paths;
    {
      std::lock_guard<std::mutex> lock(mu_);
      paths = purges_;
    }
    for (const auto& [path, unused] : paths) {
      if (std::string problem = Check(path); !problem.empty()) return {path, problem};
    }
    return {"", ""};
  }

 private:
  const StressOrigin* const origin_;
  mutable std::mutex mu_;
  std::map<std::string, int> purges_;  // guarded by mu_; every URL the rule covers
};

}  // namespace fanout::stress

#endif  // FANOUT_TESTS_STRESS_STRESS_FANOUT_LEDGER_H_
