// RetryBudget: caps retries at a fraction of recent traffic so retries cannot amplify an outage.
//
// Without a budget, a client that retries up to 3 times turns a 100 % backend failure into 4x
// the load exactly when the backend can least take it. A budget (linkerd's "retry budget",
// Finagle's RetryBudget, Envoy's retry_budget) allows, over a rolling window W:
//
//   retries_in_window + 1 <= max(retry_ratio * requests_in_window, min_retries_per_second * W[s])
//
// where requests are first attempts only (report them with recordRequest) and retries are the
// retries this budget admitted (tryAcquireRetry counts a retry when it admits it). The floor
// (`min_retries_per_second`) lets a low-traffic client still retry the odd failure. It is a
// minimum, as Envoy's min_retry_concurrency is, not an addition as in Finagle and linkerd: with
// the defaults (ratio 0.2, 10 retries/s, W = 10 s), steady traffic of 1000 requests/s gets at
// most 200 retries/s - retry load is bounded by the ratio, 20 %, whatever the failure rate, so
// an operator's "20 %" holds as written (additive, a failing service of 600 requests/s got
// 1.208x its load from a 20 % budget with a 5/s floor: docs/overload.md).
//
// Boundary: the retry that brings the count up to exactly the allowance is admitted; the one
// after it is not. The allowance is computed in double with a relative tolerance of 1e-9 so that
// decimal ratios behave as written (0.29 * 100 admits 29 retries, not 28).
//
// Optionally, `max_in_flight_retries` also bounds how many admitted retries may be outstanding at
// once (Envoy's retry concurrency limit); an admitted retry is a move-only Permit that holds its
// in-flight slot until destroyed. The Permit does not give back the window budget: a retry that
// was sent counts even if it failed fast.
//
//   RetryBudget budget(RetryBudget::Settings{});              // shared by all calls to a backend
//   budget.recordRequest(now);                                // on every first attempt
//   if (auto retry = budget.tryAcquireRetry(now)) { resend(); }   // on a retryable failure
//
// Window resolution follows SlidingWindow: counts cover between W - W/bucket_count and W of
// real time. Time going backwards is treated as the latest time seen.
//
// Settings can change in place (reconfigure): a config reload keeps the counts of the window.
//
// Thread-safety: all members are thread-safe (one internal mutex around the window and the
// settings; the in-flight count is atomic, so Permit release takes no lock). The budget must
// outlive its permits.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "resilience/clock.h"
#include "resilience/sliding_window.h"

namespace sluice::resilience {

class RetryBudget {
 public:
  struct Settings {
    double retry_ratio = 0.2;            // retries allowed per first attempt in the window
    double min_retries_per_second = 10;  // floor, independent of traffic
    Duration window = std::chrono::seconds(10);
    std::size_t bucket_count = 10;  // window resolution; window % bucket_count == 0
    std::size_t max_in_flight_retries = std::numeric_limits<std::size_t>::max();  // no cap
  };

  // Explains what is wrong, or nullopt: ratio and floor finite and >= 0, max_in_flight_retries
  // >= 1, and (window, bucket_count) valid for SlidingWindow.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // An admitted retry (or an empty, rejected one). Move-only; releases its in-flight slot on
  // destruction. Converts to true when admitted.
  class Permit {
   public:
    Permit() noexcept = default;
    Permit(Permit&& other) noexcept : budget_(std::exchange(other.budget_, nullptr)) {}
    Permit& operator=(Permit&& other) noexcept {
      if (this != &other) {
        release();
        budget_ = std::exchange(other.budget_, nullptr);
      }
      return *this;
    }
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { release(); }

    [[nodiscard]] bool admitted() const noexcept { return budget_ != nullptr; }
    explicit operator bool() const noexcept { return admitted(); }

    // Frees the in-flight slot now (the retry finished). Idempotent.
    void release() noexcept {
      if (budget_ != nullptr) {
        budget_->in_flight_.fetch_sub(1, std::memory_order_acq_rel);
        budget_ = nullptr;
      }
    }

   private:
    friend class RetryBudget;
    explicit Permit(RetryBudget* budget) noexcept : budget_(budget) {}
    RetryBudget* budget_ = nullptr;
  };

  // Pass settings accepted by validate(); otherwise negative/NaN ratios count as 0 and the window
  // is coerced as SlidingWindow documents.
  explicit RetryBudget(const Settings& settings);

  RetryBudget(const RetryBudget&) = delete;
  RetryBudget& operator=(const RetryBudget&) = delete;
  RetryBudget(RetryBudget&&) = delete;  // permits point at it
  RetryBudget& operator=(RetryBudget&&) = delete;
  ~RetryBudget() = default;

  // Counts one first attempt (never a retry) at `now`.
  void recordRequest(TimePoint now) { recordRequests(now, 1); }
  void recordRequests(TimePoint now, std::uint32_t count);

  // Admits a retry if the window allowance and the in-flight cap both allow it; the admitted
  // retry is counted in the window at `now`. A rejected call changes nothing.
  [[nodiscard]] Permit tryAcquireRetry(TimePoint now);

  struct Snapshot {
    std::uint64_t requests = 0;  // first attempts in the window
    std::uint64_t retries = 0;   // admitted retries in the window
    double allowance = 0;        // retry_ratio * requests + floor * W
    std::size_t in_flight = 0;   // admitted retries whose Permit is alive
  };
  // Counts over the window ending at `now` (for metrics).
  [[nodiscard]] Snapshot snapshot(TimePoint now) const;

  // Admitted retries whose Permit is still alive. Lock-free.
  [[nodiscard]] std::size_t inFlightRetries() const noexcept {
    return in_flight_.load(std::memory_order_acquire);
  }

  // Replaces the settings in place (pass settings accepted by validate(); others are treated as
  // the constructor treats them). When `window` and
  // `bucket_count` are unchanged the requests and retries counted in the window are kept, and
  // the new retry_ratio, min_retries_per_second and max_in_flight_retries judge the next
  // tryAcquireRetry: a lower allowance than the retries already counted admits nothing until
  // the window slides past enough of them. A changed window or bucket_count restarts the counts
  // empty (buckets of another width cannot be re-cut). Either way, admitted retries stay in
  // flight: a max_in_flight_retries below their number admits no retry until enough Permits
  // are released. Thread-safe (takes the internal mutex); a concurrent tryAcquireRetry is
  // judged wholly under the old or the new settings. `now` is the time of the change; nothing
  // kept depends on it (it is taken for symmetry with the other reconfigurable primitives).
  void reconfigure(const Settings& settings, TimePoint now);

  // The settings in effect (a copy, taken under the internal mutex).
  [[nodiscard]] Settings settings() const;

 private:
  struct Counts {
    std::uint64_t requests = 0;
    std::uint64_t retries = 0;
  };

  [[nodiscard]] Snapshot sumLocked(TimePoint now) const;

  mutable std::mutex mutex_;
  // Guarded by mutex_:
  Settings settings_;
  double floor_;  // min_retries_per_second * window in seconds
  SlidingWindow<Counts> window_;
  std::atomic<std::size_t> in_flight_{0};
};

static_assert(std::is_nothrow_move_constructible_v<RetryBudget::Permit>);

}  // namespace sluice::resilience
