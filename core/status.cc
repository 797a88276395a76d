#include "core/status.h"

#include <cstring>

namespace fanout {

Status Status::FromErrno(std::string_view context, int err) {
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(err);
  return Status(Code::kIOError, std::move(msg));
}

const char* CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kEndOfStream: return "end of stream";
    case Status::Code::kStreamFailed: return "stream failed";
    case Status::Code::kCancelled: return "cancelled";
    case Status::Code::kDeadlineExceeded: return "deadline exceeded";
    case Status::Code::kIOError: return "I/O error";
    case Status::Code::kInvalidArgument: return "invalid argument";
    case Status::Code::kNotFound: return "not found";
    case Status::Code::kCorruption: return "corruption";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out = CodeName(code_);
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

}  // namespace fanout
