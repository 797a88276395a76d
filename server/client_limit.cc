#include "server/client_limit.h"

namespace fanout {

std::unique_ptr<ClientLimit::Slot> ClientLimit::Acquire(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t& held = held_[address];
  const std::size_t limit = per_client();
  if (limit > 0 && held >= limit) {
    if (held == 0) held_.erase(address);
    return nullptr;
  }
  ++held;
  return std::make_unique<Slot>(this, address);
}

void ClientLimit::Release(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = held_.find(address);
  if (it == held_.end()) return;
  if (--it->second == 0) held_.erase(it);
}

}  // namespace fanout
