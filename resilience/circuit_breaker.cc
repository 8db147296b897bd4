#include "resilience/circuit_breaker.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "resilience/deadline.h"

namespace sluice::resilience {

// ---- Lock-free count-based window ------------------------------------------------------------
//
// The closed-state hot path must not take a lock, yet every transition into Closed must start
// from an empty window and outcomes of older epochs must never leak into it. So:
//   - each ring slot holds one outcome tagged with (low bits of) the epoch that wrote it;
//   - `totals_` packs a tag and three 18-bit two's-complement counters (calls, failures, slow)
//     into one word, updated by CAS: it always equals the sum of the slots carrying its tag
//     (once in-flight updates land);
//   - a recorder swaps its outcome into a slot, then applies to the totals the difference the swap
//     made *for the totals' current tag*: minus the displaced outcome if it carries that tag,
//     plus its own if it does. Swaps by stale recorders therefore never disturb a newer window,
//     and a newer window never counts a stale outcome;
//   - entering Closed (under the mutex, before the new epoch is published) zeroes the ring and
//     resets the totals to the new tag.
// Counters may dip below zero transiently (two swaps of one slot applying in the opposite
// order), hence signed fields; readers clamp. Tags are 10 bits: a stale recorder would have to
// stall for ~1000 transitions between reading the state and swapping for its tag to alias.
//
// reconfigure() may change the window size while recorders run without the lock. A stale
// recorder may pair the old size with the new ring or the reverse, so rings are never freed
// before the breaker (rings_ keeps them) and a recorder drops an index beyond the ring it
// loaded; everything else is the epoch rule again, since a size change starts a new epoch.
namespace {

constexpr unsigned kTagBits = 10;
constexpr std::uint64_t kTagMask = (1U << kTagBits) - 1;
constexpr unsigned kFieldBits = 18;
constexpr std::uint64_t kFieldMask = (1U << kFieldBits) - 1;
constexpr unsigned kCallsShift = 2 * kFieldBits;
constexpr unsigned kFailuresShift = kFieldBits;
constexpr unsigned kTagShift = 3 * kFieldBits;

constexpr std::uint16_t kSlotFailed = 1;
constexpr std::uint16_t kSlotSlow = 2;
constexpr std::uint16_t kSlotPresent = 4;
constexpr unsigned kSlotTagShift = 3;

std::uint64_t tagOf(std::uint64_t epoch) { return epoch & kTagMask; }

std::int64_t signExtend(std::uint64_t field) {
  constexpr unsigned kUnused = 64 - kFieldBits;
  return static_cast<std::int64_t>(field << kUnused) >> kUnused;
}

std::uint64_t field(std::int64_t value) { return static_cast<std::uint64_t>(value) & kFieldMask; }

TimePoint plus(TimePoint t, Duration d) { return Deadline::after(t, d).timePoint(); }

}  // namespace

// ---- Settings --------------------------------------------------------------------------------

std::optional<std::string> CircuitBreaker::validate(const Settings& s) {
  if (s.window_type == WindowType::CountBased) {
    if (s.window_size < 1 || s.window_size > kMaxWindowSize) {
      return "window_size must be in [1, " + std::to_string(kMaxWindowSize) + "]";
    }
    if (s.minimum_calls > s.window_size) {
      return "minimum_calls must not exceed window_size (the breaker could never trip)";
    }
  } else if (auto problem = SlidingWindow<Counts>::validate(s.window_duration, s.window_buckets)) {
    return "window: " + *problem;
  }
  if (s.minimum_calls < 1) {
    return "minimum_calls must be at least 1";
  }
  if (!(s.failure_rate_threshold >= 0 && s.failure_rate_threshold <= 100)) {
    return "failure_rate_threshold must be in [0, 100]";
  }
  if (!(s.slow_call_rate_threshold >= 0 && s.slow_call_rate_threshold <= 100)) {
    return "slow_call_rate_threshold must be in [0, 100]";
  }
  if (s.slow_call_duration < Duration::zero()) {
    return "slow_call_duration must be >= 0";
  }
  if (s.open_duration < Duration::zero()) {
    return "open_duration must be >= 0";
  }
  if (!std::isfinite(s.open_duration_multiplier) || s.open_duration_multiplier < 1) {
    return "open_duration_multiplier must be finite and >= 1";
  }
  if (s.max_open_duration < s.open_duration) {
    return "max_open_duration must be at least open_duration";
  }
  if (s.half_open_probes < 1 || s.half_open_probes > kMaxHalfOpenProbes) {
    return "half_open_probes must be in [1, " + std::to_string(kMaxHalfOpenProbes) + "]";
  }
  if (s.initial_state != State::Closed && s.initial_state != State::ForcedOpen &&
      s.initial_state != State::Disabled) {
    return "initial_state must be Closed, ForcedOpen or Disabled";
  }
  return std::nullopt;
}

namespace {

// Brings any Settings into the range validate() accepts, so that the constructor cannot fail.
CircuitBreaker::Settings coerce(CircuitBreaker::Settings s) {
  using State = CircuitBreaker::State;
  s.window_size = std::clamp<std::uint32_t>(s.window_size, 1, CircuitBreaker::kMaxWindowSize);
  s.minimum_calls = std::max<std::uint32_t>(s.minimum_calls, 1);
  if (s.window_type == CircuitBreaker::WindowType::CountBased) {
    s.minimum_calls = std::min(s.minimum_calls, s.window_size);
  }
  const auto percent = [](double p, double fallback) {
    return std::isnan(p) ? fallback : std::clamp(p, 0.0, 100.0);
  };
  s.failure_rate_threshold = percent(s.failure_rate_threshold, 50.0);
  s.slow_call_rate_threshold = percent(s.slow_call_rate_threshold, 100.0);
  s.slow_call_duration = std::max(s.slow_call_duration, Duration::zero());
  s.open_duration = std::max(s.open_duration, Duration::zero());
  if (!std::isfinite(s.open_duration_multiplier) || s.open_duration_multiplier < 1) {
    s.open_duration_multiplier = 1;
  }
  s.max_open_duration = std::max(s.max_open_duration, s.open_duration);
  s.half_open_probes =
      std::clamp<std::uint32_t>(s.half_open_probes, 1, CircuitBreaker::kMaxHalfOpenProbes);
  if (s.initial_state != State::ForcedOpen && s.initial_state != State::Disabled) {
    s.initial_state = State::Closed;
  }
  return s;
}

}  // namespace

CircuitBreaker::Settings CircuitBreaker::fromHystrix(const HystrixSettings& h) {
  Settings s;
  s.window_type = WindowType::TimeBased;
  s.window_duration = h.rolling_window;
  s.window_buckets = h.rolling_buckets;
  s.minimum_calls = std::max<std::uint32_t>(h.request_volume_threshold, 1);
  s.failure_rate_threshold = std::min(static_cast<double>(h.error_threshold_percentage), 100.0);
  s.slow_call_rate_threshold = 100;
  s.slow_call_duration = Duration::max();
  s.open_duration = h.sleep_window;
  s.open_duration_multiplier = 1;
  s.max_open_duration = h.sleep_window;
  s.half_open_probes = 1;
  s.initial_state = h.force_open     ? State::ForcedOpen
                    : h.force_closed ? State::Disabled
                                     : State::Closed;
  return s;
}

// ---- Construction ----------------------------------------------------------------------------

CircuitBreaker::CircuitBreaker(const Settings& settings, TimePoint now, Listener listener)
    : listener_(std::move(listener)), settings_(coerce(settings)), last_transition_(now) {
  publishSettingsLocked();
  installWindowLocked();
  clearWindowLocked(1);
  state_word_.store(packState(1, settings_.initial_state), std::memory_order_release);
}

CircuitBreaker::~CircuitBreaker() = default;

// ---- Permit ----------------------------------------------------------------------------------

void CircuitBreaker::Permit::release() noexcept {
  CircuitBreaker* breaker = std::exchange(breaker_, nullptr);
  if (breaker != nullptr && kind_ == Kind::Probe) {
    breaker->releaseProbe(epoch_);
  }
}

void CircuitBreaker::Permit::finish(Duration duration, bool failed) {
  if (breaker_ == nullptr) {
    return;
  }
  CircuitBreaker* breaker = std::exchange(breaker_, nullptr);
  const Outcome outcome{
      failed, duration > Duration{breaker->slow_call_ns_.load(std::memory_order_relaxed)}};
  const TimePoint at = plus(acquired_at_, std::max(duration, Duration::zero()));
  switch (kind_) {
    case Kind::Closed:
      if (breaker->count_based_.load(std::memory_order_acquire)) {
        breaker->recordClosedCountBased(epoch_, outcome, at);
      } else {
        breaker->recordClosedTimeBased(epoch_, outcome, at);
      }
      break;
    case Kind::Probe:
      breaker->recordProbe(epoch_, outcome, at);
      break;
    case Kind::Untracked:
      break;
  }
}

// ---- Acquire ---------------------------------------------------------------------------------

CircuitBreaker::Permit CircuitBreaker::tryAcquire(TimePoint now) {
  const std::uint64_t word = state_word_.load(std::memory_order_acquire);
  switch (stateOf(word)) {
    case State::Closed:
      return {this, epochOf(word), now, Permit::Kind::Closed};
    case State::Disabled:
      return {this, epochOf(word), now, Permit::Kind::Untracked};
    case State::ForcedOpen:
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return Permit{};
    case State::Open:
      if (now.time_since_epoch().count() < open_until_ns_.load(std::memory_order_acquire)) {
        rejected_.fetch_add(1, std::memory_order_relaxed);
        return Permit{};
      }
      break;
    case State::HalfOpen:
      break;
  }
  return acquireSlow(now);
}

CircuitBreaker::Permit CircuitBreaker::acquireSlow(TimePoint now) {
  Permit permit;
  {
    const std::lock_guard lock(mutex_);
    const TimePoint effective = std::max(now, last_transition_);
    std::uint64_t word = state_word_.load(std::memory_order_relaxed);
    if (stateOf(word) == State::Open &&
        effective.time_since_epoch().count() >= open_until_ns_.load(std::memory_order_relaxed)) {
      transitionLocked(State::HalfOpen, effective);
      word = state_word_.load(std::memory_order_relaxed);
    }
    switch (stateOf(word)) {
      case State::Closed:
        permit = Permit(this, epochOf(word), now, Permit::Kind::Closed);
        break;
      case State::Disabled:
        permit = Permit(this, epochOf(word), now, Permit::Kind::Untracked);
        break;
      case State::HalfOpen:
        if (probes_in_flight_ + probe_outcomes_ < settings_.half_open_probes) {
          ++probes_in_flight_;
          permit = Permit(this, epochOf(word), now, Permit::Kind::Probe);
        }
        break;
      case State::Open:
      case State::ForcedOpen:
        break;
    }
  }
  if (!permit) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
  }
  deliverTransitions();
  return permit;
}

// ---- Recording -------------------------------------------------------------------------------

// Lock-free callers may see a mix of old and new thresholds while reconfigure() runs; every
// trip is re-decided under the mutex, where the thresholds are consistent.
bool CircuitBreaker::shouldTrip(const Counts& c) const noexcept {
  if (c.calls < static_cast<std::int64_t>(minimum_calls_.load(std::memory_order_relaxed))) {
    return false;
  }
  const auto calls = static_cast<double>(c.calls);
  return static_cast<double>(c.failures) * 100.0 >=
             failure_rate_threshold_.load(std::memory_order_relaxed) * calls ||
         static_cast<double>(c.slow) * 100.0 >=
             slow_call_rate_threshold_.load(std::memory_order_relaxed) * calls;
}

CircuitBreaker::Counts CircuitBreaker::countBasedTotals(std::uint64_t epoch) const noexcept {
  const std::uint64_t word = totals_.load(std::memory_order_acquire);
  if ((word >> kTagShift) != tagOf(epoch)) {
    return {};
  }
  return Counts{std::max<std::int64_t>(0, signExtend(word >> kCallsShift)),
                std::max<std::int64_t>(0, signExtend(word >> kFailuresShift)),
                std::max<std::int64_t>(0, signExtend(word))};
}

void CircuitBreaker::recordClosedCountBased(std::uint64_t epoch, Outcome outcome, TimePoint at) {
  if (state_word_.load(std::memory_order_acquire) != packState(epoch, State::Closed)) {
    return;
  }
  const std::uint64_t tag = tagOf(epoch);
  const auto slot_value = static_cast<std::uint16_t>((tag << kSlotTagShift) | kSlotPresent |
                                                     (outcome.slow ? kSlotSlow : 0) |
                                                     (outcome.failed ? kSlotFailed : 0));
  const Ring* ring = ring_.load(std::memory_order_acquire);
  if (ring == nullptr) {
    return;  // stale: the window has always been time-based
  }
  const std::uint64_t index = ring_next_.fetch_add(1, std::memory_order_relaxed) %
                              window_size_.load(std::memory_order_relaxed);
  if (index >= ring->capacity) {
    return;  // stale: a reconfigure grew the window between our loads of the size and the ring
  }
  const std::uint16_t displaced =
      ring->slots[index].exchange(slot_value, std::memory_order_acq_rel);

  std::uint64_t word = totals_.load(std::memory_order_acquire);
  Counts counts;
  for (;;) {
    const std::uint64_t current_tag = word >> kTagShift;
    counts = Counts{signExtend(word >> kCallsShift), signExtend(word >> kFailuresShift),
                    signExtend(word)};
    bool changed = false;
    if ((displaced & kSlotPresent) != 0 && (displaced >> kSlotTagShift) == current_tag) {
      counts.calls -= 1;
      counts.failures -= (displaced & kSlotFailed) != 0 ? 1 : 0;
      counts.slow -= (displaced & kSlotSlow) != 0 ? 1 : 0;
      changed = true;
    }
    const bool ours = tag == current_tag;
    if (ours) {
      counts.calls += 1;
      counts.failures += outcome.failed ? 1 : 0;
      counts.slow += outcome.slow ? 1 : 0;
      changed = true;
    }
    if (!changed) {
      return;
    }
    const std::uint64_t next = (current_tag << kTagShift) | (field(counts.calls) << kCallsShift) |
                               (field(counts.failures) << kFailuresShift) | field(counts.slow);
    if (totals_.compare_exchange_weak(word, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      if (!ours) {
        return;
      }
      break;
    }
  }
  if (!shouldTrip(counts)) {
    return;
  }
  {
    const std::lock_guard lock(mutex_);
    // Re-check under the lock: another thread may have tripped (or closed and reopened) since.
    if (state_word_.load(std::memory_order_relaxed) == packState(epoch, State::Closed) &&
        shouldTrip(countBasedTotals(epoch))) {
      transitionLocked(State::Open, at);
    }
  }
  deliverTransitions();
}

CircuitBreaker::Counts CircuitBreaker::timeBasedTotalsLocked(TimePoint now) const {
  Counts total;
  time_window_->forEach(now, [&](const Counts& c) {
    total.calls += c.calls;
    total.failures += c.failures;
    total.slow += c.slow;
  });
  return total;
}

void CircuitBreaker::recordClosedTimeBased(std::uint64_t epoch, Outcome outcome, TimePoint at) {
  {
    const std::lock_guard lock(mutex_);
    if (state_word_.load(std::memory_order_relaxed) != packState(epoch, State::Closed) ||
        !time_window_) {
      return;
    }
    Counts& bucket = time_window_->current(at);
    bucket.calls += 1;
    bucket.failures += outcome.failed ? 1 : 0;
    bucket.slow += outcome.slow ? 1 : 0;
    if (!shouldTrip(timeBasedTotalsLocked(at))) {
      return;
    }
    transitionLocked(State::Open, at);
  }
  deliverTransitions();
}

void CircuitBreaker::recordProbe(std::uint64_t epoch, Outcome outcome, TimePoint at) {
  {
    const std::lock_guard lock(mutex_);
    if (state_word_.load(std::memory_order_relaxed) != packState(epoch, State::HalfOpen)) {
      return;
    }
    --probes_in_flight_;
    ++probe_outcomes_;
    probe_failures_ += outcome.failed ? 1 : 0;
    probe_slow_ += outcome.slow ? 1 : 0;
    // Judge the probes as if all half_open_probes outcomes were in; decide once no remaining
    // outcome can change the verdict. More outcomes than that are in only when a reconfigure
    // lowered half_open_probes: judge them all, now.
    const double probes = std::max(settings_.half_open_probes, probe_outcomes_);
    const double remaining = probes - probe_outcomes_;
    const double failure_bar = settings_.failure_rate_threshold * probes;
    const double slow_bar = settings_.slow_call_rate_threshold * probes;
    const double failures = probe_failures_;
    const double slow = probe_slow_;
    if (failures * 100.0 >= failure_bar || slow * 100.0 >= slow_bar) {
      transitionLocked(State::Open, at);
    } else if ((failures + remaining) * 100.0 < failure_bar &&
               (slow + remaining) * 100.0 < slow_bar) {
      transitionLocked(State::Closed, at);
    } else {
      return;
    }
  }
  deliverTransitions();
}

void CircuitBreaker::releaseProbe(std::uint64_t epoch) noexcept {
  const std::lock_guard lock(mutex_);
  if (state_word_.load(std::memory_order_relaxed) == packState(epoch, State::HalfOpen) &&
      probes_in_flight_ > 0) {
    --probes_in_flight_;
  }
}

// ---- Transitions -----------------------------------------------------------------------------

Duration CircuitBreaker::openDurationLocked() const noexcept {
  const auto base = static_cast<double>(settings_.open_duration.count());
  const auto cap = static_cast<double>(settings_.max_open_duration.count());
  const double grown = base * std::pow(settings_.open_duration_multiplier,
                                       static_cast<double>(consecutive_reopens_));
  // Compare in double, convert only a value known to fit.
  if (!(grown < cap)) {
    return settings_.max_open_duration;
  }
  return Duration{static_cast<Duration::rep>(grown)};
}

void CircuitBreaker::clearWindowLocked(std::uint64_t new_epoch) {
  if (settings_.window_type == WindowType::CountBased) {
    totals_.store(tagOf(new_epoch) << kTagShift, std::memory_order_relaxed);
    Ring& ring = *rings_.back();
    for (std::uint32_t i = 0; i < settings_.window_size; ++i) {
      ring.slots[i].store(0, std::memory_order_relaxed);
    }
    ring_next_.store(0, std::memory_order_relaxed);
  } else {
    time_window_->reset();
  }
}

void CircuitBreaker::publishSettingsLocked() noexcept {
  minimum_calls_.store(settings_.minimum_calls, std::memory_order_relaxed);
  failure_rate_threshold_.store(settings_.failure_rate_threshold, std::memory_order_relaxed);
  slow_call_rate_threshold_.store(settings_.slow_call_rate_threshold, std::memory_order_relaxed);
  slow_call_ns_.store(settings_.slow_call_duration.count(), std::memory_order_relaxed);
}

// Makes settings_'s window the one recorders use; the caller clears it (new epoch) if needed.
void CircuitBreaker::installWindowLocked() {
  if (settings_.window_type == WindowType::CountBased) {
    const std::uint32_t capacity = rings_.empty() ? 0 : rings_.back()->capacity;
    if (settings_.window_size > capacity) {
      // Grow geometrically, so that the rings kept for stale recorders stay a bounded multiple
      // of the current one however often the size changes.
      const std::uint32_t grown =
          std::min(kMaxWindowSize, std::max(settings_.window_size, 2 * capacity));
      rings_.push_back(std::make_unique<Ring>(grown));
      ring_.store(rings_.back().get(), std::memory_order_release);
    }
    window_size_.store(settings_.window_size, std::memory_order_relaxed);
    time_window_.reset();
  } else {
    time_window_.emplace(settings_.window_duration, settings_.window_buckets);
  }
  count_based_.store(settings_.window_type == WindowType::CountBased, std::memory_order_release);
}

void CircuitBreaker::transitionLocked(State to, TimePoint now,
                                      std::optional<TimePoint> open_until) {
  const std::uint64_t word = state_word_.load(std::memory_order_relaxed);
  const State from = stateOf(word);
  const std::uint64_t epoch = epochOf(word) + 1;
  const TimePoint at = std::max(now, last_transition_);
  switch (to) {
    case State::Closed:
      clearWindowLocked(epoch);
      consecutive_reopens_ = 0;
      break;
    case State::Open:
      if (open_until) {
        // Another instance chose the period: not a reopen of this breaker's own.
        open_until_ns_.store(std::max(*open_until, at).time_since_epoch().count(),
                             std::memory_order_relaxed);
        break;
      }
      if (from == State::HalfOpen) {
        if (consecutive_reopens_ < std::numeric_limits<std::uint32_t>::max()) {
          ++consecutive_reopens_;
        }
      } else {
        consecutive_reopens_ = 0;
      }
      open_until_ns_.store(plus(at, openDurationLocked()).time_since_epoch().count(),
                           std::memory_order_relaxed);
      break;
    case State::HalfOpen:
      probes_in_flight_ = 0;
      probe_outcomes_ = 0;
      probe_failures_ = 0;
      probe_slow_ = 0;
      break;
    case State::ForcedOpen:
    case State::Disabled:
      break;
  }
  last_transition_ = at;
  remote_open_ = to == State::Open && open_until.has_value();
  // Release: publishes the cleared window and open_until_ns_ to lock-free readers.
  state_word_.store(packState(epoch, to), std::memory_order_release);
  if (listener_) {
    pending_transitions_.push_back(Transition{from, to, at});
  }
}

void CircuitBreaker::deliverTransitions() noexcept {
  if (!listener_) {
    return;
  }
  std::unique_lock lock(mutex_);
  // One deliverer at a time keeps notifications in transition order; whoever finds the role
  // taken leaves its events to the current deliverer, which re-checks the queue before leaving.
  if (delivering_) {
    return;
  }
  delivering_ = true;
  while (!pending_transitions_.empty()) {
    const Transition t = pending_transitions_.front();
    pending_transitions_.pop_front();
    lock.unlock();
    listener_(t.from, t.to, t.at);
    lock.lock();
  }
  delivering_ = false;
}

void CircuitBreaker::forceOpen(TimePoint now) {
  {
    const std::lock_guard lock(mutex_);
    if (stateOf(state_word_.load(std::memory_order_relaxed)) == State::ForcedOpen) {
      return;
    }
    transitionLocked(State::ForcedOpen, now);
  }
  deliverTransitions();
}

void CircuitBreaker::disable(TimePoint now) {
  {
    const std::lock_guard lock(mutex_);
    if (stateOf(state_word_.load(std::memory_order_relaxed)) == State::Disabled) {
      return;
    }
    transitionLocked(State::Disabled, now);
  }
  deliverTransitions();
}

void CircuitBreaker::reset(TimePoint now) {
  {
    const std::lock_guard lock(mutex_);
    const std::uint64_t word = state_word_.load(std::memory_order_relaxed);
    if (stateOf(word) == State::Closed) {
      // Same state, fresh window: a new epoch (so in-flight permits are ignored), no notification.
      const std::uint64_t epoch = epochOf(word) + 1;
      clearWindowLocked(epoch);
      consecutive_reopens_ = 0;
      state_word_.store(packState(epoch, State::Closed), std::memory_order_release);
      return;
    }
    transitionLocked(State::Closed, now);
  }
  deliverTransitions();
}

bool CircuitBreaker::observeRemoteOpen(TimePoint until, TimePoint now) {
  {
    const std::lock_guard lock(mutex_);
    const TimePoint effective = std::max(now, last_transition_);
    if (until <= effective) {
      return false;
    }
    switch (state()) {
      case State::Closed:
      case State::HalfOpen:
        transitionLocked(State::Open, effective, until);
        break;
      case State::Open:
        // Only ever later: an instance that opened for longer (its own backoff) keeps its
        // deadline. No transition, so no new epoch: probes are not in flight while Open.
        if (until.time_since_epoch().count() <= open_until_ns_.load(std::memory_order_relaxed)) {
          return false;
        }
        open_until_ns_.store(until.time_since_epoch().count(), std::memory_order_release);
        return true;
      case State::ForcedOpen:
      case State::Disabled:
        return false;
    }
  }
  deliverTransitions();
  return true;
}

bool CircuitBreaker::observeRemoteClose(TimePoint now) {
  {
    const std::lock_guard lock(mutex_);
    const State s = state();
    if (s != State::Open && s != State::HalfOpen) {
      return false;
    }
    transitionLocked(State::Closed, now);
  }
  deliverTransitions();
  return true;
}

void CircuitBreaker::reconfigure(const Settings& settings, TimePoint /*now*/) {
  const Settings next = coerce(settings);
  const std::lock_guard lock(mutex_);
  const bool same_window = next.window_type == settings_.window_type &&
                           (next.window_type == WindowType::CountBased
                                ? next.window_size == settings_.window_size
                                : next.window_duration == settings_.window_duration &&
                                      next.window_buckets == settings_.window_buckets);
  settings_ = next;
  publishSettingsLocked();
  if (same_window) {
    return;
  }
  installWindowLocked();
  const std::uint64_t word = state_word_.load(std::memory_order_relaxed);
  if (stateOf(word) != State::Closed) {
    return;  // entering Closed clears the window
  }
  // As reset() while Closed: a fresh window in a new epoch, so that permits acquired before the
  // change (which may still pair the old size with the new ring) are ignored.
  const std::uint64_t epoch = epochOf(word) + 1;
  clearWindowLocked(epoch);
  state_word_.store(packState(epoch, State::Closed), std::memory_order_release);
}

// ---- Observation -----------------------------------------------------------------------------

CircuitBreaker::State CircuitBreaker::state() const noexcept {
  return stateOf(state_word_.load(std::memory_order_acquire));
}

CircuitBreaker::Snapshot CircuitBreaker::snapshot(TimePoint now) const {
  Snapshot s;
  const std::lock_guard lock(mutex_);
  const std::uint64_t word = state_word_.load(std::memory_order_acquire);
  s.state = stateOf(word);
  if (s.state == State::Closed) {
    const Counts c = settings_.window_type == WindowType::CountBased
                         ? countBasedTotals(epochOf(word))
                         : timeBasedTotalsLocked(now);
    s.calls = static_cast<std::uint64_t>(c.calls);
    s.failures = static_cast<std::uint64_t>(c.failures);
    s.slow_calls = static_cast<std::uint64_t>(c.slow);
    if (c.calls > 0) {
      s.failure_rate = 100.0 * static_cast<double>(c.failures) / static_cast<double>(c.calls);
      s.slow_call_rate = 100.0 * static_cast<double>(c.slow) / static_cast<double>(c.calls);
    }
  }
  if (s.state == State::Open) {
    s.open_until = TimePoint{Duration{open_until_ns_.load(std::memory_order_relaxed)}};
    s.remote_open = remote_open_;
  }
  s.consecutive_reopens = consecutive_reopens_;
  s.probes_in_flight = probes_in_flight_;
  s.probe_outcomes = probe_outcomes_;
  s.rejected = rejected_.load(std::memory_order_relaxed);
  s.last_transition = last_transition_;
  return s;
}

CircuitBreaker::Settings CircuitBreaker::settings() const {
  const std::lock_guard lock(mutex_);
  return settings_;
}

const char* toString(CircuitBreaker::State state) noexcept {
  switch (state) {
    case CircuitBreaker::State::Closed:
      return "closed";
    case CircuitBreaker::State::Open:
      return "open";
    case CircuitBreaker::State::HalfOpen:
      return "half_open";
    case CircuitBreaker::State::ForcedOpen:
      return "forced_open";
    case CircuitBreaker::State::Disabled:
      return "disabled";
  }
  return "unknown";
}

}  // namespace sluice::resilience
