#include "gateway/net/transfer_pace.h"

#include <gtest/gtest.h>

namespace sluice::gateway::net {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Verdict = TransferPace::Verdict;
using PaceTime = TransferPace::TimePoint;

const PaceTime kOrigin = PaceTime() + std::chrono::hours(1);

// 100 B/s over 1 s windows (a 100-byte quota), the first window 2 s long.
TransferPace::Limits rateLimits() {
  TransferPace::Limits l;
  l.min_rate = 100;
  l.window = seconds(1);
  l.grace = seconds(1);
  return l;
}

TEST(TransferPace, NoLimitsNeverExpire) {
  TransferPace pace;
  pace.start(kOrigin);
  EXPECT_EQ(pace.deadline(), PaceTime::max());
  EXPECT_EQ(pace.progress(kOrigin + std::chrono::hours(5), 1), Verdict::Ok);
  EXPECT_EQ(pace.expired(kOrigin + std::chrono::hours(6)), Verdict::Ok);
}

TEST(TransferPace, FirstWindowIncludesTheGrace) {
  TransferPace pace(rateLimits());
  pace.start(kOrigin);
  EXPECT_EQ(pace.deadline(), kOrigin + seconds(2));
  EXPECT_EQ(pace.progress(kOrigin + milliseconds(1900), 99), Verdict::Ok);
  EXPECT_EQ(pace.expired(kOrigin + seconds(2)), Verdict::TooSlow);
}

// Verifies a dripping client (1 byte at a time) is cut at the end of its first window.
TEST(TransferPace, ADripIsTooSlow) {
  TransferPace pace(rateLimits());
  auto now = kOrigin;
  Verdict v = Verdict::Ok;
  for (int i = 0; i < 100 && v == Verdict::Ok; ++i) {
    pace.start(now);
    now += milliseconds(500);
    v = pace.progress(now, 1);
    pace.stop(now);
  }
  EXPECT_EQ(v, Verdict::TooSlow);
  EXPECT_LE(now, kOrigin + seconds(3));
}

TEST(TransferPace, AFilledWindowMovesTheCheckToTheNextOne) {
  TransferPace pace(rateLimits());
  pace.start(kOrigin);
  EXPECT_EQ(pace.progress(kOrigin + milliseconds(100), 100), Verdict::Ok);
  // The quota is met: the wait may last until the end of the next window.
  EXPECT_EQ(pace.deadline(), kOrigin + seconds(3));
  EXPECT_EQ(pace.progress(kOrigin + milliseconds(2500), 60), Verdict::Ok);
  EXPECT_EQ(pace.deadline(), kOrigin + seconds(3));  // the second window still needs 40 bytes
  EXPECT_EQ(pace.progress(kOrigin + milliseconds(2900), 40), Verdict::Ok);
  EXPECT_EQ(pace.expired(kOrigin + seconds(4)), Verdict::TooSlow);  // the third got nothing
}

// Bytes beyond a window's quota are no credit: a fast start does not pay for a stall.
TEST(TransferPace, AFastStartBuysNoStall) {
  TransferPace pace(rateLimits());
  pace.start(kOrigin);
  EXPECT_EQ(pace.progress(kOrigin + milliseconds(10), 1'000'000), Verdict::Ok);
  EXPECT_EQ(pace.progress(kOrigin + milliseconds(3500), 1'000'000), Verdict::TooSlow);
}

// Verifies that only time spent waiting on the peer counts: long pauses between waits (the
// upstream's time) are free.
TEST(TransferPace, OnlyTimeWaitedCounts) {
  TransferPace pace(rateLimits());
  auto now = kOrigin;
  for (int i = 0; i < 50; ++i) {
    pace.start(now);
    now += milliseconds(100);
    ASSERT_EQ(pace.progress(now, 20), Verdict::Ok) << i;  // 200 B/s while waited on
    pace.stop(now);
    now += seconds(30);  // waiting on the other side
  }
  EXPECT_EQ(pace.waitedAt(now), seconds(5));
  pace.start(now);
  // Time already waited moves the deadline closer: the current window is the fifth.
  EXPECT_EQ(pace.deadline(), now + seconds(1));
}

TEST(TransferPace, TotalBoundsTheTimeWaitedInAll) {
  TransferPace::Limits l;
  l.total = seconds(3);
  TransferPace pace(l);
  pace.start(kOrigin);
  EXPECT_EQ(pace.deadline(), kOrigin + seconds(3));
  EXPECT_EQ(pace.progress(kOrigin + seconds(2), 1'000'000), Verdict::Ok);
  pace.stop(kOrigin + seconds(2));
  pace.start(kOrigin + seconds(100));
  EXPECT_EQ(pace.deadline(), kOrigin + seconds(101));
  EXPECT_EQ(pace.expired(kOrigin + seconds(101)), Verdict::TooLong);
  EXPECT_EQ(pace.verdict(), Verdict::TooLong);
  EXPECT_EQ(pace.progress(kOrigin + seconds(101), 1), Verdict::TooLong);  // sticky
}

TEST(TransferPace, ATimeoutFromAnotherDeadlineIsNoVerdict) {
  TransferPace pace(rateLimits());
  pace.start(kOrigin);
  EXPECT_EQ(pace.expired(kOrigin + milliseconds(500)), Verdict::Ok);
}

TEST(TransferPace, ProgressWithinOneWaitKeepsMovingTheDeadline) {
  // A write the peer takes slowly reports bytes as they go, within one wait.
  TransferPace pace(rateLimits());
  pace.start(kOrigin);
  for (int i = 1; i <= 10; ++i) {
    const auto now = kOrigin + milliseconds(300 * i);
    ASSERT_EQ(pace.progress(now, 40), Verdict::Ok) << i;  // ~133 B/s
    ASSERT_GT(pace.deadline(), now) << i;
  }
}

TEST(TransferPace, TinyQuotaIsAtLeastOneByte) {
  TransferPace::Limits l;
  l.min_rate = 1;
  l.window = milliseconds(100);
  TransferPace pace(l);
  pace.start(kOrigin);
  EXPECT_EQ(pace.deadline(), kOrigin + milliseconds(100));
}

}  // namespace
}  // namespace sluice::gateway::net
