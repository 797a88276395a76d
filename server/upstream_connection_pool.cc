#include "server/upstream_connection_pool.h"

#include <vector>

namespace fanout {

UpstreamConnectionPool::~UpstreamConnectionPool() = default;

void UpstreamConnectionPool::TakeExpiredLocked(
    Clock::time_point now, std::vector<std::unique_ptr<UpstreamConnection>>* expired) {
  for (auto it = idle_.begin(); it != idle_.end();) {
    std::deque<Idle>& idle = it->second;
    // Oldest first: the expired ones are at the front.
    while (!idle.empty() && now - idle.front().since >= kIdleTimeout) {
      expired->push_back(std::move(idle.front().connection));
      idle.pop_front();
    }
    it = idle.empty() ? idle_.erase(it) : std::next(it);
  }
}

std::unique_ptr<UpstreamConnection> UpstreamConnectionPool::Take(const UpstreamOrigin& origin) {
  // Closed outside the lock (a TLS connection's SSL_free may take a while).
  std::vector<std::unique_ptr<UpstreamConnection>> stale;
  std::unique_ptr<UpstreamConnection> found;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = Clock::now();
    TakeExpiredLocked(now, &stale);
    const auto it = idle_.find(origin.Key());
    if (it == idle_.end()) return nullptr;
    std::deque<Idle>& idle = it->second;
    // The most recently used first: the likeliest to be still open.
    while (!idle.empty() && !found) {
      Idle last = std::move(idle.back());
      idle.pop_back();
      if (last.connection->IdleAndOpen()) {
        found = std::move(last.connection);
      } else {
        stale.push_back(std::move(last.connection));
      }
    }
    if (idle.empty()) idle_.erase(it);
  }
  return found;
}

void UpstreamConnectionPool::GiveBack(const UpstreamOrigin& origin,
                                      std::unique_ptr<UpstreamConnection> connection) {
  // Closed once the lock is released (declared before it).
  std::vector<std::unique_ptr<UpstreamConnection>> dropped;
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = Clock::now();
  TakeExpiredLocked(now, &dropped);
  std::deque<Idle>& idle = idle_[origin.Key()];
  if (idle.size() >= kMaxIdlePerOrigin) {
    dropped.push_back(std::move(idle.front().connection));
    idle.pop_front();
  }
  idle.push_back(Idle{std::move(connection), now});
}

std::shared_ptr<const TlsClientContext> UpstreamConnectionPool::TlsContext(
    const TlsClientOptions& options, std::string* error) {
  const std::string key = (options.verify ? "verify " : "noverify ") + options.ca_file;
  std::lock_guard<std::mutex> lock(mu_);
  if (const auto it = tls_.find(key); it != tls_.end()) return it->second;
  // Made under the lock: once per settings (loading CA certificates takes
  // a while), and the first fetch of the origin would wait for it anyway.
  auto context = TlsClientContext::Create(options, error);
  if (context) tls_.emplace(key, context);
  return context;
}

std::size_t UpstreamConnectionPool::idle() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t n = 0;
  for (const auto& [key, list] : idle_) n += list.size();
  return n;
}

}  // namespace fanout
