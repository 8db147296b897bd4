// QueueDelay: a request queue managed by time rather than by length, as Facebook manages its
// server queues with CoDel's idea (Maurer, "Fail at Scale", ACM Queue 2015; after Nichols &
// Jacobson's CoDel, RFC 8289): a queue that has not drained for a whole `interval` is a
// standing queue - offered load above capacity, not a burst - and while it stands no request
// waits in it longer than `target`. A queue that only absorbs bursts drains within an interval
// and lets requests wait as long as the queue's own timeout allows; under sustained overload the
// served requests wait at most `target`, whatever the queue's length limit, and the rest get a
// fast rejection instead of a late answer.
//
//   QueueDelay codel({.target = 5ms, .interval = 100ms});
//   // a request joins a queue that nobody waits in:
//   codel.onEmpty(now);
//   // a request joins: while the queue stands it need not wait longer than the target
//   auto wait = codel.shedding(now) ? std::min(queue_timeout, codel.settings().target)
//                                   : queue_timeout;
//   // a request leaves the queue (with a slot, or timed out) `waited` after it joined, leaving
//   // `left` waiters behind:
//   if (codel.onDequeue(now, waited, left == 0)) shed(request);   // the slot goes to the next
//
// Rules (t = the latest `now` seen; a departure is "stale" when its sojourn > target):
//   * Busy run: a request joining the queue empty starts a new run at t - unless the queue
//     emptied less than `target` before (a gap that short is the queue catching its breath
//     between arrivals and batches of freed slots, not draining: a request that came then would
//     have waited no more than the target anyway). Before anything is seen, the first time seen
//     starts a run.
//   * The queue starts standing once a run has lasted an interval (t - run start >= interval),
//     and stops at a departure that is not stale when a whole interval has passed without a
//     stale one (then a new run starts at t); a stale departure after a quiet spell (a stall:
//     nobody left, and it waited) keeps it standing. While standing, a drain does not end it:
//     shedding keeps the queue short and lets it empty now and then, which is the control working,
//     not the load going away.
//   * onDequeue(t, sojourn, emptied): to be shed when the queue stands and the departure is
//     stale; when it left the queue empty, the queue emptied at t.
//   * onEmpty(t): a request joins the queue empty at t (the busy-run rule).
//   * shedding(t): whether the queue stands at t (what the next departure would be judged by).
// Why not RFC 8289's per-packet watch, which the first version of this class followed: a
// request queue empties and refills in generations (a full queue refuses newcomers, then drains
// in order; slots free in batches), so some request in every interval waits little, the watch
// resets on it, and the queue stood unpoliced: at 3x overload behind a 16-deep queue the served
// requests still waited up to 40 ms with a 5 ms target; ending the standing state whenever the
// queue drained did the same at a slower beat. Every stale request is shed rather than one per
// interval/sqrt(count): a late answer costs its client as much as a refusal.
//
// Time is a parameter (resilience/clock.h); a `now` earlier than one already seen is taken as the
// latest seen. Not thread-safe: callers serialize (the gateway's concurrency guard holds a mutex).
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include "resilience/clock.h"

namespace sluice::resilience {

class QueueDelay {
 public:
  struct Settings {
    Duration target = std::chrono::milliseconds(5);      // > 0: the longest wait once it stands
    Duration interval = std::chrono::milliseconds(100);  // >= target: busy this long = standing
  };

  // Explains what is wrong with `settings`, or nullopt when they are usable.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& s) {
    if (s.target <= Duration::zero()) return "target must be > 0";
    if (s.interval < s.target) return "interval must be >= target";
    return std::nullopt;
  }

  explicit QueueDelay(const Settings& settings) noexcept : settings_(settings) {}

  // A request leaves the queue at `now` after waiting `sojourn`, and the queue is empty after it
  // when `emptied`: true when it is to be shed.
  bool onDequeue(TimePoint now, Duration sojourn, bool emptied) noexcept {
    now = see(now);
    const bool stale = sojourn > settings_.target;
    if (standing_ && !stale && now - last_stale_ >= settings_.interval) {
      standing_ = false;  // an interval without a stale departure, and a fresh one: it is over
      run_since_ = now;
    } else if (!standing_ && now - *run_since_ >= settings_.interval) {
      standing_ = true;
    }
    if (stale || !standing_) last_stale_ = now;
    if (emptied) emptied_at_ = now;
    return standing_ && stale;
  }

  // A request joins the queue with nobody waiting in it at `now`.
  void onEmpty(TimePoint now) noexcept {
    now = see(now);
    if (!emptied_at_ || now - *emptied_at_ >= settings_.target) run_since_ = now;
    emptied_at_.reset();
  }

  // The queue stands as of `now`, as far as departures tell (a stale one could prolong it): a
  // request that waited longer than the target is shed.
  [[nodiscard]] bool shedding(TimePoint now) const noexcept {
    if (!run_since_) return false;
    now = std::max(now, latest_);
    if (standing_) return now - last_stale_ < settings_.interval;
    return now - *run_since_ >= settings_.interval;
  }

  [[nodiscard]] const Settings& settings() const noexcept { return settings_; }

 private:
  TimePoint see(TimePoint now) noexcept {
    if (now > latest_) latest_ = now;
    if (!run_since_) run_since_ = latest_;
    return latest_;
  }

  Settings settings_;
  std::optional<TimePoint> run_since_;   // start of the queue's current busy run
  std::optional<TimePoint> emptied_at_;  // when it last emptied, while it is empty
  bool standing_ = false;
  TimePoint last_stale_{};  // while standing: the last stale departure (or when it began)
  TimePoint latest_{};
};

}  // namespace sluice::resilience
