#include "server/entry_body_job.h"

#include <utility>

namespace fanout {

std::unique_ptr<BodySender::Job> NewEntryBodyJob(std::shared_ptr<StreamReader> reader,
                                                 std::uint64_t length,
                                                 std::shared_ptr<AccessLogRecord> record,
                                                 std::shared_ptr<Entry> entry, Cache* cache) {
  auto job = std::make_unique<BodySender::Job>();
  job->reader = std::move(reader);
  job->length = length;
  job->on_end = [record = std::move(record), entry = std::move(entry), cache](
                    const Status& how, std::uint64_t sent) {
    record->AddBytes(sent);
    switch (how.code()) {
      case Status::Code::kOk:
        return;
      case Status::Code::kCancelled:
        record->MarkIncomplete("fanoutd stopping");
        return;
      case Status::Code::kDeadlineExceeded:
        record->MarkIncomplete("client stopped reading");
        return;
      case Status::Code::kIOError:
        record->MarkIncomplete("client went away");
        return;
      case Status::Code::kEndOfStream:
        record->MarkIncomplete("stream shorter than its length");
        return;
      case Status::Code::kCorruption:
        record->MarkIncomplete(how.ToString());
        cache->DropDamaged(entry, how.message());
        return;
      default:
        record->MarkIncomplete(how.ToString());
        return;
    }
  };
  return job;
}

}  // namespace fanout
