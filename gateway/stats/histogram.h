// A fixed-bucket latency histogram in seconds (Prometheus `_bucket`/`_sum`/`_count`), written by
// one worker and read by the scraper (see counter.h for the single-writer rule).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

#include "gateway/stats/counter.h"

namespace sluice::gateway::stats {

class LatencyHistogram {
 public:
  // Upper bounds in seconds; a last implicit +Inf bucket follows.
  static constexpr std::array<double, 14> kBounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

  void observe(std::chrono::nanoseconds d) noexcept {
    const double s = std::chrono::duration<double>(d).count();
    std::size_t i = 0;
    while (i < kBounds.size() && s > kBounds[i]) ++i;
    buckets_[i].inc();
    sum_ns_.inc(static_cast<std::uint64_t>(d.count() > 0 ? d.count() : 0));
  }

  // Non-cumulative count of bucket i (i == kBounds.size() is +Inf).
  [[nodiscard]] std::uint64_t bucket(std::size_t i) const noexcept { return buckets_[i].value(); }
  [[nodiscard]] std::uint64_t sumNanos() const noexcept { return sum_ns_.value(); }
  // Back to empty (the owning thread only; its label now names something else).
  void reset() noexcept {
    for (auto& b : buckets_) b.reset();
    sum_ns_.reset();
  }

 private:
  std::array<Counter, kBounds.size() + 1> buckets_;
  Counter sum_ns_;
};

}  // namespace sluice::gateway::stats
