// InterimRelay: carries the interim (1xx) responses of one fetch from its
// thread to the one client that caused the fetch, which writes them to its
// connection before the final response (RFC 9110 §15.2: 102 Processing,
// 103 Early Hints, ...). They are never stored, and never sent to clients
// that joined the fetch, to HTTP/1.0 clients, or as 100 Continue (fanoutd
// answers a client's Expect itself).
//
// Thread-safety: Push from the fetch's thread, Take from the client's.

#ifndef FANOUT_SERVER_INTERIM_RELAY_H_
#define FANOUT_SERVER_INTERIM_RELAY_H_

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "server/http1/response_writer.h"

namespace fanout {

class InterimRelay {
 public:
  // Queues one interim response, as it will be written (end-to-end fields).
  void Push(int status, const HeaderList& headers) {
    if (status < 102 || status > 199) return;  // 100 and 101 are fanoutd's own business
    std::string head;
    AppendResponseHead(status, headers, ResponseFraming{}, ConnectionAfter::kKeepOpen, &head);
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(std::move(head));
  }

  // The interim responses queued since the last call, in order.
  std::vector<std::string> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(pending_, {});
  }

 private:
  std::mutex mu_;
  std::vector<std::string> pending_;  // guarded by mu_
};

}  // namespace fanout

#endif  // FANOUT_SERVER_INTERIM_RELAY_H_
