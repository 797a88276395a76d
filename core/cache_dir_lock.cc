#include "core/cache_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace fanout {
namespace {

// The pid the lock file names ("" if it names none).
std::string HolderOf(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string pid = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid;
}

}  // namespace

Status CacheDirLock::Acquire(const std::string& dir, std::unique_ptr<CacheDirLock>* out) {
  const std::string path = dir + "/" + kFileName;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EROFS) {
    // A cache on a read-only file system is served from, never written, so
    // a second daemon could not delete anything there: the lock is taken
    // if the file exists, and not needed if it does not.
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      out->reset(new CacheDirLock(-1));
      return Status::Ok();
    }
  }
  if (fd < 0) {
    return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string holder = HolderOf(fd);
    ::close(fd);
    if (err != EWOULDBLOCK) {
      return Status::IOError("cannot lock " + path + ": " + std::strerror(err));
    }
    return Status::IOError(
        "cache_dir " + dir + " is in use by another fanoutd" +
        (holder.empty() ? "" : " (pid " + holder + ")") +
        ": one cache directory serves one fanoutd; stop the other or give this one its own");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // The lock holds without the pid; only the next one's message is poorer.
  }
  out->reset(new CacheDirLock(fd));
  return Status::Ok();
}

CacheDirLock::~CacheDirLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace fanout
