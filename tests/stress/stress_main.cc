// fanout_stress: a randomized stress test of the real fanoutd binary.
//
// Starts the stress origin (in this process) and fanoutd in front of it,
// runs one scenario (see stress_scenarios.h) and checks, besides what every
// client checks (stress_client.h), the fan-out rule per URL
// (stress_fanout_ledger.h), that fanoutd is alive at the end, serves a
// fresh GET, stops cleanly on SIGTERM and left no sanitizer report in its
// log. The seed is printed at the start and with every failure; the same
// command with --seed replays the same URLs, crowds, behaviours and faults.
// Exit code: 0 if everything held, 1 otherwise, 2 for a bad command line.
//
//   fanout_stress --fanoutd build/fanoutd --scenario random --seconds 60
//   fanout_stress --scenario five-clients --rounds 100 --seed 42
//   fanout_stress --scenario random --seed 42 --keep-going   # every kind of failure
//   tests/stress/disk_full.sh build/fanout_stress --rounds 20  # mounts the small disk
//
// Environment: FANOUT_STRESS_SCALE (e.g. 0.25) multiplies --seconds and
// --rounds, FANOUT_STRESS_MAX_SIZE caps --max-size: sanitized builds run
// shorter and smaller with the same ctest entries.

#include <signal.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

#include "tests/stress/stress_daemon.h"
#include "tests/stress/stress_fanout_ledger.h"
#include "tests/stress/stress_origin.h"
#include "tests/stress/stress_run.h"
#include "tests/stress/stress_scenarios.h"

#ifndef FANOUTD_BINARY
#define FANOUTD_BINARY "fanoutd"
#endif

namespace fanout::stress {
namespace {

using Clock = std::chrono::steady_clock;

// How often the daemon's process is looked at for a crash.
constexpr auto kMonitorEvery = std::chrono::milliseconds(50);
// A run that has not ended this long after its planned end is stuck.
constexpr auto kStuckAfterSeconds = std::chrono::seconds(240);
// Time a round may take before the run counts as stuck.
constexpr auto kStuckPerRound = std::chrono::seconds(60);
// Log lines shown with a failure when there is no sanitizer report.
constexpr int kLogTailLines = 40;

struct Flags {
  std::string fanoutd = FANOUTD_BINARY;
  std::string scenario = "random";
  std::uint64_t seed = 0;
  bool seed_given = false;
  double seconds = 60;
  int rounds = 10;
  std::string max_size = "64MiB";
  double fault_rate = -1;  // -1: the scenario's default
  bool origin_stalls = false;
  int max_clients = 200;
  std::string cache_dir;
  bool keep_dir = false;
  bool keep_going = false;
  int upstream_read_timeout_ms = 2000;
  int client_timeout_ms = 6000;
  int client_read_timeout_ms = 20000;
};

std::uint64_t ParseSize(const std::string& text) {
  std::size_t used = 0;
  const double v = std::stod(text, &used);
  const std::string unit = text.substr(used);
  double scale = 1;
  if (unit == "KiB") scale = 1024;
  else if (unit == "MiB") scale = 1024.0 * 1024;
  else if (unit == "GiB") scale = 1024.0 * 1024 * 1024;
  else if (unit == "KB") scale = 1e3;
  else if (unit == "MB") scale = 1e6;
  else if (unit == "GB") scale = 1e9;
  else if (!unit.empty()) throw std::invalid_argument("unknown size unit '" + unit + "'");
  return static_cast<std::uint64_t>(v * scale);
}

bool UsesRounds(const std::string& scenario) { return scenario != "random"; }

// Applies FANOUT_STRESS_SCALE and FANOUT_STRESS_MAX_SIZE.
void ApplyEnvironment(Flags* f) {
  if (const char* scale = std::getenv("FANOUT_STRESS_SCALE")) {
    const double s = std::stod(scale);
    f->seconds = std::max(1.0, f->seconds * s);
    f->rounds = std::max(1, static_cast<int>(f->rounds * s));
  }
  if (const char* cap = std::getenv("FANOUT_STRESS_MAX_SIZE")) {
    if (ParseSize(cap) < ParseSize(f->max_size)) f->max_size = cap;
  }
}

std::string ReplayCommand(const char* argv0, const Flags& f, double fault_rate) {
  std::string c = std::string(argv0) + " --fanoutd " + f.fanoutd + " --scenario " + f.scenario +
                  " --seed " + std::to_string(f.seed);
  if (UsesRounds(f.scenario)) c += " --rounds " + std::to_string(f.rounds);
  else c += " --seconds " + std::to_string(static_cast<int>(f.seconds));
  c += " --max-size " + f.max_size;
  char rate[32];
  std::snprintf(rate, sizeof rate, "%g", fault_rate);
  c += std::string(" --fault-rate ") + rate;
  if (f.origin_stalls) c += " --origin-stalls";
  if (f.keep_going) c += " --keep-going";
  if (!f.cache_dir.empty()) c += " --cache-dir " + f.cache_dir;
  return c;
}

// Watches fanoutd's process and fails the run the moment it dies.
class DeathMonitor {
 public:
  DeathMonitor(StressDaemon* daemon, RunContext* run)
      : daemon_(daemon), run_(run), thread_([this] { Watch(); }) {}
  ~DeathMonitor() { Stop(); }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Watch() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (!daemon_->Alive()) {
        run_->Fail("(fanoutd)", "monitor", "fanoutd " + daemon_->DeathReason());
        run_->RequestStop();  // even when keeping going: nothing is left to test
        return;
      }
      cv_.wait_for(lock, kMonitorEvery, [this] { return stop_; });
    }
  }

  StressDaemon* const daemon_;
  RunContext* const run_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;  // last
};

// Ends the process if the run does not end by itself in time: a hang is a
// failure too, and the ctest timeout would say less.
class StuckWatchdog {
 public:
  StuckWatchdog(Clock::duration limit, StressDaemon* daemon, const RunContext* run)
      : thread_([this, limit, daemon, run] {
          std::unique_lock<std::mutex> lock(mu_);
          if (cv_.wait_for(lock, limit, [this] { return done_; })) return;
          std::fprintf(stderr,
                       "FAIL seed=%llu: the run did not end by itself within %lld s "
                       "(a hang: clients or fanoutd stuck)\nreplay: %s\nfanoutd log (%s), "
                       "last lines:\n%s\n",
                       static_cast<unsigned long long>(run->seed()),
                       static_cast<long long>(
                           std::chrono::duration_cast<std::chrono::seconds>(limit).count()),
                       run->replay_command().c_str(), daemon->log_path().c_str(),
                       daemon->LogTail(kLogTailLines).c_str());
          std::fflush(stderr);
          daemon->Kill();
          _exit(1);
        }) {}
  ~StuckWatchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;  // guarded by mu_
  std::thread thread_;
};

void PrintSummary(const RunContext& run, const StressOrigin& origin, double seconds) {
  const StressOrigin::Counts o = origin.Totals();
  std::printf(
      "summary: %.1f s, %llu URLs, %llu clients, %llu requests, %llu responses checked, "
      "%.1f MiB of body bytes compared with the origin\n"
      "  bodies whole %llu, closed by their client %llu, cut after the client stalled past "
      "client_timeout %llu, cut after an upstream fault %llu; "
      "502/504 after a fault %llu, 304 %llu, 206/416 %llu, purges %llu\n"
      "  origin: %d requests (%d with Range), %d faults (",
      seconds, static_cast<unsigned long long>(run.urls.load()),
      static_cast<unsigned long long>(run.clients.load()),
      static_cast<unsigned long long>(run.requests.load()),
      static_cast<unsigned long long>(run.responses.load()),
      static_cast<double>(run.bytes_checked.load()) / (1 << 20),
      static_cast<unsigned long long>(run.complete_bodies.load()),
      static_cast<unsigned long long>(run.closed_by_client.load()),
      static_cast<unsigned long long>(run.dropped_stalled.load()),
      static_cast<unsigned long long>(run.cut_after_fault.load()),
      static_cast<unsigned long long>(run.upstream_errors.load()),
      static_cast<unsigned long long>(run.not_modified.load()),
      static_cast<unsigned long long>(run.ranges.load()),
      static_cast<unsigned long long>(run.purges.load()), o.requests, o.ranged_requests,
      o.faults);
  bool first = true;
  for (std::size_t k = 1; k < kFaultKinds; ++k) {
    if (o.faults_by_kind[k] == 0) continue;
    std::printf("%s%s %d", first ? "" : ", ", FaultName(static_cast<Fault>(k)),
                o.faults_by_kind[k]);
    first = false;
  }
  std::printf(")\n");
}

int Run(const char* argv0, Flags flags) {
  ApplyEnvironment(&flags);
  if (!flags.seed_given) {
    flags.seed = static_cast<std::uint64_t>(
                     std::chrono::system_clock::now().time_since_epoch().count()) %
                 1000000000;
  }
  const double fault_rate =
      flags.fault_rate >= 0 ? flags.fault_rate : (flags.scenario == "random" ? 0.1 : 0.0);
  const std::string replay = ReplayCommand(argv0, flags, fault_rate);
  std::printf("fanout_stress: scenario %s, seed %llu\nreplay: %s\n", flags.scenario.c_str(),
              static_cast<unsigned long long>(flags.seed), replay.c_str());
  std::fflush(stdout);

  char dir_template[] = "/tmp/fanout-stress.XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string dir = dir_template;
  RunContext run(flags.seed, replay, flags.keep_going);

  StressOrigin::Options origin_options;
  origin_options.seed = flags.seed;
  origin_options.fault_rate = fault_rate;
  origin_options.small_stalls = flags.origin_stalls;
  origin_options.stall_limit = std::chrono::milliseconds(3 * flags.upstream_read_timeout_ms);
  StressOrigin origin(origin_options);
  const int origin_port = origin.Start();
  if (origin_port <= 0) {
    std::fprintf(stderr, "fanout_stress: the origin cannot listen\n");
    return 1;
  }
  StressDaemon::Options daemon_options;
  daemon_options.binary = flags.fanoutd;
  daemon_options.dir = dir;
  daemon_options.cache_dir = flags.cache_dir;
  daemon_options.origin_port = origin_port;
  daemon_options.upstream_read_timeout = std::chrono::milliseconds(flags.upstream_read_timeout_ms);
  daemon_options.client_timeout = std::chrono::milliseconds(flags.client_timeout_ms);
  StressDaemon daemon(daemon_options);
  std::string error;
  if (!daemon.Start(&error)) {
    std::fprintf(stderr, "fanout_stress: %s\n", error.c_str());
    return 1;
  }
  std::printf("fanoutd port %d, admin %d, origin %d, log %s\n", daemon.port(),
              daemon.admin_port(), origin_port, daemon.log_path().c_str());
  std::fflush(stdout);

  FanoutLedger ledger(&origin);
  ScenarioEnv env{&run, &origin, &daemon, &ledger, {}};
  env.settings.duration = std::chrono::seconds(static_cast<long>(flags.seconds));
  env.settings.rounds = flags.rounds;
  env.settings.max_size = ParseSize(flags.max_size);
  env.settings.max_clients = flags.max_clients;
  env.settings.client_read_timeout = std::chrono::milliseconds(flags.client_read_timeout_ms);
  env.settings.daemon_client_timeout = std::chrono::milliseconds(flags.client_timeout_ms);

  const auto started = Clock::now();
  bool was_alive = true;  // when the run ended, before it was stopped
  bool crashed = false;   // died of a signal of its own
  const Clock::duration planned = UsesRounds(flags.scenario)
                                      ? Clock::duration(kStuckPerRound * flags.rounds)
                                      : Clock::duration(env.settings.duration);
  {
    StuckWatchdog watchdog(planned + kStuckAfterSeconds, &daemon, &run);
    DeathMonitor monitor(&daemon, &run);
    if (flags.scenario == "random") RunRandom(env);
    else if (flags.scenario == "five-clients") RunFiveClients(env);
    else if (flags.scenario == "cancelling-joiners") RunCancellingJoiners(env);
    else RunDiskFull(env);
    if (!run.stopping()) CheckDaemonServes(env, "end of run");
    if (!run.failed()) {
      const auto [path, problem] = ledger.CheckAll();
      if (!problem.empty()) run.Fail(path, "end of run (fan-out check)", problem);
    }
    monitor.Stop();
    was_alive = daemon.Alive();
    const int code = daemon.Stop();
    // A crash already under way when the run ended shows up here too.
    const int signal = daemon.DeathSignal();
    crashed = !was_alive || (signal != 0 && signal != SIGTERM && signal != SIGKILL);
    if (was_alive && code != 0) {
      run.Fail("(fanoutd)", "stop",
               "fanoutd " + daemon.DeathReason() +
                   (crashed ? " (a crash, not the SIGTERM that stopped it)"
                            : " after SIGTERM (expected a clean exit 0)"));
    }
    origin.Stop();
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  const std::string sanitizer = daemon.SanitizerReport();
  if (!sanitizer.empty()) run.Fail("(fanoutd)", "log scan", "sanitizer report in fanoutd's log");
  PrintSummary(run, origin, seconds);

  std::error_code ec;
  if (flags.cache_dir.empty()) std::filesystem::remove_all(dir + "/cache", ec);
  if (!run.failed()) {
    if (!flags.keep_dir) std::filesystem::remove_all(dir, ec);
    std::printf("PASS scenario %s seed %llu\n", flags.scenario.c_str(),
                static_cast<unsigned long long>(flags.seed));
    return 0;
  }
  // A crash makes every client fail; the crash is the news.
  const auto failures = run.Failures();
  const std::string headline =
      crashed ? "fanoutd " + daemon.DeathReason() + " during the run" : failures.front();
  std::printf("FAILED scenario %s seed %llu: %s\n", flags.scenario.c_str(),
              static_cast<unsigned long long>(flags.seed), headline.c_str());
  const auto kinds = run.FailureKinds();
  std::printf("%zu failure(s) recorded, %zu kind(s); the first of each:\n", failures.size(),
              kinds.size());
  for (const auto& [count, first] : kinds) std::printf("  %dx %s\n", count, first.c_str());
  std::printf("replay: %s\n", replay.c_str());
  if (!sanitizer.empty()) {
    std::printf("sanitizer report from %s:\n%s\n", daemon.log_path().c_str(), sanitizer.c_str());
  } else {
    std::printf("fanoutd log %s, last lines:\n%s\n", daemon.log_path().c_str(),
                daemon.LogTail(kLogTailLines).c_str());
  }
  return 1;
}

}  // namespace
}  // namespace fanout::stress

int main(int argc, char** argv) {
  fanout::stress::Flags flags;
  CLI::App app{"fanout_stress: a randomized stress test of the real fanoutd"};
  app.add_option("--fanoutd", flags.fanoutd, "the fanoutd binary")->capture_default_str();
  app.add_option("--scenario", flags.scenario)
      ->check(CLI::IsMember({"random", "five-clients", "cancelling-joiners", "disk-full"}))
      ->capture_default_str();
  app.add_option("--seed", flags.seed, "replays a run (default: from the clock)");
  app.add_option("--seconds", flags.seconds, "how long random runs")->capture_default_str();
  app.add_option("--rounds", flags.rounds, "rounds of the other scenarios")->capture_default_str();
  app.add_option("--max-size", flags.max_size, "largest object of random (e.g. 8MiB)")
      ->capture_default_str();
  app.add_option("--fault-rate", flags.fault_rate,
                 "chance of an upstream fault per fetch (default: 0.1 for random, else 0)");
  app.add_flag("--origin-stalls", flags.origin_stalls, "the origin pauses 1-5 ms now and then");
  app.add_option("--max-clients", flags.max_clients, "client connections at once, at most")
      ->capture_default_str();
  app.add_option("--cache-dir", flags.cache_dir,
                 "fanoutd's cache directory (disk-full: on a small file system)");
  app.add_flag("--keep-dir", flags.keep_dir, "keep the run's directory (log, config)");
  app.add_flag("--keep-going", flags.keep_going,
               "go on after a failure (not after a crash) and list every kind met");
  app.add_option("--upstream-read-timeout-ms", flags.upstream_read_timeout_ms)
      ->capture_default_str();
  app.add_option("--client-timeout-ms", flags.client_timeout_ms, "fanoutd's client_timeout")
      ->capture_default_str();
  app.add_option("--client-read-timeout-ms", flags.client_read_timeout_ms,
                 "a client waiting this long for a byte reports a hang")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  flags.seed_given = app.count("--seed") > 0;
  try {
    return fanout::stress::Run(argv[0], flags);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fanout_stress: %s\n", e.what());
    return 2;
  }
}
