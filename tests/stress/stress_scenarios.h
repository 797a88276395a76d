// The stress scenarios: each drives the running fanoutd through the stress
// origin with stress clients, and records every failure in the run.
//
//   random              for --seconds, crowds of 1-50 clients per new URL
//                       (0 B to --max-size, known length or chunked, one in
//                       ten no-store), each
//                       client doing one of the Behaviours, arriving at random
//                       moments (many while the fetch runs), with random
//                       purges and the origin's random faults; fan-out rule
//                       checked per URL once its crowd is done.
//   five-clients        per round, 5 clients GET a new 2,759,320-byte URL at
//                       once from the unthrottled origin (no faults).
//   cancelling-joiners  per round, a 16 MiB bystander download plus 12
//                       joiners of a new 4 MiB URL that each close (FIN or
//                       RST) at a random point.
//   disk-full           per round, the cache's file system (a small one the
//                       caller provides) fills up: an object larger than the
//                       free space, one that takes its last bytes (the body
//                       fits, its metadata does not), two that only fit
//                       alone, or a disk full before the fetch starts; 8
//                       clients of random behaviour per object and 2 of a
//                       stored entry meanwhile. Every body comes whole (a
//                       full disk cuts no one off: fanoutd serves the rest
//                       from memory), fanoutd lives on, and the space comes
//                       back once everything is purged. (Those objects are
//                       not kept, so they are left out of the fan-out rule.)
// Every scenario checks after each round (or crowd) that fanoutd is alive
// and answers a fresh GET, and stops at the first failure.
//
// Thread-safety: a scenario runs on the calling thread and joins every
// thread it starts before it returns.

#ifndef FANOUT_TESTS_STRESS_STRESS_SCENARIOS_H_
#define FANOUT_TESTS_STRESS_STRESS_SCENARIOS_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "tests/stress/stress_daemon.h"
#include "tests/stress/stress_fanout_ledger.h"
#include "tests/stress/stress_origin.h"
#include "tests/stress/stress_run.h"

namespace fanout::stress {

struct ScenarioSettings {
  std::chrono::seconds duration{60};  // random
  int rounds = 10;                    // the others
  std::uint64_t max_size = 64ull << 20;
  int max_clients = 200;              // connections open at once, at most
  std::chrono::milliseconds client_read_timeout{20000};
  std::chrono::milliseconds daemon_client_timeout{6000};  // fanoutd's client_timeout
};

// What a scenario works with; all owned by the caller.
struct ScenarioEnv {
  RunContext* run;
  StressOrigin* origin;
  StressDaemon* daemon;
  FanoutLedger* ledger;
  ScenarioSettings settings;
};

void RunRandom(ScenarioEnv& env);
void RunFiveClients(ScenarioEnv& env);
void RunCancellingJoiners(ScenarioEnv& env);
void RunDiskFull(ScenarioEnv& env);

// The end of every scenario: fanoutd still runs and serves a new URL whole
// and correctly (`label` names the moment in a failure report). False, with
// the failure recorded, if not.
bool CheckDaemonServes(ScenarioEnv& env, const std::string& label);

}  // namespace fanout::stress

#endif  // FANOUT_TESTS_STRESS_STRESS_SCENARIOS_H_
