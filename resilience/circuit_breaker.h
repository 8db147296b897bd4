// CircuitBreaker: stop calling a dependency that is failing, and probe it before trusting it again.
//
// States (Resilience4j's model; Hystrix is a special case, see fromHystrix):
//
//   Closed   - calls flow; outcomes are recorded in a sliding window. The breaker trips to Open
//              when, after an outcome is recorded, the window holds calls >= minimum_calls and
//                failures * 100 >= failure_rate_threshold * calls   or
//                slow     * 100 >= slow_call_rate_threshold * calls
//              (both ">=": a 50 % threshold trips at exactly half the calls failing). A call is
//              slow when its duration > slow_call_duration (strictly above). A slow failure
//              counts in both rates.
//   Open     - every call is rejected until now >= opened_at + open duration; the first
//              tryAcquire at or after that instant moves to HalfOpen (Resilience4j and Hystrix
//              stay Open until strictly after it, one clock tick longer: here the deadline
//              that snapshot().open_until and the gateway's Retry-After report is the first
//              instant a call is admitted, so a caller that waits exactly that long gets in).
//              The open duration is
//                min(open_duration * open_duration_multiplier^k, max_open_duration)
//              where k counts consecutive trips from HalfOpen since the breaker was last Closed
//              (k = 0 for a trip from Closed), so repeated failed probes back off.
//   HalfOpen - admits at most `half_open_probes` probe calls (in flight + finished). Their
//              outcomes are judged with the same thresholds over exactly half_open_probes calls,
//              and the breaker decides as soon as the result is certain: with n outcomes of
//              P = half_open_probes, f failures, s slow and r = P - n still to come, it reopens
//              once f * 100 >= failure_rate_threshold * P (or the slow analogue) and closes
//              once (f + r) * 100 < failure_rate_threshold * P and likewise for slow. With
//              P = 1 a single failed probe reopens and a single good one closes (Hystrix).
//              A probe permit dropped without an outcome frees its slot for another probe.
//   ForcedOpen / Disabled - set by forceOpen() / disable(); reject everything / admit everything
//              and record nothing, until reset() (which closes with an empty window).
//
// Every transition starts a new epoch: outcomes of permits acquired in an earlier epoch are
// ignored, and entering Closed starts with an empty window. A Permit dropped without an outcome
// is ignored, never counted as a success.
//
// Windows: WindowType::CountBased holds the last `window_size` outcomes; WindowType::TimeBased
// holds the outcomes of the last `window_duration`, in `window_buckets` buckets (resolution and
// time-going-backwards rules of SlidingWindow).
//
//   CircuitBreaker breaker(settings, clock.now(),
//       [](CircuitBreaker::State from, CircuitBreaker::State to, TimePoint at) { log(from, to); });
//   if (auto permit = breaker.tryAcquire(clock.now())) {
//     const TimePoint start = clock.now();
//     const bool ok = call();
//     ok ? permit.success(clock.now() - start) : permit.failure(clock.now() - start);
//   } else {
//     return fallback();   // open: fail fast
//   }
//
// Time: the outcome of a permit is recorded at acquired_at + duration (durations < 0 count as 0),
// so permits need no clock. A `now` earlier than the breaker's last transition is treated as that
// transition's time.
//
// Reconfiguration: reconfigure() changes the settings of a live breaker and keeps its state (see
// there): a config reload that only changes parameters neither closes an open breaker nor
// forgets the outcomes its window has counted.
//
// Thread-safety: every member is thread-safe. The closed-state hot path of a count-based breaker
// is lock-free (tryAcquire is one atomic load; success/failure a few atomic read-modify-writes on
// shared cache lines); transitions, half-open probes, time-based windows and reconfigure() take
// one internal mutex. state() is lock-free (snapshot() and settings() lock briefly). Under
// concurrency an outcome that races with a transition is attributed to neither state; the trip
// decision itself always uses a consistent snapshot of the window and of the thresholds. The
// breaker must outlive its permits.
//
// State-change notifications: the optional listener is called with (from, to, at) for every
// transition, exactly once each, in transition order, one at a time, and never with an internal
// lock held (it may call back into the breaker). It runs in a thread that is calling into the
// breaker: usually the one that caused the transition, but if another thread is already
// delivering notifications, that thread delivers this one too, possibly after the causing call
// has returned. The listener must not throw.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "resilience/clock.h"
#include "resilience/sliding_window.h"

namespace sluice::resilience {

class CircuitBreaker {
 public:
  enum class State : std::uint8_t { Closed, Open, HalfOpen, ForcedOpen, Disabled };
  enum class WindowType : std::uint8_t { CountBased, TimeBased };

  // Largest count-based window (outcomes are packed into one 64-bit word for the lock-free path).
  static constexpr std::uint32_t kMaxWindowSize = 65535;
  static constexpr std::uint32_t kMaxHalfOpenProbes = 1U << 20;

  struct Settings {
    WindowType window_type = WindowType::CountBased;
    std::uint32_t window_size = 100;                      // CountBased: last N outcomes
    Duration window_duration = std::chrono::seconds(60);  // TimeBased
    std::size_t window_buckets = 10;          // TimeBased resolution; each outcome costs O(buckets)
    std::uint32_t minimum_calls = 20;         // calls in the window before it may trip
    double failure_rate_threshold = 50.0;     // percent, [0, 100]
    double slow_call_rate_threshold = 100.0;  // percent, [0, 100]
    Duration slow_call_duration = Duration::max();  // slow iff duration > this; max() = never
    Duration open_duration = std::chrono::seconds(30);
    double open_duration_multiplier = 1.0;  // >= 1; 1 keeps open_duration constant
    Duration max_open_duration = std::chrono::minutes(5);
    std::uint32_t half_open_probes = 10;
    State initial_state = State::Closed;  // Closed, ForcedOpen or Disabled
  };

  // Explains what is wrong, or nullopt if the settings are valid: window_size in
  // [1, kMaxWindowSize] and minimum_calls <= window_size (CountBased), a window accepted by
  // SlidingWindow::validate (TimeBased), minimum_calls >= 1, thresholds in [0, 100],
  // slow_call_duration >= 0, open_duration >= 0, multiplier finite and >= 1,
  // max_open_duration >= open_duration, half_open_probes in [1, kMaxHalfOpenProbes], and an
  // initial_state of Closed, ForcedOpen or Disabled.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // Hystrix command properties (defaults are Hystrix's).
  struct HystrixSettings {
    std::uint32_t request_volume_threshold = 20;         // circuitBreaker.requestVolumeThreshold
    std::uint32_t error_threshold_percentage = 50;       // circuitBreaker.errorThresholdPercentage
    Duration sleep_window = std::chrono::seconds(5);     // circuitBreaker.sleepWindowInMilliseconds
    Duration rolling_window = std::chrono::seconds(10);  // metrics.rollingStats.timeInMilliseconds
    std::uint32_t rolling_buckets = 10;                  // metrics.rollingStats.numBuckets
    bool force_open = false;                             // circuitBreaker.forceOpen
    bool force_closed = false;                           // circuitBreaker.forceClosed
  };
  // Hystrix trips when, over its rolling window, total requests >= requestVolumeThreshold and
  // (int)(errors * 100 / total) >= errorThresholdPercentage, i.e. errors * 100 >= threshold *
  // total: the same rule as ours. It then rejects for sleepWindow and lets one trial request
  // through; its success closes, its failure reopens. So: a TimeBased window of rolling_window in
  // rolling_buckets, minimum_calls = max(1, volume), failure_rate_threshold = percentage (capped
  // at 100), no slow-call rule, open_duration = sleep_window (constant), half_open_probes = 1.
  // force_open maps to initial_state ForcedOpen, else force_closed to Disabled (Hystrix keeps
  // metrics when forced closed; we do not).
  [[nodiscard]] static Settings fromHystrix(const HystrixSettings& hystrix);

  using Listener = std::function<void(State from, State to, TimePoint at)>;

  // Permission to make one call. Move-only; report at most one outcome. An empty permit (the
  // call was rejected) converts to false and ignores outcomes.
  class Permit {
   public:
    Permit() noexcept = default;
    Permit(Permit&& other) noexcept
        : breaker_(std::exchange(other.breaker_, nullptr)),
          epoch_(other.epoch_),
          acquired_at_(other.acquired_at_),
          kind_(other.kind_) {}
    Permit& operator=(Permit&& other) noexcept {
      if (this != &other) {
        release();
        breaker_ = std::exchange(other.breaker_, nullptr);
        epoch_ = other.epoch_;
        acquired_at_ = other.acquired_at_;
        kind_ = other.kind_;
      }
      return *this;
    }
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { release(); }

    [[nodiscard]] bool admitted() const noexcept { return breaker_ != nullptr; }
    explicit operator bool() const noexcept { return admitted(); }

    // The call succeeded after `duration` (slow if duration > slow_call_duration).
    void success(Duration duration) { finish(duration, false); }
    // The call failed after `duration`. What counts as a failure is the caller's choice
    // (typically errors and timeouts, not 4xx).
    void failure(Duration duration) { finish(duration, true); }
    // Drops the permit without an outcome (same as destroying it): nothing is recorded; a
    // half-open probe slot is freed.
    void release() noexcept;

    // When tryAcquire admitted this permit.
    [[nodiscard]] TimePoint acquiredAt() const noexcept { return acquired_at_; }

   private:
    friend class CircuitBreaker;
    enum class Kind : std::uint8_t { Closed, Probe, Untracked };
    Permit(CircuitBreaker* breaker, std::uint64_t epoch, TimePoint at, Kind kind) noexcept
        : breaker_(breaker), epoch_(epoch), acquired_at_(at), kind_(kind) {}
    void finish(Duration duration, bool failed);

    CircuitBreaker* breaker_ = nullptr;
    std::uint64_t epoch_ = 0;
    TimePoint acquired_at_;
    Kind kind_ = Kind::Untracked;
  };

  // Pass settings accepted by validate(); others are coerced into range (the constructor cannot
  // fail). `now` is the time of creation. `listener` (optional) receives state changes.
  CircuitBreaker(const Settings& settings, TimePoint now, Listener listener = {});
  ~CircuitBreaker();

  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;
  CircuitBreaker(CircuitBreaker&&) = delete;  // permits point at it
  CircuitBreaker& operator=(CircuitBreaker&&) = delete;

  // Admits a call (returns a non-empty Permit) in Closed and Disabled, in HalfOpen while a probe
  // slot is free, and in Open once now >= open until (after moving to HalfOpen). Otherwise
  // returns an empty Permit and counts a rejection. Never blocks on a lock in Closed, Disabled,
  // ForcedOpen, or in Open before the open duration is over.
  [[nodiscard]] Permit tryAcquire(TimePoint now);

  // The current state; lock-free. Open is reported until a tryAcquire observes that the open
  // duration is over (see Snapshot::open_until).
  [[nodiscard]] State state() const noexcept;

  // Forced states and reset. Each is a transition (notified) unless already in that state;
  // reset() while Closed just empties the window, without a notification.
  void forceOpen(TimePoint now);
  void disable(TimePoint now);
  void reset(TimePoint now);

  // Another instance's breaker for the same dependency is open until `until` (state shared
  // through a store the caller runs; the gateway's is Redis). This breaker follows it:
  //   - Closed or HalfOpen: moves to Open until `until` (a transition, notified; probes in
  //     flight are ignored, as on any transition). k (consecutive reopens) is kept: the open
  //     period was chosen elsewhere, so it is not counted as a reopen of this breaker's own;
  //   - Open: stays Open until the later of its own deadline and `until` (no notification);
  //   - ForcedOpen, Disabled: unchanged (an operator's override wins over other instances).
  // `until` <= now changes nothing. Returns whether the state or the deadline changed.
  // Snapshot::remote_open tells an open period entered this way from one the breaker's own
  // outcomes started (a listener uses it to avoid echoing the open back to the store).
  bool observeRemoteOpen(TimePoint until, TimePoint now);

  // The shared state says the dependency recovered (another instance's probes closed its
  // breaker): an Open or HalfOpen breaker closes with an empty window (notified), as on a
  // successful probe. Closed, ForcedOpen and Disabled are unchanged. Returns whether it closed.
  bool observeRemoteClose(TimePoint now);

  // Replaces the settings in place and keeps the state, for a config reload that changes
  // parameters only. Settings are coerced as in the constructor (pass ones validate() accepts).
  // reconfigure itself never makes a transition and never notifies; what it keeps:
  //   - the state, whatever it is (Closed, Open, HalfOpen, ForcedOpen, Disabled): initial_state
  //     is ignored (use forceOpen/disable/reset to change the state);
  //   - Open: the running open period keeps its deadline (Snapshot::open_until is neither shortened
  //     nor lengthened); the next one uses the new durations, with k (consecutive reopens) kept, so
  //     a breaker that keeps failing its probes goes on backing off;
  //   - HalfOpen: the probes in flight and the outcomes already in. The next probe outcome is
  //     judged with the new thresholds over max(P, outcomes in) calls, P = half_open_probes: so
  //     once a lowered P is reached, the verdict is immediate (reopen iff failures * 100 >=
  //     failure_rate_threshold * outcomes, or the slow analogue; close otherwise). No probe is
  //     admitted while probes in flight plus outcomes are >= P;
  //   - the closed window's outcomes, when the window type and size are unchanged (window_size
  //     for CountBased; window_duration and window_buckets for TimeBased). The new
  //     minimum_calls and rate thresholds apply from the next recorded outcome: a closed
  //     breaker whose window already breaks the new thresholds stays Closed until then, and
  //     that outcome (counted too) trips it. slow_call_duration classifies outcomes reported
  //     after the change; those already in the window keep their classification. Permits
  //     acquired before the change record into the same window.
  // When the window type or size changes, the window restarts empty, in every state; a Closed
  // breaker stays Closed and starts a new epoch, so outcomes of permits acquired before the
  // change are ignored (as after reset(), but without resetting k).
  //
  // Memory: a count-based window's ring only grows. A smaller window_size reuses it; a larger
  // one allocates a ring of at least twice the old capacity (at most kMaxWindowSize) and keeps
  // the old one until the breaker is destroyed, because a permit racing the change may still
  // write to it. The rings kept that way total at most twice the current one.
  //
  // Thread-safety: takes the internal mutex, so it is serialised with transitions and may race
  // any other member. An outcome recorded concurrently is judged under the old or the new
  // thresholds, or, if it sees a mix of them, may leave the trip to the next outcome (a trip
  // itself is always decided with the mutex held, under one consistent set of thresholds). `now` is
  // the time of the change; nothing reconfigure keeps depends on it (it is taken for symmetry with
  // the other reconfigurable primitives).
  void reconfigure(const Settings& settings, TimePoint now);

  struct Snapshot {
    State state = State::Closed;
    std::uint64_t calls = 0;  // outcomes in the closed window (0 outside Closed)
    std::uint64_t failures = 0;
    std::uint64_t slow_calls = 0;
    double failure_rate = 0;                // percent; 0 when calls == 0
    double slow_call_rate = 0;              // percent; 0 when calls == 0
    std::optional<TimePoint> open_until;    // set in Open
    bool remote_open = false;               // Open, entered by observeRemoteOpen
    std::uint32_t consecutive_reopens = 0;  // k in the open-duration formula
    std::uint32_t probes_in_flight = 0;     // HalfOpen
    std::uint32_t probe_outcomes = 0;       // HalfOpen
    std::uint64_t rejected = 0;             // calls rejected since construction
    TimePoint last_transition;
  };
  // Metrics; takes the internal mutex briefly (use state() where a lock is not acceptable).
  [[nodiscard]] Snapshot snapshot(TimePoint now) const;

  // The settings in effect: the constructor's or the last reconfigure()'s, coerced. A copy,
  // taken under the internal mutex.
  [[nodiscard]] Settings settings() const;

 private:
  struct Outcome {
    bool failed;
    bool slow;
  };
  struct Counts {
    std::int64_t calls = 0;
    std::int64_t failures = 0;
    std::int64_t slow = 0;
  };
  struct Transition {
    State from = State::Closed;
    State to = State::Closed;
    TimePoint at;
  };

  [[nodiscard]] static std::uint64_t packState(std::uint64_t epoch, State s) noexcept {
    return (epoch << 3) | static_cast<std::uint64_t>(s);
  }
  [[nodiscard]] static State stateOf(std::uint64_t word) noexcept {
    return static_cast<State>(word & 7U);
  }
  [[nodiscard]] static std::uint64_t epochOf(std::uint64_t word) noexcept { return word >> 3; }

  // A count-based window's slots. Immutable size; replaced (never freed early) when a
  // reconfigure grows the window beyond it.
  struct Ring {
    explicit Ring(std::uint32_t n)
        : capacity(n), slots(std::make_unique<std::atomic<std::uint16_t>[]>(n)) {}
    std::uint32_t capacity;
    std::unique_ptr<std::atomic<std::uint16_t>[]> slots;
  };

  [[nodiscard]] bool shouldTrip(const Counts& c) const noexcept;
  void record(const Permit& permit, Duration duration, bool failed);
  void recordClosedCountBased(std::uint64_t epoch, Outcome outcome, TimePoint at);
  void recordClosedTimeBased(std::uint64_t epoch, Outcome outcome, TimePoint at);
  void recordProbe(std::uint64_t epoch, Outcome outcome, TimePoint at);
  void releaseProbe(std::uint64_t epoch) noexcept;
  Permit acquireSlow(TimePoint now);
  [[nodiscard]] Counts countBasedTotals(std::uint64_t epoch) const noexcept;
  [[nodiscard]] Counts timeBasedTotalsLocked(TimePoint now) const;
  // `open_until`: with `to` Open, the deadline to use instead of the open duration (a remote
  // open: k is then kept).
  void transitionLocked(State to, TimePoint now, std::optional<TimePoint> open_until = {});
  void clearWindowLocked(std::uint64_t new_epoch);
  [[nodiscard]] Duration openDurationLocked() const noexcept;
  void publishSettingsLocked() noexcept;
  void installWindowLocked();
  void deliverTransitions() noexcept;

  const Listener listener_;

  // Lock-free reads: (epoch << 3 | state), and Open's deadline in ns since the clock's epoch.
  std::atomic<std::uint64_t> state_word_;
  std::atomic<std::int64_t> open_until_ns_{0};
  std::atomic<std::uint64_t> rejected_{0};

  // The settings the lock-free paths read, copied from settings_ (written under mutex_).
  std::atomic<bool> count_based_{true};
  std::atomic<std::uint32_t> window_size_{1};
  std::atomic<std::uint32_t> minimum_calls_{1};
  std::atomic<double> failure_rate_threshold_{0};
  std::atomic<double> slow_call_rate_threshold_{0};
  std::atomic<Duration::rep> slow_call_ns_{0};

  // Count-based window: a ring of tagged outcomes and their packed totals (see the .cc). The
  // ring in use is rings_.back(); null while the breaker has never been count-based.
  std::atomic<Ring*> ring_{nullptr};
  std::atomic<std::uint64_t> ring_next_{0};
  std::atomic<std::uint64_t> totals_{0};

  mutable std::mutex mutex_;
  // Guarded by mutex_:
  Settings settings_;
  std::vector<std::unique_ptr<Ring>> rings_;          // every ring allocated, current last
  std::optional<SlidingWindow<Counts>> time_window_;  // TimeBased only
  std::uint32_t consecutive_reopens_ = 0;
  std::uint32_t probes_in_flight_ = 0;
  std::uint32_t probe_outcomes_ = 0;
  std::uint32_t probe_failures_ = 0;
  std::uint32_t probe_slow_ = 0;
  TimePoint last_transition_;
  bool remote_open_ = false;  // the current Open came from observeRemoteOpen
  std::deque<Transition> pending_transitions_;
  bool delivering_ = false;
};

static_assert(std::is_nothrow_move_constructible_v<CircuitBreaker::Permit>);

// Short name of a state, for logs and metrics labels.
[[nodiscard]] const char* toString(CircuitBreaker::State state) noexcept;

}  // namespace sluice::resilience
