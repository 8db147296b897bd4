// Hedging: send a backup copy of a slow request; the first answer wins, the others are cancelled.
//
// A HedgingPolicy says how long to wait for an attempt before launching the next one (`delay`)
// and how many backups may be launched (`max_extra_attempts`). A HedgeCoordinator runs one
// request under that policy (the gRPC hedging model):
//
//   - attempt 0 launches at once; attempt k+1 launches `delay` after attempt k was launched, or
//     immediately once some attempt fails with a non-fatal error (no point waiting for a
//     backup when we know it is needed);
//   - the first Success or FatalFailure reported is final: every other attempt is cancelled
//     through its CancellationToken (each attempt's token is a child of the request's token, so
//     cancelling the request cancels every attempt too);
//   - a non-fatal Failure is final only if it is the last attempt that can report: all attempts
//     launched, none still outstanding;
//   - nothing launches once the request's token is cancelled or its deadline has passed.
//
// Hedges are extra load. If a RetryBudget is given, every backup (not attempt 0) must be admitted
// by it, and holds its Permit until it reports or is cancelled; a refused backup ends hedging
// for this request (the attempts already running continue).
//
// No timers: the owner calls poll(now) when the coordinator asked to be woken (`wake_at`) and
// after each report, and launches the attempts it returns.
//
//   HedgeCoordinator hedge(policy, request.token(), now);
//   for (auto step = hedge.poll(now); !step.done; step = hedge.poll(now)) {
//     if (step.launch) start(step.launch->index, step.launch->token);   // async
//     else wait_until(step.wake_at, /*or*/ a report arrives);
//   }
//   // on completion of attempt i:  if (hedge.report(i, outcome, now) == Final) deliver(result_i);
//
// Thread-safety: all members are thread-safe (one internal mutex); attempts may report from any
// thread. Cancellation callbacks of losers run in the reporting thread, after the coordinator's
// lock is released, so they may call back into it.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "resilience/cancellation.h"
#include "resilience/clock.h"
#include "resilience/retry_budget.h"

namespace sluice::resilience {

struct HedgingPolicy {
  Duration delay = std::chrono::milliseconds(50);  // after launching an attempt, before the next
  std::uint32_t max_extra_attempts = 1;            // backups beyond the first attempt

  // Explains what is wrong, or nullopt: delay >= 0 (zero launches every attempt at once),
  // max_extra_attempts <= kMaxExtraAttempts.
  static constexpr std::uint32_t kMaxExtraAttempts = 64;
  [[nodiscard]] static std::optional<std::string> validate(const HedgingPolicy& policy);
};

class HedgeCoordinator {
 public:
  enum class Outcome : std::uint8_t {
    Success,       // a usable answer
    Failure,       // non-fatal: another attempt may succeed (e.g. 503, connection reset)
    FatalFailure,  // final whatever the others do (e.g. 404, 400)
  };

  // What to do with a reported result.
  enum class Verdict : std::uint8_t {
    Final,       // this result is the request's answer
    Wait,        // discard it; other attempts are running or will be launched
    Superseded,  // discard it; the request was already decided or cancelled (or unknown index)
  };

  struct Attempt {
    std::uint32_t index = 0;  // 0 = the original, 1.. = backups
    CancellationToken token;  // cancelled when the attempt loses, or the request is cancelled
  };

  struct Step {
    std::optional<Attempt> launch;     // launch this attempt now
    std::optional<TimePoint> wake_at;  // poll again then (if nothing is reported before)
    bool done = false;                 // decided or cancelled: nothing more will launch
  };

  // Starts coordinating at `now`; attempt 0 is due immediately. `budget` (optional) must outlive
  // the coordinator. A policy outside validate() is clamped (negative delay = 0, extra attempts
  // <= kMaxExtraAttempts).
  HedgeCoordinator(const HedgingPolicy& policy, CancellationToken request, TimePoint now,
                   RetryBudget* budget = nullptr);

  HedgeCoordinator(const HedgeCoordinator&) = delete;
  HedgeCoordinator& operator=(const HedgeCoordinator&) = delete;
  HedgeCoordinator(HedgeCoordinator&&) = delete;
  HedgeCoordinator& operator=(HedgeCoordinator&&) = delete;
  ~HedgeCoordinator() = default;

  // Returns at most one attempt to launch per call (call again while `launch` is set). A launch
  // is due when no attempt has been launched yet, or `now >= last launch + delay`, or a
  // non-fatal failure was reported since the last launch. Time going backwards only delays.
  [[nodiscard]] Step poll(TimePoint now);

  // Reports attempt `index`'s outcome. Reporting an index twice, or one never launched, is
  // Superseded and changes nothing; any report after the request's token was cancelled is
  // Superseded (and ends the coordination).
  Verdict report(std::uint32_t index, Outcome outcome, TimePoint now);

  // Cancels every outstanding attempt (e.g. the caller gave up); later reports are Superseded.
  void cancel();

  [[nodiscard]] bool done() const;
  [[nodiscard]] std::optional<std::uint32_t> winner() const;  // index of the Final result
  [[nodiscard]] std::uint32_t launched() const;

 private:
  struct Slot {
    CancellationSource source;
    RetryBudget::Permit permit;
    bool reported = false;
  };

  [[nodiscard]] std::uint32_t maxAttempts() const noexcept { return 1 + max_extra_attempts_; }
  // Marks the request decided and returns the sources of the attempts still outstanding (other
  // than the winner), to be cancelled after mutex_ is released.
  std::vector<CancellationSource> finishLocked(std::optional<std::uint32_t> winner);

  const Duration delay_;
  const std::uint32_t max_extra_attempts_;
  const CancellationToken request_;
  RetryBudget* const budget_;

  mutable std::mutex mutex_;
  std::vector<Slot> slots_;        // one per launched attempt
  TimePoint next_launch_at_;       // earliest time for the next launch
  std::uint32_t outstanding_ = 0;  // launched, not reported
  RetryBudget::Permit reserved_;   // budget taken for the next backup when it is already needed
  bool hedging_stopped_ = false;   // budget refused a backup: launch nothing more
  bool done_ = false;
  std::optional<std::uint32_t> winner_;
};

}  // namespace sluice::resilience
