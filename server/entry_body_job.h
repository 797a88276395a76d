// EntryBodyJob: a BodySender job for a response body read from a cache
// entry's stream file, accounted like a body sent by the connection thread.
//
// When the job ends, the access log record gets the bytes sent and, if the
// body ended early, why (client gone or stalled, fanoutd stopping, stream
// failed or short); an entry whose file turned out shorter than its
// frontier is dropped from the cache so no later request is served from it.
//
// Thread-safety: the job's on_end runs on a BodySender thread; everything
// it touches (record, entry, cache) is safe to use from there.

#ifndef FANOUT_SERVER_ENTRY_BODY_JOB_H_
#define FANOUT_SERVER_ENTRY_BODY_JOB_H_

#include <cstdint>
#include <memory>

#include "core/cache.h"
#include "core/entry.h"
#include "core/stream_file.h"
#include "server/access_log.h"
#include "server/body_sender.h"

namespace fanout {

// `length` bytes from the reader's position. `record` must not be null.
std::unique_ptr<BodySender::Job> NewEntryBodyJob(std::shared_ptr<StreamReader> reader,
                                                 std::uint64_t length,
                                                 std::shared_ptr<AccessLogRecord> record,
                                                 std::shared_ptr<Entry> entry, Cache* cache);

}  // namespace fanout

#endif  // FANOUT_SERVER_ENTRY_BODY_JOB_H_
