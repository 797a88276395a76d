#include "core/entry.h"

#include "core/header_text.h"

namespace fanout {

std::string HeaderValue(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

std::vector<std::string> HeaderValues(const HeaderList& headers, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) out.push_back(v);
  }
  return out;
}

Entry::Entry(std::string key, std::shared_ptr<StreamFile> stream)
    : key_(std::move(key)), stream_(std::move(stream)) {}

void Entry::PublishHead(ResponseHead head, bool shareable, HeaderList vary) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (outcome_) return;
    HeadOutcome outcome;
    outcome.head = std::make_shared<const ResponseHead>(std::move(head));
    outcome.shareable = shareable;
    outcome.vary = std::move(vary);
    outcome_ = std::move(outcome);
  }
  head_ready_.notify_all();
}

std::shared_ptr<StreamFile> Entry::stream() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stream_;
}

void Entry::AdoptBody(std::shared_ptr<StreamFile> body) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!outcome_) stream_ = std::move(body);
}

HeaderList Entry::vary() const {
  std::lock_guard<std::mutex> lock(mu_);
  return outcome_ ? outcome_->vary : HeaderList{};
}

std::shared_ptr<const ResponseHead> Entry::head() const {
  std::lock_guard<std::mutex> lock(mu_);
  return outcome_ ? outcome_->head : nullptr;
}

void Entry::FailBeforeHead(UpstreamError error, std::string message) {
  stream()->Fail(message);
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

bool Entry::failed_before_head() const {
  std::lock_guard<std::mutex> lock(mu_);
  return outcome_.has_value() && outcome_->error.has_value();
}

Entry::Interest::Interest(std::shared_ptr<Entry> entry) : entry_(std::move(entry)) {
  entry_->interested_.fetch_add(1, std::memory_order_acq_rel);
}

Entry::Interest::~Interest() {
  // The reading count first: the two never say a request reads that is gone.
  if (reading_.load(std::memory_order_acquire)) {
    entry_->reading_.fetch_sub(1, std::memory_order_acq_rel);
  }
  entry_->interested_.fetch_sub(1, std::memory_order_acq_rel);
}

void Entry::Interest::MarkReading() {
  if (!reading_.exchange(true, std::memory_order_acq_rel)) {
    entry_->reading_.fetch_add(1, std::memory_order_acq_rel);
  }
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
