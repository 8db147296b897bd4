#include "resilience/adaptive_concurrency_limiter.h"

#include <algorithm>

namespace sluice::resilience {

AdaptiveConcurrencyLimiter::Permit AdaptiveConcurrencyLimiter::tryAcquire(TimePoint now) noexcept {
  const std::size_t limit = limit_->limit();
  std::size_t current = inflight_.load(std::memory_order_relaxed);
  // A CAS loop rather than fetch_add-then-undo: a failed admission must not be visible, even
  // briefly, to concurrent admissions (an optimistic increment could make them fail spuriously).
  do {
    if (current >= limit) {
      return {};
    }
  } while (!inflight_.compare_exchange_weak(current, current + 1, std::memory_order_acquire,
                                            std::memory_order_relaxed));
  return {this, now, current + 1};
}

void AdaptiveConcurrencyLimiter::complete(TimePoint now, Duration rtt, std::size_t inflight,
                                          bool dropped) noexcept {
  releaseSlot();
  const std::lock_guard lock(sample_mutex_);
  limit_->onSample(now, std::max(rtt, Duration::zero()), inflight, dropped);
}

}  // namespace sluice::resilience
