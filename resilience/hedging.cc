#include "resilience/hedging.h"

#include <algorithm>
#include <utility>

#include "resilience/deadline.h"

namespace sluice::resilience {

std::optional<std::string> HedgingPolicy::validate(const HedgingPolicy& policy) {
  if (policy.delay < Duration::zero()) {
    return "delay must be >= 0";
  }
  if (policy.max_extra_attempts > kMaxExtraAttempts) {
    return "max_extra_attempts must be at most " + std::to_string(kMaxExtraAttempts);
  }
  return std::nullopt;
}

HedgeCoordinator::HedgeCoordinator(const HedgingPolicy& policy, CancellationToken request,
                                   TimePoint now, RetryBudget* budget)
    : delay_(std::max(policy.delay, Duration::zero())),
      max_extra_attempts_(std::min(policy.max_extra_attempts, HedgingPolicy::kMaxExtraAttempts)),
      request_(std::move(request)),
      budget_(budget),
      next_launch_at_(now) {
  slots_.reserve(maxAttempts());
}

std::vector<CancellationSource> HedgeCoordinator::finishLocked(
    std::optional<std::uint32_t> winner) {
  done_ = true;
  winner_ = winner;
  reserved_.release();
  std::vector<CancellationSource> losers;
  for (Slot& slot : slots_) {
    slot.permit.release();
    if (!slot.reported) {
      losers.push_back(slot.source);
    }
  }
  outstanding_ = 0;
  return losers;
}

HedgeCoordinator::Step HedgeCoordinator::poll(TimePoint now) {
  std::vector<CancellationSource> expired;
  Step step;
  {
    const std::lock_guard lock(mutex_);
    if (done_) {
      step.done = true;
      return step;
    }
    if (request_.isDone(now)) {
      // Attempts inherit the request's deadline (or are already cancelled with it), so expiring
      // them gives them the request's reason.
      expired = finishLocked(std::nullopt);
      step.done = true;
    } else {
      bool can_launch = !hedging_stopped_ && slots_.size() < maxAttempts();
      if (can_launch && now >= next_launch_at_) {
        const auto index = static_cast<std::uint32_t>(slots_.size());
        RetryBudget::Permit permit;
        if (index > 0 && budget_ != nullptr) {
          permit = reserved_ ? std::move(reserved_) : budget_->tryAcquireRetry(now);
          if (!permit) {
            hedging_stopped_ = true;
            can_launch = false;
          }
        }
        if (can_launch) {
          slots_.push_back(Slot{CancellationSource::childOf(request_), std::move(permit), false});
          ++outstanding_;
          next_launch_at_ = Deadline::after(now, delay_).timePoint();
          step.launch = Attempt{index, slots_.back().source.token()};
          can_launch = slots_.size() < maxAttempts();
        }
      }
      if (can_launch) {
        step.wake_at = next_launch_at_;
      }
      if (!step.launch && outstanding_ == 0 && !can_launch) {
        // Nothing running and nothing more to launch: no report can ever decide the request.
        // report() prevents this by reserving budget; kept as a guard against a stuck request.
        expired = finishLocked(std::nullopt);
        step.done = true;
      }
    }
  }
  for (CancellationSource& source : expired) {
    if (!source.expireIfDue(now)) {
      source.cancel();
    }
  }
  return step;
}

HedgeCoordinator::Verdict HedgeCoordinator::report(std::uint32_t index, Outcome outcome,
                                                   TimePoint now) {
  std::vector<CancellationSource> losers;
  {
    const std::lock_guard lock(mutex_);
    if (done_ || index >= slots_.size() || slots_[index].reported) {
      return Verdict::Superseded;
    }
    if (request_.isCancelled()) {
      // Nobody wants an answer any more; the attempts are already cancelled through the tree.
      (void)finishLocked(std::nullopt);
      return Verdict::Superseded;
    }
    Slot& slot = slots_[index];
    slot.reported = true;
    slot.permit.release();
    --outstanding_;
    if (outcome == Outcome::Failure) {
      bool can_launch = !hedging_stopped_ && slots_.size() < maxAttempts() && !request_.isDone(now);
      if (can_launch) {
        next_launch_at_ = std::min(next_launch_at_, now);
        if (outstanding_ == 0 && budget_ != nullptr && !reserved_) {
          // The next backup is now the only way to an answer: take its budget here so that a
          // refusal makes this failure final instead of leaving the request with nothing to wait
          // for.
          reserved_ = budget_->tryAcquireRetry(now);
          if (!reserved_) {
            hedging_stopped_ = true;
            can_launch = false;
          }
        }
      }
      if (can_launch || outstanding_ > 0) {
        return Verdict::Wait;
      }
    }
    losers = finishLocked(index);
  }
  for (CancellationSource& source : losers) {
    source.cancel();
  }
  return Verdict::Final;
}

void HedgeCoordinator::cancel() {
  std::vector<CancellationSource> losers;
  {
    const std::lock_guard lock(mutex_);
    if (done_) {
      return;
    }
    losers = finishLocked(std::nullopt);
  }
  for (CancellationSource& source : losers) {
    source.cancel();
  }
}

bool HedgeCoordinator::done() const {
  const std::lock_guard lock(mutex_);
  return done_;
}

std::optional<std::uint32_t> HedgeCoordinator::winner() const {
  const std::lock_guard lock(mutex_);
  return winner_;
}

std::uint32_t HedgeCoordinator::launched() const {
  const std::lock_guard lock(mutex_);
  return static_cast<std::uint32_t>(slots_.size());
}

}  // namespace sluice::resilience
