// AdaptiveConcurrencyLimiter: admits a request while fewer than limit() requests are in flight,
// where limit() comes from an AdaptiveLimit algorithm (GradientLimit, AimdLimit, VegasLimit) that
// learns from each admitted request's outcome. Each admission is a move-only RAII Permit that
// reports how the request ended:
//
//   AdaptiveConcurrencyLimiter limiter(std::make_unique<GradientLimit>(GradientLimit::Settings{}));
//   auto permit = limiter.tryAcquire(Clock::now());
//   if (!permit) return reply_503();                 // over the limit: shed load now
//   ... forward the request ...
//   if (ok)              permit.success(Clock::now());       // rtt = now - admission time
//   else if (overload)   permit.dropped(Clock::now());       // timeout, 503/429 from upstream
//   // a permit destroyed without an outcome (client went away, request cancelled) is ignored:
//   // the slot is returned but the algorithm learns nothing from it.
//
// Admission rule: admitted iff inflight < limit() at the moment of the atomic increment (strict
// <), so at most limit() permits exist at once while the limit is constant. When the limit
// shrinks below the number in flight nothing is revoked; new requests are refused until enough
// complete. Outcomes feed the algorithm as onSample(now, rtt, inflight_at_admission, dropped),
// where inflight_at_admission counts the request itself (Netflix concurrency-limits' convention).
//
// Thread-safety: tryAcquire(), limit() and inflight() are lock-free and may be called from any
// thread. Reporting an outcome takes a short mutex around the algorithm update (the algorithms are
// single-writer). A Permit is used by one thread at a time. The limiter must outlive its permits.
// No exceptions, no allocation after construction.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>

#include "resilience/adaptive_limit.h"
#include "resilience/clock.h"

namespace sluice::resilience {

class AdaptiveConcurrencyLimiter {
 public:
  // One in-flight slot. Report at most one outcome; later calls (and calls on an empty permit)
  // do nothing. Destroying or move-assigning over a permit without an outcome = ignore().
  class Permit {
   public:
    Permit() noexcept = default;
    Permit(Permit&& other) noexcept
        : limiter_(std::exchange(other.limiter_, nullptr)),
          acquired_at_(other.acquired_at_),
          inflight_(other.inflight_) {}
    Permit& operator=(Permit&& other) noexcept {
      if (this != &other) {
        ignore();
        limiter_ = std::exchange(other.limiter_, nullptr);
        acquired_at_ = other.acquired_at_;
        inflight_ = other.inflight_;
      }
      return *this;
    }
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { ignore(); }

    // The request completed normally at `now`; rtt = now - acquiredAt() (0 if negative).
    void success(TimePoint now) noexcept { complete(now, now - acquired_at_, false); }
    // The request completed normally at `now` with a round-trip time measured by the caller
    // (e.g. upstream time only); negative is treated as 0.
    void success(TimePoint now, Duration rtt) noexcept { complete(now, rtt, false); }
    // The request was dropped at `now` (timeout, overload rejection); rtt = now - acquiredAt().
    void dropped(TimePoint now) noexcept { complete(now, now - acquired_at_, true); }
    // Returns the slot without teaching the algorithm anything.
    void ignore() noexcept {
      if (limiter_ != nullptr) {
        std::exchange(limiter_, nullptr)->releaseSlot();
      }
    }

    explicit operator bool() const noexcept { return limiter_ != nullptr; }
    // Admission time as passed to tryAcquire().
    [[nodiscard]] TimePoint acquiredAt() const noexcept { return acquired_at_; }
    // Requests in flight right after this one was admitted (itself included).
    [[nodiscard]] std::size_t inflightAtAdmission() const noexcept { return inflight_; }

   private:
    friend class AdaptiveConcurrencyLimiter;
    Permit(AdaptiveConcurrencyLimiter* limiter, TimePoint acquired_at,
           std::size_t inflight) noexcept
        : limiter_(limiter), acquired_at_(acquired_at), inflight_(inflight) {}
    void complete(TimePoint now, Duration rtt, bool dropped) noexcept {
      if (limiter_ != nullptr) {
        std::exchange(limiter_, nullptr)->complete(now, rtt, inflight_, dropped);
      }
    }

    AdaptiveConcurrencyLimiter* limiter_ = nullptr;
    TimePoint acquired_at_{};
    std::size_t inflight_ = 0;
  };

  // Takes ownership of the algorithm. Precondition: `limit` is not null.
  explicit AdaptiveConcurrencyLimiter(std::unique_ptr<AdaptiveLimit> limit) noexcept
      : limit_(std::move(limit)) {}
  AdaptiveConcurrencyLimiter(const AdaptiveConcurrencyLimiter&) = delete;
  AdaptiveConcurrencyLimiter& operator=(const AdaptiveConcurrencyLimiter&) = delete;
  AdaptiveConcurrencyLimiter(AdaptiveConcurrencyLimiter&&) = delete;
  AdaptiveConcurrencyLimiter& operator=(AdaptiveConcurrencyLimiter&&) = delete;
  ~AdaptiveConcurrencyLimiter() = default;

  // Admits the request if fewer than limit() are in flight; otherwise returns an empty Permit and
  // changes nothing. `now` is the admission time used for the permit's rtt. Lock-free.
  [[nodiscard]] Permit tryAcquire(TimePoint now) noexcept;

  // The algorithm's current limit (>= 1).
  [[nodiscard]] std::size_t limit() const noexcept { return limit_->limit(); }
  // Permits currently held (snapshot).
  [[nodiscard]] std::size_t inflight() const noexcept {
    return inflight_.load(std::memory_order_relaxed);
  }
  // The algorithm, for its diagnostics. Do not call its onSample(): the limiter serializes those.
  [[nodiscard]] const AdaptiveLimit& algorithm() const noexcept { return *limit_; }

 private:
  void releaseSlot() noexcept { inflight_.fetch_sub(1, std::memory_order_release); }
  void complete(TimePoint now, Duration rtt, std::size_t inflight, bool dropped) noexcept;

  const std::unique_ptr<AdaptiveLimit> limit_;
  std::atomic<std::size_t> inflight_{0};
  std::mutex sample_mutex_;  // serializes limit_->onSample()
};

static_assert(std::is_nothrow_move_constructible_v<AdaptiveConcurrencyLimiter::Permit>);
static_assert(std::is_nothrow_move_assignable_v<AdaptiveConcurrencyLimiter::Permit>);
static_assert(!std::is_copy_constructible_v<AdaptiveConcurrencyLimiter::Permit>);

}  // namespace sluice::resilience
