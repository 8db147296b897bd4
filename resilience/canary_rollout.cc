#include "resilience/canary_rollout.h"

#include <algorithm>
#include <utility>

namespace sluice::resilience {

CanaryRollout::CanaryRollout(Settings settings, Clock::time_point now)
    : settings_(std::move(settings)),
      step_started_(now),
      last_hold_(now),
      next_look_(settings_.analysis.min_requests) {
  record(Action::Start, State::Progressing, 0, settings_.steps.front(), now, false);
}

std::optional<std::string_view> CanaryRollout::validate(const Settings& s) {
  if (s.steps.empty()) return "a canary needs at least one step";
  double before = 0;
  for (const double step : s.steps) {
    // A step of 1 would leave the baseline nothing to be compared with: promotion is the 1.
    if (!(step > before && step < 1)) return "canary steps must increase, each in (0, 1)";
    before = step;
  }
  if (s.interval <= Clock::duration::zero()) return "the canary interval must be positive";
  const auto& a = s.analysis;
  if (!(a.quantile > 0 && a.quantile < 1)) return "the latency quantile must be in (0, 1)";
  if (!(a.confidence > 0.5 && a.confidence < 1)) return "the confidence must be in (0.5, 1)";
  if (!(a.max_error_increase >= 0 && a.max_error_increase < 1)) {
    return "the error rate margin must be in [0, 1)";
  }
  if (!(a.max_latency_ratio >= 1)) return "the latency ratio must be at least 1";
  if (!(a.min_latency_increase >= 0)) return "the latency floor must not be negative";
  return std::nullopt;
}

void CanaryRollout::newWindow(Clock::time_point now) {
  window_baseline_ = last_baseline_;
  window_canary_ = last_canary_;
  step_started_ = now;
  last_hold_ = now;
  looks_ = 0;
  next_look_ = settings_.analysis.min_requests;
}

CanaryRollout::Decision CanaryRollout::record(Action action, State state, std::size_t step,
                                              double share, Clock::time_point now, bool manual) {
  Decision d;
  d.at = now;
  d.action = action;
  d.state = state;
  d.step = step;
  d.share_before = share_;
  d.share = share;
  d.manual = manual;
  d.analysis = latest_;
  d.baseline_requests = judged_baseline_;
  d.canary_requests = judged_canary_;
  state_ = state;
  step_ = step;
  share_ = share;
  ++counts_[static_cast<std::size_t>(action)];
  // A run of holds at one step is one entry (with how many): a canary starved of traffic for
  // hours must not push its start and its last judgements out of the history.
  if (action == Action::Hold && !history_.empty() && history_.back().action == Action::Hold &&
      history_.back().step == step) {
    d.repeats = history_.back().repeats + 1;
    history_.back() = d;
    return d;
  }
  history_.push_back(d);
  if (history_.size() > kHistory) history_.pop_front();
  return d;
}

std::optional<CanaryRollout::Decision> CanaryRollout::tick(const CanarySample& baseline,
                                                           const CanarySample& canary,
                                                           Clock::time_point now) {
  last_baseline_ = baseline;
  last_canary_ = canary;
  if (!have_window_) {  // the first counters seen start the first window
    have_window_ = true;
    window_baseline_ = baseline;
    window_canary_ = canary;
    return std::nullopt;
  }
  if (state_ != State::Progressing) return std::nullopt;
  const CanarySample b = baseline.since(window_baseline_);
  const CanarySample c = canary.since(window_canary_);
  const bool due = now - step_started_ >= settings_.interval;
  // Looks at the window: each time its smaller side doubles (min_requests, 2x, 4x, ...) and when
  // the interval ends, the k-th spending half of what the (k-1)-th had of the error allowance
  // (1 - confidence): a canary watched continuously is not failed by chance more often than a
  // canary judged once (a Bonferroni bound over the looks).
  const std::uint64_t smaller = std::min(b.requests, c.requests);
  if (smaller >= settings_.analysis.min_requests && smaller < next_look_ && !due) {
    return std::nullopt;
  }
  CanaryAnalysisSettings look = settings_.analysis;
  look.confidence = 1 - (1 - look.confidence) / static_cast<double>(2ULL << std::min(looks_, 40));
  latest_ = analyzeCanary(b, c, settings_.latency_bounds, look);
  judged_baseline_ = b.requests;
  judged_canary_ = c.requests;
  if (latest_.verdict != CanaryAnalysis::Verdict::Insufficient) {
    ++looks_;
    while (next_look_ <= smaller) next_look_ *= 2;
  }
  switch (latest_.verdict) {
    case CanaryAnalysis::Verdict::ErrorRate:
    case CanaryAnalysis::Verdict::Latency: {
      auto d = record(Action::Rollback, State::RolledBack, step_, 0, now, false);
      newWindow(now);
      return d;
    }
    case CanaryAnalysis::Verdict::Insufficient:
      // Not judged: the window keeps growing until both sides have enough; one Hold per
      // interval says so.
      if (now - last_hold_ < settings_.interval) return std::nullopt;
      last_hold_ = now;
      return record(Action::Hold, state_, step_, share_, now, false);
    case CanaryAnalysis::Verdict::Healthy:
      break;
  }
  if (!due) return std::nullopt;
  Decision d = step_ + 1 < settings_.steps.size()
                   ? record(Action::Step, State::Progressing, step_ + 1, settings_.steps[step_ + 1],
                            now, false)
                   : record(Action::Promote, State::Promoted, step_, 1, now, false);
  newWindow(now);
  return d;
}

std::optional<CanaryRollout::Decision> CanaryRollout::pause(Clock::time_point now) {
  if (state_ != State::Progressing) return std::nullopt;
  return record(Action::Pause, State::Paused, step_, share_, now, true);
}

std::optional<CanaryRollout::Decision> CanaryRollout::resume(Clock::time_point now) {
  if (state_ != State::Paused) return std::nullopt;
  newWindow(now);  // what happened while paused is not this step's evidence
  return record(Action::Resume, State::Progressing, step_, share_, now, true);
}

std::optional<CanaryRollout::Decision> CanaryRollout::promote(Clock::time_point now) {
  if (state_ == State::Promoted) return std::nullopt;
  return record(Action::Promote, State::Promoted, step_, 1, now, true);
}

std::optional<CanaryRollout::Decision> CanaryRollout::abort(Clock::time_point now) {
  if (state_ == State::RolledBack) return std::nullopt;
  return record(Action::Abort, State::RolledBack, step_, 0, now, true);
}

CanaryRollout::Decision CanaryRollout::restart(Clock::time_point now) {
  newWindow(now);
  return record(Action::Restart, State::Progressing, 0, settings_.steps.front(), now, true);
}

std::string_view toString(CanaryRollout::State s) {
  switch (s) {
    case CanaryRollout::State::Progressing:
      return "progressing";
    case CanaryRollout::State::Paused:
      return "paused";
    case CanaryRollout::State::Promoted:
      return "promoted";
    case CanaryRollout::State::RolledBack:
      return "rolled_back";
  }
  return "unknown";
}

std::string_view toString(CanaryRollout::Action a) {
  switch (a) {
    case CanaryRollout::Action::Start:
      return "start";
    case CanaryRollout::Action::Step:
      return "step";
    case CanaryRollout::Action::Hold:
      return "hold";
    case CanaryRollout::Action::Promote:
      return "promote";
    case CanaryRollout::Action::Rollback:
      return "rollback";
    case CanaryRollout::Action::Pause:
      return "pause";
    case CanaryRollout::Action::Resume:
      return "resume";
    case CanaryRollout::Action::Abort:
      return "abort";
    case CanaryRollout::Action::Restart:
      return "restart";
  }
  return "unknown";
}

std::string_view toString(CanaryAnalysis::Verdict v) {
  switch (v) {
    case CanaryAnalysis::Verdict::Insufficient:
      return "insufficient";
    case CanaryAnalysis::Verdict::Healthy:
      return "healthy";
    case CanaryAnalysis::Verdict::ErrorRate:
      return "error_rate";
    case CanaryAnalysis::Verdict::Latency:
      return "latency";
  }
  return "unknown";
}

}  // namespace sluice::resilience
