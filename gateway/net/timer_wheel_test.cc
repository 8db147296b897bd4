#include "gateway/net/timer_wheel.h"

#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::gateway::net {
namespace {

using std::chrono::milliseconds;
using TimePoint = TimerWheel::TimePoint;

struct Probe {
  int fired = 0;
  TimePoint fired_at{};
  TimePoint* now = nullptr;
  static void onFire(void* self) {
    auto* p = static_cast<Probe*>(self);
    ++p->fired;
    p->fired_at = *p->now;
  }
};

class TimerWheelTest : public ::testing::Test {
 protected:
  TimePoint t0_ = TimePoint{} + std::chrono::hours(1);
  TimePoint now_ = t0_;
  TimerWheel wheel_{milliseconds(10), t0_};

  void runTo(TimePoint until, milliseconds step = milliseconds(1)) {
    while (now_ < until) {
      now_ += step;
      wheel_.advance(now_);
    }
  }
};

TEST_F(TimerWheelTest, FiresAtTheFirstTickAtOrAfterTheDeadline) {
  Probe p{.now = &now_};
  TimerWheel::Entry e(&Probe::onFire, &p);
  wheel_.schedule(e, t0_ + milliseconds(25));
  runTo(t0_ + milliseconds(29));
  EXPECT_EQ(p.fired, 0);
  runTo(t0_ + milliseconds(30));
  EXPECT_EQ(p.fired, 1);
  EXPECT_EQ(p.fired_at, t0_ + milliseconds(30));
  EXPECT_FALSE(e.armed());
  runTo(t0_ + milliseconds(200));
  EXPECT_EQ(p.fired, 1);  // once
}

TEST_F(TimerWheelTest, CancelledEntriesNeverFire) {
  Probe p{.now = &now_};
  TimerWheel::Entry e(&Probe::onFire, &p);
  wheel_.schedule(e, t0_ + milliseconds(20));
  wheel_.cancel(e);
  EXPECT_FALSE(e.armed());
  runTo(t0_ + milliseconds(100));
  EXPECT_EQ(p.fired, 0);
}

TEST_F(TimerWheelTest, RescheduleMovesTheDeadline) {
  Probe p{.now = &now_};
  TimerWheel::Entry e(&Probe::onFire, &p);
  wheel_.schedule(e, t0_ + milliseconds(20));
  wheel_.schedule(e, t0_ + milliseconds(500));
  runTo(t0_ + milliseconds(490));
  EXPECT_EQ(p.fired, 0);
  runTo(t0_ + milliseconds(500));
  EXPECT_EQ(p.fired, 1);
}

TEST_F(TimerWheelTest, DeadlinesBeyondOneTurnWaitTheirTurn) {
  Probe p{.now = &now_};
  TimerWheel::Entry e(&Probe::onFire, &p);
  wheel_.schedule(e, t0_ + std::chrono::seconds(60));  // > 512 * 10ms
  runTo(t0_ + milliseconds(59'990), milliseconds(7));
  EXPECT_EQ(p.fired, 0);
  runTo(t0_ + milliseconds(60'010), milliseconds(7));
  EXPECT_EQ(p.fired, 1);
}

TEST_F(TimerWheelTest, PastDeadlineFiresOnTheNextAdvanceNotInsideSchedule) {
  Probe p{.now = &now_};
  TimerWheel::Entry e(&Probe::onFire, &p);
  runTo(t0_ + milliseconds(100));
  wheel_.schedule(e, t0_);
  EXPECT_EQ(p.fired, 0);
  runTo(t0_ + milliseconds(110));
  EXPECT_EQ(p.fired, 1);
}

TEST_F(TimerWheelTest, ALateAdvanceFiresEverythingDue) {
  std::vector<Probe> probes(50, Probe{.now = &now_});
  std::vector<std::unique_ptr<TimerWheel::Entry>> entries;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    entries.push_back(std::make_unique<TimerWheel::Entry>(&Probe::onFire, &probes[i]));
    wheel_.schedule(*entries.back(), t0_ + milliseconds(static_cast<int>(100 * i)));
  }
  now_ = t0_ + std::chrono::seconds(30);  // the loop stalled for far more than a turn
  EXPECT_EQ(wheel_.advance(now_), 50U);
  for (const auto& p : probes) EXPECT_EQ(p.fired, 1);
  EXPECT_EQ(wheel_.size(), 0U);
}

// A callback re-arming itself and cancelling another due entry must both work.
struct Rearm {
  TimerWheel* wheel;
  TimerWheel::Entry* self;
  TimerWheel::Entry* victim;
  TimePoint* now;
  int fired = 0;
  static void onFire(void* p) {
    auto* r = static_cast<Rearm*>(p);
    ++r->fired;
    if (r->victim != nullptr) r->wheel->cancel(*r->victim);
    if (r->fired < 3) r->wheel->schedule(*r->self, *r->now + std::chrono::milliseconds(50));
  }
};

TEST_F(TimerWheelTest, CallbacksMayRearmAndCancel) {
  Probe victim{.now = &now_};
  TimerWheel::Entry victim_entry(&Probe::onFire, &victim);
  Rearm r{&wheel_, nullptr, &victim_entry, &now_};
  TimerWheel::Entry e(&Rearm::onFire, &r);
  r.self = &e;
  wheel_.schedule(e, t0_ + milliseconds(20));
  wheel_.schedule(victim_entry, t0_ + milliseconds(20));
  runTo(t0_ + milliseconds(1000));
  EXPECT_EQ(r.fired, 3);
  // The victim was either cancelled before firing or fired first; never both, never twice.
  EXPECT_LE(victim.fired, 1);
  EXPECT_FALSE(victim_entry.armed());
}

// Verifies, over random schedules, that nothing fires early, late by more than a tick, or twice.
TEST_F(TimerWheelTest, RandomSchedulesFireOnTime) {
  std::mt19937_64 rng(42);
  std::vector<Probe> probes(500, Probe{.now = &now_});
  std::vector<TimePoint> deadlines(probes.size());
  std::vector<std::unique_ptr<TimerWheel::Entry>> entries;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    entries.push_back(std::make_unique<TimerWheel::Entry>(&Probe::onFire, &probes[i]));
    deadlines[i] = t0_ + milliseconds(std::uniform_int_distribution<int>(0, 20'000)(rng));
    wheel_.schedule(*entries.back(), deadlines[i]);
  }
  runTo(t0_ + std::chrono::seconds(21), milliseconds(3));
  for (std::size_t i = 0; i < probes.size(); ++i) {
    ASSERT_EQ(probes[i].fired, 1) << i;
    EXPECT_GE(probes[i].fired_at, deadlines[i]);
    EXPECT_LT(probes[i].fired_at, deadlines[i] + milliseconds(10 + 3));
  }
}

}  // namespace
}  // namespace sluice::gateway::net
