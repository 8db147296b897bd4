#include "resilience/lb/ring_hash.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <xxhash.h>

#include "resilience/lb/hash_test_support.h"
#include "resilience/lb/weighted_host.h"

namespace sluice::resilience {
namespace {

std::vector<WeightedHost> ringHosts(int count, int first = 0) {
  std::vector<WeightedHost> hosts;
  for (int i = first; i < first + count; ++i) {
    hosts.push_back(WeightedHost{"10.0.0." + std::to_string(i) + ":8080", 1});
  }
  return hosts;
}

std::vector<std::uint64_t> userKeyHashes(int count) {
  std::vector<std::uint64_t> keys;
  keys.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    const std::string key = "user-" + std::to_string(i);
    keys.push_back(XXH3_64bits(key.data(), key.size()));
  }
  return keys;
}

TEST(RingHash, EmptyOrZeroWeightRingPicksNothing) {
  const auto empty = RingHash::build({}, RingHash::Settings{}, xxh3);
  EXPECT_EQ(empty->pointCount(), 0U);
  EXPECT_EQ(empty->pick(42), std::nullopt);
  const auto zero = RingHash::build({{"a", 0}, {"b", 0}}, RingHash::Settings{}, xxh3);
  EXPECT_EQ(zero->pointCount(), 0U);
  EXPECT_EQ(zero->pick(42, [](std::size_t) { return true; }), std::nullopt);
}

TEST(RingHash, PointsFollowWeightTimesVnodes) {
  RingHash::Settings settings;
  settings.vnodes_per_weight_unit = 7;
  const auto ring = RingHash::build({{"a", 1}, {"b", 0}, {"c", 3}}, settings, xxh3);
  EXPECT_EQ(ring->pointsOf(0), 7U);
  EXPECT_EQ(ring->pointsOf(1), 0U);
  EXPECT_EQ(ring->pointsOf(2), 21U);
  EXPECT_EQ(ring->pointCount(), 28U);
  EXPECT_EQ(ring->hostCount(), 3U);
}

TEST(RingHash, MaxRingSizeScalesEveryHostDownKeepingAtLeastOnePoint) {
  RingHash::Settings settings;
  settings.vnodes_per_weight_unit = 100;
  settings.max_ring_size = 1000;
  const auto ring = RingHash::build({{"a", 1}, {"b", 9}, {"c", 90}, {"d", 0}}, settings, xxh3);
  // total 10000 points requested: scaled by 1000 / 10000.
  EXPECT_EQ(ring->pointsOf(0), 10U);
  EXPECT_EQ(ring->pointsOf(1), 90U);
  EXPECT_EQ(ring->pointsOf(2), 900U);
  const auto tiny = RingHash::build({{"a", 1}, {"b", 1000}}, settings, xxh3);
  EXPECT_EQ(tiny->pointsOf(0), 1U);  // floor(100 * 1000 / 100100) = 0, kept at 1
  EXPECT_EQ(tiny->pointsOf(1), 999U);
}

// Verifies the lookup boundary: a key equal to a point's hash belongs to that point; one above
// belongs to the next; past the last point the ring wraps to the first.
TEST(RingHash, KeyGoesToTheFirstPointAtOrAfterIt) {
  const auto ring = RingHash::build(ringHosts(5), RingHash::Settings{}, xxh3);
  for (std::size_t p = 0; p + 1 < ring->pointCount(); p += 37) {
    EXPECT_EQ(ring->firstPoint(ring->pointHash(p)), p);
    if (ring->pointHash(p + 1) > ring->pointHash(p) + 1) {
      EXPECT_EQ(ring->firstPoint(ring->pointHash(p) + 1), p + 1);
    }
  }
  const std::size_t last = ring->pointCount() - 1;
  EXPECT_EQ(ring->firstPoint(ring->pointHash(last)), last);
  if (ring->pointHash(last) != ~std::uint64_t{0}) {
    EXPECT_EQ(ring->firstPoint(ring->pointHash(last) + 1), 0U);
  }
  EXPECT_EQ(ring->firstPoint(0), 0U);
}

// Verifies the bucket index against a plain binary search over random keys and ring sizes.
TEST(RingHash, FirstPointMatchesABinarySearch) {
  std::mt19937_64 rng(5);
  for (const int hosts : {1, 2, 3, 10, 77}) {
    RingHash::Settings settings;
    settings.vnodes_per_weight_unit = static_cast<std::uint32_t>(1 + rng() % 50);
    const auto ring = RingHash::build(ringHosts(hosts), settings, xxh3);
    std::vector<std::uint64_t> hashes(ring->pointCount());
    for (std::size_t p = 0; p < hashes.size(); ++p) {
      hashes[p] = ring->pointHash(p);
    }
    ASSERT_TRUE(std::is_sorted(hashes.begin(), hashes.end()));
    for (int k = 0; k < 5000; ++k) {
      const std::uint64_t key = rng();
      auto expected = static_cast<std::size_t>(std::lower_bound(hashes.begin(), hashes.end(), key) -
                                               hashes.begin());
      expected = expected == hashes.size() ? 0 : expected;
      ASSERT_EQ(ring->firstPoint(key), expected);
    }
  }
}

// Verifies the consistent-hashing property over 100k keys with the default settings: adding an
// 11th host moves at most 1.2x the ideal 1/11 of the keys, and every moved key goes to it.
TEST(RingHash, AddingOneHostToTenMovesFewKeysAllToTheNewHost) {
  const std::vector<std::uint64_t> keys = userKeyHashes(100000);
  std::vector<WeightedHost> hosts = ringHosts(10);
  const auto before = RingHash::build(hosts, RingHash::Settings{}, xxh3);
  hosts.push_back(WeightedHost{"10.0.0.10:8080", 1});
  const auto after = RingHash::build(hosts, RingHash::Settings{}, xxh3);
  int moved = 0;
  for (const std::uint64_t key : keys) {
    const std::size_t old_host = *before->pick(key);
    const std::size_t new_host = *after->pick(key);
    if (old_host != new_host) {
      ++moved;
      ASSERT_EQ(new_host, 10U);
    }
  }
  EXPECT_GT(moved, 0);
  EXPECT_LE(moved, static_cast<int>(1.2 * 100000 / 11));
}

TEST(RingHash, RemovingAHostMovesOnlyItsKeys) {
  const std::vector<std::uint64_t> keys = userKeyHashes(50000);
  std::vector<WeightedHost> hosts = ringHosts(10);
  const auto before = RingHash::build(hosts, RingHash::Settings{}, xxh3);
  hosts.erase(hosts.begin() + 3);
  const auto after = RingHash::build(hosts, RingHash::Settings{}, xxh3);
  for (const std::uint64_t key : keys) {
    const std::size_t old_host = *before->pick(key);
    const std::size_t new_host = *after->pick(key);
    if (old_host != 3) {
      ASSERT_EQ(new_host, old_host < 3 ? old_host : old_host - 1);
    }
  }
}

TEST(RingHash, KeySharesFollowWeights) {
  RingHash::Settings settings;
  settings.vnodes_per_weight_unit = 1000;
  const auto ring = RingHash::build({{"a", 1}, {"b", 2}, {"c", 3}}, settings, xxh3);
  std::vector<int> counts(3, 0);
  for (const std::uint64_t key : userKeyHashes(60000)) {
    ++counts[*ring->pick(key)];
  }
  EXPECT_NEAR(counts[0], 10000, 1000);
  EXPECT_NEAR(counts[1], 20000, 2000);
  EXPECT_NEAR(counts[2], 30000, 3000);
}

// Verifies that an ineligible host's keys go to the next eligible host clockwise and nobody
// else's keys move.
TEST(RingHash, IneligibleHostsKeysWalkClockwiseOthersStay) {
  const auto ring = RingHash::build(ringHosts(8), RingHash::Settings{}, xxh3);
  const auto not_five = [](std::size_t i) { return i != 5; };
  for (const std::uint64_t key : userKeyHashes(20000)) {
    const std::size_t home = *ring->pick(key);
    const std::size_t chosen = *ring->pick(key, not_five);
    if (home != 5) {
      ASSERT_EQ(chosen, home);
      continue;
    }
    std::size_t point = ring->firstPoint(key);
    while (ring->pointHost(point) == 5) {
      point = ring->nextPoint(point);
    }
    ASSERT_EQ(chosen, ring->pointHost(point));
  }
}

TEST(RingHash, FindsTheOnlyEligibleHostPastTheWalkLimit) {
  const auto ring = RingHash::build(ringHosts(500), RingHash::Settings{}, xxh3);
  for (const std::uint64_t key : userKeyHashes(200)) {
    EXPECT_EQ(ring->pick(key, [](std::size_t i) { return i == 123; }), 123U);
    EXPECT_EQ(ring->pick(key, [](std::size_t) { return false; }), std::nullopt);
  }
}

TEST(RingHash, BuildIsDeterministicAndIndependentOfHostOrder) {
  std::vector<WeightedHost> hosts = ringHosts(20);
  const auto a = RingHash::build(hosts, RingHash::Settings{}, xxh3);
  std::reverse(hosts.begin(), hosts.end());
  const auto b = RingHash::build(hosts, RingHash::Settings{}, xxh3);
  for (const std::uint64_t key : userKeyHashes(5000)) {
    ASSERT_EQ(a->host(*a->pick(key)).identity, b->host(*b->pick(key)).identity);
  }
}

TEST(RingHash, RebuildReturnsTheSameTableWhenNothingChanged) {
  const std::vector<WeightedHost> hosts = ringHosts(10);
  const auto ring = RingHash::build(hosts, RingHash::Settings{}, xxh3);
  EXPECT_EQ(RingHash::rebuild(ring, hosts, RingHash::Settings{}, xxh3), ring);
  std::vector<WeightedHost> heavier = hosts;
  heavier[2].weight = 2;
  EXPECT_NE(RingHash::rebuild(ring, heavier, RingHash::Settings{}, xxh3), ring);
  RingHash::Settings other;
  other.vnodes_per_weight_unit = 50;
  EXPECT_NE(RingHash::rebuild(ring, hosts, other, xxh3), ring);
  EXPECT_NE(RingHash::rebuild(nullptr, hosts, RingHash::Settings{}, xxh3), nullptr);
}

// Verifies that the incremental rebuild (reusing unchanged hosts' points) produces exactly the
// ring a full build would, over seeded random membership and weight changes, and only hashes
// new or changed hosts.
TEST(RingHash, IncrementalRebuildEqualsAFullBuildAndHashesOnlyChanges) {
  std::mt19937_64 rng(21);
  RingHash::Settings settings;
  settings.vnodes_per_weight_unit = 20;
  std::vector<WeightedHost> hosts = ringHosts(15);
  int next_name = 100;
  std::shared_ptr<const RingHash> ring = RingHash::build(hosts, settings, xxh3);
  for (int round = 0; round < 40; ++round) {
    std::vector<WeightedHost> changed = hosts;
    const std::uint64_t op = rng() % 4;
    if (op == 0 && changed.size() > 1) {
      changed.erase(changed.begin() + static_cast<std::ptrdiff_t>(rng() % changed.size()));
    } else if (op == 1) {
      changed.insert(changed.begin() + static_cast<std::ptrdiff_t>(rng() % (changed.size() + 1)),
                     WeightedHost{"10.0.1." + std::to_string(next_name++) + ":8080", 1});
    } else if (op == 2) {
      changed[rng() % changed.size()].weight = static_cast<std::uint32_t>(rng() % 4);
    } else {
      std::shuffle(changed.begin(), changed.end(), rng);
    }
    std::size_t hashed = 0;
    const HostHasher counting = [&](std::string_view data, std::uint64_t seed) {
      ++hashed;
      return xxh3(data, seed);
    };
    const auto incremental = RingHash::rebuild(ring, changed, settings, counting);
    const auto full = RingHash::build(changed, settings, xxh3);
    ASSERT_EQ(incremental->pointCount(), full->pointCount());
    for (std::size_t p = 0; p < full->pointCount(); ++p) {
      ASSERT_EQ(incremental->pointHash(p), full->pointHash(p)) << "round " << round;
      ASSERT_EQ(incremental->pointHost(p), full->pointHost(p)) << "round " << round;
    }
    std::size_t changed_points = 0;
    for (std::size_t i = 0; i < changed.size(); ++i) {
      const auto same = std::find(hosts.begin(), hosts.end(), changed[i]);
      changed_points += same == hosts.end() ? full->pointsOf(i) : 0;
    }
    EXPECT_EQ(hashed, changed_points) << "round " << round << " op " << op;
    hosts = changed;
    ring = incremental;
  }
}

TEST(RingHash, ValidateExplainsBadSettings) {
  EXPECT_EQ(RingHash::validate(RingHash::Settings{}), std::nullopt);
  RingHash::Settings zero_vnodes;
  zero_vnodes.vnodes_per_weight_unit = 0;
  EXPECT_NE(RingHash::validate(zero_vnodes), std::nullopt);
  RingHash::Settings zero_size;
  zero_size.max_ring_size = 0;
  EXPECT_NE(RingHash::validate(zero_size), std::nullopt);
}

// Verifies that immutable rings shared by shared_ptr<const> serve concurrent picks while a writer
// publishes incrementally rebuilt rings: every pick matches the answer of the version it used.
TEST(RingHashStress, SharedTablesServeConcurrentPicksDuringRebuilds) {
  const std::vector<std::uint64_t> keys = userKeyHashes(2000);
  std::vector<std::shared_ptr<const RingHash>> versions;
  std::vector<std::vector<std::size_t>> expected;
  for (int v = 0; v < 4; ++v) {
    versions.push_back(RingHash::build(ringHosts(10 + v), RingHash::Settings{}, xxh3));
    expected.emplace_back();
    for (const std::uint64_t key : keys) {
      expected.back().push_back(*versions.back()->pick(key));
    }
  }
  std::mutex mutex;
  std::shared_ptr<const RingHash> current = versions[0];
  std::size_t current_version = 0;
  std::vector<int> mismatches(4, 0);
  std::vector<int> picks(4, 0);
  std::vector<std::thread> readers;
  readers.reserve(4);
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        std::shared_ptr<const RingHash> ring;
        std::size_t version = 0;
        {
          const std::lock_guard<std::mutex> lock(mutex);
          ring = current;
          version = current_version;
        }
        for (std::size_t k = 0; k < keys.size(); k += 7) {
          const std::optional<std::size_t> host =
              ring->pick(keys[k], [](std::size_t i) { return i != 4; });
          ++picks[t];
          mismatches[t] += host == ring->pick(keys[k], [](std::size_t i) { return i != 4; }) &&
                                   (expected[version][k] == 4 || host == expected[version][k])
                               ? 0
                               : 1;
        }
      }
    });
  }
  std::thread writer([&] {
    for (int round = 0; round < 40; ++round) {
      // An incremental rebuild from the neighbouring version: a new object with the same ring
      // as versions[version].
      const std::size_t version = static_cast<std::size_t>(round) % versions.size();
      auto rebuilt =
          RingHash::rebuild(versions[(version + 1) % versions.size()],
                            ringHosts(10 + static_cast<int>(version)), RingHash::Settings{}, xxh3);
      const std::lock_guard<std::mutex> lock(mutex);
      current = std::move(rebuilt);
      current_version = version;
    }
  });
  writer.join();
  for (std::thread& reader : readers) {
    reader.join();
  }
  for (int t = 0; t < 4; ++t) {
    EXPECT_EQ(mismatches[t], 0);
    EXPECT_EQ(picks[t], 20 * 286);
  }
}

}  // namespace
}  // namespace sluice::resilience
