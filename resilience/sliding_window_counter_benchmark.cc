// SlidingWindowCounter microbenchmarks: tryAcquire (mutex) uncontended and with 2 threads, the
// pure decide() alone, and PackedSlidingWindowCounter, a lock-free alternative kept here only to
// measure the choice: the window tag and both counts packed in one 64-bit word (15-bit tag,
// 24-bit counts) and updated by compare-and-swap. Compare with BM_MutexTokenBucket_TryAcquire and
// BM_Gcra_TryAcquire (same binary).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include <benchmark/benchmark.h>

#include "resilience/clock.h"
#include "resilience/sliding_window_counter.h"

namespace sluice::resilience {
namespace {

constexpr TimePoint kCounterStart = TimePoint{} + std::chrono::hours(1);

// The lock-free variant: decide() on a state unpacked from one word. Its limits are why the
// library does not ship it: counts below 2^24, and a window tag that aliases after 2^15 idle
// windows.
class PackedSlidingWindowCounter {
 public:
  explicit PackedSlidingWindowCounter(const SlidingWindowCounter::Settings& settings)
      : params_(SlidingWindowCounter::paramsFor(settings)) {}

  bool tryAcquire(TimePoint now) {
    const std::int64_t now_ns = now.time_since_epoch().count();
    const std::int64_t index = now_ns / params_.window_ns;
    std::uint64_t word = word_.load(std::memory_order_acquire);
    for (;;) {
      const SlidingWindowCounter::State state = unpack(word, index);
      const SlidingWindowCounter::Decision d =
          SlidingWindowCounter::decide(state, now_ns, 1, params_);
      if (!d.allowed) {
        return false;
      }
      const std::uint64_t next = pack(d.new_state);
      if (word_.compare_exchange_weak(word, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        return true;
      }
    }
  }

 private:
  static constexpr std::uint64_t kCountMask = (std::uint64_t{1} << 24) - 1;
  static constexpr std::uint64_t kTagMask = 0x7FFF;  // bits 49..63; bit 48 marks "in use"
  static constexpr std::uint64_t kInUse = std::uint64_t{1} << 48;

  [[nodiscard]] SlidingWindowCounter::State unpack(std::uint64_t word, std::int64_t index) const {
    if (word == 0) {
      return {};
    }
    const std::uint64_t tag = word >> 49;
    const auto current_tag = static_cast<std::uint64_t>(index) & kTagMask;
    std::int64_t start_index = index;
    if (tag != current_tag) {
      start_index = index - 1;  // previous window, or stale (decide() then forgets both counts)
      if (tag != (static_cast<std::uint64_t>(index - 1) & kTagMask)) {
        start_index = index - 2;
      }
    }
    return {.window_start_ns = start_index * params_.window_ns,
            .previous = (word >> 24) & kCountMask,
            .current = word & kCountMask};
  }
  [[nodiscard]] std::uint64_t pack(const SlidingWindowCounter::State& s) const {
    const auto tag = static_cast<std::uint64_t>(s.window_start_ns / params_.window_ns) & kTagMask;
    return (tag << 49) | kInUse | ((s.previous & kCountMask) << 24) | (s.current & kCountMask);
  }

  SlidingWindowCounter::Params params_;
  std::atomic<std::uint64_t> word_{0};
};

// NOLINTBEGIN(cppcoreguidelines-avoid-non-const-global-variables)
std::unique_ptr<SlidingWindowCounter> g_counter;
std::unique_ptr<PackedSlidingWindowCounter> g_packed_counter;
// NOLINTEND(cppcoreguidelines-avoid-non-const-global-variables)

// Admit path: 1 ms windows (a roll-over every 1e6 calls), a limit no run reaches.
void setUpCounter(const benchmark::State& /*state*/) {
  const SlidingWindowCounter::Settings s{.limit = 1 << 22, .window = std::chrono::milliseconds(1)};
  g_counter = std::make_unique<SlidingWindowCounter>(s);
  g_packed_counter = std::make_unique<PackedSlidingWindowCounter>(s);
}
void tearDownCounter(const benchmark::State& /*state*/) {
  g_counter.reset();
  g_packed_counter.reset();
}

// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)
void BM_SlidingWindowCounter_TryAcquire(benchmark::State& state) {
  TimePoint now = kCounterStart;
  std::int64_t admitted = 0;
  for (auto _ : state) {
    now += std::chrono::nanoseconds(1);
    admitted += g_counter->tryAcquire(now).allowed ? 1 : 0;
  }
  state.counters["admitted"] =
      benchmark::Counter(static_cast<double>(admitted), benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SlidingWindowCounter_TryAcquire)
    ->Setup(setUpCounter)
    ->Teardown(tearDownCounter)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

void BM_PackedSlidingWindowCounter_TryAcquire(benchmark::State& state) {
  TimePoint now = kCounterStart;
  std::int64_t admitted = 0;
  for (auto _ : state) {
    now += std::chrono::nanoseconds(1);
    admitted += g_packed_counter->tryAcquire(now) ? 1 : 0;
  }
  state.counters["admitted"] =
      benchmark::Counter(static_cast<double>(admitted), benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PackedSlidingWindowCounter_TryAcquire)
    ->Setup(setUpCounter)
    ->Teardown(tearDownCounter)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

// The pure step alone (what a Lua port mirrors), no lock.
void BM_SlidingWindowCounter_Decide(benchmark::State& state) {
  const SlidingWindowCounter::Params p =
      SlidingWindowCounter::paramsFor({.limit = 1'000'000, .window = std::chrono::seconds(1)});
  SlidingWindowCounter::State s;
  std::int64_t now = kCounterStart.time_since_epoch().count();
  for (auto _ : state) {
    now += 1'000;
    const SlidingWindowCounter::Decision d = SlidingWindowCounter::decide(s, now, 1, p);
    s = d.new_state;
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SlidingWindowCounter_Decide);
// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
