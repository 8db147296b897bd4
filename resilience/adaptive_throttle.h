// AdaptiveThrottle: Google SRE client-side throttling, a probabilistic alternative to a breaker.
//
// From "Site Reliability Engineering" (Beyer et al., O'Reilly 2016), chapter 21 "Handling
// Overload", section "Client-side throttling": each client tracks, over a rolling window,
//   requests - attempts made by the application (including those this throttle rejected)
//   accepts  - attempts the backend accepted (processed, even if with an application error)
// and rejects a new attempt locally with probability
//
//   p = max(0, (requests - K * accepts) / (requests + 1))
//
// While the backend accepts everything, requests <= accepts and p = 0. When it starts rejecting,
// the client sends roughly K times what the backend accepts and sheds the rest locally, without
// a round trip; unlike a breaker there is no open state and no probe: traffic ramps back up as
// accepts return. K = 2 (the book's value) wastes some backend work on rejections but reacts
// fast; K closer to 1 is more aggressive (K must be >= 1: below it a healthy backend is
// throttled).
//
// The decision takes a uniform random u in [0, 1) (or a URBG): rejected iff u < p, so p = 0
// never rejects and p > 0 rejects with exactly probability p. Randomness is passed in so that
// tests are deterministic.
//
//   AdaptiveThrottle throttle(AdaptiveThrottle::Settings{});
//   auto permit = throttle.tryAcquire(now, rng);
//   if (!permit) return Status::Unavailable("throttled locally");
//   auto response = send(request);
//   if (isOverload(response)) permit.rejected(clock.now());   // 429, 503, RESOURCE_EXHAUSTED
//   else permit.accepted(clock.now());                        // including 4xx / other 5xx
//
// Counting: a local rejection counts as a request at once; an admitted attempt counts (as a
// request, plus an accept if accepted) when its outcome is reported. A Permit dropped without an
// outcome counts nothing (a cancelled call says nothing about the backend).
// Window resolution follows SlidingWindow: counts cover between W - W/bucket_count and W of real
// time. Time going backwards is treated as the latest time seen.
//
// Thread-safety: all members are thread-safe (one internal mutex). The throttle must outlive its
// permits.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
#include <utility>

#include "resilience/clock.h"
#include "resilience/sliding_window.h"

namespace sluice::resilience {

class AdaptiveThrottle {
 public:
  struct Settings {
    double k = 2.0;                             // accepts multiplier, >= 1
    Duration window = std::chrono::minutes(2);  // the book's two minutes
    std::size_t bucket_count = 60;              // 2 s resolution; window % count == 0
  };

  // Explains what is wrong, or nullopt: k finite and >= 1, (window, bucket_count) valid for
  // SlidingWindow.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // An admitted attempt (or an empty, rejected one). Move-only; report exactly one outcome.
  class Permit {
   public:
    Permit() noexcept = default;
    Permit(Permit&& other) noexcept : throttle_(std::exchange(other.throttle_, nullptr)) {}
    Permit& operator=(Permit&& other) noexcept {
      throttle_ = std::exchange(other.throttle_, nullptr);
      return *this;
    }
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() = default;  // dropping without an outcome records nothing

    [[nodiscard]] bool admitted() const noexcept { return throttle_ != nullptr; }
    explicit operator bool() const noexcept { return admitted(); }

    // The backend accepted (processed) the attempt. No-op on an empty or used permit.
    void accepted(TimePoint now) { finish(now, true); }
    // The backend rejected the attempt for overload. No-op on an empty or used permit.
    void rejected(TimePoint now) { finish(now, false); }

   private:
    friend class AdaptiveThrottle;
    explicit Permit(AdaptiveThrottle* throttle) noexcept : throttle_(throttle) {}
    void finish(TimePoint now, bool accepted) {
      if (throttle_ != nullptr) {
        std::exchange(throttle_, nullptr)->record(now, accepted);
      }
    }
    AdaptiveThrottle* throttle_ = nullptr;
  };

  // Pass settings accepted by validate(); otherwise k is clamped to >= 1 (NaN -> 2) and the
  // window coerced as SlidingWindow documents.
  explicit AdaptiveThrottle(const Settings& settings);

  AdaptiveThrottle(const AdaptiveThrottle&) = delete;
  AdaptiveThrottle& operator=(const AdaptiveThrottle&) = delete;
  AdaptiveThrottle(AdaptiveThrottle&&) = delete;  // permits point at it
  AdaptiveThrottle& operator=(AdaptiveThrottle&&) = delete;
  ~AdaptiveThrottle() = default;

  // Admits unless u < p (see above); a rejection counts one request at `now`. u outside [0, 1)
  // is clamped into it (NaN counts as 0, i.e. rejects whenever p > 0).
  [[nodiscard]] Permit tryAcquire(TimePoint now, double u);

  // Same, drawing u from `rng` (any UniformRandomBitGenerator).
  template <typename Urbg>
  [[nodiscard]] Permit tryAcquire(TimePoint now, Urbg& rng) {
    return tryAcquire(now, std::generate_canonical<double, 53>(rng));
  }

  // p for the window ending at `now`, in [0, 1).
  [[nodiscard]] double rejectionProbability(TimePoint now) const;

  struct Snapshot {
    std::uint64_t requests = 0;
    std::uint64_t accepts = 0;
    double rejection_probability = 0;
  };
  [[nodiscard]] Snapshot snapshot(TimePoint now) const;

  // Records an outcome without a permit (e.g. for attempts made around the throttle).
  void record(TimePoint now, bool accepted);

 private:
  struct Counts {
    std::uint64_t requests = 0;
    std::uint64_t accepts = 0;
  };
  [[nodiscard]] Snapshot sumLocked(TimePoint now) const;

  const double k_;
  mutable std::mutex mutex_;
  SlidingWindow<Counts> window_;  // guarded by mutex_
};

static_assert(std::is_nothrow_move_constructible_v<AdaptiveThrottle::Permit>);

}  // namespace sluice::resilience
