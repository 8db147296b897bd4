#include "resilience/object_pool.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::resilience {
namespace {

// A pooled object that counts its live instances and remembers how it was used.
struct Scratch {
  explicit Scratch(std::atomic<int>* live_in) : live(live_in) { ++*live; }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  Scratch(Scratch&&) = delete;
  Scratch& operator=(Scratch&&) = delete;
  ~Scratch() { --*live; }
  std::atomic<int>* live;
  std::string text;
  int uses = 0;
};

class ObjectPoolTest : public ::testing::Test {
 protected:
  ObjectPool<Scratch> makePool(std::size_t max_idle) {
    return ObjectPool<Scratch>(
        {.max_idle = max_idle}, [this] { return std::make_unique<Scratch>(&live_); },
        [this](Scratch& s) {
          ++resets_;
          s.text.clear();
        });
  }
  std::atomic<int> live_{0};
  int resets_ = 0;
};

TEST(ObjectPoolSettings, ValidateAcceptsZeroAndTwoUpAndRejectsOne) {
  EXPECT_EQ(ObjectPool<int>::validate({.max_idle = 0}), std::nullopt);
  EXPECT_TRUE(ObjectPool<int>::validate({.max_idle = 1}).has_value());
  EXPECT_EQ(ObjectPool<int>::validate({.max_idle = 2}), std::nullopt);
  EXPECT_EQ(ObjectPool<int>::validate({.max_idle = ObjectPool<int>::kMaxIdle}), std::nullopt);
  EXPECT_TRUE(ObjectPool<int>::validate({.max_idle = ObjectPool<int>::kMaxIdle + 1}));
  EXPECT_EQ(ObjectPool<int>::validate({}), std::nullopt);
  EXPECT_EQ(ObjectPool<int>::Settings{}.max_idle, 64U);
}

TEST_F(ObjectPoolTest, AMissCallsTheFactory) {
  auto pool = makePool(4);
  auto handle = pool.acquire();
  ASSERT_TRUE(handle);
  EXPECT_EQ(live_.load(), 1);
  EXPECT_EQ(pool.created(), 1U);
  EXPECT_EQ(pool.idle(), 0U);
}

TEST_F(ObjectPoolTest, AReturnedObjectIsResetAndReused) {
  auto pool = makePool(4);
  Scratch* first = nullptr;
  {
    auto handle = pool.acquire();
    first = handle.get();
    handle->text = "request 1 secrets";
    ++handle->uses;
  }
  EXPECT_EQ(resets_, 1);
  EXPECT_EQ(pool.idle(), 1U);
  auto again = pool.acquire();
  EXPECT_EQ(again.get(), first);
  EXPECT_EQ(again->text, "");  // reset ran before reuse
  EXPECT_EQ(again->uses, 1);   // the same object, not a new one
  EXPECT_EQ(pool.created(), 1U);
  EXPECT_EQ(resets_, 1);  // acquiring does not reset
}

TEST_F(ObjectPoolTest, ObjectsReturnedBeyondMaxIdleAreDestroyed) {
  auto pool = makePool(2);
  {
    std::vector<ObjectPool<Scratch>::Handle> held;
    for (int i = 0; i < 5; ++i) {
      held.push_back(pool.acquire());
    }
    EXPECT_EQ(live_.load(), 5);
  }
  EXPECT_EQ(pool.idle(), 2U);
  EXPECT_EQ(pool.discarded(), 3U);
  EXPECT_EQ(live_.load(), 2);  // never hoarded
  EXPECT_EQ(resets_, 5);       // every return is reset, kept or not
}

TEST_F(ObjectPoolTest, MaxIdleZeroDisablesPooling) {
  auto pool = makePool(0);
  for (int i = 0; i < 3; ++i) {
    auto handle = pool.acquire();
    ASSERT_TRUE(handle);
  }
  EXPECT_EQ(pool.created(), 3U);
  EXPECT_EQ(pool.discarded(), 3U);
  EXPECT_EQ(pool.idle(), 0U);
  EXPECT_EQ(live_.load(), 0);
  EXPECT_EQ(resets_, 0);
}

TEST_F(ObjectPoolTest, MaxIdleOneIsClampedToTwo) {
  auto pool = makePool(1);
  EXPECT_EQ(pool.maxIdle(), 2U);
}

TEST_F(ObjectPoolTest, DetachTakesTheObjectOutOfThePool) {
  auto pool = makePool(4);
  std::unique_ptr<Scratch> kept = pool.acquire().detach();
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(pool.detached(), 1U);
  EXPECT_EQ(pool.idle(), 0U);
  EXPECT_EQ(resets_, 0);
  EXPECT_EQ(live_.load(), 1);
  kept.reset();
  EXPECT_EQ(live_.load(), 0);
  ObjectPool<Scratch>::Handle empty;
  EXPECT_EQ(empty.detach(), nullptr);
  EXPECT_EQ(pool.detached(), 1U);
}

TEST_F(ObjectPoolTest, ReleaseReturnsNowAndIsIdempotent) {
  auto pool = makePool(4);
  auto handle = pool.acquire();
  handle.release();
  EXPECT_FALSE(handle);
  EXPECT_EQ(pool.idle(), 1U);
  handle.release();
  EXPECT_EQ(pool.idle(), 1U);
  EXPECT_EQ(resets_, 1);
}

TEST_F(ObjectPoolTest, MoveAssigningOverAHandleReturnsItsObject) {
  auto pool = makePool(4);
  auto a = pool.acquire();
  auto b = pool.acquire();
  Scratch* b_object = b.get();
  a = std::move(b);
  EXPECT_EQ(pool.idle(), 1U);  // a's old object went back
  EXPECT_EQ(a.get(), b_object);
  EXPECT_FALSE(b);  // NOLINT(bugprone-use-after-move,clang-analyzer-cplusplus.Move): moved-from
  ObjectPool<Scratch>::Handle c(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move,clang-analyzer-cplusplus.Move): moved-from
  EXPECT_EQ(c.get(), b_object);
  EXPECT_EQ(pool.idle(), 1U);
}

TEST(ObjectPoolFactory, AFactoryReturningNullYieldsAnEmptyHandle) {
  ObjectPool<int> pool({.max_idle = 4}, []() -> std::unique_ptr<int> { return nullptr; });
  auto handle = pool.acquire();
  EXPECT_FALSE(handle);
  EXPECT_EQ(pool.created(), 0U);
}

TEST(ObjectPoolFactory, AThrowingFactoryPropagatesWithNothingChanged) {
  ObjectPool<int> pool({.max_idle = 4},
                       []() -> std::unique_ptr<int> { throw std::runtime_error("no memory"); });
  EXPECT_THROW((void)pool.acquire(), std::runtime_error);
  EXPECT_EQ(pool.created(), 0U);
  EXPECT_EQ(pool.idle(), 0U);
}

TEST(ObjectPoolFactory, DefaultConstructibleTypesNeedNoFactory) {
  ObjectPool<std::vector<int>> pool({.max_idle = 2}, [](std::vector<int>& v) { v.clear(); });
  {
    auto v = pool.acquire();
    v->push_back(1);
  }
  auto v = pool.acquire();
  EXPECT_TRUE(v->empty());
  EXPECT_EQ(pool.created(), 1U);
}

// An object that detects a second concurrent owner: `owner` is a plain int, so two threads
// holding it at once is also a data race that ThreadSanitizer reports.
struct Owned {
  int owner = -1;  // -1: idle (set by the reset hook)
  std::uint64_t uses = 0;
};

// Verifies exclusive ownership under 8 threads: each owner writes its id into the object,
// works a little, and checks the id is unchanged before giving the object back. max_idle is
// below the thread count, so reuses, misses and discards all happen.
TEST(ObjectPoolStress, EightThreadsNeverShareAnObject) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 4000;
  std::atomic<int> live{0};
  struct Tracked : Owned {
    explicit Tracked(std::atomic<int>* l) : live(l) { ++*live; }
    Tracked(const Tracked&) = delete;
    Tracked& operator=(const Tracked&) = delete;
    Tracked(Tracked&&) = delete;
    Tracked& operator=(Tracked&&) = delete;
    ~Tracked() { --*live; }
    std::atomic<int>* live;
  };
  ObjectPool<Tracked> pool(
      {.max_idle = 4}, [&live] { return std::make_unique<Tracked>(&live); },
      [](Tracked& t) { t.owner = -1; });
  std::atomic<int> violations{0};
  std::atomic<std::uint64_t> reuses{0};
  std::atomic<std::uint64_t> acquisitions{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int id = 0; id < kThreads; ++id) {
    threads.emplace_back([&, id] {
      start.arrive_and_wait();
      std::uint64_t my_reuses = 0;
      for (int round = 0; round < kRounds; ++round) {
        auto handle = pool.acquire();
        if (handle->owner != -1) {
          violations.fetch_add(1);
        }
        if (handle->uses > 0) {
          ++my_reuses;
        }
        handle->owner = id;
        ++handle->uses;
        // Some work while owning it; the owner must stay ours throughout.
        for (int spin = 0; spin < (round % 7); ++spin) {
          if (handle->owner != id) {
            violations.fetch_add(1);
          }
          if (spin % 3 == 0) {
            std::this_thread::yield();
          }
        }
        if (handle->owner != id) {
          violations.fetch_add(1);
        }
      }
      reuses.fetch_add(my_reuses);
      acquisitions.fetch_add(kRounds);
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(acquisitions.load(), std::uint64_t{kThreads} * kRounds);
  // Every acquisition was a reuse or a creation, and every object made is idle or destroyed.
  EXPECT_EQ(reuses.load() + pool.created(), acquisitions.load());
  EXPECT_GT(reuses.load(), acquisitions.load() / 2);
  EXPECT_EQ(pool.created(), pool.idle() + pool.discarded());
  EXPECT_LE(pool.idle(), 4U);
  EXPECT_EQ(static_cast<std::size_t>(live.load()), pool.idle());
}

}  // namespace
}  // namespace sluice::resilience
