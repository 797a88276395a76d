#include "server/log_files.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace fanout {

// An spdlog sink writing to a file that can be reopened by its path.
class ReopenableFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  static std::shared_ptr<ReopenableFileSink> Open(const std::string& path, Status* status) {
    std::FILE* file = OpenFile(path, status);
    if (file == nullptr) return nullptr;
    return std::shared_ptr<ReopenableFileSink>(new ReopenableFileSink(path, file));
  }

  ~ReopenableFileSink() override {
    if (file_ != nullptr) std::fclose(file_);
  }

  Status Reopen() {
    Status status;
    std::FILE* file = OpenFile(path_, &status);
    if (file == nullptr) return status;
    std::lock_guard<std::mutex> lock(mutex_);
    std::fclose(file_);
    file_ = file;
    return Status::Ok();
  }

  const std::string& path() const { return path_; }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::fwrite(formatted.data(), 1, formatted.size(), file_);
  }
  void flush_() override { std::fflush(file_); }

 private:
  ReopenableFileSink(std::string path, std::FILE* file) : path_(std::move(path)), file_(file) {}

  static std::FILE* OpenFile(const std::string& path, Status* status) {
    std::FILE* file = std::fopen(path.c_str(), "ae");
    if (file == nullptr) {
      *status = Status::IOError("cannot open log file " + path + ": " + std::strerror(errno));
      return nullptr;
    }
    // Whole lines per write: the access logger may hold a second handle on
    // the same file, and O_APPEND keeps each write in one piece.
    std::setvbuf(file, nullptr, _IOLBF, 0);
    return file;
  }

  const std::string path_;
  std::FILE* file_;  // guarded by mutex_ (base_sink's)
};

Status LogFiles::Open(const std::string& log_file, const std::string& access_file,
                      std::unique_ptr<LogFiles>* out) {
  auto files = std::unique_ptr<LogFiles>(new LogFiles());
  spdlog::sink_ptr main_sink;
  if (log_file.empty()) {
    main_sink = std::make_shared<spdlog::sinks::stdout_color_sink_mt>();
  } else {
    Status status;
    auto file = ReopenableFileSink::Open(log_file, &status);
    if (!file) return status;
    files->files_.push_back(file);
    main_sink = file;
  }
  spdlog::sink_ptr access_sink = main_sink;
  if (!access_file.empty() && access_file != log_file) {
    Status status;
    auto file = ReopenableFileSink::Open(access_file, &status);
    if (!file) return status;
    files->files_.push_back(file);
    access_sink = file;
  }
  auto main_logger = std::make_shared<spdlog::logger>("fanoutd", main_sink);
  main_logger->set_pattern(kLogPattern);
  spdlog::set_default_logger(main_logger);
  // The access log sets its own pattern (access_log.h); on a shared sink a
  // logger's pattern is its sink's, so the access logger needs a sink of its
  // own when it shares the file: a second handle on the same file.
  if (access_sink == main_sink && !log_file.empty()) {
    Status status;
    auto file = ReopenableFileSink::Open(log_file, &status);
    if (!file) return status;
    files->files_.push_back(file);
    access_sink = file;
  } else if (access_sink == main_sink) {
    access_sink = std::make_shared<spdlog::sinks::stdout_color_sink_mt>();
  }
  auto access_logger = std::make_shared<spdlog::logger>("access", access_sink);
  access_logger->set_pattern(kLogPattern);
  spdlog::register_logger(access_logger);
  *out = std::move(files);
  return Status::Ok();
}

Status LogFiles::Reopen() {
  std::string failures;
  for (const auto& file : files_) {
    if (Status st = file->Reopen(); !st.ok()) {
      failures += (failures.empty() ? "" : "; ") + st.message();
    }
  }
  return failures.empty() ? Status::Ok() : Status::IOError(failures);
}

}  // namespace fanout
