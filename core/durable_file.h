// Durable file operations for the cache directory: what makes a rename
// survive a crash, and a whole-file replace that readers see as old or new,
// never half-written. Any thread.

#ifndef FANOUT_CORE_DURABLE_FILE_H_
#define FANOUT_CORE_DURABLE_FILE_H_

#include <string>
#include <string_view>

#include "core/status.h"

namespace fanout {

// fsync of a directory, so renames and creations in it are durable.
Status SyncDir(const std::string& dir);

// The directory part of a path ("." for a bare name).
std::string ParentDir(const std::string& path);

// Writes `contents` to path + ".tmp", fsyncs it, renames it to `path` and
// fsyncs the directory. On error the temporary file is removed and `path`
// is untouched.
Status WriteFileAtomically(const std::string& path, std::string_view contents);

}  // namespace fanout

#endif  // FANOUT_CORE_DURABLE_FILE_H_
