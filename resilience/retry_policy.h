// RetryPolicy: after a failed attempt, decide whether to retry and after how long.
//
// It combines the pieces that each answer part of the question, in this order:
//   1. attempts   - at most `max_attempts` attempts in total (the first one included, gRPC's
//                   maxAttempts; 1 means never retry);
//   2. deadline   - never retry an operation whose deadline has passed;
//   3. Retry-After - a server hint (HTTP `Retry-After`, gRPC `grpc-retry-pushback-ms`, parsed
//                   by the caller into a Duration) is honoured as a minimum delay; a hint above
//                   `max_retry_after` or one that does not fit in the remaining deadline gives up
//                   instead of waiting for nothing;
//   4. backoff    - the delay is max(hint, jittered backoff) (see backoff.h);
//   5. deadline   - the retry must start with at least `min_attempt_time` left:
//                   retry only if delay + min_attempt_time < deadline.remaining(now);
//   6. budget     - finally (so that a give-up never spends budget) an optional RetryBudget
//                   must admit the retry; its Permit is handed back with the decision.
//
// The caller classifies failures: call onFailure only for failures that are safe and worth
// retrying (idempotent request, connect error, 503, ...). It also owns the waiting: sleep or arm
// a timer for `decision.delay`, then send the retry while holding `decision.budget_permit`.
//
//   RetryPolicy retry(settings);            // one per logical operation
//   for (;;) {
//     auto result = send(request);
//     if (result.ok() || !result.retryable()) return result;
//     auto decision = retry.onFailure({.now = clock.now(), .deadline = deadline,
//                                      .retry_after = result.retry_after(), .u = uniform(rng)},
//                                     &budget);
//     if (!decision) return result;         // decision.verdict says why
//     wait(decision.delay);
//   }
//
// Thread-safety: none; one RetryPolicy per operation, used by one thread at a time. Settings are
// plain data and may be shared.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "resilience/backoff.h"
#include "resilience/clock.h"
#include "resilience/deadline.h"
#include "resilience/retry_budget.h"

namespace sluice::resilience {

class RetryPolicy {
 public:
  enum class RetryAfterMode : std::uint8_t {
    Honour,  // the hint is a lower bound on the delay (and can make us give up)
    Ignore,  // hints are ignored; the backoff alone decides
  };

  struct Settings {
    std::uint32_t max_attempts = 3;  // total, first attempt included; >= 1
    Backoff::Settings backoff{};
    RetryAfterMode retry_after = RetryAfterMode::Honour;
    // A hint strictly longer than this gives up (the server is telling us to go away).
    Duration max_retry_after = std::chrono::seconds(30);
    // A retry must have strictly more than this much of the deadline left after its delay.
    Duration min_attempt_time = Duration::zero();
  };

  // Explains what is wrong, or nullopt: max_attempts >= 1, backoff valid, max_retry_after >= 0,
  // min_attempt_time >= 0.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  enum class Verdict : std::uint8_t {
    Retry,
    AttemptsExhausted,  // max_attempts reached
    DeadlineExceeded,   // deadline passed, or the delay (or hint) would not leave enough time
    RetryAfterTooLong,  // hint > max_retry_after
    BudgetExhausted,    // the RetryBudget refused
  };

  // What the caller knows about the failed attempt.
  struct Failure {
    TimePoint now;  // when the failure was observed
    Deadline deadline = Deadline::infinite();
    std::optional<Duration> retry_after;  // server hint; negative values count as zero
    double u = 0.5;                       // uniform [0, 1) random for the backoff jitter
  };

  struct Decision {
    Verdict verdict = Verdict::AttemptsExhausted;
    Duration delay = Duration::zero();  // wait this long before retrying (Retry only)
    RetryBudget::Permit budget_permit;  // hold while the retry is in flight (if a budget is used)

    [[nodiscard]] bool retry() const noexcept { return verdict == Verdict::Retry; }
    explicit operator bool() const noexcept { return retry(); }
  };

  // Pass settings accepted by validate(); a max_attempts of 0 behaves as 1.
  explicit RetryPolicy(const Settings& settings) noexcept
      : settings_(settings), backoff_(settings.backoff) {}

  // Records that an attempt failed and decides about the next one (see the order above). Only a
  // Retry verdict advances the backoff; every call counts one attempt. `budget` may be null.
  [[nodiscard]] Decision onFailure(const Failure& failure, RetryBudget* budget = nullptr);

  // Attempts reported through onFailure so far.
  [[nodiscard]] std::uint32_t failedAttempts() const noexcept { return failed_attempts_; }

  [[nodiscard]] const Settings& settings() const noexcept { return settings_; }

 private:
  Settings settings_;
  Backoff backoff_;
  std::uint32_t failed_attempts_ = 0;
};

// Short name of a verdict, for logs and metrics labels.
[[nodiscard]] const char* toString(RetryPolicy::Verdict verdict) noexcept;

}  // namespace sluice::resilience
