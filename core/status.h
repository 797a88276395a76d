// Status: the result of a core operation, returned as a value.
//
// A Status is either OK or carries a Code naming what kind of failure it is
// and a message saying where (path, URL) and why. Callers switch on code();
// the message is for logs and error bodies. Cheap to copy when OK.

#ifndef FANOUT_CORE_STATUS_H_
#define FANOUT_CORE_STATUS_H_

#include <string>
#include <string_view>
#include <utility>

namespace fanout {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kEndOfStream,       // a finished stream has no more bytes at this offset
    kStreamFailed,      // the writer ended the stream with an error
    kCancelled,         // the caller's wait was cancelled from another thread
    kDeadlineExceeded,  // the caller's deadline passed before data arrived
    kIOError,           // the operating system refused (disk full, EIO, ...)
    kInvalidArgument,   // the caller asked for something impossible
    kNotFound,          // no such entry or file
    kCorruption,        // bytes on disk do not match what was recorded
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status EndOfStream() { return Status(Code::kEndOfStream, ""); }
  static Status StreamFailed(std::string msg) {
    return Status(Code::kStreamFailed, std::move(msg));
  }
  static Status Cancelled() { return Status(Code::kCancelled, "cancelled"); }
  static Status DeadlineExceeded() {
    return Status(Code::kDeadlineExceeded, "deadline exceeded");
  }
  static Status IOError(std::string msg) {
    return Status(Code::kIOError, std::move(msg));
  }
  static Status InvalidArgument(std::string msg) {
    return Status(Code::kInvalidArgument, std::move(msg));
  }
  static Status NotFound(std::string msg) {
    return Status(Code::kNotFound, std::move(msg));
  }
  static Status Corruption(std::string msg) {
    return Status(Code::kCorruption, std::move(msg));
  }
  // An IOError for a failed system call: "<context>: <strerror(err)>".
  static Status FromErrno(std::string_view context, int err);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "OK", or the code's name followed by the message.
  std::string ToString() const;

  bool operator==(const Status& other) const {
    return code_ == other.code_ && message_ == other.message_;
  }

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

const char* CodeName(Status::Code code);

}  // namespace fanout

#endif  // FANOUT_CORE_STATUS_H_
