// Single-writer counters and gauges for per-worker stat shards.
//
// Each worker owns its shard and is the only writer, so an increment is a relaxed load and store
// of a worker-local cache line (a plain `mov` on x86, no locked instruction, no cross-core
// traffic). The admin thread reads every shard at scrape time with relaxed loads and sums them;
// atomics make those concurrent reads well defined.
#pragma once

#include <atomic>
#include <cstdint>

namespace sluice::gateway::stats {

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }
  // Back to 0 (the owning thread only; a label now names something else).
  void reset() noexcept { v_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

class Gauge {
 public:
  void add(std::int64_t n) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void inc() noexcept { add(1); }
  void dec() noexcept { add(-1); }
  void set(std::int64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
  [[nodiscard]] std::int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> v_{0};
};

}  // namespace sluice::gateway::stats
