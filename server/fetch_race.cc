#include "server/fetch_race.h"

#include <utility>

namespace fanout {
namespace {

std::size_t Index(FetchRace::Leg leg) { return static_cast<std::size_t>(leg); }

FetchRace::Leg Other(FetchRace::Leg leg) {
  return leg == FetchRace::Leg::kFirst ? FetchRace::Leg::kHedge : FetchRace::Leg::kFirst;
}

FetchRace::Winner WinnerOf(FetchRace::Leg leg) {
  return leg == FetchRace::Leg::kFirst ? FetchRace::Winner::kFirst : FetchRace::Winner::kHedge;
}

}  // namespace

bool FetchRace::Deliver(Leg leg, const std::function<bool()>& deliver) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_[Index(leg)]) return false;
  if (hedge_started_ && winner_ == Winner::kNone) {
    winner_ = WinnerOf(leg);
    CloseLocked(Other(leg));
  }
  if (leg == Leg::kFirst) {
    ++first_deliveries_;
    first_moved_.notify_all();
  }
  return deliver();
}

bool FetchRace::Locked(const std::function<bool()>& f) {
  std::lock_guard<std::mutex> lock(mu_);
  return f();
}

void FetchRace::SetStopper(Leg leg, std::function<void()> stop) {
  std::lock_guard<std::mutex> lock(mu_);
  stoppers_[Index(leg)] = std::move(stop);
  if (closed_[Index(leg)] && stoppers_[Index(leg)]) stoppers_[Index(leg)]();
}

void FetchRace::Close(Leg leg) {
  std::lock_guard<std::mutex> lock(mu_);
  CloseLocked(leg);
}

void FetchRace::CloseLocked(Leg leg) {
  closed_[Index(leg)] = true;
  if (auto& stop = stoppers_[Index(leg)]) stop();
}

bool FetchRace::WaitForStall(std::chrono::milliseconds stall) {
  std::unique_lock<std::mutex> lock(mu_);
  const std::uint64_t seen = first_deliveries_;
  return !first_moved_.wait_for(
      lock, stall, [&] { return first_ended_ || first_deliveries_ != seen; });
}

bool FetchRace::StartHedge(const std::function<bool()>& plan) {
  std::lock_guard<std::mutex> lock(mu_);
  if (first_ended_ || hedge_started_ || !plan()) return false;
  hedge_started_ = true;
  return true;
}

void FetchRace::FirstEnded() {
  std::lock_guard<std::mutex> lock(mu_);
  first_ended_ = true;
  first_moved_.notify_all();
}

bool FetchRace::first_ended() const {
  std::lock_guard<std::mutex> lock(mu_);
  return first_ended_;
}

bool FetchRace::hedge_started() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hedge_started_;
}

FetchRace::Winner FetchRace::winner() const {
  std::lock_guard<std::mutex> lock(mu_);
  return winner_;
}

}  // namespace fanout
