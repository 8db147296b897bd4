#include "resilience/weighted_semaphore.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::resilience {
namespace {

using AcquireStatus = WeightedSemaphore::AcquireStatus;
using WCancel = WeightedSemaphore::CancelResult;
using WPermit = WeightedSemaphore::Permit;

WeightedSemaphore::Settings settings(std::size_t capacity, std::size_t max_waiters = 1024) {
  return {.capacity = capacity, .max_waiters = max_waiters};
}

// Records the order in which queued callbacks were granted and keeps their permits alive.
struct GrantLog {
  std::vector<int> order;
  std::map<int, WPermit> held;
  auto callback(int id) {
    return [this, id](WPermit p) {
      order.push_back(id);
      held.emplace(id, std::move(p));
    };
  }
  // Releases one held permit. The permit leaves the map before it is released, because the
  // release may grant another waiter whose callback inserts into the map.
  void drop(int id) {
    auto node = held.extract(id);
    node.mapped().release();
  }
  // Releases every held permit, including those granted while releasing.
  void dropAll() {
    while (!held.empty()) {
      std::map<int, WPermit> batch;
      batch.swap(held);
    }
  }
};

TEST(WeightedSemaphore, ValidateAcceptsZeroAndMaxCapacity) {
  EXPECT_EQ(WeightedSemaphore::validate(settings(0)), std::nullopt);
  EXPECT_EQ(WeightedSemaphore::validate(settings(WeightedSemaphore::kMaxCapacity)), std::nullopt);
}

TEST(WeightedSemaphore, ValidateRejectsCapacityAboveMax) {
  const auto error = WeightedSemaphore::validate(settings(WeightedSemaphore::kMaxCapacity + 1));
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find("capacity"), std::string::npos);
}

TEST(WeightedSemaphore, TryAcquireTakesUnitsAndPermitReturnsThem) {
  WeightedSemaphore sem(settings(10));
  {
    WPermit p = sem.tryAcquire(7);
    ASSERT_TRUE(p);
    EXPECT_EQ(p.weight(), 7U);
    EXPECT_EQ(sem.available(), 3);
  }
  EXPECT_EQ(sem.available(), 10);
}

TEST(WeightedSemaphore, TryAcquireSucceedsAtExactlyTheFreeUnits) {
  WeightedSemaphore sem(settings(10));
  WPermit a = sem.tryAcquire(4);
  WPermit b = sem.tryAcquire(6);  // boundary: free == requested succeeds (>=)
  EXPECT_TRUE(b);
  EXPECT_EQ(sem.available(), 0);
}

TEST(WeightedSemaphore, FailedTryAcquireChangesNothing) {
  WeightedSemaphore sem(settings(10));
  WPermit a = sem.tryAcquire(8);
  WPermit b = sem.tryAcquire(3);
  EXPECT_FALSE(b);
  EXPECT_EQ(b.weight(), 0U);
  EXPECT_EQ(sem.available(), 2);
  EXPECT_EQ(sem.waiting(), 0U);
}

TEST(WeightedSemaphore, TryAcquireZeroAlwaysSucceedsAndHoldsNothing) {
  WeightedSemaphore sem(settings(0));
  WPermit p = sem.tryAcquire(0);
  EXPECT_TRUE(p);
  EXPECT_EQ(p.weight(), 0U);
  p.release();
  EXPECT_FALSE(p);
  EXPECT_EQ(sem.available(), 0);
}

TEST(WeightedSemaphore, TryAcquireLargerThanCapacityOrHugeFails) {
  WeightedSemaphore sem(settings(10));
  EXPECT_FALSE(sem.tryAcquire(11));
  EXPECT_FALSE(sem.tryAcquire(WeightedSemaphore::kMaxCapacity + 1));
  EXPECT_FALSE(sem.tryAcquire(SIZE_MAX));
  EXPECT_EQ(sem.available(), 10);
}

TEST(WeightedSemaphore, ConstructorClampsCapacityToMax) {
  WeightedSemaphore sem(settings(SIZE_MAX));
  EXPECT_EQ(sem.capacity(), WeightedSemaphore::kMaxCapacity);
  EXPECT_EQ(sem.available(), static_cast<std::int64_t>(WeightedSemaphore::kMaxCapacity));
}

TEST(WeightedSemaphore, PermitMoveTransfersOwnership) {
  WeightedSemaphore sem(settings(5));
  WPermit a = sem.tryAcquire(2);
  WPermit b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_TRUE(b);
  EXPECT_EQ(b.weight(), 2U);
  EXPECT_EQ(sem.available(), 3);
  b = WPermit();  // move-assigning over a held permit releases it
  EXPECT_EQ(sem.available(), 5);
}

TEST(WeightedSemaphore, ExplicitReleaseIsIdempotent) {
  WeightedSemaphore sem(settings(5));
  WPermit p = sem.tryAcquire(5);
  p.release();
  p.release();
  EXPECT_EQ(sem.available(), 5);
}

TEST(WeightedSemaphore, AcquireAsyncGrantsAtOnceWithoutCallingTheCallback) {
  WeightedSemaphore sem(settings(5));
  bool called = false;
  auto r = sem.acquireAsync(3, [&](WPermit) { called = true; });
  EXPECT_EQ(r.status, AcquireStatus::Acquired);
  EXPECT_TRUE(r.permit);
  EXPECT_FALSE(r.ticket);
  EXPECT_FALSE(called);
  EXPECT_EQ(sem.available(), 2);
}

TEST(WeightedSemaphore, AcquireAsyncAcceptsMoveOnlyCallbacks) {
  WeightedSemaphore sem(settings(1));
  WPermit blocker = sem.tryAcquire(1);
  auto token = std::make_unique<int>(42);
  int seen = 0;
  auto r = sem.acquireAsync(1, [t = std::move(token), &seen](WPermit) { seen = *t; });
  ASSERT_EQ(r.status, AcquireStatus::Queued);
  blocker.release();
  EXPECT_EQ(seen, 42);
}

TEST(WeightedSemaphore, QueuedWaitersAreGrantedInFifoOrder) {
  WeightedSemaphore sem(settings(3));
  GrantLog log;
  WPermit all = sem.tryAcquire(3);
  for (int id = 0; id < 3; ++id) {
    ASSERT_EQ(sem.acquireAsync(1, log.callback(id)).status, AcquireStatus::Queued);
  }
  EXPECT_EQ(sem.waiting(), 3U);
  all.release();
  EXPECT_EQ(log.order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(sem.waiting(), 0U);
  EXPECT_EQ(sem.available(), 0);
  log.dropAll();
  EXPECT_EQ(sem.available(), 3);
}

// Verifies the x/sync/semaphore rule: small requests behind a large head wait even if they fit.
TEST(WeightedSemaphore, LargeHeadWaiterIsNotStarvedBySmallerOnesBehindIt) {
  WeightedSemaphore sem(settings(10));
  GrantLog log;
  WPermit held = sem.tryAcquire(6);
  ASSERT_EQ(sem.acquireAsync(8, log.callback(1)).status, AcquireStatus::Queued);  // needs 8, 4 free
  ASSERT_EQ(sem.acquireAsync(1, log.callback(2)).status,
            AcquireStatus::Queued);  // would fit, waits
  EXPECT_FALSE(sem.tryAcquire(1));   // no barging past the queue either
  EXPECT_TRUE(log.order.empty());
  EXPECT_EQ(sem.available(), 4);
  held.release();
  EXPECT_EQ(log.order, (std::vector<int>{1, 2}));
  EXPECT_EQ(sem.available(), 1);
}

TEST(WeightedSemaphore, PartialReleaseGrantsOnlyTheHeadsThatFit) {
  WeightedSemaphore sem(settings(10));
  GrantLog log;
  WPermit a = sem.tryAcquire(5);
  WPermit b = sem.tryAcquire(5);
  ASSERT_EQ(sem.acquireAsync(3, log.callback(1)).status, AcquireStatus::Queued);
  ASSERT_EQ(sem.acquireAsync(3, log.callback(2)).status, AcquireStatus::Queued);
  ASSERT_EQ(sem.acquireAsync(1, log.callback(3)).status, AcquireStatus::Queued);
  a.release();  // 5 free: 3 granted, then 2 free < 3 blocks ids 2 and 3
  EXPECT_EQ(log.order, (std::vector<int>{1}));
  EXPECT_EQ(sem.available(), 2);
  EXPECT_EQ(sem.waiting(), 2U);
}

TEST(WeightedSemaphore, RequestLargerThanCapacityFailsImmediately) {
  WeightedSemaphore sem(settings(10));
  bool called = false;
  auto r = sem.acquireAsync(11, [&](WPermit) { called = true; });
  EXPECT_EQ(r.status, AcquireStatus::ExceedsCapacity);
  EXPECT_FALSE(r.permit);
  EXPECT_FALSE(r.ticket);
  EXPECT_EQ(sem.waiting(), 0U);
  EXPECT_FALSE(called);
}

TEST(WeightedSemaphore, QueueFullRejectsAndDestroysTheCallback) {
  WeightedSemaphore sem(settings(1, /*max_waiters=*/1));
  GrantLog log;  // before any WPermit: a release at scope end may grant into it
  WPermit held = sem.tryAcquire(1);
  ASSERT_EQ(sem.acquireAsync(1, log.callback(1)).status, AcquireStatus::Queued);
  auto token = std::make_shared<int>(0);
  auto r = sem.acquireAsync(1, [token](WPermit) {});
  EXPECT_EQ(r.status, AcquireStatus::QueueFull);
  EXPECT_EQ(token.use_count(), 1);  // the rejected callback (and its capture) is gone
  EXPECT_EQ(sem.waiting(), 1U);
}

TEST(WeightedSemaphore, ZeroMaxWaitersNeverQueues) {
  WeightedSemaphore sem(settings(1, /*max_waiters=*/0));
  WPermit held = sem.tryAcquire(1);
  EXPECT_EQ(sem.acquireAsync(1, [](WPermit) {}).status, AcquireStatus::QueueFull);
  held.release();
  EXPECT_EQ(sem.acquireAsync(1, [](WPermit) {}).status, AcquireStatus::Acquired);
}

TEST(WeightedSemaphore, CancelQueuedWaiterDestroysCallbackUncalled) {
  WeightedSemaphore sem(settings(1));
  WPermit held = sem.tryAcquire(1);
  auto token = std::make_shared<int>(0);
  bool called = false;
  auto r = sem.acquireAsync(1, [token, &called](WPermit) { called = true; });
  ASSERT_EQ(r.status, AcquireStatus::Queued);
  EXPECT_EQ(token.use_count(), 2);
  EXPECT_EQ(sem.cancel(r.ticket), WCancel::Cancelled);
  EXPECT_EQ(token.use_count(), 1);
  EXPECT_EQ(sem.waiting(), 0U);
  held.release();
  EXPECT_FALSE(called);
  EXPECT_EQ(sem.available(), 1);
  EXPECT_TRUE(sem.tryAcquire(1));  // the waiters bit was cleared: the fast path works again
}

TEST(WeightedSemaphore, CancelAfterGrantReportsAlreadyGrantedAndKeepsThePermit) {
  WeightedSemaphore sem(settings(1));
  GrantLog log;  // before any WPermit: a release at scope end may grant into it
  WPermit held = sem.tryAcquire(1);
  auto r = sem.acquireAsync(1, log.callback(7));
  held.release();
  ASSERT_EQ(log.order, (std::vector<int>{7}));
  EXPECT_EQ(sem.cancel(r.ticket), WCancel::AlreadyGranted);
  EXPECT_EQ(sem.available(), 0);  // the callback still owns the permit
}

TEST(WeightedSemaphore, CancelIsIdempotent) {
  WeightedSemaphore sem(settings(1));
  GrantLog log;  // before any WPermit: a release at scope end may grant into it
  WPermit held = sem.tryAcquire(1);
  auto r = sem.acquireAsync(1, [](WPermit) {});
  EXPECT_EQ(sem.cancel(r.ticket), WCancel::Cancelled);
  EXPECT_EQ(sem.cancel(r.ticket), WCancel::Cancelled);
  auto g = sem.acquireAsync(1, log.callback(1));
  held.release();
  EXPECT_EQ(sem.cancel(g.ticket), WCancel::AlreadyGranted);
  EXPECT_EQ(sem.cancel(g.ticket), WCancel::AlreadyGranted);
}

TEST(WeightedSemaphore, CancelEmptyOrForeignTicketReportsNotQueued) {
  WeightedSemaphore sem(settings(1));
  WeightedSemaphore other(settings(1));
  WPermit held = other.tryAcquire(1);
  auto r = other.acquireAsync(1, [](WPermit) {});
  ASSERT_EQ(r.status, AcquireStatus::Queued);
  EXPECT_EQ(sem.cancel(WeightedSemaphore::WaitTicket()), WCancel::NotQueued);
  EXPECT_EQ(sem.cancel(r.ticket), WCancel::NotQueued);
  EXPECT_EQ(other.waiting(), 1U);
}

TEST(WeightedSemaphore, CancellingABlockedHeadLetsTheWaitersBehindItThrough) {
  WeightedSemaphore sem(settings(10));
  GrantLog log;
  WPermit held = sem.tryAcquire(6);
  auto big = sem.acquireAsync(8, log.callback(1));
  ASSERT_EQ(sem.acquireAsync(2, log.callback(2)).status, AcquireStatus::Queued);
  ASSERT_EQ(sem.acquireAsync(2, log.callback(3)).status, AcquireStatus::Queued);
  ASSERT_EQ(sem.acquireAsync(1, log.callback(4)).status, AcquireStatus::Queued);
  EXPECT_EQ(sem.cancel(big.ticket), WCancel::Cancelled);
  EXPECT_EQ(log.order, (std::vector<int>{2, 3}));  // 4 free: 2 + 2, then 0 < 1
  EXPECT_EQ(sem.waiting(), 1U);
}

TEST(WeightedSemaphore, CancellingAMiddleWaiterGrantsNothing) {
  WeightedSemaphore sem(settings(2));
  GrantLog log;
  WPermit held = sem.tryAcquire(2);
  ASSERT_EQ(sem.acquireAsync(2, log.callback(1)).status, AcquireStatus::Queued);
  auto mid = sem.acquireAsync(1, log.callback(2));
  ASSERT_EQ(sem.acquireAsync(1, log.callback(3)).status, AcquireStatus::Queued);
  EXPECT_EQ(sem.cancel(mid.ticket), WCancel::Cancelled);
  EXPECT_TRUE(log.order.empty());
  held.release();
  EXPECT_EQ(log.order, (std::vector<int>{1}));
  log.drop(1);
  EXPECT_EQ(log.order, (std::vector<int>{1, 3}));
}

TEST(WeightedSemaphore, GrowingCapacityGrantsWaiters) {
  WeightedSemaphore sem(settings(1));
  GrantLog log;
  WPermit held = sem.tryAcquire(1);
  ASSERT_EQ(sem.acquireAsync(1, log.callback(1)).status, AcquireStatus::Queued);
  ASSERT_EQ(sem.acquireAsync(1, log.callback(2)).status, AcquireStatus::Queued);
  sem.setCapacity(3);
  EXPECT_EQ(log.order, (std::vector<int>{1, 2}));
  EXPECT_EQ(sem.capacity(), 3U);
  EXPECT_EQ(sem.available(), 0);
}

TEST(WeightedSemaphore, ShrinkingNeverRevokesHeldPermits) {
  WeightedSemaphore sem(settings(4));
  GrantLog log;
  WPermit a = sem.tryAcquire(2);
  WPermit b = sem.tryAcquire(2);
  sem.setCapacity(1);
  EXPECT_TRUE(a);
  EXPECT_TRUE(b);
  EXPECT_EQ(sem.available(), -3);
  ASSERT_EQ(sem.acquireAsync(1, log.callback(1)).status, AcquireStatus::Queued);
  EXPECT_EQ(sem.acquireAsync(2, [](WPermit) {}).status, AcquireStatus::ExceedsCapacity);
  a.release();  // pays off the deficit: -1 free, nothing granted
  EXPECT_TRUE(log.order.empty());
  EXPECT_EQ(sem.available(), -1);
  b.release();
  EXPECT_EQ(log.order, (std::vector<int>{1}));
  EXPECT_EQ(sem.available(), 0);
}

TEST(WeightedSemaphore, QueuedHeadLargerThanShrunkCapacityBlocksUntilCancelled) {
  WeightedSemaphore sem(settings(4));
  GrantLog log;
  WPermit held = sem.tryAcquire(4);
  auto big = sem.acquireAsync(4, log.callback(1));
  ASSERT_EQ(sem.acquireAsync(1, log.callback(2)).status, AcquireStatus::Queued);
  sem.setCapacity(2);
  held.release();
  EXPECT_TRUE(log.order.empty());
  EXPECT_EQ(sem.cancel(big.ticket), WCancel::Cancelled);
  EXPECT_EQ(log.order, (std::vector<int>{2}));
}

TEST(WeightedSemaphore, CapacityZeroRejectsEverythingButZeroWeight) {
  WeightedSemaphore sem(settings(0));
  EXPECT_EQ(sem.acquireAsync(1, [](WPermit) {}).status, AcquireStatus::ExceedsCapacity);
  EXPECT_EQ(sem.acquireAsync(0, [](WPermit) {}).status, AcquireStatus::Acquired);
}

// Verifies that callbacks dropping their permit synchronously do not recurse: every grant is
// delivered by the outermost call, in FIFO order, at stack depth 1.
TEST(WeightedSemaphore, CallbacksReleasingSynchronouslyDoNotRecurse) {
  constexpr int kWaiters = 10000;
  WeightedSemaphore sem(settings(1, kWaiters));
  WPermit held = sem.tryAcquire(1);
  int depth = 0;
  int max_depth = 0;
  std::vector<int> order;
  for (int id = 0; id < kWaiters; ++id) {
    ASSERT_EQ(sem.acquireAsync(1,
                               [&, id](WPermit p) {
                                 ++depth;
                                 max_depth = std::max(max_depth, depth);
                                 order.push_back(id);
                                 p.release();
                                 --depth;
                               })
                  .status,
              AcquireStatus::Queued);
  }
  held.release();
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kWaiters));
  for (int id = 0; id < kWaiters; ++id) {
    ASSERT_EQ(order[static_cast<std::size_t>(id)], id);
  }
  EXPECT_EQ(max_depth, 1);
  EXPECT_EQ(sem.available(), 1);
}

TEST(WeightedSemaphore, CallbackMayReenterTheSemaphore) {
  WeightedSemaphore sem(settings(1));
  WPermit held = sem.tryAcquire(1);
  WPermit second;
  WeightedSemaphore::AsyncAcquire inner;
  auto r = sem.acquireAsync(1, [&](WPermit p) {
    EXPECT_FALSE(sem.tryAcquire(1));
    inner = sem.acquireAsync(1, [&](WPermit q) { second = std::move(q); });
    EXPECT_EQ(sem.cancel(inner.ticket), WCancel::Cancelled);
    inner = sem.acquireAsync(1, [&](WPermit q) { second = std::move(q); });
    p.release();  // grants `inner`, delivered after this callback returns
    EXPECT_FALSE(second);
  });
  ASSERT_EQ(r.status, AcquireStatus::Queued);
  held.release();
  EXPECT_TRUE(second);
  EXPECT_EQ(sem.available(), 0);
}

TEST(WeightedSemaphore, DestructionDestroysQueuedCallbacksUncalled) {
  auto token = std::make_shared<int>(0);
  bool called = false;
  {
    WeightedSemaphore sem(settings(1));
    WPermit held = sem.tryAcquire(1);
    ASSERT_EQ(sem.acquireAsync(1, [token, &called](WPermit) { called = true; }).status,
              AcquireStatus::Queued);
    sem.setCapacity(0);
    held.release();  // pays off the deficit; the waiter stays queued with no permit outstanding
    EXPECT_EQ(sem.waiting(), 1U);
    EXPECT_EQ(token.use_count(), 2);
  }
  EXPECT_FALSE(called);
  EXPECT_EQ(token.use_count(), 1);
}

// Property test: random operation sequences agree exactly with a sequential reference model of
// x/sync/semaphore semantics (FIFO, head-of-line blocking, cancel, resize, zero weights).
TEST(WeightedSemaphore, MatchesReferenceModelOnRandomOperations) {
  struct ModelWaiter {
    int id;
    std::size_t weight;
  };
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 rng(seed);
    const std::size_t max_waiters = 1 + rng() % 6;
    std::size_t capacity = rng() % 8;
    WeightedSemaphore sem(settings(capacity, max_waiters));
    auto available = static_cast<std::int64_t>(capacity);
    std::deque<ModelWaiter> queue;
    std::vector<int> expected_order;
    std::map<int, std::size_t> expected_held;  // id -> weight, for grants via callback
    std::map<int, WeightedSemaphore::WaitTicket> tickets;
    std::map<int, bool> granted;
    GrantLog log;
    std::vector<WPermit> direct;
    auto model_grant = [&] {
      while (!queue.empty() && available >= static_cast<std::int64_t>(queue.front().weight)) {
        available -= static_cast<std::int64_t>(queue.front().weight);
        expected_order.push_back(queue.front().id);
        expected_held[queue.front().id] = queue.front().weight;
        granted[queue.front().id] = true;
        queue.pop_front();
      }
    };
    int next_id = 0;
    for (int step = 0; step < 300; ++step) {
      switch (rng() % 6) {
        case 0: {  // tryAcquire
          const std::size_t w = rng() % 5;
          const bool model_ok = w == 0 || (w <= capacity && queue.empty() &&
                                           available >= static_cast<std::int64_t>(w));
          WPermit p = sem.tryAcquire(w);
          ASSERT_EQ(static_cast<bool>(p), model_ok) << "seed " << seed << " step " << step;
          if (model_ok) {
            available -= static_cast<std::int64_t>(w);
            direct.push_back(std::move(p));
          }
          break;
        }
        case 1:
        case 2: {  // acquireAsync
          const std::size_t w = rng() % 5;
          const int id = next_id++;
          auto r = sem.acquireAsync(w, log.callback(id));
          AcquireStatus expected = AcquireStatus::Queued;
          if (w > capacity) {
            expected = AcquireStatus::ExceedsCapacity;
          } else if (w == 0 || (queue.empty() && available >= static_cast<std::int64_t>(w))) {
            expected = AcquireStatus::Acquired;
          } else if (queue.size() >= max_waiters) {
            expected = AcquireStatus::QueueFull;
          }
          ASSERT_EQ(r.status, expected) << "seed " << seed << " step " << step;
          if (expected == AcquireStatus::Acquired) {
            available -= static_cast<std::int64_t>(w);
            direct.push_back(std::move(r.permit));
          } else if (expected == AcquireStatus::Queued) {
            queue.push_back({id, w});
            tickets[id] = r.ticket;
            granted[id] = false;
          }
          break;
        }
        case 3: {  // release a permit (direct or granted)
          if (!direct.empty() && (log.held.empty() || rng() % 2 == 0)) {
            const std::size_t i = rng() % direct.size();
            available += static_cast<std::int64_t>(direct[i].weight());
            direct.erase(direct.begin() + static_cast<std::ptrdiff_t>(i));
          } else if (!log.held.empty()) {
            auto it = log.held.begin();
            std::advance(it, static_cast<std::ptrdiff_t>(rng() % log.held.size()));
            available += static_cast<std::int64_t>(expected_held.at(it->first));
            log.drop(it->first);
          }
          model_grant();
          break;
        }
        case 4: {  // cancel
          if (tickets.empty()) {
            break;
          }
          auto it = tickets.begin();
          std::advance(it, static_cast<std::ptrdiff_t>(rng() % tickets.size()));
          const int id = it->first;
          WCancel expected = granted[id] ? WCancel::AlreadyGranted : WCancel::Cancelled;
          if (!granted[id]) {
            for (auto q = queue.begin(); q != queue.end(); ++q) {
              if (q->id == id) {
                queue.erase(q);
                break;
              }
            }
            model_grant();
          }
          ASSERT_EQ(sem.cancel(it->second), expected) << "seed " << seed << " step " << step;
          break;
        }
        case 5: {  // resize
          const std::size_t c = rng() % 8;
          available += static_cast<std::int64_t>(c) - static_cast<std::int64_t>(capacity);
          capacity = c;
          sem.setCapacity(c);
          model_grant();
          break;
        }
        default:
          break;
      }
      ASSERT_EQ(sem.available(), available) << "seed " << seed << " step " << step;
      ASSERT_EQ(sem.waiting(), queue.size()) << "seed " << seed << " step " << step;
      ASSERT_EQ(log.order, expected_order) << "seed " << seed << " step " << step;
    }
    // Return everything so that the destructor's precondition holds.
    direct.clear();
    for (auto& [id, ticket] : tickets) {
      (void)sem.cancel(ticket);
    }
    log.dropAll();
    ASSERT_EQ(sem.available(), static_cast<std::int64_t>(capacity)) << "seed " << seed;
  }
}

// Verifies no over-admission: the units concurrently held never exceed the capacity, and every
// unit comes back.
TEST(WeightedSemaphoreStress, NoOverAdmissionUnderContention) {
  constexpr std::size_t kCapacity = 7;
  constexpr int kThreads = 4;
  constexpr int kIterations = 20000;
  WeightedSemaphore sem(settings(kCapacity));
  std::atomic<std::int64_t> in_use{0};
  std::atomic<std::int64_t> max_in_use{0};
  std::atomic<std::int64_t> admitted{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 1);
      start.arrive_and_wait();
      for (int i = 0; i < kIterations; ++i) {
        const std::size_t w = 1 + rng() % 4;
        if (WPermit p = sem.tryAcquire(w)) {
          const auto now =
              in_use.fetch_add(static_cast<std::int64_t>(w)) + static_cast<std::int64_t>(w);
          auto seen = max_in_use.load();
          while (now > seen && !max_in_use.compare_exchange_weak(seen, now)) {
          }
          admitted.fetch_add(1);
          in_use.fetch_sub(static_cast<std::int64_t>(w));
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_LE(max_in_use.load(), static_cast<std::int64_t>(kCapacity));
  EXPECT_GT(admitted.load(), 0);
  EXPECT_EQ(sem.available(), static_cast<std::int64_t>(kCapacity));
}

// Verifies that with concurrent releases, waits and cancels every queued waiter ends exactly one
// way (granted once, or cancelled), no unit is lost, and the capacity bound always holds.
TEST(WeightedSemaphoreStress, EveryWaiterIsGrantedOrCancelledExactlyOnce) {
  constexpr std::size_t kCapacity = 5;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 3000;
  WeightedSemaphore sem(settings(kCapacity, std::size_t{kThreads} * kPerThread));
  // Units held by the test: raised right after a grant, lowered right before the release, so it
  // never exceeds the units really held, and exceeding the capacity proves over-admission.
  std::atomic<std::int64_t> in_use{0};
  std::atomic<bool> over{false};
  std::atomic<int> grants{0};
  std::atomic<int> cancels{0};
  std::atomic<int> immediate{0};
  std::atomic<int> rejected{0};
  std::vector<std::atomic<int>> calls(std::size_t{kThreads} * kPerThread);
  std::mutex parked_mutex;
  std::vector<WPermit> parked;  // granted permits, released later by any thread
  auto take = [&](std::size_t w) {
    const auto w64 = static_cast<std::int64_t>(w);
    if (in_use.fetch_add(w64) + w64 > static_cast<std::int64_t>(kCapacity)) {
      over = true;
    }
  };
  auto give_back = [&](WPermit& p) {
    in_use.fetch_sub(static_cast<std::int64_t>(p.weight()));
    p.release();
  };
  auto release_parked = [&](std::size_t at_most) {
    std::vector<WPermit> batch;
    {
      const std::lock_guard lock(parked_mutex);
      while (!parked.empty() && batch.size() < at_most) {
        batch.push_back(std::move(parked.back()));
        parked.pop_back();
      }
    }
    // Released outside the parking lock: a release may deliver grants that park again.
    for (auto& p : batch) {
      give_back(p);
    }
    return batch.size();
  };
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 100);
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        const auto id = static_cast<std::size_t>(t) * kPerThread + static_cast<std::size_t>(i);
        const std::size_t w = 1 + rng() % 3;
        auto r = sem.acquireAsync(w, [&, id, w](WPermit p) {
          calls[id].fetch_add(1);
          grants.fetch_add(1);
          take(w);
          const std::lock_guard lock(parked_mutex);
          parked.push_back(std::move(p));
        });
        if (r.status == AcquireStatus::Acquired) {
          immediate.fetch_add(1);
          take(w);
          const std::lock_guard lock(parked_mutex);
          parked.push_back(std::move(r.permit));
        } else if (r.status == AcquireStatus::Queued) {
          if (rng() % 2 == 0 && sem.cancel(r.ticket) == WCancel::Cancelled) {
            cancels.fetch_add(1);
          }
        } else {
          rejected.fetch_add(1);
        }
        // Release less often than acquiring so that the units run out and waiters queue.
        if (rng() % 2 == 0) {
          release_parked(1);
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  // Drain: every release grants remaining waiters, which park their permits in turn.
  while (release_parked(SIZE_MAX) > 0) {
  }
  EXPECT_FALSE(over.load());
  EXPECT_GT(grants.load(), 0);
  EXPECT_GT(cancels.load(), 0);
  EXPECT_EQ(rejected.load(), 0);
  EXPECT_EQ(sem.waiting(), 0U);
  EXPECT_EQ(in_use.load(), 0);
  EXPECT_EQ(grants.load() + cancels.load() + immediate.load(), kThreads * kPerThread);
  for (const auto& c : calls) {
    ASSERT_LE(c.load(), 1);
  }
  EXPECT_EQ(sem.available(), static_cast<std::int64_t>(kCapacity));
}

// Verifies FIFO delivery while other threads release concurrently: waiters queued by one thread
// are granted in exactly their queueing order.
TEST(WeightedSemaphoreStress, GrantsFollowQueueOrderUnderConcurrentReleases) {
  constexpr int kWaiters = 4000;
  constexpr int kReleasers = 3;
  WeightedSemaphore sem(settings(kReleasers, kWaiters));
  std::vector<WPermit> initial;
  initial.reserve(kReleasers);
  for (int i = 0; i < kReleasers; ++i) {
    initial.push_back(sem.tryAcquire(1));
  }
  std::mutex order_mutex;
  std::vector<int> order;
  std::mutex parked_mutex;
  std::deque<WPermit> parked;
  for (int id = 0; id < kWaiters; ++id) {
    ASSERT_EQ(sem.acquireAsync(1,
                               [&, id](WPermit p) {
                                 {
                                   const std::lock_guard lock(order_mutex);
                                   order.push_back(id);
                                 }
                                 const std::lock_guard lock(parked_mutex);
                                 parked.push_back(std::move(p));
                               })
                  .status,
              AcquireStatus::Queued);
  }
  for (auto& p : initial) {
    parked.push_back(std::move(p));
  }
  std::atomic<int> done{0};
  std::latch start(kReleasers);
  std::vector<std::thread> releasers;
  releasers.reserve(kReleasers);
  for (int t = 0; t < kReleasers; ++t) {
    releasers.emplace_back([&] {
      start.arrive_and_wait();
      while (done.load() < kWaiters + kReleasers) {
        WPermit p;
        {
          const std::lock_guard lock(parked_mutex);
          if (parked.empty()) {
            continue;
          }
          p = std::move(parked.front());
          parked.pop_front();
        }
        p.release();
        done.fetch_add(1);
      }
    });
  }
  for (auto& t : releasers) {
    t.join();
  }
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kWaiters));
  for (int id = 0; id < kWaiters; ++id) {
    ASSERT_EQ(order[static_cast<std::size_t>(id)], id);
  }
  EXPECT_EQ(sem.available(), static_cast<std::int64_t>(kReleasers));
}

}  // namespace
}  // namespace sluice::resilience
