#include "resilience/spsc_ring.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "resilience/queue_status.h"

namespace sluice::resilience {
namespace {

// Counts live instances so that tests can prove nothing leaks or is destroyed twice.
struct RingCounted {
  explicit RingCounted(int v, std::atomic<int>* live_in) : value(v), live(live_in) { ++*live; }
  RingCounted(RingCounted&& other) noexcept : value(other.value), live(other.live) { ++*live; }
  RingCounted& operator=(RingCounted&&) = delete;
  RingCounted(const RingCounted&) = delete;
  RingCounted& operator=(const RingCounted&) = delete;
  ~RingCounted() { --*live; }
  int value;
  std::atomic<int>* live;
};

struct RingThrowsOnConstruct {
  explicit RingThrowsOnConstruct(bool do_throw) {
    if (do_throw) {
      throw std::runtime_error("boom");
    }
  }
  RingThrowsOnConstruct(RingThrowsOnConstruct&&) noexcept = default;
  RingThrowsOnConstruct& operator=(RingThrowsOnConstruct&&) noexcept = default;
  RingThrowsOnConstruct(const RingThrowsOnConstruct&) = delete;
  RingThrowsOnConstruct& operator=(const RingThrowsOnConstruct&) = delete;
  ~RingThrowsOnConstruct() = default;
};

TEST(SpscRing, ValidateRejectsCapacitiesOutOfRange) {
  EXPECT_TRUE(SpscRing<int>::validate({.capacity = 0}).has_value());
  EXPECT_EQ(SpscRing<int>::validate({.capacity = 1}), std::nullopt);
  EXPECT_EQ(SpscRing<int>::validate({.capacity = SpscRing<int>::kMaxCapacity}), std::nullopt);
  EXPECT_TRUE(SpscRing<int>::validate({.capacity = SpscRing<int>::kMaxCapacity + 1}));
}

TEST(SpscRing, PopsInPushOrder) {
  SpscRing<int> ring({.capacity = 4});
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(ring.tryPush(i));
  }
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(ring.tryPop().value, i);
  }
  EXPECT_EQ(ring.tryPop().value, std::nullopt);
}

TEST(SpscRing, HoldsExactlyCapacityIncludingOne) {
  for (std::size_t capacity : {1U, 2U, 3U, 7U, 64U}) {
    SpscRing<std::size_t> ring({.capacity = capacity});
    for (std::size_t i = 0; i < capacity; ++i) {
      ASSERT_TRUE(ring.tryPush(i)) << capacity;
    }
    EXPECT_FALSE(ring.tryPush(capacity)) << capacity;
    EXPECT_EQ(ring.sizeApprox(), capacity);
    EXPECT_EQ(ring.tryPop().value, 0U);
    EXPECT_TRUE(ring.tryPush(capacity));
    EXPECT_FALSE(ring.tryPush(capacity + 1));
  }
}

TEST(SpscRing, ZeroCapacityIsClampedToOne) {
  SpscRing<int> ring({.capacity = 0});
  EXPECT_EQ(ring.capacity(), 1U);
  EXPECT_TRUE(ring.tryPush(1));
  EXPECT_FALSE(ring.tryPush(2));
}

TEST(SpscRing, WrapsAroundManyTimesWithoutLosingOrder) {
  SpscRing<std::uint64_t> ring({.capacity = 5});
  std::uint64_t next_push = 0;
  std::uint64_t next_pop = 0;
  std::mt19937_64 rng(3);
  for (int step = 0; step < 100000; ++step) {
    if (rng() % 2 == 0) {
      if (ring.tryPush(next_push)) {
        ++next_push;
      }
    } else if (auto v = ring.tryPop()) {
      ASSERT_EQ(*v, next_pop);
      ++next_pop;
    }
    ASSERT_LE(next_push - next_pop, 5U);
  }
  EXPECT_GT(next_pop, 10000U);
}

TEST(SpscRing, FailedPushLeavesTheValueUntouched) {
  SpscRing<std::unique_ptr<int>> ring({.capacity = 1});
  ASSERT_TRUE(ring.tryPush(std::make_unique<int>(1)));
  auto value = std::make_unique<int>(2);
  // A failed push does not move from its argument, which is what this test checks.
  // NOLINTBEGIN(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
  EXPECT_FALSE(ring.tryPush(std::move(value)));
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(*value, 2);
  // NOLINTEND(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
}

TEST(SpscRing, ThrowingConstructorLeavesTheRingUnchanged) {
  SpscRing<RingThrowsOnConstruct> ring({.capacity = 1});
  EXPECT_THROW((void)ring.tryEmplace(true), std::runtime_error);
  EXPECT_EQ(ring.sizeApprox(), 0U);
  EXPECT_TRUE(ring.tryEmplace(false));
}

TEST(SpscRing, EmplaceConstructsInPlace) {
  SpscRing<std::string> ring({.capacity = 2});
  ASSERT_TRUE(ring.tryEmplace(3, 'z'));
  EXPECT_EQ(ring.tryPop().value, "zzz");
}

TEST(SpscRing, DestructorDestroysRemainingElementsOnce) {
  std::atomic<int> live{0};
  {
    SpscRing<RingCounted> ring({.capacity = 3});
    ASSERT_TRUE(ring.tryEmplace(1, &live));
    ASSERT_TRUE(ring.tryEmplace(2, &live));
    { auto first = ring.tryPop(); }
    EXPECT_EQ(live.load(), 1);
  }
  EXPECT_EQ(live.load(), 0);
}

// Verifies lossless, duplicate-free, strictly ordered delivery between one producer and one
// consumer thread through a small ring (so both sides hit full and empty constantly).
TEST(SpscRingStress, OneProducerOneConsumerLosslessInOrder) {
  constexpr std::uint64_t kItems = 30000;
  SpscRing<std::uint64_t> ring({.capacity = 16});
  std::atomic<bool> order_violated{false};
  std::uint64_t received = 0;
  std::latch start(2);
  std::thread producer([&] {
    start.arrive_and_wait();
    for (std::uint64_t i = 0; i < kItems; ++i) {
      while (!ring.tryPush(i)) {
        std::this_thread::yield();
      }
    }
  });
  std::thread consumer([&] {
    start.arrive_and_wait();
    while (received < kItems) {
      auto v = ring.tryPop();
      if (!v) {
        std::this_thread::yield();
        continue;
      }
      if (*v != received) {
        order_violated = true;
      }
      ++received;
    }
  });
  producer.join();
  consumer.join();
  EXPECT_FALSE(order_violated.load());
  EXPECT_EQ(received, kItems);
  EXPECT_EQ(ring.tryPop().value, std::nullopt);
}

// Verifies that heap-owning elements cross threads intact and none leaks (checked under ASan).
TEST(SpscRingStress, MoveOnlyElementsCrossThreadsWithoutLeaks) {
  constexpr int kItems = 50000;
  SpscRing<std::unique_ptr<std::string>> ring({.capacity = 7});
  std::int64_t sum = 0;
  std::latch start(2);
  std::thread producer([&] {
    start.arrive_and_wait();
    for (int i = 0; i < kItems; ++i) {
      auto item = std::make_unique<std::string>(std::to_string(i));
      while (!ring.tryPush(std::move(item))) {  // NOLINT(bugprone-use-after-move): kept on failure
        std::this_thread::yield();
      }
    }
  });
  std::thread consumer([&] {
    start.arrive_and_wait();
    for (int received = 0; received < kItems;) {
      if (auto v = ring.tryPop()) {
        sum += std::stoll(**v);
        ++received;
      } else {
        std::this_thread::yield();
      }
    }
  });
  producer.join();
  consumer.join();
  EXPECT_EQ(sum, static_cast<std::int64_t>(kItems) * (kItems - 1) / 2);
}

TEST(SpscRingClose, AcceptedElementsDrainThenPopsReportClosed) {
  SpscRing<int> ring({.capacity = 4});
  EXPECT_EQ(ring.tryPop().status, PopStatus::Empty);
  ASSERT_TRUE(ring.tryPush(1));
  ASSERT_TRUE(ring.tryPush(2));
  ring.close();
  EXPECT_TRUE(ring.isClosed());
  EXPECT_EQ(ring.sizeApprox(), 2U);
  auto first = ring.tryPop();
  EXPECT_EQ(first.status, PopStatus::Popped);
  EXPECT_EQ(first.value, 1);
  EXPECT_EQ(ring.tryPop().value, 2);
  const auto after = ring.tryPop();
  EXPECT_EQ(after.status, PopStatus::Closed);
  EXPECT_FALSE(after);
  EXPECT_EQ(ring.tryPop().status, PopStatus::Closed);
}

TEST(SpscRingClose, PushAfterCloseFailsAsClosedAndLeavesTheValueUntouched) {
  SpscRing<std::unique_ptr<int>> ring({.capacity = 4});
  ASSERT_TRUE(ring.tryPush(std::make_unique<int>(1)));
  ring.close();
  auto value = std::make_unique<int>(7);
  const PushResult r = ring.tryPush(std::move(value));
  EXPECT_FALSE(r);
  EXPECT_EQ(r.status, PushStatus::Closed);
  // NOLINTNEXTLINE(bugprone-use-after-move,clang-analyzer-cplusplus.Move): kept on failure
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(*value, 7);
  EXPECT_EQ(ring.sizeApprox(), 1U);
  ASSERT_TRUE(ring.tryPop());
  // Popping made room, but the ring stays closed.
  EXPECT_EQ(ring.tryEmplace(std::make_unique<int>(8)).status, PushStatus::Closed);
  EXPECT_EQ(ring.tryPop().status, PopStatus::Closed);
}

TEST(SpscRingClose, AFullRingReportsFullBeforeCloseAndClosedAfter) {
  for (const std::size_t capacity : {1U, 3U, 4U}) {
    SpscRing<std::size_t> ring({.capacity = capacity});
    for (std::size_t i = 0; i < capacity; ++i) {
      ASSERT_TRUE(ring.tryPush(i));
    }
    EXPECT_EQ(ring.tryPush(99).status, PushStatus::Full) << capacity;
    ring.close();
    EXPECT_EQ(ring.tryPush(99).status, PushStatus::Closed) << capacity;
    for (std::size_t i = 0; i < capacity; ++i) {
      EXPECT_EQ(ring.tryPop().value, i) << capacity;
    }
    EXPECT_EQ(ring.tryPop().status, PopStatus::Closed) << capacity;
  }
}

TEST(SpscRingClose, CloseIsIdempotent) {
  SpscRing<int> ring({.capacity = 2});
  ASSERT_TRUE(ring.tryPush(1));
  ring.close();
  ring.close();
  EXPECT_EQ(ring.tryPush(2).status, PushStatus::Closed);
  EXPECT_EQ(ring.tryPop().value, 1);
  ring.close();
  EXPECT_EQ(ring.tryPop().status, PopStatus::Closed);
}

// Verifies the producer/consumer hand-off of close(): the consumer pops everything the producer
// pushed before closing, in order, and only then sees Closed.
TEST(SpscRingCloseStress, ConsumerDrainsEverythingPushedBeforeCloseInOrder) {
  for (const std::size_t capacity : {1U, 7U, 64U}) {
    // Capacity 1 hands over every item with a context switch when the threads share a core.
    const std::uint64_t pushes = capacity == 1 ? 3000 : 30000;
    SpscRing<std::uint64_t> ring({.capacity = capacity});
    std::uint64_t received = 0;
    std::atomic<bool> order_violated{false};
    std::latch start(2);
    std::thread producer([&] {
      start.arrive_and_wait();
      for (std::uint64_t i = 0; i < pushes;) {
        if (ring.tryPush(i)) {
          ++i;
        } else {
          std::this_thread::yield();
        }
      }
      ring.close();
    });
    std::thread consumer([&] {
      start.arrive_and_wait();
      while (true) {
        auto r = ring.tryPop();
        if (r.status == PopStatus::Closed) {
          break;
        }
        if (!r) {
          std::this_thread::yield();
          continue;
        }
        if (*r != received) {
          order_violated = true;
        }
        ++received;
      }
    });
    producer.join();
    consumer.join();
    EXPECT_FALSE(order_violated.load()) << capacity;
    EXPECT_EQ(received, pushes) << capacity;
  }
}

}  // namespace
}  // namespace sluice::resilience
