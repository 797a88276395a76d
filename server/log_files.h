// LogFiles: where fanoutd's log and its access log go — standard output,
// or files opened for appending that SIGUSR1 reopens after a rotation
// (logrotate's "create" mode: the old file was renamed, a new one is made).
//
// Sets up spdlog's default logger and the "access" logger the access log
// writes to (access_log.h). The access log goes with the rest unless it has
// its own file.
//
// Thread-safety: Open() once, at start-up, before other threads log.
// Reopen() from any thread (the signal thread); loggers keep logging
// meanwhile.

#ifndef FANOUT_SERVER_LOG_FILES_H_
#define FANOUT_SERVER_LOG_FILES_H_

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace fanout {

class ReopenableFileSink;

// The pattern of every log line: time, level, message.
inline constexpr const char* kLogPattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v";

class LogFiles {
 public:
  // `log_file`, `access_file`: paths, or empty (standard output; for the
  // access file: with the rest). kIOError naming the file and the system's
  // reason if one cannot be opened.
  static Status Open(const std::string& log_file, const std::string& access_file,
                     std::unique_ptr<LogFiles>* out);

  // Reopens every file by its path. kIOError (naming each file that could
  // not be reopened; that one keeps writing to the old file) or OK.
  Status Reopen();

 private:
  std::vector<std::shared_ptr<ReopenableFileSink>> files_;
};

}  // namespace fanout

#endif  // FANOUT_SERVER_LOG_FILES_H_
