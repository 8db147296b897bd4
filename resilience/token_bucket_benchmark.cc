// TokenBucket microbenchmarks: tryAcquire uncontended and with 2 threads, on the admit path
// (compare-and-swap) and the deny path (loads only), against MutexTokenBucket, a baseline with
// the same fixed-point GCRA arithmetic under a std::mutex. The other rate limiters'
// benchmarks (leaky_bucket_, gcra_, sliding_window_rate_limiter_benchmark.cc) run in the same
// binary and compare against BM_MutexTokenBucket_* too.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>

#include <benchmark/benchmark.h>

#include "resilience/clock.h"
#include "resilience/token_bucket.h"

namespace sluice::resilience {
namespace {

// Fixed, clock-free time: the benchmark measures the limiter, not Clock::now(). Each thread
// advances its own copy by 1 ns per call.
constexpr TimePoint kStart = TimePoint{} + std::chrono::hours(1);

// The baseline: TokenBucket's arithmetic (E in units of 2^-shift ns, cost rounded up) with the
// state behind a mutex instead of in one atomic word. No reservations or runtime changes.
class MutexTokenBucket {
 public:
  MutexTokenBucket(double rate_per_second, std::int64_t burst, TimePoint now)
      : origin_ns_(now.time_since_epoch().count()),
        shift_(shiftFor(rate_per_second, burst)),
        unit_per_token_(
            static_cast<std::int64_t>(std::ceil(std::ldexp(1e9, shift_) / rate_per_second))),
        burst_units_(burst * unit_per_token_),
        e_(-burst_units_) {}

  bool tryAcquire(std::int64_t n, TimePoint now) {
    const std::int64_t rel = now.time_since_epoch().count() - origin_ns_;
    const std::int64_t now_u = shift_ >= 0 ? rel * (std::int64_t{1} << shift_) : rel >> -shift_;
    const std::lock_guard lock(mu_);
    const std::int64_t next = std::max(e_, now_u - burst_units_) + n * unit_per_token_;
    if (next > now_u) {
      return false;
    }
    e_ = next;
    return true;
  }

 private:
  static int shiftFor(double rate_per_second, std::int64_t burst) {
    const double target = std::min(0x1p30, 0x1p52 / static_cast<double>(burst));
    return std::clamp(std::ilogb(target / (1e9 / rate_per_second)), -62, 32);
  }

  std::mutex mu_;
  std::int64_t origin_ns_;
  int shift_;
  std::int64_t unit_per_token_;
  std::int64_t burst_units_;
  std::int64_t e_;  // guarded by mu_
};

// Admit path: 1e12 tokens/s refill far faster than 1 ns per call can spend them, and the burst
// (one second's worth) absorbs the skew between two threads' clocks (each advances its own).
constexpr double kAdmitRate = 1e12;
constexpr std::uint64_t kAdmitBurst = TokenBucket::kMaxBurst;
// Deny path: empty bucket, a token every ~31 years.
constexpr double kDenyRate = 1e-9;

// Each run gets a fresh limiter (Setup runs before the run's threads start, Teardown after
// they finish): every run restarts its clocks at kStart, and a limiter that had already seen
// later times would deny them all. Setup/Teardown are plain functions, so what the run's
// threads share lives here.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
std::unique_ptr<TokenBucket> g_bucket;
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
std::unique_ptr<MutexTokenBucket> g_mutex_bucket;

void setUpAdmit(const benchmark::State& /*state*/) {
  g_bucket = std::make_unique<TokenBucket>(
      TokenBucket::Settings{.rate_per_second = kAdmitRate, .burst = kAdmitBurst}, kStart);
  g_mutex_bucket = std::make_unique<MutexTokenBucket>(kAdmitRate, kAdmitBurst, kStart);
}
void setUpDeny(const benchmark::State& /*state*/) {
  g_bucket = std::make_unique<TokenBucket>(
      TokenBucket::Settings{.rate_per_second = kDenyRate, .burst = 1}, kStart);
  g_mutex_bucket = std::make_unique<MutexTokenBucket>(kDenyRate, 1, kStart);
  (void)g_bucket->tryAcquire(1, kStart);
  (void)g_mutex_bucket->tryAcquire(1, kStart);
}
void setUpReserve(const benchmark::State& /*state*/) {
  g_bucket = std::make_unique<TokenBucket>(
      TokenBucket::Settings{.rate_per_second = 1e6, .burst = 100}, kStart);
}
void tearDown(const benchmark::State& /*state*/) {
  g_bucket.reset();
  g_mutex_bucket.reset();
}

// Google Benchmark's naming convention (BM_*) and its `for (auto _ : state)` idiom.
// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)
template <typename Bucket>
void runTryAcquire(benchmark::State& state, Bucket& bucket) {
  TimePoint now = kStart;
  std::int64_t admitted = 0;
  for (auto _ : state) {
    now += std::chrono::nanoseconds(1);
    admitted += bucket.tryAcquire(1, now) ? 1 : 0;
  }
  state.counters["admitted"] =
      benchmark::Counter(static_cast<double>(admitted), benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(state.iterations());
}

void BM_TokenBucket_TryAcquire(benchmark::State& state) { runTryAcquire(state, *g_bucket); }
BENCHMARK(BM_TokenBucket_TryAcquire)
    ->Setup(setUpAdmit)
    ->Teardown(tearDown)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

void BM_MutexTokenBucket_TryAcquire(benchmark::State& state) {
  runTryAcquire(state, *g_mutex_bucket);
}
BENCHMARK(BM_MutexTokenBucket_TryAcquire)
    ->Setup(setUpAdmit)
    ->Teardown(tearDown)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

void BM_TokenBucket_TryAcquireDenied(benchmark::State& state) { runTryAcquire(state, *g_bucket); }
BENCHMARK(BM_TokenBucket_TryAcquireDenied)
    ->Setup(setUpDeny)
    ->Teardown(tearDown)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

void BM_MutexTokenBucket_TryAcquireDenied(benchmark::State& state) {
  runTryAcquire(state, *g_mutex_bucket);
}
BENCHMARK(BM_MutexTokenBucket_TryAcquireDenied)
    ->Setup(setUpDeny)
    ->Teardown(tearDown)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

// reserve + cancel: two compare-and-swaps and the Go-compatible give-back arithmetic.
void BM_TokenBucket_ReserveCancel(benchmark::State& state) {
  TimePoint now = kStart;
  for (auto _ : state) {
    now += std::chrono::nanoseconds(1);
    TokenBucket::Reservation r = g_bucket->reserve(1, now);
    benchmark::DoNotOptimize(r.cancel(now));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TokenBucket_ReserveCancel)
    ->Setup(setUpReserve)
    ->Teardown(tearDown)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
