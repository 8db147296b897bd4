#include "resilience/mpmc_queue.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/queue_status.h"

namespace sluice::resilience {
namespace {

// Counts live instances so that tests can prove nothing leaks or is destroyed twice.
struct Counted {
  explicit Counted(int v, std::atomic<int>* live_in) : value(v), live(live_in) { ++*live; }
  Counted(Counted&& other) noexcept : value(other.value), live(other.live) { ++*live; }
  Counted& operator=(Counted&&) = delete;
  Counted(const Counted&) = delete;
  Counted& operator=(const Counted&) = delete;
  ~Counted() { --*live; }
  int value;
  std::atomic<int>* live;
};

struct ThrowsOnConstruct {
  explicit ThrowsOnConstruct(bool do_throw) {
    if (do_throw) {
      throw std::runtime_error("boom");
    }
  }
  ThrowsOnConstruct(ThrowsOnConstruct&&) noexcept = default;
  ThrowsOnConstruct& operator=(ThrowsOnConstruct&&) noexcept = default;
  ThrowsOnConstruct(const ThrowsOnConstruct&) = delete;
  ThrowsOnConstruct& operator=(const ThrowsOnConstruct&) = delete;
  ~ThrowsOnConstruct() = default;
};

TEST(MpmcQueue, ValidateRejectsCapacitiesOutOfRange) {
  EXPECT_TRUE(MpmcQueue<int>::validate({.capacity = 0}).has_value());
  EXPECT_TRUE(MpmcQueue<int>::validate({.capacity = 1}).has_value());
  EXPECT_EQ(MpmcQueue<int>::validate({.capacity = 2}), std::nullopt);
  EXPECT_EQ(MpmcQueue<int>::validate({.capacity = MpmcQueue<int>::kMaxCapacity}), std::nullopt);
  EXPECT_TRUE(MpmcQueue<int>::validate({.capacity = MpmcQueue<int>::kMaxCapacity + 1}));
}

TEST(MpmcQueue, InvalidCapacityIsClampedToTheMinimum) {
  MpmcQueue<int> queue({.capacity = 0});
  EXPECT_EQ(queue.capacity(), 2U);
}

TEST(MpmcQueue, PopsInPushOrder) {
  MpmcQueue<int> queue({.capacity = 8});
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(queue.tryPush(i));
  }
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(queue.tryPop().value, i);
  }
  EXPECT_EQ(queue.tryPop().value, std::nullopt);
}

TEST(MpmcQueue, HoldsExactlyCapacityForAnyCapacity) {
  for (std::size_t capacity : {2U, 3U, 5U, 8U, 100U, 1000U}) {
    MpmcQueue<std::size_t> queue({.capacity = capacity});
    for (std::size_t i = 0; i < capacity; ++i) {
      ASSERT_TRUE(queue.tryPush(i)) << capacity;
    }
    EXPECT_FALSE(queue.tryPush(capacity)) << capacity;
    EXPECT_EQ(queue.sizeApprox(), capacity);
    EXPECT_EQ(queue.tryPop().value, 0U);
    EXPECT_TRUE(queue.tryPush(capacity)) << capacity;  // one slot freed, one accepted
    EXPECT_FALSE(queue.tryPush(capacity + 1)) << capacity;
  }
}

TEST(MpmcQueue, WrapsAroundManyTimesWithoutLosingOrder) {
  MpmcQueue<std::uint64_t> queue({.capacity = 3});
  std::uint64_t next_push = 0;
  std::uint64_t next_pop = 0;
  std::mt19937_64 rng(5);
  for (int step = 0; step < 100000; ++step) {
    if (rng() % 2 == 0) {
      if (queue.tryPush(next_push)) {
        ++next_push;
      }
    } else if (auto v = queue.tryPop()) {
      ASSERT_EQ(*v, next_pop);
      ++next_pop;
    }
    ASSERT_LE(next_push - next_pop, 3U);
  }
  EXPECT_GT(next_pop, 10000U);
}

TEST(MpmcQueue, FailedPushLeavesTheValueUntouched) {
  MpmcQueue<std::unique_ptr<int>> queue({.capacity = 2});
  ASSERT_TRUE(queue.tryPush(std::make_unique<int>(1)));
  ASSERT_TRUE(queue.tryPush(std::make_unique<int>(2)));
  auto value = std::make_unique<int>(3);
  // A failed push does not move from its argument, which is what this test checks.
  // NOLINTBEGIN(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
  EXPECT_FALSE(queue.tryPush(std::move(value)));
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(*value, 3);
  // NOLINTEND(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
}

TEST(MpmcQueue, SupportsMoveOnlyAndEmplace) {
  MpmcQueue<std::unique_ptr<std::string>> queue({.capacity = 4});
  ASSERT_TRUE(queue.tryEmplace(new std::string("x")));  // NOLINT(cppcoreguidelines-owning-memory)
  auto out = queue.tryPop();
  ASSERT_TRUE(out);
  EXPECT_EQ(**out, "x");
}

TEST(MpmcQueue, CopyPushOfThrowingTypeLeavesTheQueueUnchanged) {
  MpmcQueue<ThrowsOnConstruct> queue({.capacity = 2});
  EXPECT_THROW((void)queue.tryEmplace(true), std::runtime_error);
  EXPECT_EQ(queue.sizeApprox(), 0U);
  EXPECT_TRUE(queue.tryEmplace(false));
  EXPECT_TRUE(queue.tryEmplace(false));
  EXPECT_FALSE(queue.tryEmplace(false));
}

TEST(MpmcQueue, DestructorDestroysRemainingElementsOnce) {
  std::atomic<int> live{0};
  {
    MpmcQueue<Counted> queue({.capacity = 4});
    ASSERT_TRUE(queue.tryEmplace(1, &live));
    ASSERT_TRUE(queue.tryEmplace(2, &live));
    ASSERT_TRUE(queue.tryEmplace(3, &live));
    EXPECT_EQ(live.load(), 3);
    {
      auto one = queue.tryPop();
      EXPECT_EQ(one->value, 1);
    }
    EXPECT_EQ(live.load(), 2);
  }
  EXPECT_EQ(live.load(), 0);
}

TEST(MpmcQueue, SizeApproxTracksPushesAndPops) {
  MpmcQueue<int> queue({.capacity = 4});
  EXPECT_EQ(queue.sizeApprox(), 0U);
  ASSERT_TRUE(queue.tryPush(1));
  ASSERT_TRUE(queue.tryPush(2));
  EXPECT_EQ(queue.sizeApprox(), 2U);
  (void)queue.tryPop();
  EXPECT_EQ(queue.sizeApprox(), 1U);
}

// Verifies lossless, duplicate-free delivery with 2 producers and 2 consumers, and that each
// consumer sees every producer's items in that producer's push order.
TEST(MpmcQueueStress, TwoProducersTwoConsumersLosslessNoDuplicatesPerProducerFifo) {
  constexpr int kProducers = 2;
  constexpr int kConsumers = 2;
  constexpr std::uint64_t kPerProducer = 20000;
  MpmcQueue<std::uint64_t> queue({.capacity = 64});
  std::vector<std::atomic<int>> seen(kProducers * kPerProducer);
  std::atomic<std::uint64_t> consumed{0};
  std::atomic<bool> order_violated{false};
  std::latch start(kProducers + kConsumers);
  std::vector<std::thread> threads;
  threads.reserve(kProducers + kConsumers);
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      start.arrive_and_wait();
      for (std::uint64_t i = 0; i < kPerProducer; ++i) {
        const std::uint64_t item = (static_cast<std::uint64_t>(p) << 32) | i;
        while (!queue.tryPush(item)) {
          std::this_thread::yield();
        }
      }
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&] {
      std::vector<std::int64_t> last(kProducers, -1);
      start.arrive_and_wait();
      while (consumed.load() < kProducers * kPerProducer) {
        auto item = queue.tryPop();
        if (!item) {
          std::this_thread::yield();
          continue;
        }
        const auto producer = static_cast<std::size_t>(*item >> 32);
        const auto index = static_cast<std::int64_t>(*item & 0xffffffffU);
        if (index <= last[producer]) {
          order_violated = true;
        }
        last[producer] = index;
        seen[producer * kPerProducer + static_cast<std::uint64_t>(index)].fetch_add(1);
        consumed.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_FALSE(order_violated.load());
  EXPECT_EQ(consumed.load(), kProducers * kPerProducer);
  for (std::size_t i = 0; i < seen.size(); ++i) {
    ASSERT_EQ(seen[i].load(), 1) << "item " << i;
  }
  EXPECT_EQ(queue.tryPop().value, std::nullopt);
}

// Verifies that 4 threads each pushing and popping concurrently (every thread is both producer
// and consumer) neither lose nor duplicate nor leak elements, and the bound holds.
TEST(MpmcQueueStress, FourThreadsMixedPushPopConserveElements) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50000;
  std::atomic<int> live{0};
  std::atomic<std::int64_t> pushed_sum{0};
  std::atomic<std::int64_t> popped_sum{0};
  std::atomic<std::int64_t> popped{0};
  {
    MpmcQueue<Counted> queue({.capacity = 7});
    std::latch start(kThreads);
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 1);
        start.arrive_and_wait();
        for (int i = 0; i < kPerThread; ++i) {
          const int value = t * kPerThread + i;
          if (queue.tryEmplace(value, &live)) {
            pushed_sum.fetch_add(value);
          }
          if (rng() % 3 != 0) {
            if (auto out = queue.tryPop()) {
              popped_sum.fetch_add(out->value);
              popped.fetch_add(1);
            }
          }
          ASSERT_LE(queue.sizeApprox(), 7U);
        }
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    while (auto out = queue.tryPop()) {
      popped_sum.fetch_add(out->value);
      popped.fetch_add(1);
    }
    EXPECT_EQ(live.load(), 0);
  }
  EXPECT_EQ(popped_sum.load(), pushed_sum.load());
  EXPECT_GT(popped.load(), 0);
  EXPECT_EQ(live.load(), 0);
}

TEST(MpmcQueueClose, AcceptedElementsDrainThenPopsReportClosed) {
  MpmcQueue<int> queue({.capacity = 4});
  ASSERT_TRUE(queue.tryPush(1));
  ASSERT_TRUE(queue.tryPush(2));
  queue.close();
  EXPECT_TRUE(queue.isClosed());
  EXPECT_EQ(queue.sizeApprox(), 2U);
  auto first = queue.tryPop();
  EXPECT_EQ(first.status, PopStatus::Popped);
  EXPECT_EQ(first.value, 1);
  EXPECT_EQ(queue.tryPop().value, 2);
  const auto after = queue.tryPop();
  EXPECT_EQ(after.status, PopStatus::Closed);
  EXPECT_FALSE(after);
  EXPECT_EQ(queue.tryPop().status, PopStatus::Closed);  // and stays closed
}

TEST(MpmcQueueClose, AnOpenEmptyQueueReportsEmptyNotClosed) {
  MpmcQueue<int> queue({.capacity = 4});
  EXPECT_FALSE(queue.isClosed());
  EXPECT_EQ(queue.tryPop().status, PopStatus::Empty);
  ASSERT_TRUE(queue.tryPush(1));
  ASSERT_TRUE(queue.tryPop());
  EXPECT_EQ(queue.tryPop().status, PopStatus::Empty);
  queue.close();
  EXPECT_EQ(queue.tryPop().status, PopStatus::Closed);
}

TEST(MpmcQueueClose, PushAfterCloseFailsAsClosedAndLeavesTheValueUntouched) {
  MpmcQueue<std::unique_ptr<int>> queue({.capacity = 4});
  queue.close();
  auto value = std::make_unique<int>(7);
  const PushResult r = queue.tryPush(std::move(value));
  EXPECT_FALSE(r);
  EXPECT_EQ(r.status, PushStatus::Closed);
  // NOLINTNEXTLINE(bugprone-use-after-move,clang-analyzer-cplusplus.Move): kept on failure
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(*value, 7);
  EXPECT_EQ(queue.tryEmplace(std::make_unique<int>(8)).status, PushStatus::Closed);
  EXPECT_EQ(queue.sizeApprox(), 0U);
}

// Verifies that Closed wins over Full on a full queue, for masked and for divided indices (a
// full queue is where the closed bit meets a cell of the previous lap).
TEST(MpmcQueueClose, AFullQueueReportsFullBeforeCloseAndClosedAfter) {
  for (const std::size_t capacity : {2U, 3U, 4U, 7U, 8U}) {
    MpmcQueue<std::size_t> queue({.capacity = capacity});
    for (std::size_t lap = 0; lap < 3; ++lap) {  // move the positions off zero
      for (std::size_t i = 0; i < capacity; ++i) {
        ASSERT_TRUE(queue.tryPush(i));
      }
      for (std::size_t i = 0; i < capacity; ++i) {
        ASSERT_TRUE(queue.tryPop());
      }
    }
    for (std::size_t i = 0; i < capacity; ++i) {
      ASSERT_TRUE(queue.tryPush(i));
    }
    EXPECT_EQ(queue.tryPush(99).status, PushStatus::Full) << capacity;
    queue.close();
    EXPECT_EQ(queue.tryPush(99).status, PushStatus::Closed) << capacity;
    for (std::size_t i = 0; i < capacity; ++i) {
      EXPECT_EQ(queue.tryPop().value, i) << capacity;
      EXPECT_EQ(queue.tryPush(99).status, PushStatus::Closed) << capacity;
    }
    EXPECT_EQ(queue.tryPop().status, PopStatus::Closed) << capacity;
  }
}

TEST(MpmcQueueClose, CloseIsIdempotent) {
  MpmcQueue<int> queue({.capacity = 2});
  ASSERT_TRUE(queue.tryPush(1));
  queue.close();
  queue.close();
  EXPECT_TRUE(queue.isClosed());
  EXPECT_EQ(queue.sizeApprox(), 1U);
  EXPECT_EQ(queue.tryPop().value, 1);
  queue.close();
  EXPECT_EQ(queue.tryPop().status, PopStatus::Closed);
}

TEST(MpmcQueueClose, DestructorDestroysElementsLeftInAClosedQueue) {
  std::atomic<int> live{0};
  {
    MpmcQueue<Counted> queue({.capacity = 4});
    ASSERT_TRUE(queue.tryEmplace(1, &live));
    ASSERT_TRUE(queue.tryEmplace(2, &live));
    queue.close();
    EXPECT_EQ(live.load(), 2);
  }
  EXPECT_EQ(live.load(), 0);
}

// Holds a producer between claiming its cell and publishing it: the queue constructs elements in
// place between the two, and this constructor announces itself and waits for permission.
struct HeldInConstruction {
  HeldInConstruction(std::atomic<bool>* entered, const std::atomic<bool>* proceed) noexcept {
    entered->store(true);
    while (!proceed->load()) {
      std::this_thread::yield();
    }
  }
  HeldInConstruction(HeldInConstruction&&) noexcept = default;
  HeldInConstruction& operator=(HeldInConstruction&&) noexcept = default;
  HeldInConstruction(const HeldInConstruction&) = delete;
  HeldInConstruction& operator=(const HeldInConstruction&) = delete;
  ~HeldInConstruction() = default;
};

// Verifies the push that won the race with close(): claimed before it, published after it. Pops
// must report Empty (not Closed) until it is published, then return it, then report Closed.
TEST(MpmcQueueClose, APushClaimedBeforeCloseIsDrainedEvenIfPublishedAfter) {
  MpmcQueue<HeldInConstruction> queue({.capacity = 4});
  std::atomic<bool> entered{false};
  std::atomic<bool> proceed{false};
  PushStatus pushed = PushStatus::Full;
  std::thread producer([&] { pushed = queue.tryEmplace(&entered, &proceed).status; });
  while (!entered.load()) {
    std::this_thread::yield();
  }
  queue.close();
  EXPECT_EQ(queue.tryPop().status, PopStatus::Empty);  // claimed, not yet published
  std::atomic<bool> unused{false};
  const std::atomic<bool> go{true};
  HeldInConstruction late(&unused, &go);
  EXPECT_EQ(queue.tryPush(std::move(late)).status, PushStatus::Closed);
  proceed.store(true);
  producer.join();
  EXPECT_EQ(pushed, PushStatus::Pushed);
  EXPECT_EQ(queue.tryPop().status, PopStatus::Popped);
  EXPECT_EQ(queue.tryPop().status, PopStatus::Closed);
}

// Verifies the close race: 4 producers push until they see Closed, 4 consumers pop until they
// see Closed, and a fifth thread closes once some items have been consumed. Every push that
// reported Pushed is popped exactly once; nothing else is popped; Closed comes only at the end.
TEST(MpmcQueueCloseStress, ConcurrentCloseLosesAndDuplicatesNothing) {
  constexpr std::size_t kProducers = 4;
  constexpr std::size_t kConsumers = 4;
  constexpr std::uint64_t kMaxPerProducer = 1U << 20;
  constexpr std::int64_t kCloseAfterPops = 20000;
  MpmcQueue<std::uint64_t> queue({.capacity = 64});
  std::vector<std::uint64_t> accepted(kProducers, 0);  // each producer's own slot
  std::vector<std::vector<std::uint64_t>> popped(kConsumers);
  std::atomic<std::int64_t> pops{0};
  std::latch start(kProducers + kConsumers + 1);
  std::vector<std::thread> threads;
  threads.reserve(kProducers + kConsumers + 1);
  for (std::size_t p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      start.arrive_and_wait();
      std::uint64_t next = 0;
      while (next < kMaxPerProducer) {
        const PushResult r = queue.tryPush((std::uint64_t{p} << 32) | next);
        if (r.status == PushStatus::Closed) {
          break;
        }
        if (r) {
          ++next;
        } else {
          std::this_thread::yield();
        }
      }
      accepted[p] = next;
    });
  }
  for (std::size_t c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      start.arrive_and_wait();
      while (true) {
        auto r = queue.tryPop();
        if (r.status == PopStatus::Closed) {
          break;
        }
        if (r) {
          popped[c].push_back(*r);
          pops.fetch_add(1, std::memory_order_relaxed);
        } else {
          std::this_thread::yield();
        }
      }
    });
  }
  threads.emplace_back([&] {
    start.arrive_and_wait();
    while (pops.load(std::memory_order_relaxed) < kCloseAfterPops) {
      std::this_thread::yield();
    }
    queue.close();
  });
  for (auto& t : threads) {
    t.join();
  }
  std::vector<std::vector<int>> seen(kProducers);
  for (std::size_t p = 0; p < kProducers; ++p) {
    ASSERT_LT(accepted[p], kMaxPerProducer) << "the close never reached producer " << p;
    seen[p].assign(accepted[p], 0);
  }
  std::uint64_t total = 0;
  for (const auto& items : popped) {
    for (const std::uint64_t item : items) {
      const std::size_t p = item >> 32;
      const std::uint64_t index = item & 0xffffffffU;
      ASSERT_LT(p, kProducers);
      ASSERT_LT(index, accepted[p]) << "popped an item whose push did not report Pushed";
      ++seen[p][index];
      ++total;
    }
  }
  for (std::size_t p = 0; p < kProducers; ++p) {
    for (std::uint64_t i = 0; i < accepted[p]; ++i) {
      ASSERT_EQ(seen[p][i], 1) << "producer " << p << " item " << i;
    }
  }
  EXPECT_GE(total, static_cast<std::uint64_t>(kCloseAfterPops));
  EXPECT_EQ(queue.tryPop().status, PopStatus::Closed);
  EXPECT_EQ(queue.sizeApprox(), 0U);
}

}  // namespace
}  // namespace sluice::resilience
