#include "server/response_sender.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "server/cpu_slice.h"
#include "server/entry_body_job.h"

namespace fanout {
namespace {

// Bytes copied from the stream file per read when a body is copied.
constexpr std::size_t kBodyBufferBytes = 64 * 1024;

// Bodies up to this size are copied rather than sent from the mapping, so
// the head and the body leave in one segment.
constexpr std::size_t kSmallBodyBytes = 16 * 1024 - 1024;

// Known-length bodies at least this long are sent by the BodySender (see
// body_sender.h) rather than by the connection's thread: they can take a
// client long enough, or wait at the frontier long enough, to tie a
// thread up; a smaller one usually fits in the socket buffer at once.
constexpr std::size_t kHandOffBytes = 256 * 1024;

// After this many bytes of one body, its thread asks for long CPU slices.
constexpr std::uint64_t kBulkBodyBytes = 1 << 20;

// How often a client waiting at the frontier checks for shutdown.
constexpr auto kFrontierPoll = std::chrono::seconds(1);

// Sends one body from its own reader of the entry's stream file on the
// connection's thread, accounting it in the access log record.
class EntryBody {
 public:
  EntryBody(Response& res, ConnectionStream& stream, const SendContext& context)
      : res_(res), stream_(stream), context_(context),
        reader_(res.entry->stream()->OpenReader()) {
    // Opened (at byte 0): a fetch that frees the bytes its readers passed
    // may count on this request's reader from now on.
    if (res.record) {
      if (Entry::Interest* interest = res.record->interest()) interest->MarkReading();
    }
    if (res.offset > 0) reader_->Seek(res.offset);
  }

  SendResult SendLength(std::uint64_t length) {
    if (length <= kSmallBodyBytes) return Copy(length) ? SendResult::kSent : SendResult::kFailed;
    if (context_.sender != nullptr && length >= kHandOffBytes && stream_.CanHandOff()) {
      auto record = res_.record ? res_.record
                                : std::make_shared<AccessLogRecord>(nullptr, "", "", "");
      stream_.HandOff(NewEntryBodyJob(reader_, length, std::move(record), res_.entry,
                                      context_.cache));
      return SendResult::kHandedOff;
    }
    while (length > 0) {
      auto extent = AwaitBytes([&](Deadline d) {
        return reader_->NextExtent(std::min<std::uint64_t>(length, ConnectionStream::kMaxBodyWrite),
                                   d);
      });
      if (!extent.status.ok()) return Incomplete(extent.status);
      if (extent.data == nullptr) {
        // The stream file could not be mapped: copy these bytes instead.
        reader_->Seek(extent.offset);
        if (!Copy(extent.length)) return SendResult::kFailed;
      } else if (!stream_.WriteAll({extent.data, extent.length})) {
        // From the stream file's mapping: one copy, into the socket.
        if (stream_.file_short()) {
          return Incomplete(Status::IOError("stream file shorter than its frontier"));
        }
        return ClientGone();
      } else {
        Sent(extent.length);
      }
      length -= extent.length;
    }
    return SendResult::kSent;
  }

  // To the end of the stream, in chunks (RFC 9112 §7.1), or as it is
  // when the connection's close ends it.
  SendResult SendToEnd(bool chunked) {
    buffer_.resize(kBodyBufferBytes);
    for (;;) {
      auto r = AwaitBytes([&](Deadline d) { return reader_->Read(buffer_.data(), buffer_.size(), d); });
      if (r.status.code() == Status::Code::kEndOfStream) {
        return !chunked || stream_.WriteAll("0\r\n\r\n") ? SendResult::kSent : ClientGone();
      }
      if (!r.status.ok()) return Incomplete(r.status);
      if (!chunked) {
        if (!stream_.WriteAll({buffer_.data(), r.bytes})) return ClientGone();
        Sent(r.bytes);
        continue;
      }
      char size_line[32];
      const int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", r.bytes);
      if (!stream_.WriteAll({size_line, static_cast<std::size_t>(n)}) ||
          !stream_.WriteAll({buffer_.data(), r.bytes}) || !stream_.WriteAll("\r\n")) {
        return ClientGone();
      }
      Sent(r.bytes);
    }
  }

 private:
  // Calls attempt(deadline) until it stops timing out. Before it first
  // waits at the frontier, held-back output is flushed so the client is
  // not kept from bytes already produced.
  template <typename Attempt>
  auto AwaitBytes(Attempt attempt) -> decltype(attempt(Deadline{})) {
    auto r = attempt(std::chrono::steady_clock::now());
    if (r.status.code() != Status::Code::kDeadlineExceeded) return r;
    stream_.Flush();
    for (;;) {
      r = attempt(std::chrono::steady_clock::now() + kFrontierPoll);
      if (r.status.code() != Status::Code::kDeadlineExceeded ||
          (context_.stopping != nullptr && context_.stopping->load())) {
        return r;
      }
    }
  }

  // Copies `length` bytes at the reader's position out and sends them.
  bool Copy(std::uint64_t length) {
    if (buffer_.empty()) {
      buffer_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(length, kBodyBufferBytes)));
    }
    while (length > 0) {
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(length, buffer_.size()));
      auto r = AwaitBytes([&](Deadline d) { return reader_->Read(buffer_.data(), want, d); });
      if (!r.status.ok()) return Incomplete(r.status) == SendResult::kSent;
      if (!stream_.WriteAll({buffer_.data(), r.bytes})) return ClientGone() == SendResult::kSent;
      Sent(r.bytes);
      length -= r.bytes;
    }
    return true;
  }

  void Sent(std::size_t n) {
    if (res_.record) res_.record->AddBytes(n);
    sent_ += n;
    // A large body: this thread is a bulk sender now, and lets threads
    // answering requests run first (see cpu_slice.h).
    if (sent_ >= kBulkBodyBytes) UseBulkCpuSlice();
  }

  SendResult ClientGone() {
    if (res_.record) res_.record->MarkIncomplete("client went away");
    return SendResult::kFailed;
  }

  // Records why the body ends early.
  SendResult Incomplete(const Status& status) {
    if (res_.record) {
      if (status.code() == Status::Code::kDeadlineExceeded) {
        res_.record->MarkIncomplete("fanoutd stopping");
      } else if (status.code() == Status::Code::kEndOfStream) {
        res_.record->MarkIncomplete("stream shorter than its length");
      } else {
        res_.record->MarkIncomplete(status.ToString());
      }
    }
    // kIOError: the entry's file lost bytes under it (cut on disk).
    if (status.code() == Status::Code::kIOError && context_.cache != nullptr) {
      context_.cache->DropDamaged(res_.entry, status.message());
    }
    return SendResult::kFailed;
  }

  Response& res_;
  ConnectionStream& stream_;
  const SendContext& context_;
  std::shared_ptr<StreamReader> reader_;
  std::vector<char> buffer_;
  std::uint64_t sent_ = 0;
};

}  // namespace

SendResult SendResponse(Response& res, ConnectionStream& stream, ConnectionAfter after,
                        const SendContext& context) {
  ResponseFraming framing;
  if (!res.entry) {
    framing.length = res.text.size();
  } else if (res.length) {
    framing.length = res.length;
  } else {
    framing.until_close = res.until_close;
  }
  const bool body = StatusHasBody(res.status) && !res.head_only;
  std::string head;
  head.reserve(512);
  AppendResponseHead(res.status, res.headers, framing, after, &head);
  if (!stream.WriteAll(head)) {
    if (res.record) res.record->MarkIncomplete("client went away");
    return SendResult::kFailed;
  }
  if (res.record) res.record->MarkHeadSent();
  if (!body) return SendResult::kSent;
  if (!res.entry) {
    if (!stream.WriteAll(res.text)) return SendResult::kFailed;
    if (res.record) res.record->AddBytes(res.text.size());
    return SendResult::kSent;
  }
  EntryBody sender(res, stream, context);
  if (framing.length) return sender.SendLength(*framing.length);
  return sender.SendToEnd(/*chunked=*/!framing.until_close);
}

}  // namespace fanout
