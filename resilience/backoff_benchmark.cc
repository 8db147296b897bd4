// Backoff microbenchmarks: next(u) per jitter mode (Backoff is per operation, so single-threaded
// only). The u values come from a small precomputed table, so the rows measure the formula, not
// a random generator; the None row is the baseline.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include <benchmark/benchmark.h>

#include "resilience/backoff.h"

namespace sluice::resilience {
namespace {

constexpr std::array<double, 8> kUs = {0.03, 0.91, 0.47, 0.25, 0.66, 0.12, 0.78, 0.5};

// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)
void BM_Backoff_Next(benchmark::State& state) {
  const auto jitter = static_cast<Jitter>(state.range(0));
  Backoff backoff(Backoff::Settings{.base = std::chrono::milliseconds(100),
                                    .cap = std::chrono::seconds(10),
                                    .multiplier = 1.5,
                                    .jitter = jitter,
                                    .randomization_factor = 0.5});
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(backoff.next(kUs[i++ % kUs.size()]));
    if (backoff.attempts() == 16) {
      backoff.reset();  // a realistic retry chain, not only the saturated cap
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Backoff_Next)
    ->ArgName("jitter")
    ->Arg(static_cast<int>(Jitter::None))
    ->Arg(static_cast<int>(Jitter::Full))
    ->Arg(static_cast<int>(Jitter::Equal))
    ->Arg(static_cast<int>(Jitter::Decorrelated))
    ->Arg(static_cast<int>(Jitter::Symmetric));
// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
