#include "tests/stress/stress_daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

namespace fanout::stress {
namespace {

// How long fanoutd may take to log its ports (a sanitized build starts slowly).
constexpr auto kStartLimit = std::chrono::seconds(30);
// How often the log and the process are looked at while waiting on them.
constexpr auto kPollEvery = std::chrono::milliseconds(10);

// Lines after a sanitizer's first line that go into a report.
constexpr int kReportLines = 60;

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Millis(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + "ms"; }

}  // namespace

StressDaemon::StressDaemon(Options options)
    : options_(std::move(options)),
      cache_dir_(options_.cache_dir.empty() ? options_.dir + "/cache" : options_.cache_dir) {}

StressDaemon::~StressDaemon() { Stop(); }

bool StressDaemon::Start(std::string* error) {
  const std::string config_path = options_.dir + "/fanout.json";
  log_path_ = options_.dir + "/fanoutd.log";
  {
    std::ofstream config(config_path);
    config << "{\n"
           << "  \"routes\": [{\"prefix\": \"/\", \"upstream\": \"http://127.0.0.1:"
           << options_.origin_port << "\"}],\n"
           // Clients also ask as proxy clients (absolute URLs): one key, so
           // both forms share entries and fetches.
           << "  \"forward_proxy\": {\"allow\": [\"127.0.0.1:" << options_.origin_port
           << "\"]},\n"
           << "  \"upstream\": {\"connect_timeout\": \"2s\", \"read_timeout\": \""
           << Millis(options_.upstream_read_timeout) << "\", \"stall_timeout\": \""
           // Half the read timeout: a stalled body is hedged before it times out.
           << Millis(options_.upstream_read_timeout / 2) << "\",\n"
           // Small, so that bodies are checkpointed while readers read them.
           << "    \"partial_checkpoint\": \"4MiB\"},\n"
           << "  \"client_timeout\": \"" << Millis(options_.client_timeout) << "\",\n"
           << "  \"max_cache_size\": \"" << options_.max_cache_size << "\",\n"
           << "  \"log\": {\"level\": \"info\", \"access_log\": true}\n"
           << "}\n";
  }
  std::ofstream(log_path_, std::ios::trunc).close();
  // Built before fork: the child of a threaded process may only exec.
  const std::vector<std::string> args = {options_.binary, "--config",     config_path,
                                         "--listen",      "127.0.0.1:0",  "--admin-listen",
                                         "127.0.0.1:0",   "--cache-dir",  cache_dir_,
                                         "--shutdown-grace", "5s"};
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (log_fd < 0) {
    *error = "cannot open " + log_path_ + ": " + std::strerror(errno);
    return false;
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(log_fd);
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    pid_ = pid;
    wait_status_.reset();
  }
  const std::regex listening("fanoutd .* listening on 127\\.0\\.0\\.1:([0-9]+)");
  const std::regex admin("admin interface listening on 127\\.0\\.0\\.1:([0-9]+)");
  const auto deadline = std::chrono::steady_clock::now() + kStartLimit;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string log = Log();
    std::smatch m, a;
    if (std::regex_search(log, m, listening) && std::regex_search(log, a, admin)) {
      port_ = std::stoi(m[1]);
      admin_port_ = std::stoi(a[1]);
      return true;
    }
    if (!Alive()) {
      *error = "fanoutd " + DeathReason() + " before listening:\n" + LogTail(30);
      return false;
    }
    std::this_thread::sleep_for(kPollEvery);
  }
  *error = "fanoutd did not log its ports within 30 s:\n" + LogTail(30);
  Stop();
  return false;
}

void StressDaemon::PollLocked() {
  if (pid_ <= 0 || wait_status_) return;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) wait_status_ = status;
}

bool StressDaemon::Alive() {
  std::lock_guard<std::mutex> lock(mu_);
  PollLocked();
  return pid_ > 0 && !wait_status_;
}

std::string StressDaemon::DeathReason() {
  std::lock_guard<std::mutex> lock(mu_);
  PollLocked();
  if (!wait_status_) return "";
  const int s = *wait_status_;
  if (WIFSIGNALED(s)) {
    return "killed by signal " + std::to_string(WTERMSIG(s)) + " (" + ::strsignal(WTERMSIG(s)) +
           ")";
  }
  return "exited with code " + std::to_string(WEXITSTATUS(s));
}

void StressDaemon::Kill() {
  std::lock_guard<std::mutex> lock(mu_);
  PollLocked();
  if (pid_ > 0 && !wait_status_) ::kill(pid_, SIGKILL);
}

int StressDaemon::DeathSignal() {
  std::lock_guard<std::mutex> lock(mu_);
  PollLocked();
  return wait_status_ && WIFSIGNALED(*wait_status_) ? WTERMSIG(*wait_status_) : 0;
}

int StressDaemon::Stop(std::chrono::seconds patience) {
  pid_t pid;
  {
    std::lock_guard<std::mutex> lock(mu_);
    PollLocked();
    pid = pid_;
    if (pid <= 0) return -1;
    if (!wait_status_) ::kill(pid, SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (Alive() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(kPollEvery);
  }
  std::lock_guard<std::mutex> lock(mu_);
  PollLocked();
  if (!wait_status_) {
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    wait_status_ = status;
  }
  const int s = *wait_status_;
  pid_ = -pid;  // ended; DeathReason() still answers
  return WIFEXITED(s) ? WEXITSTATUS(s) : -1;
}

std::string StressDaemon::Log() const { return ReadWhole(log_path_); }

std::string StressDaemon::LogTail(int lines) const {
  const std::string log = Log();
  std::size_t at = log.size();
  for (int i = 0; i <= lines && at > 0; ++i) {
    at = log.rfind('\n', at - 1);
    if (at == std::string::npos) return log;
  }
  return log.substr(at + 1);
}

std::string StressDaemon::SanitizerReport() const {
  const std::string log = Log();
  std::size_t first = std::string::npos;
  for (const char* marker : {"ERROR: AddressSanitizer", "WARNING: ThreadSanitizer",
                             "runtime error:", "ERROR: LeakSanitizer", "LeakSanitizer"}) {
    first = std::min(first, log.find(marker));
  }
  if (first == std::string::npos) return "";
  // The report's lines, without fanoutd's own log lines interleaved with
  // them (they start with a timestamp, "2026-11-30T...").
  static const std::regex log_line("^[0-9]{4}-[0-9]{2}-[0-9]{2}T.*");
  const std::size_t newline = log.rfind('\n', first);
  std::istringstream rest(log.substr(newline == std::string::npos ? 0 : newline + 1));
  std::string report, line;
  for (int kept = 0; kept < kReportLines && std::getline(rest, line);) {
    if (std::regex_match(line, log_line)) continue;
    report += line + "\n";
    ++kept;
  }
  return report;
}

}  // namespace fanout::stress
