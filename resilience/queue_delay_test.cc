#include "resilience/queue_delay.h"

#include <chrono>

#include <gtest/gtest.h>

#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;

QueueDelay::Settings fiveAndHundred() { return {milliseconds(5), milliseconds(100)}; }

// Verifies: a queue that only absorbs bursts (it drains within every interval) sheds nothing,
// however long single waits were.
TEST(QueueDelay, AQueueThatDrainsWithinAnIntervalShedsNothing) {
  QueueDelay q(fiveAndHundred());
  q.onEmpty(at(0));
  EXPECT_FALSE(q.onDequeue(at(60), milliseconds(60), false));
  EXPECT_FALSE(q.onDequeue(at(99), milliseconds(80), true));  // drained at 99
  q.onEmpty(at(104));                                         // 5 ms later (== target): a new run
  EXPECT_FALSE(q.shedding(at(203)));
  EXPECT_FALSE(q.onDequeue(at(203), milliseconds(99), true));
  EXPECT_TRUE(q.shedding(at(204)));  // the run that started at 104 would stand by now
}

// Verifies: once a busy run has lasted a whole interval (>=), a request that waited longer than
// the target (>) is shed, one that waited the target or less is served.
TEST(QueueDelay, AQueueStandingForAnIntervalShedsRequestsOlderThanTheTarget) {
  QueueDelay q(fiveAndHundred());
  q.onEmpty(at(0));
  EXPECT_FALSE(q.shedding(at(99)));
  EXPECT_FALSE(q.onDequeue(at(99), milliseconds(40), false));
  EXPECT_TRUE(q.shedding(at(100)));
  EXPECT_TRUE(q.onDequeue(at(100), milliseconds(6), false));
  EXPECT_FALSE(q.onDequeue(at(101), milliseconds(5), false));  // == target: served
  EXPECT_TRUE(q.onDequeue(at(150), milliseconds(30), false));
}

// Verifies: a queue that empties for less than the target between requests (slots freed in a
// batch) keeps its busy run going, so it stands an interval after the run began.
TEST(QueueDelay, ABriefGapDoesNotEndTheRun) {
  QueueDelay q(fiveAndHundred());
  q.onEmpty(at(0));
  for (int t = 10; t < 100; t += 10) {
    EXPECT_FALSE(q.onDequeue(at(t), milliseconds(20), true)) << t;  // emptied...
    q.onEmpty(at(t + 4));                                           // ...for 4 ms
  }
  EXPECT_TRUE(q.onDequeue(at(100), milliseconds(20), false));
}

// Verifies: once standing, a drain does not end it (the shedding lets the queue empty now and
// then); a whole interval without a stale departure does, and the next run must last an
// interval again.
TEST(QueueDelay, TheQueueStandsUntilAnIntervalPassesWithoutAStaleDeparture) {
  QueueDelay q(fiveAndHundred());
  q.onEmpty(at(0));
  EXPECT_TRUE(q.onDequeue(at(100), milliseconds(20), false));  // standing; stale at 100
  EXPECT_FALSE(q.onDequeue(at(150), milliseconds(1), true));
  q.onEmpty(at(170));  // drained for 20 ms: a new run, but the queue still stands
  EXPECT_TRUE(q.onDequeue(at(180), milliseconds(20), false));  // stale at 180
  EXPECT_FALSE(q.onDequeue(at(279), milliseconds(3), false));
  EXPECT_TRUE(q.shedding(at(279)));
  EXPECT_FALSE(q.shedding(at(280)));
  EXPECT_FALSE(q.onDequeue(at(280), milliseconds(3), false));  // over; a run from 280
  EXPECT_FALSE(q.onDequeue(at(379), milliseconds(20), false));
  EXPECT_TRUE(q.onDequeue(at(380), milliseconds(20), false));
}

// Verifies: a stale departure after a quiet interval (a stall: nobody left, and it waited)
// keeps the queue standing.
TEST(QueueDelay, AStaleDepartureAfterAStallKeepsTheQueueStanding) {
  QueueDelay q(fiveAndHundred());
  q.onEmpty(at(0));
  EXPECT_TRUE(q.onDequeue(at(100), milliseconds(20), false));
  EXPECT_FALSE(q.shedding(at(300)));
  EXPECT_TRUE(q.onDequeue(at(300), milliseconds(300), false));
  EXPECT_TRUE(q.shedding(at(399)));
}

// Verifies: a queue that emptied without telling (a departure not reported) starts a new run
// when a request joins it empty.
TEST(QueueDelay, JoiningAnEmptyQueueWithNoKnownDrainStartsARun) {
  QueueDelay q(fiveAndHundred());
  q.onEmpty(at(0));
  EXPECT_FALSE(q.onDequeue(at(50), milliseconds(50), false));
  q.onEmpty(at(60));
  EXPECT_FALSE(q.onDequeue(at(159), milliseconds(50), false));
  EXPECT_TRUE(q.onDequeue(at(160), milliseconds(50), false));
}

// Verifies: before anything was seen, the first time seen starts a run.
TEST(QueueDelay, TheFirstTimeSeenStartsARun) {
  QueueDelay q(fiveAndHundred());
  EXPECT_FALSE(q.shedding(at(1000)));
  EXPECT_FALSE(q.onDequeue(at(1000), milliseconds(500), false));
  EXPECT_TRUE(q.onDequeue(at(1100), milliseconds(500), false));
}

// Verifies: a `now` older than one already seen counts as the latest seen.
TEST(QueueDelay, TimeGoingBackwardsIsTakenAsTheLatestSeen) {
  QueueDelay q(fiveAndHundred());
  q.onEmpty(at(200));
  EXPECT_FALSE(q.onDequeue(at(100), milliseconds(50), false));  // taken as at(200)
  EXPECT_TRUE(q.onDequeue(at(300), milliseconds(50), true));
  q.onEmpty(at(250));  // taken as at(300): a gap of 0, the run goes on
  EXPECT_TRUE(q.onDequeue(at(301), milliseconds(50), false));
}

TEST(QueueDelay, ValidatesItsSettings) {
  EXPECT_FALSE(QueueDelay::validate(fiveAndHundred()));
  EXPECT_TRUE(QueueDelay::validate({milliseconds(0), milliseconds(100)}));
  EXPECT_TRUE(QueueDelay::validate({milliseconds(10), milliseconds(5)}));
}

}  // namespace
}  // namespace sluice::resilience
