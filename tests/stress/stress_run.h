// RunContext: what every part of one stress run shares — its seed, its
// verdict, whether to stop, and the tallies for the summary.
//
// The first failure recorded is the run's verdict; failures are printed at
// once with the seed (the first few, and the first of each kind), so a run
// that goes on to hang or crash has still said what it saw. Recording a
// failure also asks every part of the run to stop starting new work —
// unless the run keeps going (--keep-going, for triage: one run then lists
// every kind of failure it met, not only the first).
//
// Thread-safety: every method may be called from any thread.

#ifndef FANOUT_TESTS_STRESS_STRESS_RUN_H_
#define FANOUT_TESTS_STRESS_STRESS_RUN_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace fanout::stress {

class RunContext {
 public:
  RunContext(std::uint64_t seed, std::string replay_command, bool keep_going)
      : seed_(seed), replay_command_(std::move(replay_command)), keep_going_(keep_going) {}

  std::uint64_t seed() const { return seed_; }
  const std::string& replay_command() const { return replay_command_; }

  // Records what went wrong for url, during behaviour, and asks the run to
  // stop. `kind` (default: `what`) names the problem alike for every client
  // that meets it; numbers and quoted values in it are ignored.
  void Fail(const std::string& url, const std::string& behaviour, const std::string& what,
            const std::string& kind = "");
  bool failed() const { return failed_.load(); }
  // The failures recorded so far, first first, each one line.
  std::vector<std::string> Failures() const;
  // One per kind of failure (the same text but for numbers), first met
  // first: how many there were, and the first one.
  std::vector<std::pair<int, std::string>> FailureKinds() const;

  // Asks every crowd and client to stop starting new work.
  void RequestStop() { stop_.store(true); }
  bool stopping() const { return stop_.load(); }

  // Tallies for the summary.
  std::atomic<std::uint64_t> clients{0};
  std::atomic<std::uint64_t> requests{0};         // requests sent to fanoutd
  std::atomic<std::uint64_t> responses{0};        // response heads checked
  std::atomic<std::uint64_t> bytes_checked{0};    // body bytes compared with the origin
  std::atomic<std::uint64_t> complete_bodies{0};  // bodies received whole and identical
  std::atomic<std::uint64_t> closed_by_client{0}; // bodies the client stopped on purpose
  std::atomic<std::uint64_t> dropped_stalled{0};  // cut by fanoutd after a client stalled
                                                  // past its client_timeout
  std::atomic<std::uint64_t> cut_after_fault{0};  // bodies visibly cut after an upstream fault
  std::atomic<std::uint64_t> upstream_errors{0};  // 502/504 answers after an upstream fault
  std::atomic<std::uint64_t> not_modified{0};     // 304 answers
  std::atomic<std::uint64_t> ranges{0};           // 206 and 416 answers
  std::atomic<std::uint64_t> purges{0};           // purges sent to the admin interface
  std::atomic<std::uint64_t> urls{0};             // URLs the run asked for

 private:
  const std::uint64_t seed_;
  const std::string replay_command_;
  const bool keep_going_;
  std::atomic<bool> failed_{false};
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<std::string> failures_;                  // guarded by mu_
  std::vector<std::pair<int, std::string>> kinds_;     // guarded by mu_; count, first
  std::map<std::string, std::size_t> kind_index_;      // guarded by mu_; kind -> kinds_ index
};

}  // namespace fanout::stress

#endif  // FANOUT_TESTS_STRESS_STRESS_RUN_H_
