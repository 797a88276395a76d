// CacheDirLock: one fanoutd per cache directory. Two daemons sharing one
// would delete each other's stream files at start-up and race on every
// entry, so the second is refused.
//
// An exclusive flock(2) on <dir>/fanoutd.lock, held for the lock object's
// lifetime (the kernel drops it when the process dies, crash included, so
// a stale lock never outlives its holder). The file holds the holder's
// pid, for the error message of the next one to try. On a read-only file
// system (where nothing can be deleted anyway) an existing lock file is
// locked read-only, and a missing one is not needed.
//
// Not thread-safe to share; one per process, owned by the cache.

#ifndef FANOUT_CORE_CACHE_DIR_LOCK_H_
#define FANOUT_CORE_CACHE_DIR_LOCK_H_

#include <memory>
#include <string>

#include "core/status.h"

namespace fanout {

class CacheDirLock {
 public:
  // kIOError naming the directory and the other holder's pid if another
  // process (or another lock object) holds it, or naming the file and the
  // system's reason if it cannot be opened or locked.
  static Status Acquire(const std::string& dir, std::unique_ptr<CacheDirLock>* out);

  ~CacheDirLock();
  CacheDirLock(const CacheDirLock&) = delete;
  CacheDirLock& operator=(const CacheDirLock&) = delete;

  // The name of the lock file in a cache directory.
  static constexpr const char* kFileName = "fanoutd.lock";

 private:
  explicit CacheDirLock(int fd) : fd_(fd) {}
  int fd_;  // -1: no lock needed (read-only file system)
};

}  // namespace fanout

#endif  // FANOUT_CORE_CACHE_DIR_LOCK_H_
