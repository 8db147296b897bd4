#include "resilience/lb/round_robin.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::resilience {
namespace {

template <typename Eligible>
std::string sequence(RoundRobin& rr, int count, Eligible eligible) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    const std::optional<std::size_t> host = rr.pick(eligible);
    out += host ? static_cast<char>('a' + *host) : '-';
  }
  return out;
}

std::string sequence(RoundRobin& rr, int count) {
  return sequence(rr, count, [](std::size_t) { return true; });
}

TEST(RoundRobin, RotatesInIndexOrder) {
  RoundRobin rr(3);
  EXPECT_EQ(sequence(rr, 7), "abcabca");
}

TEST(RoundRobin, StartsAtTheGivenOffsetModuloSize) {
  RoundRobin rr(3, 4);
  EXPECT_EQ(rr.cursor(), 1U);
  EXPECT_EQ(sequence(rr, 4), "bcab");
}

TEST(RoundRobin, EmptyPicksNothing) {
  RoundRobin rr(0, 5);
  EXPECT_EQ(rr.pick(), std::nullopt);
  EXPECT_EQ(rr.size(), 0U);
}

// Verifies that the host after an ineligible one does not inherit its turns.
TEST(RoundRobin, IneligibleHostsTurnsAreNotHandedToItsSuccessor) {
  RoundRobin rr(4);
  EXPECT_EQ(sequence(rr, 9, [](std::size_t i) { return i != 1; }), "acdacdacd");
}

TEST(RoundRobin, NothingEligibleReturnsNulloptAndKeepsTheCursor) {
  RoundRobin rr(3);
  EXPECT_EQ(sequence(rr, 1), "a");
  EXPECT_EQ(rr.pick([](std::size_t) { return false; }), std::nullopt);
  EXPECT_EQ(rr.cursor(), 1U);
  EXPECT_EQ(sequence(rr, 2), "bc");
}

TEST(RoundRobin, AsksEligibilityOnlyUntilTheFirstEligibleHost) {
  RoundRobin rr(5);
  std::vector<std::size_t> asked;
  const std::optional<std::size_t> host = rr.pick([&](std::size_t i) {
    asked.push_back(i);
    return i >= 2;
  });
  EXPECT_EQ(host, 2U);
  EXPECT_EQ(asked, (std::vector<std::size_t>{0, 1, 2}));
}

TEST(RoundRobin, AddedHostJoinsAtTheEndOfTheCycle) {
  RoundRobin rr(2);
  EXPECT_EQ(sequence(rr, 1), "a");
  rr.addHost();
  EXPECT_EQ(sequence(rr, 4), "bcab");
}

TEST(RoundRobin, RemovingAHostKeepsTheNextHost) {
  RoundRobin rr(4);
  EXPECT_EQ(sequence(rr, 2), "ab");  // next: old c (index 2)
  rr.removeHost(0);                  // old c is now index 1
  EXPECT_EQ(rr.cursor(), 1U);
  EXPECT_EQ(sequence(rr, 1), "b");  // old c
  rr.removeHost(2);                 // the next host itself (old d) goes: its successor is next
  EXPECT_EQ(rr.size(), 2U);
  EXPECT_EQ(sequence(rr, 2), "ab");  // wrapped round to old b, then old c
  rr.removeHost(9);
  EXPECT_EQ(rr.size(), 2U);
}

TEST(RoundRobin, RemovingTheLastHostsEmptiesIt) {
  RoundRobin rr(1);
  rr.removeHost(0);
  EXPECT_EQ(rr.pick(), std::nullopt);
}

// Verifies fairness under seeded random eligibility: within a stretch with a fixed eligible set E,
// every |E| consecutive picks (after the first) hit each host of E exactly once.
TEST(RoundRobin, EachEligibleHostOncePerCycleAcrossEligibilityChanges) {
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    std::mt19937_64 rng(seed);
    const std::size_t n = 1 + rng() % 20;
    RoundRobin rr(n, rng());
    for (int stretch = 0; stretch < 10; ++stretch) {
      std::vector<bool> eligible(n);
      std::size_t eligible_count = 0;
      for (std::size_t i = 0; i < n; ++i) {
        eligible[i] = rng() % 3 != 0;
        eligible_count += eligible[i] ? 1 : 0;
      }
      const auto is_eligible = [&](std::size_t i) { return static_cast<bool>(eligible[i]); };
      if (eligible_count == 0) {
        ASSERT_EQ(rr.pick(is_eligible), std::nullopt);
        continue;
      }
      static_cast<void>(rr.pick(is_eligible));  // the first pick may finish an earlier cycle
      for (int cycle = 0; cycle < 3; ++cycle) {
        std::vector<int> seen(n, 0);
        for (std::size_t p = 0; p < eligible_count; ++p) {
          const std::optional<std::size_t> host = rr.pick(is_eligible);
          ASSERT_TRUE(host.has_value());
          ASSERT_TRUE(eligible[*host]);
          ++seen[*host];
        }
        for (std::size_t i = 0; i < n; ++i) {
          ASSERT_EQ(seen[i], eligible[i] ? 1 : 0) << "seed " << seed << " host " << i;
        }
      }
    }
  }
}

static_assert(std::is_nothrow_move_constructible_v<RoundRobin>);

}  // namespace
}  // namespace sluice::resilience
