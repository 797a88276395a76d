// ClientLimit: how many connections one client address may hold at once.
//
// max_connections bounds connections in all; without a bound per address,
// a few clients (a slowloris sending one header byte at a time from many
// connections) could take every slot and leave everyone else 503s. A
// connection takes a Slot when it is accepted and gives it back when its
// last owner lets go (the Slot lives in the connection's stream).
//
// Thread-safety: all methods from any thread.

#ifndef FANOUT_SERVER_CLIENT_LIMIT_H_
#define FANOUT_SERVER_CLIENT_LIMIT_H_

#include <cstddef>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace fanout {

class ClientLimit {
 public:
  // 0: no limit.
  explicit ClientLimit(std::size_t per_client) : per_client_(per_client) {}

  // A held connection slot; destroying it gives the slot back.
  class Slot {
   public:
    Slot(ClientLimit* limit, std::string address)
        : limit_(limit), address_(std::move(address)) {}
    ~Slot() { limit_->Release(address_); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    ClientLimit* const limit_;
    const std::string address_;
  };

  // A slot for one more connection from `address`, or null if it holds
  // per_client already. The limit must outlive its slots.
  std::unique_ptr<Slot> Acquire(const std::string& address);

  std::size_t per_client() const { return per_client_.load(std::memory_order_relaxed); }
  // A new limit (a config reload): connections held beyond it stay, new
  // ones count against it.
  void set_per_client(std::size_t n) { per_client_.store(n, std::memory_order_relaxed); }

 private:
  void Release(const std::string& address);

  std::atomic<std::size_t> per_client_;
  std::mutex mu_;
  std::unordered_map<std::string, std::size_t> held_;  // guarded by mu_; address -> slots
};

}  // namespace fanout

#endif  // FANOUT_SERVER_CLIENT_LIMIT_H_
