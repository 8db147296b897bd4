// CanaryRollout: a progressive canary's state machine. It moves a share of traffic to the canary
// step by step while the canary stays healthy next to its baseline (canary_analysis.h), promotes
// it to all the traffic after the last step, and rolls it back to none as soon as the analysis
// fails it.
//
//   CanaryRollout r({.steps = {0.05, 0.25, 0.5}, .interval = 1min, .analysis = {...}}, now);
//   every second or so:
//     if (auto d = r.tick(baseline_counters, canary_counters, now)) log(*d);
//     route.setCanaryShare(r.share());
//
//   Progressing (step i, share steps[i])
//     -- analysis fails (at any tick) ----------------------------> RolledBack (share 0)
//     -- interval over, healthy: step i+1, or after the last ------> Promoted (share 1)
//     -- interval over, too little traffic: Hold, keeps the window (evidence accumulates)
//   pause() / resume(): Paused keeps the share and judges nothing; resume starts a new window.
//   promote() / abort(): to Promoted / RolledBack at once.   restart(): back to step 0.
//
// The window is what both sides served since the step (or the last resume) began: tick() takes
// cumulative counters and keeps the window's start itself. The window is judged each time its
// smaller side doubles past min_requests and when the interval ends, so a broken canary goes
// back as soon as the evidence is enough, not at the end of its interval; each look spends
// half of the previous one's share of the tests' error allowance, so all the looks at a step
// together fail a healthy canary no more often than one look at `confidence` would.
// "Healthy" means "not shown worse": min_requests sets how small a difference can be seen.
// Time is a parameter; not thread-safe (one owner, e.g. a control thread).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>
#include <vector>

#include "resilience/canary_analysis.h"

namespace sluice::resilience {

class CanaryRollout {
 public:
  using Clock = std::chrono::steady_clock;

  struct Settings {
    std::vector<double> steps;  // the canary's share at each step, increasing, in (0, 1)
    Clock::duration interval{std::chrono::minutes(1)};
    CanaryAnalysisSettings analysis;
    std::vector<double> latency_bounds;  // seconds: the samples' bucket bounds
  };

  enum class State : std::uint8_t { Progressing, Paused, Promoted, RolledBack };
  enum class Action : std::uint8_t {
    Start,     // the rollout began (step 0)
    Step,      // healthy over an interval: the next step
    Hold,      // an interval with too little traffic on a side: not judged
    Promote,   // healthy after the last step, or promote(): all traffic to the canary
    Rollback,  // the analysis failed the canary: no traffic to it
    Pause,
    Resume,
    Abort,    // abort(): no traffic to the canary
    Restart,  // restart(): step 0 again
  };

  struct Decision {
    Clock::time_point at;
    Action action = Action::Start;
    State state = State::Progressing;  // after it
    std::size_t step = 0;              // after it
    double share_before = 0;
    double share = 0;                     // after it
    bool manual = false;                  // an operator's call, not the analysis
    CanaryAnalysis analysis;              // the numbers it was made on (judged decisions)
    std::uint64_t baseline_requests = 0;  // in the window judged
    std::uint64_t canary_requests = 0;
    std::uint32_t repeats = 1;  // a run of holds at one step is one entry
  };

  // Starts at step 0. `settings` must be valid (validate()).
  CanaryRollout(Settings settings, Clock::time_point now);

  // Why `s` cannot run, or nullopt.
  [[nodiscard]] static std::optional<std::string_view> validate(const Settings& s);

  // Cumulative counters of both sides as of `now`; returns the decision made, if any.
  std::optional<Decision> tick(const CanarySample& baseline, const CanarySample& canary,
                               Clock::time_point now);

  // Operator calls; nullopt when not applicable in the current state (pause while not
  // progressing, resume while not paused).
  std::optional<Decision> pause(Clock::time_point now);
  std::optional<Decision> resume(Clock::time_point now);
  std::optional<Decision> promote(Clock::time_point now);
  std::optional<Decision> abort(Clock::time_point now);
  Decision restart(Clock::time_point now);

  [[nodiscard]] State state() const noexcept { return state_; }
  [[nodiscard]] std::size_t step() const noexcept { return step_; }
  [[nodiscard]] double share() const noexcept { return share_; }  // the canary's, in [0, 1]
  [[nodiscard]] const Settings& settings() const noexcept { return settings_; }
  // The window being judged (since the step began) and the latest analysis of it.
  [[nodiscard]] const CanaryAnalysis& latest() const noexcept { return latest_; }
  [[nodiscard]] Clock::time_point stepStarted() const noexcept { return step_started_; }
  // The last kHistory decisions, oldest first.
  [[nodiscard]] const std::deque<Decision>& history() const noexcept { return history_; }
  // Decisions ever made, by action (history keeps only the last ones).
  [[nodiscard]] std::uint64_t count(Action a) const noexcept {
    return counts_[static_cast<std::size_t>(a)];
  }

  static constexpr std::size_t kHistory = 100;
  static constexpr std::size_t kActions = 9;

 private:
  Decision record(Action action, State state, std::size_t step, double share, Clock::time_point now,
                  bool manual);
  void newWindow(Clock::time_point now);

  Settings settings_;
  State state_ = State::Progressing;
  std::size_t step_ = 0;
  double share_ = 0;
  Clock::time_point step_started_;
  Clock::time_point last_hold_;
  CanarySample window_baseline_;  // cumulative counters when the window began
  CanarySample window_canary_;
  CanarySample last_baseline_;  // the latest counters seen
  CanarySample last_canary_;
  bool have_window_ = false;  // the window's start counters are known (a tick came)
  CanaryAnalysis latest_;
  int looks_ = 0;                // at the window so far
  std::uint64_t next_look_ = 0;  // the smaller side's requests at the next look
  std::uint64_t judged_baseline_ = 0;
  std::uint64_t judged_canary_ = 0;
  std::deque<Decision> history_;
  std::uint64_t counts_[kActions] = {};
};

[[nodiscard]] std::string_view toString(CanaryRollout::State s);
[[nodiscard]] std::string_view toString(CanaryRollout::Action a);
[[nodiscard]] std::string_view toString(CanaryAnalysis::Verdict v);

}  // namespace sluice::resilience
