// SendResponse: the one body path. Writes a Response's head
// (http1/response_writer.h) and sends its body to the client, whatever the
// body is: fanoutd's own text, or a byte range of an entry's stream file
// read by a reader of its own — a hit, a miss, a join, a 206, a BYPASS.
//
// A body that leaves at once (text, a small range, ready bytes) is sent by
// the calling thread. A large one of known length is handed to the
// BodySender's loops (ConnectionStream::HandOff: the caller flushes the
// head and submits it), which send it as the client takes it and as the
// fetch moves the frontier, without a thread per client. What cannot be
// handed off (a chunked body, a connection with a pipelined request read
// ahead) is sent here, waiting at the frontier as needed.
//
// Thread-safety: on the connection's thread.

#ifndef FANOUT_SERVER_RESPONSE_SENDER_H_
#define FANOUT_SERVER_RESPONSE_SENDER_H_

#include <atomic>

#include "core/cache.h"
#include "server/body_sender.h"
#include "server/connection_stream.h"
#include "server/http1/response_writer.h"
#include "server/response.h"

namespace fanout {

struct SendContext {
  Cache* cache = nullptr;          // to drop an entry whose file turns out damaged
  BodySender* sender = nullptr;    // null: no hand-offs
  const std::atomic<bool>* stopping = nullptr;  // a body waiting at the frontier gives up
};

enum class SendResult {
  kSent,       // head and body written (some may still be held back: flush)
  kHandedOff,  // head written; the body is the stream's hand-off job
  kFailed,     // the client is gone or the body broke off: close the connection
};

SendResult SendResponse(Response& res, ConnectionStream& stream, ConnectionAfter after,
                        const SendContext& context);

}  // namespace fanout

#endif  // FANOUT_SERVER_RESPONSE_SENDER_H_
