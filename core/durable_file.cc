#include "core/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace fanout {

std::string ParentDir(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open directory " + dir, errno);
  Status st;
  if (::fsync(fd) != 0) st = Status::FromErrno("fsync directory " + dir, errno);
  ::close(fd);
  return st;
}

Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("create " + tmp, errno);
  Status st;
  std::size_t done = 0;
  while (st.ok() && done < contents.size()) {
    const ssize_t w = ::write(fd, contents.data() + done, contents.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) st = Status::FromErrno("write " + tmp, w < 0 ? errno : EIO);
    else done += static_cast<std::size_t>(w);
  }
  if (st.ok() && ::fdatasync(fd) != 0) st = Status::FromErrno("fdatasync " + tmp, errno);
  ::close(fd);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = Status::FromErrno("rename " + tmp + " to " + path, errno);
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return SyncDir(ParentDir(path));
}

}  // namespace fanout
