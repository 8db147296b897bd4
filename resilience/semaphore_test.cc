#include "resilience/semaphore.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::resilience {
namespace {

using Status = Semaphore::AcquireStatus;
using Cancel = Semaphore::CancelResult;
using Permit = Semaphore::Permit;

Semaphore::Settings semaphoreSettings(std::size_t capacity, std::size_t max_waiters = 1024) {
  return {.capacity = capacity, .max_waiters = max_waiters};
}

TEST(Semaphore, ValidateRejectsCapacityAboveMax) {
  EXPECT_EQ(Semaphore::validate(semaphoreSettings(0)), std::nullopt);
  EXPECT_EQ(Semaphore::validate(semaphoreSettings(Semaphore::kMaxCapacity)), std::nullopt);
  EXPECT_TRUE(Semaphore::validate(semaphoreSettings(Semaphore::kMaxCapacity + 1)).has_value());
}

TEST(Semaphore, TryAcquireAdmitsExactlyCapacity) {
  Semaphore sem(semaphoreSettings(3));
  std::vector<Permit> permits;
  permits.reserve(3);
  for (int i = 0; i < 3; ++i) {
    permits.push_back(sem.tryAcquire());
    EXPECT_TRUE(permits.back());
  }
  EXPECT_FALSE(sem.tryAcquire());
  EXPECT_EQ(sem.available(), 0);
  permits.pop_back();
  EXPECT_EQ(sem.available(), 1);
  EXPECT_TRUE(sem.tryAcquire());  // the temporary is released at the end of the statement
  EXPECT_EQ(sem.available(), 1);
}

TEST(Semaphore, FailedTryAcquireChangesNothing) {
  Semaphore sem(semaphoreSettings(1));
  Permit held = sem.tryAcquire();
  Permit failed = sem.tryAcquire();
  EXPECT_FALSE(failed);
  failed.release();  // releasing an empty permit is a no-op
  EXPECT_EQ(sem.available(), 0);
}

TEST(Semaphore, PermitReleaseIsIdempotentAndMoveTransfers) {
  Semaphore sem(semaphoreSettings(2));
  Permit a = sem.tryAcquire();
  Permit b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(sem.available(), 1);
  b.release();
  b.release();
  EXPECT_EQ(sem.available(), 2);
}

TEST(Semaphore, AcquireAsyncReturnsAPermitAtOnceWhenFree) {
  Semaphore sem(semaphoreSettings(1));
  bool called = false;
  auto r = sem.acquireAsync([&](Permit) { called = true; });
  EXPECT_EQ(r.status, Status::Acquired);
  EXPECT_TRUE(r.permit);
  EXPECT_FALSE(called);
}

TEST(Semaphore, WaitersAreGrantedInFifoOrderAsPermitsReturn) {
  Semaphore sem(semaphoreSettings(1));
  Permit held = sem.tryAcquire();
  std::vector<int> order;
  std::vector<Permit> got;
  got.reserve(3);
  for (int id = 0; id < 3; ++id) {
    ASSERT_EQ(sem.acquireAsync([&, id](Permit p) {
                   order.push_back(id);
                   got.push_back(std::move(p));
                 })
                  .status,
              Status::Queued);
  }
  EXPECT_FALSE(sem.tryAcquire());
  held.release();
  EXPECT_EQ(order, (std::vector<int>{0}));
  got[0].release();
  got[1].release();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(sem.waiting(), 0U);
}

TEST(Semaphore, NoBargingWhileWaitersQueued) {
  Semaphore sem(semaphoreSettings(2));
  Permit a = sem.tryAcquire();
  Permit b = sem.tryAcquire();
  Permit granted;
  ASSERT_EQ(sem.acquireAsync([&](Permit p) { granted = std::move(p); }).status, Status::Queued);
  sem.setCapacity(2);  // no-op resize grants nothing
  EXPECT_FALSE(granted);
  a.release();  // goes to the waiter, not to the free pool
  EXPECT_TRUE(granted);
  EXPECT_FALSE(sem.tryAcquire());
}

TEST(Semaphore, CancelBeforeGrantRemovesTheWaiter) {
  Semaphore sem(semaphoreSettings(1));
  Permit held = sem.tryAcquire();
  bool called = false;
  auto r = sem.acquireAsync([&](Permit) { called = true; });
  EXPECT_EQ(sem.cancel(r.ticket), Cancel::Cancelled);
  held.release();
  EXPECT_FALSE(called);
  EXPECT_EQ(sem.available(), 1);
}

TEST(Semaphore, CancelAfterGrantReportsAlreadyGranted) {
  Semaphore sem(semaphoreSettings(1));
  Permit held = sem.tryAcquire();
  Permit granted;
  auto r = sem.acquireAsync([&](Permit p) { granted = std::move(p); });
  held.release();
  EXPECT_EQ(sem.cancel(r.ticket), Cancel::AlreadyGranted);
  EXPECT_TRUE(granted);
  EXPECT_EQ(sem.available(), 0);
}

TEST(Semaphore, CancelEmptyTicketReportsNotQueued) {
  Semaphore sem(semaphoreSettings(1));
  EXPECT_EQ(sem.cancel(Semaphore::WaitTicket()), Cancel::NotQueued);
}

TEST(Semaphore, QueueFullIsReported) {
  Semaphore sem(semaphoreSettings(1, /*max_waiters=*/2));
  Permit held = sem.tryAcquire();
  EXPECT_EQ(sem.acquireAsync([](Permit) {}).status, Status::Queued);
  EXPECT_EQ(sem.acquireAsync([](Permit) {}).status, Status::Queued);
  EXPECT_EQ(sem.acquireAsync([](Permit) {}).status, Status::QueueFull);
  EXPECT_EQ(sem.waiting(), 2U);
}

TEST(Semaphore, SetMaxWaitersKeepsQueuedWaitersAndBoundsNewOnes) {
  Semaphore sem(semaphoreSettings(1, /*max_waiters=*/2));
  Permit held = sem.tryAcquire();
  int granted = 0;
  const auto count = [&](Permit) { ++granted; };  // each gives its permit back at once
  EXPECT_EQ(sem.acquireAsync(count).status, Status::Queued);
  EXPECT_EQ(sem.acquireAsync(count).status, Status::Queued);
  sem.setMaxWaiters(1);  // below the queue: nobody is dropped, nobody new gets in
  EXPECT_EQ(sem.waiting(), 2U);
  EXPECT_EQ(sem.acquireAsync(count).status, Status::QueueFull);
  sem.setMaxWaiters(3);
  EXPECT_EQ(sem.acquireAsync(count).status, Status::Queued);
  EXPECT_EQ(sem.waiting(), 3U);
  held.release();  // the three queued waiters get it in turn
  EXPECT_EQ(granted, 3);
  EXPECT_EQ(sem.waiting(), 0U);
}

TEST(Semaphore, CapacityZeroRejectsNewRequests) {
  Semaphore sem(semaphoreSettings(0));
  EXPECT_FALSE(sem.tryAcquire());
  EXPECT_EQ(sem.acquireAsync([](Permit) {}).status, Status::ExceedsCapacity);
  sem.setCapacity(1);
  EXPECT_TRUE(sem.tryAcquire());
}

TEST(Semaphore, GrowingCapacityGrantsQueuedWaiters) {
  Semaphore sem(semaphoreSettings(1));
  Permit held = sem.tryAcquire();
  std::vector<Permit> got;
  std::vector<Semaphore::WaitTicket> tickets;
  for (int i = 0; i < 3; ++i) {
    auto r = sem.acquireAsync([&](Permit p) { got.push_back(std::move(p)); });
    ASSERT_EQ(r.status, Status::Queued);
    tickets.push_back(r.ticket);
  }
  sem.setCapacity(3);
  EXPECT_EQ(got.size(), 2U);
  EXPECT_EQ(sem.waiting(), 1U);
  EXPECT_EQ(sem.capacity(), 3U);
  // The last waiter must not be granted into `got` while `got` is being destroyed.
  EXPECT_EQ(sem.cancel(tickets[2]), Cancel::Cancelled);
}

TEST(Semaphore, ShrinkingKeepsHeldPermitsAndDelaysNewGrants) {
  Semaphore sem(semaphoreSettings(3));
  std::vector<Permit> held;
  held.reserve(3);
  for (int i = 0; i < 3; ++i) {
    held.push_back(sem.tryAcquire());
  }
  sem.setCapacity(1);
  EXPECT_EQ(sem.available(), -2);
  Permit granted;
  ASSERT_EQ(sem.acquireAsync([&](Permit p) { granted = std::move(p); }).status, Status::Queued);
  held[0].release();
  held[1].release();
  EXPECT_FALSE(granted);  // still paying off the deficit
  held[2].release();
  EXPECT_TRUE(granted);
  EXPECT_EQ(sem.available(), 0);
}

// Verifies the concurrency bound with a mix of tryAcquire, async waits, cancels and resizes: the
// permits concurrently held never exceed the largest capacity in force, every waiter ends exactly
// once, and every permit comes back.
TEST(SemaphoreStress, NoOverAdmissionAndNoLostPermits) {
  constexpr std::size_t kCapacity = 4;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 4000;
  Semaphore sem(semaphoreSettings(kCapacity, std::size_t{kThreads} * kPerThread));
  std::atomic<std::int64_t> in_use{0};
  std::atomic<std::int64_t> max_in_use{0};
  std::atomic<int> immediate{0};
  std::atomic<int> granted{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> queued{0};
  std::mutex parked_mutex;
  std::vector<Permit> parked;
  auto take = [&] {
    const auto now = in_use.fetch_add(1) + 1;
    auto seen = max_in_use.load();
    while (now > seen && !max_in_use.compare_exchange_weak(seen, now)) {
    }
  };
  // Permits are held ("parked") across iterations so that the semaphore fills up and waits
  // really queue; any thread releases them later.
  auto park = [&](Permit p) {
    const std::lock_guard lock(parked_mutex);
    parked.push_back(std::move(p));
  };
  auto release_parked = [&](std::size_t at_most) {
    std::vector<Permit> batch;
    {
      const std::lock_guard lock(parked_mutex);
      while (!parked.empty() && batch.size() < at_most) {
        batch.push_back(std::move(parked.back()));
        parked.pop_back();
      }
    }
    for (auto& p : batch) {
      in_use.fetch_sub(1);
      p.release();
    }
    return batch.size();
  };
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 7);
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        if (t == 0 && i % 500 == 0) {
          sem.setCapacity(i % 1000 == 0 ? kCapacity - 1 : kCapacity);  // never above kCapacity
        }
        if (rng() % 3 == 0) {
          if (Permit p = sem.tryAcquire()) {
            immediate.fetch_add(1);
            take();
            park(std::move(p));
          }
        } else {
          auto r = sem.acquireAsync([&](Permit p) {
            granted.fetch_add(1);
            take();
            park(std::move(p));
          });
          if (r.status == Status::Acquired) {
            immediate.fetch_add(1);
            take();
            park(std::move(r.permit));
          } else if (r.status == Status::Queued) {
            queued.fetch_add(1);
            if (rng() % 2 == 0 && sem.cancel(r.ticket) == Cancel::Cancelled) {
              cancelled.fetch_add(1);
            }
          }
        }
        // Release less often than acquiring so that permits run out and waiters queue.
        if (rng() % 2 == 0) {
          release_parked(1);
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  sem.setCapacity(kCapacity);
  while (release_parked(SIZE_MAX) > 0) {
  }
  EXPECT_LE(max_in_use.load(), static_cast<std::int64_t>(kCapacity));
  EXPECT_GT(granted.load(), 0);
  EXPECT_GT(cancelled.load(), 0);
  EXPECT_GT(immediate.load(), 0);
  EXPECT_EQ(granted.load() + cancelled.load(), queued.load());  // each waiter ended once
  EXPECT_EQ(sem.waiting(), 0U);
  EXPECT_EQ(in_use.load(), 0);
  EXPECT_EQ(sem.available(), static_cast<std::int64_t>(kCapacity));
}

}  // namespace
}  // namespace sluice::resilience
