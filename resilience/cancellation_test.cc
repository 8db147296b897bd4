#include "resilience/cancellation.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(CancellationToken, DefaultTokenIsNeverCancelledAndNeverRunsCallbacks) {
  const CancellationToken token;
  int runs = 0;
  auto registration = token.onCancel([&](CancelReason) { ++runs; });
  EXPECT_FALSE(registration.active());
  EXPECT_FALSE(token.canBeCancelled());
  EXPECT_FALSE(token.isCancelled());
  EXPECT_EQ(token.reason(), std::nullopt);
  EXPECT_TRUE(token.deadline().isInfinite());
  EXPECT_FALSE(token.expireIfDue(TimePoint::max()));
  EXPECT_FALSE(token.isDone(TimePoint::max()));
  EXPECT_EQ(runs, 0);
}

TEST(CancellationSource, CancelSetsReasonAndRunsTheCallbackOnce) {
  CancellationSource source;
  std::vector<CancelReason> seen;
  auto registration = source.token().onCancel([&](CancelReason r) { seen.push_back(r); });
  EXPECT_TRUE(registration.active());
  EXPECT_FALSE(source.isCancelled());
  EXPECT_TRUE(source.cancel());
  EXPECT_TRUE(source.isCancelled());
  EXPECT_EQ(source.reason(), CancelReason::Cancelled);
  EXPECT_EQ(seen, std::vector<CancelReason>{CancelReason::Cancelled});
}

TEST(CancellationSource, CancellingTwiceIsANoOp) {
  CancellationSource source;
  int runs = 0;
  auto registration = source.token().onCancel([&](CancelReason) { ++runs; });
  EXPECT_TRUE(source.cancel());
  EXPECT_FALSE(source.cancel());
  EXPECT_FALSE(source.expireIfDue(TimePoint::max()));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(source.reason(), CancelReason::Cancelled);
}

TEST(CancellationToken, CallbackRegisteredAfterCancelRunsImmediately) {
  CancellationSource source;
  source.cancel();
  std::optional<CancelReason> seen;
  auto registration = source.token().onCancel([&](CancelReason r) { seen = r; });
  EXPECT_EQ(seen, CancelReason::Cancelled);
  EXPECT_FALSE(registration.active());
}

TEST(CancellationRegistration, DestroyedRegistrationNeverRuns) {
  CancellationSource source;
  int runs = 0;
  {
    auto registration = source.token().onCancel([&](CancelReason) { ++runs; });
  }
  auto kept = source.token().onCancel([&](CancelReason) { runs += 10; });
  source.cancel();
  EXPECT_EQ(runs, 10);
}

TEST(CancellationRegistration, ResetIsIdempotentAndMoveTransfersOwnership) {
  CancellationSource source;
  int runs = 0;
  auto first = source.token().onCancel([&](CancelReason) { ++runs; });
  CancellationRegistration moved = std::move(first);
  // Checks the moved-from state on purpose.
  // NOLINTNEXTLINE(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
  EXPECT_FALSE(first.active());
  EXPECT_TRUE(moved.active());
  CancellationRegistration assigned;
  assigned = std::move(moved);
  assigned.reset();
  assigned.reset();
  EXPECT_FALSE(assigned.active());
  source.cancel();
  EXPECT_EQ(runs, 0);
}

TEST(CancellationToken, CallbacksRunInRegistrationOrderBeforeChildren) {
  CancellationSource parent;
  CancellationSource child = CancellationSource::childOf(parent.token());
  std::vector<int> order;
  auto c = child.token().onCancel([&](CancelReason) { order.push_back(3); });
  auto p1 = parent.token().onCancel([&](CancelReason) { order.push_back(1); });
  auto p2 = parent.token().onCancel([&](CancelReason) { order.push_back(2); });
  parent.cancel();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(CancellationTree, CancellingAParentCancelsTheWholeSubtreeWithItsReason) {
  CancellationSource root;
  CancellationSource child = CancellationSource::childOf(root.token());
  CancellationSource grandchild = CancellationSource::childOf(child.token());
  CancellationSource sibling = CancellationSource::childOf(root.token());
  EXPECT_TRUE(root.cancel());
  for (const auto* s : {&child, &grandchild, &sibling}) {
    EXPECT_EQ(s->reason(), CancelReason::Cancelled);
  }
}

TEST(CancellationTree, CancellingAChildNeverCancelsItsParentOrSiblings) {
  CancellationSource root;
  CancellationSource child = CancellationSource::childOf(root.token());
  CancellationSource sibling = CancellationSource::childOf(root.token());
  CancellationSource grandchild = CancellationSource::childOf(child.token());
  EXPECT_TRUE(child.cancel());
  EXPECT_FALSE(root.isCancelled());
  EXPECT_FALSE(sibling.isCancelled());
  EXPECT_TRUE(grandchild.isCancelled());
}

TEST(CancellationTree, ChildOfACancelledParentStartsCancelled) {
  CancellationSource root;
  root.cancel();
  CancellationSource child = CancellationSource::childOf(root.token());
  EXPECT_EQ(child.reason(), CancelReason::Cancelled);
  EXPECT_FALSE(child.cancel());
}

TEST(CancellationTree, ChildOfADefaultTokenIsARoot) {
  CancellationSource child =
      CancellationSource::childOf(CancellationToken{}, Deadline::at(kT0 + milliseconds(5)));
  EXPECT_EQ(child.deadline(), Deadline::at(kT0 + milliseconds(5)));
  EXPECT_TRUE(child.cancel());
}

TEST(CancellationTree, ChildDeadlineIsTheEarlierOfParentsAndItsOwn) {
  CancellationSource root(Deadline::at(kT0 + milliseconds(100)));
  auto shorter = CancellationSource::childOf(root.token(), Deadline::at(kT0 + milliseconds(50)));
  auto longer = CancellationSource::childOf(root.token(), Deadline::at(kT0 + milliseconds(200)));
  auto unbounded = CancellationSource::childOf(root.token());
  EXPECT_EQ(shorter.deadline(), Deadline::at(kT0 + milliseconds(50)));
  EXPECT_EQ(longer.deadline(), Deadline::at(kT0 + milliseconds(100)));
  EXPECT_EQ(unbounded.deadline(), Deadline::at(kT0 + milliseconds(100)));
}

TEST(CancellationTree, IgnoreChildKeepsItsOwnDeadline) {
  CancellationSource root(Deadline::at(kT0 + milliseconds(100)));
  auto cleanup = CancellationSource::childOf(root.token(), Deadline::at(kT0 + milliseconds(900)),
                                             ParentDeadline::Ignore);
  EXPECT_EQ(cleanup.deadline(), Deadline::at(kT0 + milliseconds(900)));
  auto unbounded =
      CancellationSource::childOf(root.token(), Deadline::infinite(), ParentDeadline::Ignore);
  EXPECT_TRUE(unbounded.deadline().isInfinite());
}

// Verifies the expiry boundary: expireIfDue cancels at now >= deadline, not one tick earlier.
TEST(CancellationSource, ExpireIfDueCancelsExactlyAtTheDeadline) {
  CancellationSource source(Deadline::at(kT0 + milliseconds(100)));
  std::optional<CancelReason> seen;
  auto registration = source.token().onCancel([&](CancelReason r) { seen = r; });
  EXPECT_FALSE(source.expireIfDue(kT0 + milliseconds(100) - nanoseconds(1)));
  EXPECT_FALSE(source.isCancelled());
  EXPECT_EQ(seen, std::nullopt);
  EXPECT_TRUE(source.expireIfDue(kT0 + milliseconds(100)));
  EXPECT_EQ(source.reason(), CancelReason::DeadlineExceeded);
  EXPECT_EQ(seen, CancelReason::DeadlineExceeded);
  EXPECT_FALSE(source.expireIfDue(kT0 + milliseconds(101)));
  EXPECT_FALSE(source.cancel());
  EXPECT_EQ(source.reason(), CancelReason::DeadlineExceeded);
}

TEST(CancellationSource, ExpireIfDueWithTimeGoingBackwardsDoesNothing) {
  CancellationSource source(Deadline::at(kT0 + milliseconds(100)));
  EXPECT_FALSE(source.expireIfDue(kT0 - std::chrono::hours(1)));
  EXPECT_FALSE(source.isCancelled());
}

TEST(CancellationSource, InfiniteDeadlineNeverExpires) {
  CancellationSource source;
  EXPECT_FALSE(source.expireIfDue(TimePoint::max()));
  EXPECT_FALSE(source.token().isDone(TimePoint::max()));
}

TEST(CancellationToken, IsDoneReportsAPassedDeadlineWithoutCancelling) {
  CancellationSource source(Deadline::at(kT0 + milliseconds(10)));
  EXPECT_FALSE(source.token().isDone(kT0 + milliseconds(10) - nanoseconds(1)));
  EXPECT_TRUE(source.token().isDone(kT0 + milliseconds(10)));
  EXPECT_FALSE(source.isCancelled());
  CancellationSource other;
  other.cancel();
  EXPECT_TRUE(other.token().isDone(kT0));
}

TEST(CancellationTree, ParentExpiryCancelsInheritingChildrenButNotIgnoringOnes) {
  CancellationSource root(Deadline::at(kT0 + milliseconds(100)));
  auto inherit = CancellationSource::childOf(root.token());
  auto grandchild = CancellationSource::childOf(inherit.token());
  auto cleanup = CancellationSource::childOf(root.token(), Deadline::at(kT0 + milliseconds(900)),
                                             ParentDeadline::Ignore);
  auto under_cleanup = CancellationSource::childOf(cleanup.token());
  EXPECT_TRUE(root.expireIfDue(kT0 + milliseconds(100)));
  EXPECT_EQ(inherit.reason(), CancelReason::DeadlineExceeded);
  EXPECT_EQ(grandchild.reason(), CancelReason::DeadlineExceeded);
  EXPECT_FALSE(cleanup.isCancelled());
  EXPECT_FALSE(under_cleanup.isCancelled());
  EXPECT_TRUE(cleanup.expireIfDue(kT0 + milliseconds(900)));
  EXPECT_EQ(under_cleanup.reason(), CancelReason::DeadlineExceeded);
}

TEST(CancellationTree, ExplicitCancelAfterExpiryStillReachesIgnoringDescendants) {
  CancellationSource root;
  CancellationSource request = CancellationSource::childOf(root.token(), Deadline::at(kT0));
  auto call = CancellationSource::childOf(request.token());
  auto cleanup =
      CancellationSource::childOf(call.token(), Deadline::infinite(), ParentDeadline::Ignore);
  EXPECT_TRUE(request.expireIfDue(kT0));
  EXPECT_FALSE(cleanup.isCancelled());
  EXPECT_TRUE(root.cancel());
  EXPECT_EQ(cleanup.reason(), CancelReason::Cancelled);
  // The expired nodes keep their first reason.
  EXPECT_EQ(request.reason(), CancelReason::DeadlineExceeded);
  EXPECT_EQ(call.reason(), CancelReason::DeadlineExceeded);
}

TEST(CancellationTree, IgnoreChildCreationFollowsTheParentsHistory) {
  CancellationSource expired(Deadline::at(kT0));
  expired.expireIfDue(kT0);
  EXPECT_FALSE(CancellationSource::childOf(expired.token(), Deadline{}, ParentDeadline::Ignore)
                   .isCancelled());
  EXPECT_EQ(CancellationSource::childOf(expired.token()).reason(), CancelReason::DeadlineExceeded);

  EXPECT_FALSE(expired.cancel());  // already cancelled: returns false, but is remembered
  EXPECT_EQ(
      CancellationSource::childOf(expired.token(), Deadline{}, ParentDeadline::Ignore).reason(),
      CancelReason::Cancelled);
  // An inheriting child of that node still reports the deadline, and remembers the cancel too.
  auto inherit = CancellationSource::childOf(expired.token());
  EXPECT_EQ(inherit.reason(), CancelReason::DeadlineExceeded);
  EXPECT_EQ(
      CancellationSource::childOf(inherit.token(), Deadline{}, ParentDeadline::Ignore).reason(),
      CancelReason::Cancelled);

  CancellationSource cancelled;
  cancelled.cancel();
  EXPECT_EQ(
      CancellationSource::childOf(cancelled.token(), Deadline{}, ParentDeadline::Ignore).reason(),
      CancelReason::Cancelled);
}

TEST(CancellationTree, ChildrenOutliveTheirParentsHandles) {
  std::optional<CancellationSource> child;
  CancellationToken parent_token;
  {
    CancellationSource parent(Deadline::at(kT0 + milliseconds(5)));
    parent_token = parent.token();
    child.emplace(CancellationSource::childOf(parent.token()));
  }
  parent_token = CancellationToken{};  // drop the last handle to the parent node
  EXPECT_EQ(child->deadline(), Deadline::at(kT0 + milliseconds(5)));
  EXPECT_TRUE(child->expireIfDue(kT0 + milliseconds(5)));
}

TEST(CancellationTree, DestroyingTheSourceDoesNotCancel) {
  CancellationToken token;
  {
    CancellationSource source;
    token = source.token();
  }
  EXPECT_FALSE(token.isCancelled());
}

TEST(CancellationTree, DestroyedChildrenLeaveTheParentWorking) {
  CancellationSource root;
  std::vector<CancellationSource> kept;
  for (int i = 0; i < 100; ++i) {
    auto child = CancellationSource::childOf(root.token());
    if (i % 3 == 0) {
      kept.push_back(std::move(child));
    }
  }
  EXPECT_TRUE(root.cancel());
  for (const auto& child : kept) {
    EXPECT_TRUE(child.isCancelled());
  }
}

TEST(CancellationTree, SourceCopiesShareTheNode) {
  CancellationSource a;
  const CancellationSource b = a;  // NOLINT(performance-unnecessary-copy-initialization)
  EXPECT_TRUE(a.cancel());
  EXPECT_TRUE(b.isCancelled());
}

TEST(CancellationTree, DeepChainsCancelWithoutRecursion) {
  CancellationSource root;
  std::vector<CancellationSource> chain;
  chain.reserve(2000);
  CancellationToken parent = root.token();
  for (int i = 0; i < 2000; ++i) {
    chain.push_back(CancellationSource::childOf(parent));
    parent = chain.back().token();
  }
  EXPECT_TRUE(root.cancel());
  EXPECT_TRUE(chain.back().isCancelled());
  // Destroy leaf-first so that no destructor chain recurses 2000 levels deep.
  while (!chain.empty()) {
    chain.pop_back();
  }
}

TEST(CancellationToken, CallbackMayUnregisterItselfAndRegisterMore) {
  CancellationSource source;
  CancellationRegistration self;
  int inner_runs = 0;
  CancellationRegistration inner;
  self = source.token().onCancel([&](CancelReason) {
    self.reset();  // must not deadlock or wait for itself
    inner = source.token().onCancel([&](CancelReason) { ++inner_runs; });
  });
  EXPECT_TRUE(source.cancel());
  EXPECT_FALSE(self.active());
  EXPECT_EQ(inner_runs, 1);  // the node was already cancelled: ran immediately
}

TEST(CancellationToken, CallbackMayCancelOtherNodes) {
  CancellationSource a;
  CancellationSource b;
  auto registration = a.token().onCancel([&](CancelReason) { b.cancel(); });
  a.cancel();
  EXPECT_TRUE(b.isCancelled());
}

TEST(CancellationToken, CallbackMayUnregisterALaterCallbackOnTheSameNode) {
  CancellationSource source;
  int later_runs = 0;
  CancellationRegistration later;
  auto first = source.token().onCancel([&](CancelReason) { later.reset(); });
  later = source.token().onCancel([&](CancelReason) { ++later_runs; });
  source.cancel();
  EXPECT_EQ(later_runs, 0);
}

// Verifies that unregistering from another thread while the callback runs waits for it to end.
TEST(CancellationRegistration, ResetFromAnotherThreadWaitsForARunningCallback) {
  CancellationSource source;
  std::atomic<bool> entered{false};
  std::atomic<bool> release{false};
  std::atomic<bool> finished{false};
  auto registration =
      std::make_unique<CancellationRegistration>(source.token().onCancel([&](CancelReason) {
        entered.store(true);
        while (!release.load()) {
          std::this_thread::yield();
        }
        finished.store(true);
      }));
  std::thread canceller([&] { source.cancel(); });
  while (!entered.load()) {
    std::this_thread::yield();
  }
  std::atomic<bool> finished_when_reset_returned{false};
  std::thread unregisterer([&] {
    registration->reset();
    finished_when_reset_returned.store(finished.load());
  });
  for (int i = 0; i < 1000; ++i) {
    std::this_thread::yield();  // let reset() start waiting
  }
  release.store(true);
  unregisterer.join();
  canceller.join();
  EXPECT_TRUE(finished_when_reset_returned.load());
}

// ---- Stress ----------------------------------------------------------------------------------

TEST(CancellationStress, ConcurrentCancelsRunEachCallbackExactlyOnce) {
  for (int round = 0; round < 200; ++round) {
    CancellationSource source;
    std::atomic<int> runs{0};
    std::atomic<int> winners{0};
    auto registration = source.token().onCancel([&](CancelReason) { runs.fetch_add(1); });
    std::vector<std::thread> threads;
    threads.reserve(4);

    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        const bool won = t % 2 == 0 ? source.cancel() : source.expireIfDue(TimePoint::max());
        if (won) {
          winners.fetch_add(1);
        }
      });
    }
    for (auto& thread : threads) {
      thread.join();
    }
    ASSERT_EQ(runs.load(), 1);
    ASSERT_EQ(winners.load(), 1);
  }
}

TEST(CancellationStress, RegisterAndUnregisterRacingCancelRunEachCallbackAtMostOnce) {
  constexpr int kThreads = 3;
  constexpr int kPerThread = 300;
  for (int round = 0; round < 10; ++round) {
    CancellationSource source;
    std::vector<std::atomic<int>> runs(static_cast<std::size_t>(kThreads) * kPerThread);
    std::vector<std::vector<CancellationRegistration>> kept(kThreads);
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    threads.reserve(kThreads);

    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        while (!go.load()) {
          std::this_thread::yield();
        }
        for (int i = 0; i < kPerThread; ++i) {
          const int slot = t * kPerThread + i;
          auto registration =
              source.token().onCancel([&runs, slot](CancelReason) { runs[slot].fetch_add(1); });
          if (i % 2 == 0) {
            kept[t].push_back(std::move(registration));  // odd ones unregister now
          }
        }
      });
    }
    std::thread canceller([&] {
      while (!go.load()) {
        std::this_thread::yield();
      }
      for (int i = 0; i < 50; ++i) {
        std::this_thread::yield();
      }
      source.cancel();
    });
    go.store(true);
    for (auto& thread : threads) {
      thread.join();
    }
    canceller.join();
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i < kPerThread; ++i) {
        const int count = runs[t * kPerThread + i].load();
        if (i % 2 == 0) {
          ASSERT_EQ(count, 1) << "kept registration " << t << "/" << i;
        } else {
          ASSERT_LE(count, 1) << "dropped registration " << t << "/" << i;
        }
      }
    }
  }
}

TEST(CancellationStress, ChildrenCreatedAndDestroyedDuringParentCancelAllEndCancelled) {
  for (int round = 0; round < 20; ++round) {
    CancellationSource root;
    std::atomic<bool> go{false};
    std::atomic<bool> cancel_returned{false};
    std::atomic<int> live_after_cancel{0};
    std::vector<std::thread> threads;
    threads.reserve(3);

    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&] {
        while (!go.load()) {
          std::this_thread::yield();
        }
        std::vector<CancellationSource> mine;
        for (int i = 0; i < 200; ++i) {
          auto child = CancellationSource::childOf(root.token());
          auto grandchild = CancellationSource::childOf(child.token());
          if (i % 2 == 0) {
            mine.push_back(std::move(grandchild));
          }
          if (i % 3 == 0) {
            mine.push_back(std::move(child));
          }
        }
        while (!cancel_returned.load()) {
          std::this_thread::yield();
        }
        for (const auto& s : mine) {
          if (!s.isCancelled()) {
            live_after_cancel.fetch_add(1);
          }
        }
      });
    }
    go.store(true);
    for (int i = 0; i < 100; ++i) {
      std::this_thread::yield();
    }
    root.cancel();
    cancel_returned.store(true);
    for (auto& thread : threads) {
      thread.join();
    }
    ASSERT_EQ(live_after_cancel.load(), 0);
  }
}

}  // namespace
}  // namespace sluice::resilience
