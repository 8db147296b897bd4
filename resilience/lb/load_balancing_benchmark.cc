// Pick cost of every load-balancing policy for 10, 100 and 1000 hosts, and table build times for
// 1000 hosts. Baseline: RoundRobin (a cursor increment) in the same run.
//
//   taskset -c 1 build/lb/resilience/resilience_benchmarks --benchmark_filter='^BM_Lb'
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true   (one line)
//
// Every pick goes through an eligibility predicate reading a per-host health flag (all healthy),
// as the gateway's would; load-aware policies read per-host in-flight counts that vary.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>

#include "resilience/clock.h"
#include "resilience/lb/bounded_load.h"
#include "resilience/lb/hash_test_support.h"
#include "resilience/lb/host_stats.h"
#include "resilience/lb/least_connections.h"
#include "resilience/lb/maglev.h"
#include "resilience/lb/power_of_two_choices.h"
#include "resilience/lb/ring_hash.h"
#include "resilience/lb/round_robin.h"
#include "resilience/lb/smooth_weighted_round_robin.h"
#include "resilience/lb/split_mix64.h"
#include "resilience/lb/uniform_random.h"
#include "resilience/lb/weighted_host.h"
#include "resilience/lb/weighted_random.h"

namespace sluice::resilience {
namespace {

// Per-host state a gateway worker would hold.
struct Fleet {
  explicit Fleet(std::size_t n) : healthy(n, 1), in_flight(n), weights(n) {
    SplitMix64 draws(n);
    for (std::size_t i = 0; i < n; ++i) {
      in_flight[i] = static_cast<std::uint32_t>(draws.below(32));
      weights[i] = static_cast<std::uint32_t>(1 + draws.below(4));
      hosts.push_back(WeightedHost{
          "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ":8080", 1});
    }
  }
  [[nodiscard]] auto eligible() const {
    return [this](std::size_t i) { return healthy[i] != 0; };
  }
  [[nodiscard]] auto load() const {
    return [this](std::size_t i) { return in_flight[i]; };
  }

  std::vector<char> healthy;
  std::vector<std::uint32_t> in_flight;
  std::vector<std::uint32_t> weights;
  std::vector<WeightedHost> hosts;
};

void hostCounts(benchmark::internal::Benchmark* bench) { bench->Arg(10)->Arg(100)->Arg(1000); }

// Google Benchmark's conventions: BM_ names and the unused `_` loop variable.
// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

void BM_LbRoundRobin(benchmark::State& state) {
  const Fleet fleet(static_cast<std::size_t>(state.range(0)));
  RoundRobin rr(fleet.hosts.size());
  const auto eligible = fleet.eligible();
  for (auto _ : state) {
    benchmark::DoNotOptimize(rr.pick(eligible));
  }
}
BENCHMARK(BM_LbRoundRobin)->Apply(hostCounts);

void BM_LbSmoothWeightedRoundRobin(benchmark::State& state) {
  const Fleet fleet(static_cast<std::size_t>(state.range(0)));
  SmoothWeightedRoundRobin swrr(fleet.weights);
  const auto eligible = fleet.eligible();
  for (auto _ : state) {
    benchmark::DoNotOptimize(swrr.pick(eligible));
  }
}
BENCHMARK(BM_LbSmoothWeightedRoundRobin)->Apply(hostCounts);

void BM_LbUniformRandom(benchmark::State& state) {
  const Fleet fleet(static_cast<std::size_t>(state.range(0)));
  const UniformRandom random(fleet.hosts.size());
  const auto eligible = fleet.eligible();
  SplitMix64 rng(1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(random.pick(rng.next(), eligible));
  }
}
BENCHMARK(BM_LbUniformRandom)->Apply(hostCounts);

void BM_LbWeightedRandom(benchmark::State& state) {
  const Fleet fleet(static_cast<std::size_t>(state.range(0)));
  const WeightedRandom random(fleet.weights);
  const auto eligible = fleet.eligible();
  SplitMix64 rng(1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(random.pick(rng.next(), eligible));
  }
}
BENCHMARK(BM_LbWeightedRandom)->Apply(hostCounts);

void BM_LbPowerOfTwoChoices(benchmark::State& state) {
  const Fleet fleet(static_cast<std::size_t>(state.range(0)));
  const PowerOfTwoChoices p2c(fleet.weights);
  const auto eligible = fleet.eligible();
  const auto load = fleet.load();
  SplitMix64 rng(1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(p2c.pick(rng.next(), load, eligible));
  }
}
BENCHMARK(BM_LbPowerOfTwoChoices)->Apply(hostCounts);

void BM_LbPeakEwmaP2C(benchmark::State& state) {
  const Fleet fleet(static_cast<std::size_t>(state.range(0)));
  ManualClock clock;
  std::deque<HostStats> stats;
  for (std::size_t i = 0; i < fleet.hosts.size(); ++i) {
    stats.emplace_back(PeakEwma::Settings{}, clock.now());
    stats.back().observeRtt(std::chrono::microseconds(500 + 10 * i), clock.now());
  }
  clock.advance(std::chrono::milliseconds(3));
  const PowerOfTwoChoices p2c(fleet.hosts.size());
  const auto eligible = fleet.eligible();
  SplitMix64 rng(1);
  for (auto _ : state) {
    const TimePoint now = clock.now();
    benchmark::DoNotOptimize(p2c.pick(
        rng.next(), [&](std::size_t i) { return stats[i].cost(now); }, eligible));
  }
}
BENCHMARK(BM_LbPeakEwmaP2C)->Apply(hostCounts);

void BM_LbLeastConnections(benchmark::State& state) {
  const Fleet fleet(static_cast<std::size_t>(state.range(0)));
  const LeastConnections lc(fleet.weights);
  const auto eligible = fleet.eligible();
  const auto load = fleet.load();
  SplitMix64 rng(1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(lc.pick(rng.next(), load, eligible));
  }
}
BENCHMARK(BM_LbLeastConnections)->Apply(hostCounts);

void BM_LbRingHash(benchmark::State& state) {
  const Fleet fleet(static_cast<std::size_t>(state.range(0)));
  const auto ring = RingHash::build(fleet.hosts, RingHash::Settings{}, xxh3);
  const auto eligible = fleet.eligible();
  SplitMix64 keys(1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(ring->pick(keys.next(), eligible));
  }
  state.counters["points"] = static_cast<double>(ring->pointCount());
}
BENCHMARK(BM_LbRingHash)->Apply(hostCounts);

void BM_LbMaglev(benchmark::State& state) {
  const Fleet fleet(static_cast<std::size_t>(state.range(0)));
  const auto table = Maglev::build(fleet.hosts, Maglev::Settings{}, xxh3);
  const auto eligible = fleet.eligible();
  SplitMix64 keys(1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(table->pick(keys.next(), eligible));
  }
}
BENCHMARK(BM_LbMaglev)->Apply(hostCounts);

void BM_LbBoundedLoad(benchmark::State& state) {
  const Fleet fleet(static_cast<std::size_t>(state.range(0)));
  const auto ring = RingHash::build(fleet.hosts, RingHash::Settings{}, xxh3);
  const BoundedLoad bounded(BoundedLoad::Settings{});
  const auto eligible = fleet.eligible();
  const auto load = fleet.load();
  SplitMix64 keys(1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(bounded.pick(*ring, keys.next(), load, eligible));
  }
}
BENCHMARK(BM_LbBoundedLoad)->Apply(hostCounts);

void BM_LbRingHashBuild(benchmark::State& state) {
  const Fleet fleet(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(RingHash::build(fleet.hosts, RingHash::Settings{}, xxh3));
  }
}
BENCHMARK(BM_LbRingHashBuild)->Arg(1000)->Unit(benchmark::kMillisecond);

// One host joins 1000: the incremental rebuild hashes 100 points and merges.
void BM_LbRingHashRebuildOneAdded(benchmark::State& state) {
  const Fleet fleet(static_cast<std::size_t>(state.range(0)));
  const auto ring = RingHash::build(fleet.hosts, RingHash::Settings{}, xxh3);
  std::vector<WeightedHost> grown = fleet.hosts;
  grown.push_back(WeightedHost{"10.9.9.9:8080", 1});
  for (auto _ : state) {
    benchmark::DoNotOptimize(RingHash::rebuild(ring, grown, RingHash::Settings{}, xxh3));
  }
}
BENCHMARK(BM_LbRingHashRebuildOneAdded)->Arg(1000)->Unit(benchmark::kMillisecond);

void BM_LbMaglevBuild(benchmark::State& state) {
  const Fleet fleet(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(Maglev::build(fleet.hosts, Maglev::Settings{}, xxh3));
  }
}
BENCHMARK(BM_LbMaglevBuild)->Arg(1000)->Unit(benchmark::kMillisecond);
// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
