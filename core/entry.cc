#include "core/entry.h"

#include <strings.h>

namespace fanout {

std::string ResponseHead::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() &&
        ::strncasecmp(k.data(), name.data(), name.size()) == 0) {
      return v;
    }
  }
  return "";
}

Entry::Entry(std::string key, std::shared_ptr<StreamFile> stream)
    : key_(std::move(key)), stream_(std::move(stream)) {}

void Entry::PublishHead(ResponseHead head, bool shareable) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (outcome_) return;
    HeadOutcome outcome;
    outcome.head = std::make_shared<const ResponseHead>(std::move(head));
    outcome.shareable = shareable;
    outcome_ = std::move(outcome);
  }
  head_ready_.notify_all();
}

void Entry::FailBeforeHead(UpstreamError error, std::string message) {
  stream_->Fail(message);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (outcome_) return;
    HeadOutcome outcome;
    outcome.error = error;
    outcome.error_message = std::move(message);
    outcome_ = std::move(outcome);
  }
  head_ready_.notify_all();
}

void Entry::MarkComplete() { complete_.store(true, std::memory_order_release); }

std::optional<Entry::HeadOutcome> Entry::WaitForHead(Deadline deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  if (!head_ready_.wait_until(lock, deadline, [this] { return outcome_.has_value(); })) {
    return std::nullopt;
  }
  return outcome_;
}

}  // namespace fanout
