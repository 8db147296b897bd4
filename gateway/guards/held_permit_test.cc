#include "gateway/guards/held_permit.h"

#include <utility>

#include <gtest/gtest.h>

#include "resilience/semaphore.h"

namespace sluice::gateway::guards {
namespace {

TEST(HeldPermit, ReturnsTheSlotWhenResetMovedOverOrDestroyed) {
  resilience::Semaphore sem({.capacity = 2, .max_waiters = 0});
  {
    HeldPermit a(sem.tryAcquire());
    HeldPermit b(sem.tryAcquire());
    EXPECT_TRUE(a && b);
    EXPECT_EQ(sem.available(), 0);
    a.reset();
    EXPECT_FALSE(a);
    EXPECT_EQ(sem.available(), 1);
    HeldPermit c(std::move(b));  // moving transfers, never duplicates or drops
    EXPECT_FALSE(b);             // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_EQ(sem.available(), 1);
    a = std::move(c);
    EXPECT_EQ(sem.available(), 1);
  }
  EXPECT_EQ(sem.available(), 2);
}

}  // namespace
}  // namespace sluice::gateway::guards
