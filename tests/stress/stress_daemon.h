// StressDaemon: the real fanoutd binary under test, as a child process in
// front of the stress origin (one route "/" to it), on 127.0.0.1 with ports
// it picks itself, configured by a JSON file with short timeouts so that a
// stalled upstream is given up on quickly.
//
// Its stdout and stderr go to one log file, which is also where a sanitizer
// writes its report; SanitizerReport() finds one. Alive() tells a crash from
// a clean stop by the exit status (DeathReason()).
//
// The process dies with the stress test's (PR_SET_PDEATHSIG), so a run
// killed by a test timeout leaves no daemon behind.
//
// Thread-safety: Alive(), DeathReason(), Kill(), Log() and the accessors
// may be called from any thread; Start() and Stop() from the owner.

#ifndef FANOUT_TESTS_STRESS_STRESS_DAEMON_H_
#define FANOUT_TESTS_STRESS_STRESS_DAEMON_H_

#include <sys/types.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <string>

namespace fanout::stress {

class StressDaemon {
 public:
  struct Options {
    std::string binary;     // path to fanoutd
    std::string dir;        // for the config file and the log
    std::string cache_dir;  // Default: <dir>/cache
    int origin_port = 0;
    std::chrono::milliseconds upstream_read_timeout{2000};
    std::chrono::milliseconds client_timeout{6000};
    // Far above what a run keeps at once, so nothing is evicted (an
    // eviction would allow a fetch the fan-out count does not expect).
    std::string max_cache_size = "16GiB";
  };

  explicit StressDaemon(Options options);
  ~StressDaemon();  // Stop()s
  StressDaemon(const StressDaemon&) = delete;
  StressDaemon& operator=(const StressDaemon&) = delete;

  // Writes the config, starts fanoutd and waits (up to 30 s) until it logs
  // both ports. False, with *error set, if it does not.
  bool Start(std::string* error);
  // SIGTERM, then SIGKILL after `patience`. Returns the exit code, or -1 if
  // it was killed or died by a signal (DeathReason() says which).
  int Stop(std::chrono::seconds patience = std::chrono::seconds(30));

  // SIGKILL now (a stuck run's last act).
  void Kill();

  // True while the process runs.
  bool Alive();
  // How the process ended ("killed by signal 11 (Segmentation fault)",
  // "exited with code 1"); empty while it runs.
  std::string DeathReason();
  // The signal that ended the process; 0 while it runs or if it exited.
  int DeathSignal();

  int port() const { return port_; }
  int origin_port() const { return options_.origin_port; }
  const std::string& cache_dir() const { return cache_dir_; }
  int admin_port() const { return admin_port_; }
  const std::string& log_path() const { return log_path_; }
  std::string Log() const;
  // The last `lines` lines of the log.
  std::string LogTail(int lines) const;
  // The first sanitizer report in the log (ASan, TSan, UBSan, LSan) with
  // the lines after it; empty if there is none.
  std::string SanitizerReport() const;

 private:
  // Reaps the child if it ended; REQUIRES: mu_ held.
  void PollLocked();

  const Options options_;
  const std::string cache_dir_;
  std::string log_path_;
  int port_ = 0;
  int admin_port_ = 0;

  std::mutex mu_;
  pid_t pid_ = -1;                  // guarded by mu_
  std::optional<int> wait_status_;  // guarded by mu_; set once reaped
};

}  // namespace fanout::stress

#endif  // FANOUT_TESTS_STRESS_STRESS_DAEMON_H_
