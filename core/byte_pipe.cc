#include "core/byte_pipe.h"

#include <algorithm>
#include <cstring>

namespace fanout {

BytePipe::BytePipe(std::size_t capacity) : ring_(std::max<std::size_t>(capacity, 1)) {}

Status BytePipe::Write(const char* data, std::size_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  if (end_ != End::kOpen) return Status::InvalidArgument("write after the end of the pipe");
  while (n > 0) {
    writable_.wait(lock, [this] { return reader_closed_ || size_ < ring_.size(); });
    if (reader_closed_) return Status::Cancelled();
    // Copy into the free space, which may wrap around the end of the ring.
    const std::size_t tail = (head_ + size_) % ring_.size();
    const std::size_t room = std::min(ring_.size() - size_, ring_.size() - tail);
    const std::size_t chunk = std::min(n, room);
    std::memcpy(ring_.data() + tail, data, chunk);
    size_ += chunk;
    total_written_ += chunk;
    data += chunk;
    n -= chunk;
    readable_.notify_one();
  }
  return Status::Ok();
}

void BytePipe::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (end_ == End::kOpen) end_ = End::kFinished;
  readable_.notify_all();
}

void BytePipe::Fail(std::string why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (end_ != End::kOpen) return;
  end_ = End::kFailed;
  failure_ = std::move(why);
  readable_.notify_all();
}

BytePipe::ReadResult BytePipe::Read(char* out, std::size_t max, Deadline deadline) {
  if (max == 0) return {Status::Ok(), 0};
  std::unique_lock<std::mutex> lock(mu_);
  reader_waiting_ = true;
  const bool ready = readable_.wait_until(lock, deadline, [this] {
    return size_ > 0 || end_ != End::kOpen;
  });
  reader_waiting_ = false;
  // A failure wins over buffered bytes: the body is incomplete, and sending
  // more of it would only delay telling the upstream.
  if (end_ == End::kFailed) return {Status::StreamFailed(failure_), 0};
  if (size_ == 0) {
    if (!ready) return {Status::DeadlineExceeded(), 0};
    return {Status::EndOfStream(), 0};
  }
  const std::size_t chunk = std::min({max, size_, ring_.size() - head_});
  std::memcpy(out, ring_.data() + head_, chunk);
  head_ = (head_ + chunk) % ring_.size();
  size_ -= chunk;
  writable_.notify_one();
  return {Status::Ok(), chunk};
}

void BytePipe::CloseReader() {
  std::lock_guard<std::mutex> lock(mu_);
  reader_closed_ = true;
  writable_.notify_all();
}

bool BytePipe::ReaderWaitingForTesting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reader_waiting_;
}

std::size_t BytePipe::bytes_written() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_written_;
}

}  // namespace fanout
