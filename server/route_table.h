// RouteTable: the routes in force (and the forward proxy's), replaced
// whole by a config reload.
//
// A request looks its route up in current() and may keep the Route (and
// the Router) it found for as long as it and the fetches it starts run: a
// replaced router is kept until the table is destroyed, never freed under
// them. That costs a few kilobytes per reload, for the life of the
// process, and saves every request a reference count.
//
// Thread-safety: current() from any thread; Replace() from one thread at
// a time (the signal thread).

#ifndef FANOUT_SERVER_ROUTE_TABLE_H_
#define FANOUT_SERVER_ROUTE_TABLE_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "config/config.h"
#include "server/router.h"

namespace fanout {

class RouteTable {
 public:
  explicit RouteTable(std::vector<Route> routes, ForwardProxy forward_proxy = {}) {
    Replace(std::move(routes), std::move(forward_proxy));
  }

  const Router& current() const { return *current_.load(std::memory_order_acquire); }

  void Replace(std::vector<Route> routes, ForwardProxy forward_proxy = {}) {
    auto router = std::make_unique<const Router>(std::move(routes), std::move(forward_proxy));
    std::lock_guard<std::mutex> lock(mu_);
    current_.store(router.get(), std::memory_order_release);
    routers_.push_back(std::move(router));
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<const Router>> routers_;  // guarded by mu_; every one made
  std::atomic<const Router*> current_{nullptr};
};

}  // namespace fanout

#endif  // FANOUT_SERVER_ROUTE_TABLE_H_
