#include "resilience/retry_budget.h"

#include <atomic>
#include <deque>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

RetryBudget::Settings ratioOnly(double ratio) {
  return RetryBudget::Settings{
      .retry_ratio = ratio, .min_retries_per_second = 0, .window = seconds(10), .bucket_count = 10};
}

int admitAll(RetryBudget& budget, TimePoint now, std::vector<RetryBudget::Permit>* keep = nullptr) {
  int admitted = 0;
  for (;;) {
    auto permit = budget.tryAcquireRetry(now);
    if (!permit) {
      return admitted;
    }
    ++admitted;
    if (keep != nullptr) {
      keep->push_back(std::move(permit));
    }
  }
}

TEST(RetryBudget, ValidateExplainsBadSettings) {
  EXPECT_EQ(RetryBudget::validate(RetryBudget::Settings{}), std::nullopt);
  auto s = RetryBudget::Settings{};
  s.retry_ratio = -0.1;
  EXPECT_EQ(RetryBudget::validate(s), "retry_ratio must be finite and >= 0");
  s = RetryBudget::Settings{};
  s.min_retries_per_second = std::nan("");
  EXPECT_EQ(RetryBudget::validate(s), "min_retries_per_second must be finite and >= 0");
  s = RetryBudget::Settings{};
  s.max_in_flight_retries = 0;
  EXPECT_EQ(RetryBudget::validate(s), "max_in_flight_retries must be at least 1");
  s = RetryBudget::Settings{};
  s.bucket_count = 3;
  s.window = milliseconds(10);
  ASSERT_TRUE(RetryBudget::validate(s).has_value());
  EXPECT_EQ(RetryBudget::validate(s)->rfind("window: ", 0), 0U);
}

// Verifies the ratio boundary one request either side of an exact allowance: 9, 10 and 11
// requests at ratio 0.2 allow 1, 2 and 2 retries.
TEST(RetryBudget, RatioBoundaryAdmitsUpToTheAllowanceExactly) {
  for (const auto& [requests, expected] : {std::pair{9U, 1}, {10U, 2}, {11U, 2}}) {
    RetryBudget budget(ratioOnly(0.2));
    budget.recordRequests(kT0, requests);
    EXPECT_EQ(admitAll(budget, kT0), expected) << requests << " requests";
  }
}

TEST(RetryBudget, NoTrafficAndNoFloorAdmitsNothing) {
  RetryBudget budget(ratioOnly(0.2));
  EXPECT_FALSE(budget.tryAcquireRetry(kT0));
}

TEST(RetryBudget, FloorAllowsRetriesWithoutTraffic) {
  auto s = ratioOnly(0.2);
  s.min_retries_per_second = 1;  // 10 retries per 10 s window
  RetryBudget budget(s);
  EXPECT_EQ(admitAll(budget, kT0), 10);
}

// Verifies: the floor is a minimum, not an addition: the allowance is the larger of the two.
TEST(RetryBudget, TheFloorIsAMinimumNotAnAddition) {
  auto s = ratioOnly(0.5);
  s.min_retries_per_second = 0.3;  // 3 per window
  RetryBudget budget(s);
  budget.recordRequests(kT0, 4);  // ratio: 2; floor: 3
  EXPECT_EQ(admitAll(budget, kT0), 3);
  budget.recordRequests(kT0, 6);  // ratio: 5; floor: 3
  EXPECT_EQ(admitAll(budget, kT0), 2);
}

TEST(RetryBudget, DecimalRatiosBehaveAsWritten) {
  RetryBudget budget(ratioOnly(0.29));
  budget.recordRequests(kT0, 100);  // 0.29 * 100 == 28.999999999999996 in double
  EXPECT_EQ(admitAll(budget, kT0), 29);
}

TEST(RetryBudget, RejectedAttemptChangesNothing) {
  RetryBudget budget(ratioOnly(0.5));
  budget.recordRequests(kT0, 2);
  EXPECT_EQ(admitAll(budget, kT0), 1);
  const auto before = budget.snapshot(kT0);
  EXPECT_FALSE(budget.tryAcquireRetry(kT0));
  const auto after = budget.snapshot(kT0);
  EXPECT_EQ(after.retries, before.retries);
  EXPECT_EQ(after.requests, before.requests);
  EXPECT_EQ(after.retries, 1U);
  EXPECT_DOUBLE_EQ(after.allowance, 1.0);
}

TEST(RetryBudget, CountsAgeOutOfTheWindow) {
  RetryBudget budget(ratioOnly(1.0));
  budget.recordRequests(kT0, 3);
  EXPECT_EQ(admitAll(budget, kT0), 3);
  // Still inside the window one bucket before it ends.
  budget.recordRequest(kT0 + seconds(9));
  EXPECT_EQ(admitAll(budget, kT0 + seconds(9)), 1);
  // The first bucket has left the window: its 3 requests and 3 retries are gone.
  EXPECT_EQ(budget.snapshot(kT0 + seconds(10)).requests, 1U);
  EXPECT_EQ(budget.snapshot(kT0 + seconds(10)).retries, 1U);
  budget.recordRequests(kT0 + seconds(10), 2);
  EXPECT_EQ(admitAll(budget, kT0 + seconds(10)), 2);
}

TEST(RetryBudget, TimeGoingBackwardsCountsAtTheLatestTime) {
  RetryBudget budget(ratioOnly(1.0));
  budget.recordRequest(kT0 + seconds(5));
  budget.recordRequest(kT0);  // earlier: lands in the newest bucket
  EXPECT_EQ(budget.snapshot(kT0 + seconds(5)).requests, 2U);
  EXPECT_EQ(admitAll(budget, kT0), 2);
}

TEST(RetryBudget, InFlightCapBoundsOutstandingRetries) {
  auto s = ratioOnly(1.0);
  s.max_in_flight_retries = 2;
  RetryBudget budget(s);
  budget.recordRequests(kT0, 10);
  std::vector<RetryBudget::Permit> held;
  EXPECT_EQ(admitAll(budget, kT0, &held), 2);
  EXPECT_EQ(budget.inFlightRetries(), 2U);
  held.front().release();
  EXPECT_EQ(budget.inFlightRetries(), 1U);
  auto again = budget.tryAcquireRetry(kT0);
  EXPECT_TRUE(again);
  held.clear();
  EXPECT_EQ(budget.inFlightRetries(), 1U);
  EXPECT_EQ(budget.snapshot(kT0).retries, 3U);  // releasing never refunds the window
}

TEST(RetryBudget, PermitMoveTransfersTheSlot) {
  RetryBudget budget(ratioOnly(1.0));
  budget.recordRequest(kT0);
  RetryBudget::Permit a = budget.tryAcquireRetry(kT0);
  RetryBudget::Permit b = std::move(a);
  // Checks the moved-from state on purpose.
  // NOLINTNEXTLINE(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
  EXPECT_FALSE(a.admitted());
  EXPECT_TRUE(b.admitted());
  EXPECT_EQ(budget.inFlightRetries(), 1U);
  RetryBudget::Permit c;
  c = std::move(b);
  EXPECT_EQ(budget.inFlightRetries(), 1U);
  c = RetryBudget::Permit{};
  EXPECT_EQ(budget.inFlightRetries(), 0U);
}

// Property: across seeded random traffic, a retry is admitted exactly when, counting it, the
// retries in the window stay within max(ratio * requests, floor) for that window.
TEST(RetryBudget, AdmitsExactlyWhileRetriesFitTheWindowAllowance) {
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    std::mt19937_64 rng(seed);
    auto s = ratioOnly(0.1 + 0.05 * static_cast<double>(seed % 5));
    s.min_retries_per_second = static_cast<double>(seed % 3);
    RetryBudget budget(s);
    struct Event {
      TimePoint at;
      bool retry;
    };
    std::deque<Event> events;  // everything in the last 10 s
    TimePoint now = kT0;
    for (int step = 0; step < 2000; ++step) {
      now += milliseconds(rng() % 50);
      // Keep exactly what the budget's window holds: whole 1 s buckets after now - 10 s.
      const auto bucket_start = [](TimePoint t) {
        return TimePoint{std::chrono::duration_cast<seconds>(t.time_since_epoch())};
      };
      while (!events.empty() &&
             bucket_start(events.front().at) <= bucket_start(now) - seconds(10)) {
        events.pop_front();
      }
      std::uint64_t requests = 0;
      std::uint64_t retries = 0;
      for (const auto& e : events) {
        (e.retry ? retries : requests) += 1;
      }
      const double allowance =
          std::max(s.retry_ratio * static_cast<double>(requests), s.min_retries_per_second * 10.0);
      if (rng() % 3 != 0) {
        budget.recordRequest(now);
        events.push_back({now, false});
      } else {
        const bool admitted = budget.tryAcquireRetry(now).admitted();
        // Admitted exactly when one more retry still fits the allowance of this window.
        ASSERT_EQ(admitted, static_cast<double>(retries + 1) <= allowance + 1e-6)
            << "seed " << seed;
        if (admitted) {
          events.push_back({now, true});
          ++retries;
        }
      }
      ASSERT_EQ(budget.snapshot(now).retries, retries) << "seed " << seed;
    }
  }
}

// ---- reconfigure ---------------------------------------------------------------------------

// Verifies: with the same window, the counts are kept and a higher ratio admits only the
// difference at once.
TEST(RetryBudget, ReconfigureKeepsTheCountsAndAppliesTheNewRatioAtOnce) {
  RetryBudget budget(ratioOnly(0.2));
  budget.recordRequests(kT0, 100);
  ASSERT_EQ(admitAll(budget, kT0), 20);
  budget.reconfigure(ratioOnly(0.5), kT0 + seconds(1));
  EXPECT_EQ(budget.settings().retry_ratio, 0.5);
  const auto snap = budget.snapshot(kT0 + seconds(1));
  EXPECT_EQ(snap.requests, 100U);
  EXPECT_EQ(snap.retries, 20U);
  EXPECT_EQ(admitAll(budget, kT0 + seconds(1)), 30);  // 50 allowed, 20 already spent
}

// Verifies: a lower ratio admits nothing while the kept retries exceed it (even with more
// traffic), until the window slides past them.
TEST(RetryBudget, ReconfigureToALowerRatioWaitsForTheWindowToSlide) {
  RetryBudget budget(ratioOnly(0.5));
  budget.recordRequests(kT0, 100);
  ASSERT_EQ(admitAll(budget, kT0), 50);
  budget.reconfigure(ratioOnly(0.2), kT0);
  budget.recordRequests(kT0 + seconds(1), 100);  // 200 requests: allowance 40 < 50 retries
  EXPECT_FALSE(budget.tryAcquireRetry(kT0 + seconds(9)));
  // kT0's bucket (100 requests, 50 retries) has left: 100 + 10 requests, no retries.
  budget.recordRequests(kT0 + seconds(10), 10);
  EXPECT_EQ(admitAll(budget, kT0 + seconds(10)), 22);
}

// Verifies: the floor changes at once, with the counts kept (a restart would forget the 10
// requests and allow only the new floor).
TEST(RetryBudget, ReconfigureChangesTheFloorAtOnce) {
  RetryBudget budget(ratioOnly(0.5));
  budget.recordRequests(kT0, 10);  // allowance 5
  ASSERT_TRUE(budget.tryAcquireRetry(kT0));
  ASSERT_TRUE(budget.tryAcquireRetry(kT0));
  auto s = ratioOnly(0.5);
  s.min_retries_per_second = 0.8;  // 8 per 10 s window: allowance max(5, 8)
  budget.reconfigure(s, kT0);
  EXPECT_EQ(admitAll(budget, kT0), 6);
}

// Verifies: a new window length or bucket count restarts the counts.
TEST(RetryBudget, ReconfigureWithAnotherWindowRestartsTheCounts) {
  for (const auto& [window, buckets] :
       {std::pair{seconds(20), std::size_t{10}}, std::pair{seconds(10), std::size_t{5}}}) {
    RetryBudget budget(ratioOnly(0.5));
    budget.recordRequests(kT0, 100);
    ASSERT_EQ(admitAll(budget, kT0), 50);
    auto s = ratioOnly(0.5);
    s.window = window;
    s.bucket_count = buckets;
    budget.reconfigure(s, kT0);
    EXPECT_EQ(budget.snapshot(kT0).requests, 0U);
    EXPECT_EQ(budget.snapshot(kT0).retries, 0U);
    budget.recordRequests(kT0, 4);
    EXPECT_EQ(admitAll(budget, kT0), 2);
  }
}

// Verifies: permits outstanding across a lower in-flight cap stay valid; no retry is admitted
// until fewer than the new cap are in flight.
TEST(RetryBudget, ReconfigureToASmallerInFlightCapKeepsOutstandingPermits) {
  auto s = ratioOnly(1.0);
  s.max_in_flight_retries = 5;
  RetryBudget budget(s);
  budget.recordRequests(kT0, 100);
  std::vector<RetryBudget::Permit> kept;
  ASSERT_EQ(admitAll(budget, kT0, &kept), 5);
  s.max_in_flight_retries = 2;
  budget.reconfigure(s, kT0);
  EXPECT_EQ(budget.inFlightRetries(), 5U);
  EXPECT_FALSE(budget.tryAcquireRetry(kT0));
  kept.resize(2);  // 3 released: 2 in flight, still at the cap
  EXPECT_FALSE(budget.tryAcquireRetry(kT0));
  kept.pop_back();
  EXPECT_TRUE(budget.tryAcquireRetry(kT0));
}

TEST(RetryBudgetStress, ConcurrentAcquiresAdmitExactlyTheAllowance) {
  for (int round = 0; round < 20; ++round) {
    auto s = ratioOnly(0.5);
    s.max_in_flight_retries = 7;
    RetryBudget budget(s);
    budget.recordRequests(kT0, 40);  // allowance 20
    std::atomic<int> admitted{0};
    std::atomic<int> outstanding{0};
    std::atomic<int> max_outstanding{0};
    std::vector<std::thread> threads;
    threads.reserve(4);

    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 200; ++i) {
          auto permit = budget.tryAcquireRetry(kT0);
          if (!permit) {
            continue;
          }
          admitted.fetch_add(1);
          const int now_outstanding = outstanding.fetch_add(1) + 1;
          int seen = max_outstanding.load();
          while (now_outstanding > seen &&
                 !max_outstanding.compare_exchange_weak(seen, now_outstanding)) {
          }
          outstanding.fetch_sub(1);
        }
      });
    }
    for (auto& thread : threads) {
      thread.join();
    }
    ASSERT_EQ(admitted.load(), 20);
    ASSERT_LE(max_outstanding.load(), 7);
    ASSERT_EQ(budget.inFlightRetries(), 0U);
  }
}

// Threads take retries while the settings flip between two allowances and in-flight caps: no
// admission ever exceeds the larger of either, and the window counts exactly what was admitted.
TEST(RetryBudgetStress, ReconfigureRacingAcquiresStaysWithinTheSettings) {
  auto wide = ratioOnly(0.5);  // 40 requests: allowance 20
  wide.max_in_flight_retries = 6;
  auto narrow = ratioOnly(0.25);  // allowance 10
  narrow.max_in_flight_retries = 2;
  RetryBudget budget(wide);
  budget.recordRequests(kT0, 40);
  std::atomic<int> admitted{0};
  std::atomic<std::size_t> max_in_flight{0};
  std::atomic<int> running{4};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (auto permit = budget.tryAcquireRetry(kT0)) {
          admitted.fetch_add(1);
          const std::size_t in_flight = budget.inFlightRetries();
          std::size_t seen = max_in_flight.load();
          while (in_flight > seen && !max_in_flight.compare_exchange_weak(seen, in_flight)) {
          }
        }
      }
      running.fetch_sub(1);
    });
  }
  for (int i = 0; running.load() > 0; ++i) {
    budget.reconfigure(i % 2 == 0 ? narrow : wide, kT0);
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_LE(admitted.load(), 20);
  EXPECT_LE(max_in_flight.load(), 6U);
  EXPECT_EQ(budget.snapshot(kT0).retries, static_cast<std::uint64_t>(admitted.load()));
  EXPECT_EQ(budget.snapshot(kT0).requests, 40U);
}

}  // namespace
}  // namespace sluice::resilience
