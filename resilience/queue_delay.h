// QueueDelay: CoDel's standing-queue test (Nichols & Jacobson, "Controlling Queue Delay", ACM
// Queue 2012; RFC 8289) for a queue of requests: it judges each request as it leaves the queue by
// how long it waited (its sojourn), and says "shed it" once the queue has stood above a target
// delay for a whole interval. A queue that only absorbs bursts drains below the target within an
// interval and sheds nothing; a queue that stays long (offered load above capacity) turns every
// request that waited longer than the target into a fast rejection, so the requests that are served
// never wait much longer than the target, whatever the queue's length limit.
//
//   QueueDelay codel({.target = 5ms, .interval = 100ms});
//   // a request joins a queue that nobody waits in:
//   codel.onEmpty(now);
//   // a request leaves the queue with a slot, `waited` after it joined:
//   if (codel.onDequeue(now, waited)) shed(request);   // give the slot to the next one
//
// Rules (RFC 8289 section 5.3's dodequeue, with the queue's head sojourn as CoDel's packet
// sojourn):
//   * sojourn < target: the queue is not standing; the request is served, and the watch resets.
//   * sojourn >= target, first time: the watch starts, ending one interval from now; served.
//   * sojourn >= target while the watch is running and `now` has reached its end: shed.
//   * onEmpty(now) (the queue had no waiter): the watch resets, as CoDel does on an empty queue.
// Unlike CoDel's packet drops, which space out by interval/sqrt(count), every request that waited
// past the target is shed while the queue stands: a request answered "too late" costs its client
// as much as one refused, and shedding the stale head at once is what lets the queue drain
// (the fail-fast variant of Facebook's "Fail at Scale" queue, which times out requests after M
// ms instead of N once the queue has not been empty for N ms).
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
    Duration target = std::chrono::milliseconds(5);      // > 0: acceptable standing delay
    Duration interval = std::chrono::milliseconds(100);  // >= target: how long it may stand
  };

  // Explains what is wrong with `settings`, or nullopt when they are usable.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& s) {
    if (s.target <= Duration::zero()) return "target must be > 0";
    if (s.interval < s.target) return "interval must be >= target";
    return std::nullopt;
  }

  explicit QueueDelay(const Settings& settings) noexcept : settings_(settings) {}

  // A request leaves the queue at `now` after waiting `sojourn`: true when it is to be shed.
  bool onDequeue(TimePoint now, Duration sojourn) noexcept {
    now = latest(now);
    if (sojourn < settings_.target) {
      standing_since_.reset();
      return false;
    }
    if (!standing_since_) {
      standing_since_ = now;
      return false;
    }
    return now - *standing_since_ >= settings_.interval;
  }

  // The queue had no waiter at `now` (a request joined it empty): whatever stood has drained.
  void onEmpty(TimePoint now) noexcept {
    latest(now);
    standing_since_.reset();
  }

  // The queue has stood above the target for an interval as of `now`: requests that waited
  // longer than the target are being shed.
  [[nodiscard]] bool shedding(TimePoint now) const noexcept {
    return standing_since_ && std::max(now, latest_) - *standing_since_ >= settings_.interval;
  }

  [[nodiscard]] const Settings& settings() const noexcept { return settings_; }

 private:
  TimePoint latest(TimePoint now) noexcept {
    if (now > latest_) latest_ = now;
    return latest_;
  }

  Settings settings_;
  std::optional<TimePoint> standing_since_;  // when sojourns went (and stayed) above target
  TimePoint latest_{};
};

}  // namespace sluice::resilience
