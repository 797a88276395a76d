// Helpers shared by the test suites: temporary directories, deterministic
// byte patterns, waiting for an observable condition, loopback listeners.

#ifndef FANOUT_TESTS_TEST_UTIL_H_
#define FANOUT_TESTS_TEST_UTIL_H_

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace fanout::testing {

// A socket listening on 127.0.0.1 at an ephemeral port (in *port); aborts
// if none can be had, which no test could go on without.
inline int ListenOnLoopback(int* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, 64) != 0) {
    std::abort();
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

// A 127.0.0.1 port nothing listens on now (the kernel's pick, let go at
// once), for a daemon that must be told its port before it starts.
inline int FreeLoopbackPort() {
  int port = 0;
  ::close(ListenOnLoopback(&port));
  return port;
}

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base ? base : "/tmp") + "/fanout-test-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) std::abort();
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The byte at `offset` of a test stream: position-dependent, so a byte read
// from the wrong place is caught.
inline char PatternByte(std::uint64_t offset) {
  const std::uint64_t x = offset * 0x9E3779B97F4A7C15ull;
  return static_cast<char>((x >> 56) ^ (offset >> 12));
}

// `text` with every byte but the unreserved ones (RFC 3986) percent-
// encoded: a value to put in a query string.
inline std::string QueryEscaped(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

inline std::string Pattern(std::uint64_t offset, std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = PatternByte(offset + i);
  return s;
}

// Waits (yielding, not sleeping a guessed time) until `cond` holds; fails
// the test if it does not within `limit`.
template <typename Cond>
bool WaitFor(Cond cond, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "condition not reached within " << limit.count() << " ms";
      return false;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

// Runs a shell command; returns what it printed on stdout.
inline std::string RunCommand(const std::string& command) {
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    ::pclose(pipe);
  }
  return out;
}

}  // namespace fanout::testing

#endif  // FANOUT_TESTS_TEST_UTIL_H_
