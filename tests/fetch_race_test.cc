// server/FetchRace: a stalled transfer and a hedge for the rest, the first
// to deliver after the hedge started going on alone.

#include "server/fetch_race.h"

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

namespace fanout {
namespace {

using Leg = FetchRace::Leg;
using Winner = FetchRace::Winner;
using std::chrono::milliseconds;

bool DeliverOne(FetchRace& race, Leg leg, int* delivered) {
  return race.Deliver(leg, [&] {
    ++*delivered;
    return true;
  });
}

TEST(FetchRaceTest, BeforeAHedgeTheFirstTransferDeliversAlone) {
  FetchRace race;
  int delivered = 0;
  EXPECT_TRUE(DeliverOne(race, Leg::kFirst, &delivered));
  EXPECT_TRUE(DeliverOne(race, Leg::kFirst, &delivered));
  EXPECT_EQ(delivered, 2);
  EXPECT_EQ(race.winner(), Winner::kNone) << "no race without a hedge";
  EXPECT_FALSE(race.hedge_started());
}

TEST(FetchRaceTest, TheHedgeDeliveringFirstWinsAndStopsTheStalledTransfer) {
  FetchRace race;
  int first_stops = 0, delivered = 0;
  race.SetStopper(Leg::kFirst, [&] { ++first_stops; });
  ASSERT_TRUE(race.StartHedge([] { return true; }));
  EXPECT_TRUE(DeliverOne(race, Leg::kHedge, &delivered));
  EXPECT_EQ(race.winner(), Winner::kHedge);
  EXPECT_EQ(first_stops, 1);
  EXPECT_FALSE(DeliverOne(race, Leg::kFirst, &delivered))
      << "late bytes of the loser are never appended";
  EXPECT_TRUE(DeliverOne(race, Leg::kHedge, &delivered));
  EXPECT_EQ(delivered, 2);
}

TEST(FetchRaceTest, TheStalledTransferDeliveringFirstWinsAndClosesTheHedge) {
  FetchRace race;
  int hedge_stops = 0, delivered = 0;
  ASSERT_TRUE(race.StartHedge([] { return true; }));
  EXPECT_TRUE(DeliverOne(race, Leg::kFirst, &delivered));
  EXPECT_EQ(race.winner(), Winner::kFirst);
  // The hedge's connection was not open yet: it is stopped once it is.
  race.SetStopper(Leg::kHedge, [&] { ++hedge_stops; });
  EXPECT_EQ(hedge_stops, 1);
  EXPECT_FALSE(DeliverOne(race, Leg::kHedge, &delivered));
  EXPECT_EQ(delivered, 1);
}

TEST(FetchRaceTest, NoHedgeStartsWhenThePlanSaysNoOrTheFirstTransferEnded) {
  FetchRace race;
  EXPECT_FALSE(race.StartHedge([] { return false; }));
  EXPECT_FALSE(race.hedge_started());
  race.FirstEnded();
  EXPECT_FALSE(race.StartHedge([] { return true; }));
  EXPECT_TRUE(race.first_ended());
}

TEST(FetchRaceTest, AClosedLegDeliversNothing) {
  FetchRace race;
  int delivered = 0;
  race.Close(Leg::kHedge);
  ASSERT_TRUE(race.StartHedge([] { return true; }));
  EXPECT_FALSE(DeliverOne(race, Leg::kHedge, &delivered));
  EXPECT_TRUE(DeliverOne(race, Leg::kFirst, &delivered));
  EXPECT_EQ(race.winner(), Winner::kFirst);
}

TEST(FetchRaceTest, AStallIsNoDeliveryForTheWholeWait) {
  FetchRace race;
  EXPECT_TRUE(race.WaitForStall(milliseconds(20))) << "nothing was delivered";
  int delivered = 0;
  std::atomic<bool> done{false};
  std::thread deliverer([&] {
    while (!done.load()) {
      DeliverOne(race, Leg::kFirst, &delivered);
      std::this_thread::sleep_for(milliseconds(1));
    }
  });
  // Deliveries during the wait end it early: not a stall. (The wait is
  // far longer than a test may take, so only a delivery can end it.)
  EXPECT_FALSE(race.WaitForStall(milliseconds(60000)));
  done = true;
  deliverer.join();
  race.FirstEnded();
  EXPECT_FALSE(race.WaitForStall(milliseconds(60000))) << "an ended transfer is no stall";
}

}  // namespace
}  // namespace fanout
