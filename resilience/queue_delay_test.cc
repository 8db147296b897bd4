#include "resilience/queue_delay.h"

#include <chrono>

#include <gtest/gtest.h>

#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;

QueueDelay::Settings fiveAndHundred() { return {milliseconds(5), milliseconds(100)}; }

// Verifies: a queue that only absorbs a burst (sojourns fall below the target within an interval)
// sheds nothing, however long single waits were.
TEST(QueueDelay, ABurstThatDrainsWithinAnIntervalShedsNothing) {
  QueueDelay q(fiveAndHundred());
  EXPECT_FALSE(q.onDequeue(at(0), milliseconds(50)));
  EXPECT_FALSE(q.onDequeue(at(60), milliseconds(40)));
  EXPECT_FALSE(q.onDequeue(at(90), milliseconds(2)));  // below target: the watch resets
  EXPECT_FALSE(q.onDequeue(at(150), milliseconds(30)));
  EXPECT_FALSE(q.onDequeue(at(240), milliseconds(30)));  // 90 ms standing: not an interval yet
  EXPECT_FALSE(q.shedding(at(240)));
}

// Verifies: once every request leaving for a whole interval waited at least the target, those
// that waited at least the target are shed (>= on both edges), and one under it ends the
// shedding.
TEST(QueueDelay, AQueueStandingAboveTargetForAnIntervalShedsStaleRequests) {
  QueueDelay q(fiveAndHundred());
  EXPECT_FALSE(q.onDequeue(at(0), milliseconds(5)));  // == target: the watch starts
  EXPECT_FALSE(q.onDequeue(at(99), milliseconds(20)));
  EXPECT_FALSE(q.shedding(at(99)));
  EXPECT_TRUE(q.onDequeue(at(100), milliseconds(20)));  // == interval: shed
  EXPECT_TRUE(q.shedding(at(100)));
  EXPECT_TRUE(q.onDequeue(at(101), milliseconds(5)));
  EXPECT_FALSE(q.onDequeue(at(102), milliseconds(4)));  // fresh enough: served, watch resets
  EXPECT_FALSE(q.shedding(at(102)));
  EXPECT_FALSE(q.onDequeue(at(103), milliseconds(30)));  // a new watch starts
}

// Verifies: a queue that emptied in between does not inherit the old watch.
TEST(QueueDelay, AnEmptyQueueResetsTheWatch) {
  QueueDelay q(fiveAndHundred());
  EXPECT_FALSE(q.onDequeue(at(0), milliseconds(50)));
  q.onEmpty(at(50));
  EXPECT_FALSE(q.onDequeue(at(500), milliseconds(50)));  // 500 ms after the first: no shedding
  EXPECT_TRUE(q.onDequeue(at(600), milliseconds(50)));
}

// Verifies: a `now` older than one already seen counts as the latest seen.
TEST(QueueDelay, TimeGoingBackwardsIsTakenAsTheLatestSeen) {
  QueueDelay q(fiveAndHundred());
  EXPECT_FALSE(q.onDequeue(at(200), milliseconds(50)));
  EXPECT_FALSE(q.onDequeue(at(100), milliseconds(50)));  // taken as at(200): 0 ms standing
  EXPECT_TRUE(q.onDequeue(at(300), milliseconds(50)));
}

TEST(QueueDelay, ValidatesItsSettings) {
  EXPECT_FALSE(QueueDelay::validate(fiveAndHundred()));
  EXPECT_TRUE(QueueDelay::validate({milliseconds(0), milliseconds(100)}));
  EXPECT_TRUE(QueueDelay::validate({milliseconds(10), milliseconds(5)}));
}

}  // namespace
}  // namespace sluice::resilience
