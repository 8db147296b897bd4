// Hot path of a closed breaker: tryAcquire + success, uncontended and with 2 threads, for the
// lock-free count-based window, the mutex-guarded time-based window, and a straightforward
// mutex-based count-based breaker (the baseline: same semantics, one lock per acquire and per
// record). `now` is a constant so that the clock read is not part of the measurement.
//
//   taskset -c 1 build/<dir>/resilience/resilience_benchmarks --benchmark_filter=Breaker
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true   (one line)
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "resilience/circuit_breaker.h"

namespace sluice::resilience {
namespace {

constexpr TimePoint kNow = TimePoint{} + std::chrono::hours(24);

// Baseline: the obvious implementation of the same closed-state behaviour (ring of the last N
// outcomes, trip at >= threshold once minimum_calls are in, epochs to drop stale outcomes), with
// one mutex around everything.
class MutexCircuitBreaker {
 public:
  class Permit {
   public:
    Permit() = default;
    Permit(MutexCircuitBreaker* breaker, std::uint64_t epoch) : breaker_(breaker), epoch_(epoch) {}
    Permit(Permit&& other) noexcept
        : breaker_(std::exchange(other.breaker_, nullptr)), epoch_(other.epoch_) {}
    Permit& operator=(Permit&&) = delete;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() = default;

    explicit operator bool() const { return breaker_ != nullptr; }
    void success() {
      if (breaker_ != nullptr) {
        std::exchange(breaker_, nullptr)->record(epoch_, false);
      }
    }
    void failure() {
      if (breaker_ != nullptr) {
        std::exchange(breaker_, nullptr)->record(epoch_, true);
      }
    }

   private:
    MutexCircuitBreaker* breaker_ = nullptr;
    std::uint64_t epoch_ = 0;
  };

  MutexCircuitBreaker(std::uint32_t window, std::uint32_t minimum_calls, double threshold)
      : ring_(window, 0), minimum_calls_(minimum_calls), threshold_(threshold) {}

  Permit tryAcquire(TimePoint now) {
    const std::lock_guard lock(mutex_);
    if (open_ && now < open_until_) {
      return Permit{};
    }
    if (open_) {  // simplified: straight back to closed
      open_ = false;
      ++epoch_;
      std::fill(ring_.begin(), ring_.end(), 0);
      calls_ = failures_ = 0;
      next_ = 0;
    }
    return {this, epoch_};
  }

 private:
  void record(std::uint64_t epoch, bool failed) {
    const std::lock_guard lock(mutex_);
    if (open_ || epoch != epoch_) {
      return;
    }
    std::uint8_t& slot = ring_[next_];
    next_ = (next_ + 1) % ring_.size();
    if (slot != 0) {
      --calls_;
      failures_ -= slot == 2 ? 1 : 0;
    }
    slot = failed ? 2 : 1;
    ++calls_;
    failures_ += failed ? 1 : 0;
    if (calls_ >= minimum_calls_ &&
        static_cast<double>(failures_) * 100 >= threshold_ * static_cast<double>(calls_)) {
      open_ = true;
      ++epoch_;
      open_until_ = kNow + std::chrono::seconds(30);
    }
  }

  std::mutex mutex_;
  std::vector<std::uint8_t> ring_;  // 0 empty, 1 success, 2 failure
  std::size_t next_ = 0;
  std::uint32_t calls_ = 0;
  std::uint32_t failures_ = 0;
  const std::uint32_t minimum_calls_;
  const double threshold_;
  bool open_ = false;
  TimePoint open_until_;
  std::uint64_t epoch_ = 0;
};

CircuitBreaker::Settings countBased() {
  CircuitBreaker::Settings s;
  s.window_size = 100;
  s.minimum_calls = 20;
  s.failure_rate_threshold = 50;
  return s;
}

CircuitBreaker::Settings timeBased() {
  CircuitBreaker::Settings s = countBased();
  s.window_type = CircuitBreaker::WindowType::TimeBased;
  s.window_duration = std::chrono::seconds(60);
  s.window_buckets = 10;
  return s;
}

// One breaker shared by all threads of a benchmark run; created by thread 0 before the timing
// loop (Google Benchmark starts every thread's loop together).
template <typename Breaker>
struct Shared {
  static std::unique_ptr<Breaker>& instance() {
    static std::unique_ptr<Breaker> breaker;
    return breaker;
  }
};

// Google Benchmark's naming convention, and its `for (auto _ : state)` idiom.
// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

void BM_Breaker_LockFreeCountBased(benchmark::State& state) {
  auto& breaker = Shared<CircuitBreaker>::instance();
  if (state.thread_index() == 0) {
    breaker = std::make_unique<CircuitBreaker>(countBased(), kNow);
  }
  for (auto _ : state) {
    auto permit = breaker->tryAcquire(kNow);
    permit.success(std::chrono::milliseconds(1));
    benchmark::DoNotOptimize(permit);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Breaker_LockFreeCountBased)->Threads(1)->Threads(2)->UseRealTime();

void BM_Breaker_MutexTimeBased(benchmark::State& state) {
  auto& breaker = Shared<CircuitBreaker>::instance();
  if (state.thread_index() == 0) {
    breaker = std::make_unique<CircuitBreaker>(timeBased(), kNow);
  }
  for (auto _ : state) {
    auto permit = breaker->tryAcquire(kNow);
    permit.success(std::chrono::milliseconds(1));
    benchmark::DoNotOptimize(permit);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Breaker_MutexTimeBased)->Threads(1)->Threads(2)->UseRealTime();

void BM_Breaker_BaselineMutexCountBased(benchmark::State& state) {
  auto& breaker = Shared<MutexCircuitBreaker>::instance();
  if (state.thread_index() == 0) {
    breaker = std::make_unique<MutexCircuitBreaker>(100, 20, 50.0);
  }
  for (auto _ : state) {
    auto permit = breaker->tryAcquire(kNow);
    permit.success();
    benchmark::DoNotOptimize(permit);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Breaker_BaselineMutexCountBased)->Threads(1)->Threads(2)->UseRealTime();

// Rejection while open (fail-fast path): one atomic load and a relaxed counter increment.
void BM_Breaker_OpenReject(benchmark::State& state) {
  auto& breaker = Shared<CircuitBreaker>::instance();
  if (state.thread_index() == 0) {
    breaker = std::make_unique<CircuitBreaker>(countBased(), kNow);
    breaker->forceOpen(kNow);
  }
  for (auto _ : state) {
    auto permit = breaker->tryAcquire(kNow);
    benchmark::DoNotOptimize(permit);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Breaker_OpenReject)->Threads(1)->Threads(2)->UseRealTime();

// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
