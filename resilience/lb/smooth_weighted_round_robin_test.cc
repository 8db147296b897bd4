#include "resilience/lb/smooth_weighted_round_robin.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::resilience {
namespace {

// Picks `count` hosts with every host eligible and spells them as letters (0 -> 'a').
std::string sequence(SmoothWeightedRoundRobin& rr, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    const std::optional<std::size_t> host = rr.pick();
    out += host ? static_cast<char>('a' + *host) : '-';
  }
  return out;
}

template <typename Eligible>
std::string sequence(SmoothWeightedRoundRobin& rr, int count, Eligible eligible) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    const std::optional<std::size_t> host = rr.pick(eligible);
    out += host ? static_cast<char>('a' + *host) : '-';
  }
  return out;
}

TEST(SmoothWeightedRoundRobin, FiveOneOneGivesTheNginxSequence) {
  SmoothWeightedRoundRobin rr({5, 1, 1});
  EXPECT_EQ(sequence(rr, 14),
            "aabacaa"
            "aabacaa");
}

TEST(SmoothWeightedRoundRobin, ThreeTwoInterleaves) {
  SmoothWeightedRoundRobin rr({3, 2});
  EXPECT_EQ(sequence(rr, 10),
            "ababa"
            "ababa");
}

TEST(SmoothWeightedRoundRobin, EqualWeightsRotateInIndexOrder) {
  SmoothWeightedRoundRobin rr({7, 7, 7, 7});
  EXPECT_EQ(sequence(rr, 8), "abcdabcd");
}

TEST(SmoothWeightedRoundRobin, ZeroWeightHostIsNeverPicked) {
  SmoothWeightedRoundRobin rr({0, 1, 0, 1});
  EXPECT_EQ(sequence(rr, 6), "bdbdbd");
}

TEST(SmoothWeightedRoundRobin, EmptyOrAllZeroWeightsPickNothing) {
  SmoothWeightedRoundRobin empty({});
  EXPECT_EQ(empty.size(), 0U);
  EXPECT_EQ(empty.pick(), std::nullopt);
  SmoothWeightedRoundRobin zeros({0, 0});
  EXPECT_EQ(zeros.pick(), std::nullopt);
}

// Verifies that with b left out, a and c run SWRR among themselves (5:1) from their credits.
TEST(SmoothWeightedRoundRobin, IneligibleHostIsSkippedAndOthersKeepTheirRatio) {
  SmoothWeightedRoundRobin rr({5, 1, 1});
  const auto not_b = [](std::size_t i) { return i != 1; };
  EXPECT_EQ(sequence(rr, 12, not_b),
            "aaacaa"
            "aaacaa");
}

TEST(SmoothWeightedRoundRobin, NothingEligibleReturnsNulloptAndChangesNothing) {
  SmoothWeightedRoundRobin rr({5, 1, 1});
  EXPECT_EQ(sequence(rr, 3), "aab");
  EXPECT_EQ(rr.pick([](std::size_t) { return false; }), std::nullopt);
  EXPECT_EQ(sequence(rr, 4), "acaa");
}

TEST(SmoothWeightedRoundRobin, EligibleIsAskedOncePerNonzeroWeightHostInIndexOrder) {
  SmoothWeightedRoundRobin rr({1, 0, 2, 3});
  std::vector<std::size_t> asked;
  const std::optional<std::size_t> host = rr.pick([&](std::size_t i) {
    asked.push_back(i);
    return true;
  });
  EXPECT_EQ(asked, (std::vector<std::size_t>{0, 2, 3}));
  EXPECT_EQ(host, 3U);
}

// Verifies the frozen credit: b owed a turn when it went away gets it right after it returns.
TEST(SmoothWeightedRoundRobin, ReturningHostResumesItsPlaceInTheRotation) {
  SmoothWeightedRoundRobin rr({5, 1, 1});
  EXPECT_EQ(sequence(rr, 2), "aa");  // credits now a=-4, b=2, c=2: b is next
  const auto not_b = [](std::size_t i) { return i != 1; };
  // a and c from credits (-4, 2), total 6: c=3 > a=1 -> c; then a a a ...
  EXPECT_EQ(sequence(rr, 3, not_b), "caa");
  // Credits are now a=-1, b=2 (frozen), c=-1: b, owed a turn, comes back second in line
  // (a: -1+5=4 beats b: 2+1=3), where a fresh host would have had to wait.
  EXPECT_EQ(sequence(rr, 2), "ab");
}

// Verifies that setWeight keeps every credit: from credits (-1, 1) the new 1:3 rotation starts
// mid-cycle (b b a b b) instead of from scratch (b a b b).
TEST(SmoothWeightedRoundRobin, SetWeightKeepsTheRotationState) {
  SmoothWeightedRoundRobin rr({1, 1});
  EXPECT_EQ(sequence(rr, 1), "a");
  rr.setWeight(1, 3);
  EXPECT_EQ(rr.weight(1), 3U);
  EXPECT_EQ(sequence(rr, 9),
            "bbabb"
            "babb");
}

TEST(SmoothWeightedRoundRobin, SetWeightZeroRemovesFromRotationAndOutOfRangeIsIgnored) {
  SmoothWeightedRoundRobin rr({1, 1, 1});
  rr.setWeight(1, 0);
  rr.setWeight(99, 5);
  EXPECT_EQ(rr.weight(99), 0U);
  EXPECT_EQ(sequence(rr, 4), "acac");
}

TEST(SmoothWeightedRoundRobin, AddAndRemoveHostKeepOtherCredits) {
  SmoothWeightedRoundRobin rr({5, 1, 1});
  EXPECT_EQ(sequence(rr, 2), "aa");  // credits a=-4, b=2, c=2
  rr.removeHost(0);                  // b, c are now indices 0, 1 with credits 2, 2
  EXPECT_EQ(rr.size(), 2U);
  EXPECT_EQ(sequence(rr, 4), "abab");
  rr.addHost(2);  // index 2, credit 0
  EXPECT_EQ(rr.size(), 3U);
  // credits (2, 2, 0) -> (3, 3, 2): a; (0, 4, 4): b; (1, 1, 6): c; (2, 2, 4): c.
  EXPECT_EQ(sequence(rr, 4), "abcc");
  rr.removeHost(7);
  EXPECT_EQ(rr.size(), 3U);
}

TEST(SmoothWeightedRoundRobin, ResetRestartsTheRotation) {
  SmoothWeightedRoundRobin rr({5, 1, 1});
  EXPECT_EQ(sequence(rr, 3), "aab");
  rr.reset();
  EXPECT_EQ(sequence(rr, 7), "aabacaa");
}

TEST(SmoothWeightedRoundRobin, HugeWeightsDoNotOverflow) {
  constexpr std::uint32_t kMax = 0xFFFFFFFFU;
  SmoothWeightedRoundRobin rr({kMax, kMax, 1});
  std::vector<int> picks(3, 0);
  for (int i = 0; i < 2000; ++i) {
    ++picks[*rr.pick()];
  }
  EXPECT_EQ(picks[0], 1000);
  EXPECT_EQ(picks[1], 1000);
  EXPECT_EQ(picks[2], 0);
}

// Verifies the proportionality guarantee over seeded random weights and eligibility changes:
// during each stretch with a fixed set of participants, every participant's pick count stays
// within 5 of its share k * w / W, however many exclusions came before (400 stretches each).
TEST(SmoothWeightedRoundRobin, PicksFollowWeightsWithinFiveAcrossEligibilityChanges) {
  double worst = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    std::mt19937_64 rng(seed);
    const std::size_t n = 1 + rng() % 12;
    std::vector<std::uint32_t> weights(n);
    for (std::uint32_t& w : weights) {
      w = static_cast<std::uint32_t>(rng() % 20);
    }
    SmoothWeightedRoundRobin rr(weights);
    for (int stretch = 0; stretch < 400; ++stretch) {
      std::vector<bool> eligible(n);
      double total = 0;
      for (std::size_t i = 0; i < n; ++i) {
        eligible[i] = rng() % (seed % 2 == 0 ? 2 : 4) != 0;
        total += eligible[i] ? weights[i] : 0;
      }
      const int k = static_cast<int>(1 + rng() % 200);
      std::vector<int> counts(n, 0);
      for (int p = 0; p < k; ++p) {
        const std::optional<std::size_t> host =
            rr.pick([&](std::size_t i) { return static_cast<bool>(eligible[i]); });
        ASSERT_EQ(host.has_value(), total > 0) << "seed " << seed;
        if (!host) {
          break;
        }
        ASSERT_TRUE(eligible[*host]);
        ASSERT_GT(weights[*host], 0U);
        ++counts[*host];
        for (std::size_t i = 0; i < n; ++i) {
          const double share = (p + 1) * (eligible[i] ? weights[i] / total : 0.0);
          worst = std::max(worst, std::abs(counts[i] - share));
        }
      }
    }
  }
  EXPECT_LE(worst, 5.0);
}

// Verifies that the credit clamp never alters an undisturbed rotation: picks match a plain
// transcription of nginx's ngx_http_upstream_get_peer() for seeded random weights.
TEST(SmoothWeightedRoundRobin, UndisturbedRotationMatchesNginxExactly) {
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 rng(seed);
    const std::size_t n = 1 + rng() % 40;
    std::vector<std::uint32_t> weights(n);
    for (std::uint32_t& w : weights) {
      w = static_cast<std::uint32_t>(seed % 2 == 0 ? 1 + rng() % 5 : rng() % 1000);
    }
    SmoothWeightedRoundRobin rr(weights);
    std::vector<std::int64_t> current(n, 0);  // nginx's peer->current_weight
    for (int p = 0; p < 3000; ++p) {
      std::int64_t total = 0;
      std::optional<std::size_t> best;
      for (std::size_t i = 0; i < n; ++i) {
        if (weights[i] == 0) {
          continue;
        }
        current[i] += weights[i];
        total += weights[i];
        if (!best || current[i] > current[*best]) {
          best = i;
        }
      }
      if (best) {
        current[*best] -= total;
      }
      ASSERT_EQ(rr.pick(), best) << "seed " << seed << " pick " << p;
    }
  }
}

// Verifies the clamp: host b holds credit 1000 when the weights shrink to 1:1:1; without the
// clamp it would take about 330 consecutive picks, with it b catches up at most 4 turns.
TEST(SmoothWeightedRoundRobin, WeightChangeCannotCauseALongBurst) {
  SmoothWeightedRoundRobin rr({1000, 1000, 1});
  EXPECT_EQ(rr.pick(), 0U);  // credits now a=-1001, b=1000, c=1
  rr.setWeight(0, 1);
  rr.setWeight(1, 1);
  std::vector<int> counts(3, 0);
  for (int p = 0; p < 30; ++p) {
    ++counts[*rr.pick()];
  }
  for (const int count : counts) {
    EXPECT_LE(std::abs(count - 10), 5) << count;
  }
}

static_assert(std::is_nothrow_move_constructible_v<SmoothWeightedRoundRobin>);

}  // namespace
}  // namespace sluice::resilience
