#include "gateway/upstream/bulkhead.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::gateway::upstream {
namespace {

using Limit = Bulkhead::Limit;

TEST(Bulkhead, TakesUpToEachCapAndCountsOverflows) {
  Bulkhead b(config::Bulkhead{
      .max_connections = 2, .max_pending = 0, .max_requests = 1, .max_retries = 3});
  {
    const auto s1 = Bulkhead::acquire(&b, Limit::Connections);
    const auto s2 = Bulkhead::acquire(&b, Limit::Connections);
    const auto s3 = Bulkhead::acquire(&b, Limit::Connections);
    EXPECT_TRUE(s1 && s2);
    EXPECT_FALSE(s3);
    EXPECT_EQ(b.inUse(0), 2U);
    EXPECT_EQ(b.overflows(0), 1U);
  }
  EXPECT_EQ(b.inUse(0), 0U);                                 // the slots went back
  EXPECT_FALSE(Bulkhead::acquire(&b, Limit::Pending));       // a cap of 0 admits nothing
  EXPECT_TRUE(Bulkhead::acquire(nullptr, Limit::Requests));  // no bulkhead: no cap
}

TEST(Bulkhead, NeverExceedsItsCapUnderContention) {
  Bulkhead b(config::Bulkhead{.max_requests = 3});
  std::atomic<int> held{0};
  std::atomic<int> worst{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20'000; ++i) {
        const auto slot = Bulkhead::acquire(&b, Limit::Requests);
        if (!slot) continue;
        const int now = held.fetch_add(1) + 1;
        int w = worst.load();
        while (now > w && !worst.compare_exchange_weak(w, now)) {
        }
        held.fetch_sub(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(worst.load(), 3);
  EXPECT_EQ(b.inUse(2), 0U);
}

}  // namespace
}  // namespace sluice::gateway::upstream
