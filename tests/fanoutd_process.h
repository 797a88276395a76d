// FanoutdProcess: runs the real fanoutd binary for integration tests, on
// 127.0.0.1 with a port it picks itself, and stops it by its PID.

#ifndef FANOUT_TESTS_FANOUTD_PROCESS_H_
#define FANOUT_TESTS_FANOUTD_PROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <algorithm>

#include <gtest/gtest.h>

namespace fanout::testing {

struct ExitResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline pid_t Spawn(const std::vector<std::string>& args, const std::string& log_path) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ::dup2(fd, 1);
  ::dup2(fd, 2);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(argv[0], argv.data());
  _exit(127);
}

// Waits up to `limit` for pid to exit, then kills it. Returns the exit
// code, or -1 if it had to be killed or died by a signal.
inline int WaitForExit(pid_t pid, std::chrono::seconds limit) {
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs fanoutd with `args` to its exit (for config and CLI tests).
inline ExitResult RunFanoutdToExit(std::vector<std::string> args, const std::string& dir) {
  args.insert(args.begin(), FANOUTD_BINARY);
  const std::string log = dir + "/run.log";
  const pid_t pid = Spawn(args, log);
  const int code = WaitForExit(pid, std::chrono::seconds(10));
  return {code, ReadFile(log)};
}

class FanoutdProcess {
 public:
  // Starts fanoutd with --listen 127.0.0.1:0 --cache-dir <dir>/cache
  // --admin-listen 127.0.0.1:0 (unless `args` name their own listeners) and
  // `args`, and waits until it logs the port it listens on.
  bool Start(const std::string& dir, std::vector<std::string> args) {
    log_path_ = dir + "/fanoutd.log";
    // Stop() drains: a test that leaves a client connected waits at most
    // this long, unless it sets its own grace.
    if (std::find(args.begin(), args.end(), "--shutdown-grace") == args.end()) {
      args.insert(args.end(), {"--shutdown-grace", "3s"});
    }
    if (std::find(args.begin(), args.end(), "--log-level") == args.end()) {
      args.insert(args.end(), {"--log-level", "info"});
    }
    // Ports it picks itself, unless the test fixes them.
    for (const char* listener : {"--listen", "--admin-listen"}) {
      if (std::find(args.begin(), args.end(), listener) == args.end()) {
        args.insert(args.begin(), {listener, "127.0.0.1:0"});
      }
    }
    args.insert(args.begin(), {FANOUTD_BINARY, "--cache-dir", dir + "/cache"});
    // Emptied here, not only in the child: a restart must not find the
    // previous run's "listening on" line before the child truncates it.
    std::ofstream(log_path_, std::ios::trunc).close();
    pid_ = Spawn(args, log_path_);
    const std::regex listening("fanoutd .* listening on 127\\.0\\.0\\.1:([0-9]+)");
    const std::regex admin("admin interface listening on 127\\.0\\.0\\.1:([0-9]+)");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      std::smatch m;
      const std::string log = ReadFile(log_path_);
      if (std::regex_search(log, m, listening)) {
        port_ = std::stoi(m[1]);
        std::smatch a;
        if (std::regex_search(log, a, admin)) admin_port_ = std::stoi(a[1]);
        return true;
      }
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  // SIGTERM, then SIGKILL if it does not stop within 10 s. Returns the
  // exit code (or -1 if it had to be killed). A sanitizer report in the
  // daemon's log fails the test, whatever the test checked.
  int Stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    const int code = WaitForExit(pid_, std::chrono::seconds(30));
    pid_ = -1;
    ExpectNoSanitizerReport();
    return code;
  }

  // SIGKILL: the process dies wherever it is, as in a crash.
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    WaitForExit(pid_, std::chrono::seconds(10));
    pid_ = -1;
    ExpectNoSanitizerReport();
  }

  // Fails the test if the daemon's log holds a report of AddressSanitizer,
  // LeakSanitizer, UndefinedBehaviorSanitizer or ThreadSanitizer (a daemon
  // built with them reports there, and may go on).
  void ExpectNoSanitizerReport() const {
    const std::string text = log();
    for (const char* mark : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                             "WARNING: ThreadSanitizer", "runtime error:"}) {
      const std::size_t at = text.find(mark);
      if (at != std::string::npos) {
        ADD_FAILURE() << "fanoutd reported: " << text.substr(at, 4000);
        return;
      }
    }
  }

  ~FanoutdProcess() { Stop(); }

  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  int admin_port() const { return admin_port_; }
  std::string log() const { return ReadFile(log_path_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int admin_port_ = 0;
  std::string log_path_;
};

}  // namespace fanout::testing

#endif  // FANOUT_TESTS_FANOUTD_PROCESS_H_
