// AdaptiveLimit: the small interface shared by the adaptive concurrency-limit algorithms
// (GradientLimit, AimdLimit, VegasLimit). An algorithm turns completion feedback - the round-trip
// time of a request and whether it was dropped - into an estimate of how many requests may be in
// flight at once. AdaptiveConcurrencyLimiter (resilience/adaptive_concurrency_limiter.h) pairs one
// with an in-flight counter and hands out permits; use an AdaptiveLimit directly only to build a
// different admission policy.
//
//   AimdLimit limit({});                       // defaults; see each algorithm's Settings
//   if (inflight < limit.limit()) { ... }      // admit
//   limit.onSample(now, rtt, inflight_at_start, /*dropped=*/false);
//
// Vocabulary used by every implementation:
//   rtt       time from admission to completion of one request (Duration, ns resolution).
//   inflight  requests in flight when the sampled request was admitted, itself included. An
//             algorithm only grows the limit when the caller actually used it ("app-limited"
//             checks compare inflight with the limit), so an idle service keeps its limit.
//   dropped   the request failed in a way that signals overload: timeout, rejection by the
//             upstream (HTTP 503/429), connection reset. Ordinary errors (HTTP 4xx, 500 from a
//             bug) are not drops - report them as successes or not at all.
//
// Thread-safety contract for all implementations: limit() may be called from any thread at any
// time (it reads one atomic); onSample() calls must be serialized by the caller (the limiter does
// this with a mutex). Implementations never throw, never allocate after construction and never
// read a clock: `now` is the caller's time (resilience/clock.h).
#pragma once

#include <cstddef>

#include "resilience/clock.h"

namespace sluice::resilience {

class AdaptiveLimit {
 public:
  // Largest max_limit any implementation accepts (2^40): keeps limit arithmetic in doubles exact.
  static constexpr std::size_t kMaxLimit = std::size_t{1} << 40;

  AdaptiveLimit() = default;
  AdaptiveLimit(const AdaptiveLimit&) = delete;
  AdaptiveLimit& operator=(const AdaptiveLimit&) = delete;
  AdaptiveLimit(AdaptiveLimit&&) = delete;
  AdaptiveLimit& operator=(AdaptiveLimit&&) = delete;
  virtual ~AdaptiveLimit() = default;

  // Current concurrency limit: how many requests may be in flight. Always within the
  // implementation's [min_limit, max_limit], so never 0. Safe from any thread.
  [[nodiscard]] virtual std::size_t limit() const noexcept = 0;

  // Feeds one completed request. `now` is when it completed (a `now` earlier than one already
  // seen is treated as the latest time seen); `rtt` is its round-trip time (negative values are
  // treated as zero; what zero means is per implementation); `inflight` as described above;
  // `dropped` true for overload signals. Callers must serialize calls.
  virtual void onSample(TimePoint now, Duration rtt, std::size_t inflight,
                        bool dropped) noexcept = 0;
};

}  // namespace sluice::resilience
