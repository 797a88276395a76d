#include "server/http1/request_body.h"

#include <algorithm>
#include <cstring>

#include "server/connection_stream.h"

namespace fanout {
namespace {

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace

RequestBody::RequestBody(ConnectionStream* stream, const Request& request, bool expect_continue,
                         std::uint64_t max_bytes)
    : stream_(stream),
      framing_(request.framing),
      max_bytes_(max_bytes),
      continue_owed_(expect_continue && request.has_body()) {
  if (framing_ == RequestHead::Framing::kLength) remaining_ = request.content_length;
  finished_ = !request.has_body();
}

bool RequestBody::Input() {
  if (continue_owed_) {
    continue_owed_ = false;
    // Only if the client is still waiting for it: nothing of the body here.
    if (stream_->BufferedInput().empty()) {
      (void)stream_->write(kContinue.data(), kContinue.size());
      if (!stream_->Flush()) return false;
    }
  }
  return stream_->WaitForInput();
}

long RequestBody::Read(char* buf, std::size_t n) {
  if (error_ != Error::kNone) return -1;
  if (finished_ || n == 0) return 0;
  if (framing_ == RequestHead::Framing::kChunked) return ReadChunked(buf, n);
  if (!Input()) return Fail(Error::kBroken);
  const std::string_view in = stream_->BufferedInput();
  const std::size_t take = static_cast<std::size_t>(
      std::min<std::uint64_t>({n, in.size(), remaining_}));
  std::memcpy(buf, in.data(), take);
  stream_->Consume(take);
  remaining_ -= take;
  read_ += take;
  finished_ = remaining_ == 0;
  return static_cast<long>(take);
}

long RequestBody::ReadChunked(char* buf, std::size_t n) {
  for (;;) {
    if (!Input()) return Fail(Error::kBroken);
    // Decoded bytes never outnumber the encoded ones: feeding at most n
    // bytes fills at most n.
    const std::string_view in = stream_->BufferedInput().substr(0, n);
    pieces_.clear();
    std::size_t consumed = 0;
    const ChunkedDecoder::Result result = decoder_.Feed(in, &pieces_, &consumed);
    if (result == ChunkedDecoder::Result::kMalformed) return Fail(Error::kMalformed);
    std::size_t out = 0;
    for (std::string_view piece : pieces_) {
      std::memcpy(buf + out, piece.data(), piece.size());
      out += piece.size();
    }
    stream_->Consume(result == ChunkedDecoder::Result::kDone ? consumed : in.size());
    read_ += out;
    if (read_ > max_bytes_) return Fail(Error::kTooLarge);
    if (result == ChunkedDecoder::Result::kDone) finished_ = true;
    if (out > 0 || finished_) return static_cast<long>(out);
  }
}

bool RequestBody::Discard(std::uint64_t max) {
  if (finished_) return true;
  if (error_ != Error::kNone) return false;
  if (framing_ == RequestHead::Framing::kLength && remaining_ > max) return false;
  // A client that waits for 100 Continue has not sent the body: there is
  // nothing to discard, and the connection closes.
  if (continue_owed_) return false;
  char scratch[16 * 1024];
  const std::uint64_t limit = read_ + max;
  while (!finished_) {
    if (Read(scratch, sizeof scratch) < 0 || read_ > limit) return false;
  }
  return true;
}

}  // namespace fanout
