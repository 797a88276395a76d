// FetchRace: one fetch's transfer and, once it stalls, a second request for
// the rest of its body (a hedge) racing it on another connection. After
// the hedge has started, the first of the two to deliver a body byte wins
// and the other is stopped; before that the first transfer goes on alone.
//
// Every callback of either transfer that touches the fetch's stream runs
// through Deliver or Locked, under the race's lock: the two never append at
// once, and the frontier a hedge asks from (read by the planner StartHedge
// runs under the same lock) is exact.
//
// Thread-safety: every method may be called from any thread. The stop
// functions are called under the lock; they must not call back into the
// race (UpstreamClient::Stop only shuts a socket down).

#ifndef FANOUT_SERVER_FETCH_RACE_H_
#define FANOUT_SERVER_FETCH_RACE_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

namespace fanout {

class FetchRace {
 public:
  enum class Leg { kFirst = 0, kHedge = 1 };
  enum class Winner { kNone, kFirst, kHedge };

  // Runs `deliver` under the lock and returns what it returns, unless the
  // other leg has won: then false, without running it (the leg must stop).
  // Once a hedge has started, the first leg to get here wins, and the
  // other leg's transfer is stopped.
  bool Deliver(Leg leg, const std::function<bool()>& deliver);
  // Runs `f` under the lock (a response head, which delivers no byte).
  bool Locked(const std::function<bool()>& f);
  // How to stop a leg's transfer while it runs; an empty function once it
  // has ended. Called at once for a leg already closed.
  void SetStopper(Leg leg, std::function<void()> stop);
  // Takes a leg out of the race: it is stopped if it runs, and delivers
  // nothing from now on.
  void Close(Leg leg);

  // Waits up to `stall` for the first leg to deliver or end. True if it
  // did neither: it stalled.
  bool WaitForStall(std::chrono::milliseconds stall);
  // Starts the hedge if the first leg has not ended and `plan` (run under
  // the lock) says a hedge may start now. True if it started.
  bool StartHedge(const std::function<bool()>& plan);
  // The first leg's transfer has ended: no hedge starts after this.
  void FirstEnded();

  bool first_ended() const;
  bool hedge_started() const;
  Winner winner() const;

 private:
  void CloseLocked(Leg leg);

  mutable std::mutex mu_;  // guards the members below, and the fetch's stream in callbacks
  std::condition_variable first_moved_;  // the first leg delivered, or ended
  std::uint64_t first_deliveries_ = 0;
  bool first_ended_ = false;
  bool hedge_started_ = false;
  Winner winner_ = Winner::kNone;
  std::function<void()> stoppers_[2];  // by Leg
  bool closed_[2] = {false, false};    // by Leg
};

}  // namespace fanout

#endif  // FANOUT_SERVER_FETCH_RACE_H_
