// RetryThrottle: gRPC's client-side retry throttling (gRFC A6 "retryThrottling"): stop retrying
// and hedging a server while too many of its calls fail.
//
// One throttle per server (A6: per server name, shared by every method and service). It keeps
// token_count, starting at max_tokens and always within [0, max_tokens]:
//
//   every failed call           token_count = max(0, token_count - 1)
//   every successful call       token_count = min(max_tokens, token_count + token_ratio)
//   retries and hedges allowed  iff token_count > max_tokens / 2   (strictly greater)
//
// A6's example, max_tokens 10 and token_ratio 0.1 ("throttles retry attempts and hedged RPCs
// when the client's ratio of failures to successes exceeds ~10%"): from full, failures take the
// count to 9, 8, 7, 6 (retries still allowed) and the fifth failure to 5, where 5 <= 10/2 stops
// them; from 5 one success (5.1) allows them again, from 4 it takes eleven (4 + 10 * 0.1 = 5.0 is
// not above 5). In steady state retries stay allowed while failures/successes < token_ratio.
//
//   RetryThrottle throttle({.max_tokens = 10, .token_ratio = 0.1});   // per upstream
//   if (ok) { throttle.recordSuccess(); return; }
//   if (!retryable(status)) return fail();                 // A6: only retryable statuses count
//   if (!throttle.recordFailure()) return fail();          // counted, and now throttled
//   retryAfter(backoff.next(rng));
//   // hedging: send the next hedge only if throttle.retriesAllowed()
//
// What counts (A6, "Throttling Retry Attempts and Hedged RPCs"): a failure is a call that ended
// with a retryable (retry policy) or non-fatal (hedging policy) status, or with server pushback
// saying not to retry; anything else (OK or a fatal status such as INVALID_ARGUMENT) is not a
// failure, and OK is a success. Every attempt counts, retries and hedges included; transparent
// retries (the call never reached the server application) count as nothing.
//
// Fixed point, as A6 prescribes ("up to 3 decimal places are supported"; grpc-core stores
// milli-tokens): the count is an integer number of milli-tokens, so the state is one 64-bit word
// and the arithmetic is exact: 4 + ten successes of 0.1 is exactly 5.000, never 4.9999999. The
// threshold test is done as 2 * count > max (no halving, so an odd max in milli-tokens is exact).
// Settings are doubles; validate() rejects values with more than 3 decimals and the constructor
// rounds them to the nearest 0.001 (grpc-core truncates the decimal text of the service config;
// a double such as 0.29 is 0.28999..., which truncation would turn into 0.289, rounding into the
// 0.29 that was written).
//
// Versus RetryBudget (retry_budget.h): RetryBudget caps retries at a fraction of recent *traffic*
// over a time window (retries <= ratio * requests + floor) whatever the outcome of the calls, and
// counts admitted retries; RetryThrottle looks only at *outcomes*, has no notion of time (a server
// that stops failing is trusted again only through successes), and is all or nothing: while the
// server fails too often no retry at all is sent. Use RetryThrottle to mirror a gRPC service
// config's retryThrottling (and where a cheap, clock-free, lock-free switch is wanted); use
// RetryBudget to bound retry load as a share of traffic (Envoy/linkerd/Finagle style). Both can
// be used together: the throttle decides whether retrying is sensible at all, the budget how much.
//
// Thread-safety: every method may be called concurrently; each is lock-free (one atomic word,
// recordSuccess/recordFailure are a compare-and-swap loop that applies the clamp).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

namespace sluice::resilience {

class RetryThrottle {
 public:
  struct Settings {
    double max_tokens = 10;    // A6 maxTokens: in (0, 1000], at most 3 decimals
    double token_ratio = 0.1;  // A6 tokenRatio: > 0, at most 3 decimals (at most max_tokens)
  };

  static constexpr double kMaxMaxTokens = 1000;  // A6 / grpc-go: maxTokens in (0, 1000]

  // Explains what is wrong, or nullopt: max_tokens not in (0, 1000]; token_ratio not positive
  // and finite, or above max_tokens; either with more than 3 decimals (beyond 1e-9 of a
  // multiple of 0.001).
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // A full throttle (token_count = max_tokens). Invalid settings are coerced, never rejected:
  // both values are rounded to the nearest 0.001; max_tokens below 0.001 (or NaN) becomes 0.001
  // and above 1000 becomes 1000; token_ratio below 0.001 (or NaN) becomes 0.001 and above
  // max_tokens becomes max_tokens.
  explicit RetryThrottle(const Settings& settings);

  // Reports a failed call (see the file comment for what counts) and returns whether a retry of
  // it (or the next hedge) may be sent now, judged after this failure was counted, as grpc-core
  // and grpc-go do: from full with A6's example the fifth failure already returns false.
  bool recordFailure();
  // Reports a successful call.
  void recordSuccess();

  // Whether retries and hedges are allowed now (token_count > max_tokens / 2), without
  // counting anything: for hedges, and for metrics.
  [[nodiscard]] bool retriesAllowed() const;

  // token_count in milli-tokens (exact), and as tokens.
  [[nodiscard]] std::int64_t milliTokens() const { return milli_.load(std::memory_order_acquire); }
  [[nodiscard]] double tokens() const { return static_cast<double>(milliTokens()) / 1000.0; }

  // The coerced settings in effect, in milli-tokens.
  [[nodiscard]] std::int64_t maxMilliTokens() const { return max_milli_; }
  [[nodiscard]] std::int64_t milliTokenRatio() const { return ratio_milli_; }

 private:
  // Adds `delta` milli-tokens, clamped to [0, max_milli_]; returns the new count.
  std::int64_t add(std::int64_t delta);

  std::int64_t max_milli_;
  std::int64_t ratio_milli_;
  std::atomic<std::int64_t> milli_;
};

}  // namespace sluice::resilience
