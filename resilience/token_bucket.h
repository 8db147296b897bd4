// TokenBucket: a lock-free token-bucket rate limiter with the semantics of Go's
// golang.org/x/time/rate.Limiter.
//
// The bucket holds up to `burst` tokens and refills at `rate_per_second`; it starts full. An
// action costing n tokens may happen now if n tokens are available (tryAcquire, Go's AllowN), or
// may book the tokens ahead and wait (reserve, Go's ReserveN), and a booking can be undone
// (Reservation::cancel, Go's CancelAt). Rate and burst can change at runtime without losing the
// tokens already accrued (Go's SetLimitAt / SetBurstAt).
//
//   TokenBucket bucket({.rate_per_second = 100, .burst = 20}, now);
//   if (!bucket.tryAcquire(1, now)) return reply429();
//
//   TokenBucket::Reservation r = bucket.reserve(5, now);
//   if (!r.ok()) return reject();              // 5 > burst: can never succeed
//   if (r.delay(now) > deadline - now) {       // will not fit before the deadline
//     r.cancel(now);                           // give the tokens back
//     return reject();
//   }
//   sleepFor(r.delay(now));                    // then act
//
// Model (GCRA form of the token bucket, Turner 1986 / ITU-T I.371): with the emission interval
// T = 1/rate, the state is one time E, "the time at which the bucket is (or was) empty". Tokens
// available at t: tokens(t) = min(burst, (t - E) / T). Taking n tokens at t:
//     E' = max(E, t - burst*T) + n*T,  allowed now iff E' <= t  (i.e. tokens(t) >= n),
// and a reservation that is not allowed now is allowed at t_act = E' (it waits E' - t).
// Both checks are ">=": exactly n tokens available admits n.
//
// Go compatibility. tryAcquire, reserve, cancel, setRate, setBurst and tokens answer as Go's
// AllowN, ReserveN (with a maximum wait), CancelAt, SetLimitAt, SetBurstAt and TokensAt, to
// 1e-6 of a token (Go keeps float64 tokens and whole-ns times; see "Precision" for sluice's).
// A differential test replays random scenarios recorded from Debian's golang.org/x/time/rate
// (0.3.0) against this class (test/differential/token_bucket, scripts/differential.sh).
//  * rate 0: the bucket never refills; the burst is spent once (Go: Limit 0 spends burst).
//  * rate +infinity: every request is allowed, n > burst too, and no state changes (Go: Inf).
//    Switching from +infinity back to a finite rate leaves the bucket full, as in Go.
//  * n > burst (finite rate): impossible; tryAcquire returns false and reserve() an !ok()
//    reservation.
//  * cancel(now) gives back n minus the tokens booked after the reservation, then caps the
//    bucket at its current burst; nothing once now > timeToAct(), and nothing if what was
//    booked after it covers n. As in Go, "booked after" is the time from the reservation's
//    timeToAct() to the latest booking's (Go's lastEvent), in tokens at the rate the
//    reservation was made at; the latest booking's time survives setRate/setBurst unchanged,
//    and cancelling the latest booking makes the time its booking began the latest (unless
//    that is past). The time can be negative when a raised rate moved later bookings ahead of
//    the reservation: more than n is given back then (still capped at burst).
//  * setRate/setBurst(…, now) keep the tokens available at `now` (capped at the new burst).
//
// Deliberate differences from Go (the differential test's generator steers clear of exactly
// these, and says why at each):
//  * n == 0 is always allowed at once and changes nothing. Go refuses AllowN(0) and makes
//    ReserveN(0) wait while the bucket is in debt, and an n = 0 take moves its lastEvent back
//    to `now`, after which a cancel gives back tokens still booked behind it.
//  * cancel counts "booked after" from `now` where the latest booking's time is already past:
//    Go counts from that time (an immediate take's own time, or a booking whose time came while
//    an earlier reservation, moved back by a rate change, still waits) and so gives back more.
//    Takes here are one compare-and-swap of E and keep nothing else; counting from `now` gives
//    back no more than Go. A reservation's time to act equal to the latest booking's within
//    1 ns counts as the latest (Go compares two separately truncated times exactly).
//  * Time going backwards never refills: an earlier `now` sees the bucket as it was at that
//    time, never with more tokens (Go rewinds its clock and then counts the interval twice).
//  * A wait longer than a Duration holds (~292 years) saturates timeToAct() at TimePoint::max()
//    (or is refused beyond the queue limit below); Go's wait overflows and it acts at once.
//  * rate 0: cancel gives the tokens back. Go's rate-0 path cannot (its reservation records the
//    remaining burst, not n), and it spends the burst itself, so after SetLimit(0) Go admits a
//    whole burst again whatever was left.
//  * A cancel of a reservation made at rate +infinity gives nothing back, even after the rate
//    became finite again (Go gives back n: its unlimited path records no rate).
//  * A new bucket is full. Go's NewLimiter starts empty at the zero time and fills at the rate
//    since then, which below ~1e-9 tokens/s is not full yet; leaving +infinity at the instant
//    it was entered refills here and not in Go (its clock did not move).
//
// Thread-safety: every method may be called concurrently. tryAcquire/reserve are lock-free:
// one atomic 64-bit word holds E (plus an 8-bit generation tag) and each call is a load,
// integer arithmetic and one compare-and-swap, retried only if another thread changed the word
// in between. A failed acquire writes nothing. cancel takes a mutex (it reads and writes Go's
// lastEvent, which takes do not keep) but never blocks takes: it commits with a compare-and-swap
// of the word like them. setRate/setBurst/setSettings take the same mutex and
// briefly (tens of ns) park the word in a "locked" state while they rewrite the parameters;
// concurrent acquirers spin, then yield, until it is released. Because E is stored in
// fixed-point units relative to a recent origin (see "Precision"), the same slow path "rebases"
// the origin once `now` is 2^53 units past it: every 2^23 to 2^24 token intervals (more with
// bursts above 2^22; at least 8.4e6 / rate seconds: ~97 days at 1/s, ~2.3 hours at 1e3/s, ~8 s
// at 1e6/s), and never more often than every ~2 ms (above ~2.5e8/s the unit stops shrinking).
// A rebase costs about as much as one reconfiguration.
//
// Precision (how exactness degrades at absurd inputs): E is an integer count of units of 2^-s
// ns relative to an origin, where s (-62..32) is chosen per (rate, burst) so that one token is
// between 2^29 and 2^30 units (fewer when burst is huge: burst*T stays below 2^52 units), but
// never coarser than a ns while burst*T (and any debt) fits in 2^52 ns: slow rates then keep
// exact ns time and a token costs ceil(T) ns. The cost of a token is rounded UP to whole units,
// so the limiter is conservative: it never admits more than rate*T + burst over any interval T,
// and may admit a token up to one unit late (relative error of the rate <= 2^-29 normally; at
// 1e13/s about 2.4e-6; with burst 1e12 about 4.5e-4). Only when units must be coarser than a ns
// (burst*T beyond 2^52 ns: ~52 days' worth of tokens, e.g. rate 1e-6/s with burst 5) is time
// rounded too: down when checking that tokens suffice, up when a full bucket's E is recorded,
// so it never admits early, and the last token of a full burst taken between two units waits
// for the next one. Rates whose token interval 1e9/rate ns is exactly representable in units
// (e.g. 1, 2, 4, 5, 10, 100, 1000, 1e6 per second) are exact.
//
// Limits: finite rates in [kMinRate, kMaxRate]; burst <= kMaxBurst; reservations may queue at
// most 2^54 units of debt (at least 2^24 tokens, or 4*burst when burst is larger, or ~208 days
// of waiting when slow rates keep whole ns); a reservation
// beyond that is reported as impossible. Durations saturate at Duration::max() and TimePoints at
// TimePoint::max(). A `now` more than 2^53 units (the rebase distance above) before the origin,
// i.e. before the last reconfiguration or rebase, is denied (only time running backwards that
// far gets there; denying is the conservative answer).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>

#include "resilience/clock.h"

namespace sluice::resilience {

class TokenBucket {
 public:
  struct Settings {
    // Tokens added per second. 0: never refills. +infinity: unlimited (everything allowed).
    // Finite positive values must lie in [kMinRate, kMaxRate].
    double rate_per_second = 0.0;
    // Capacity in tokens, and the largest n a single request may take (finite rates). 0 with a
    // finite rate admits nothing but n == 0 (allowed, as in Go, but reported by validate()).
    std::uint64_t burst = 1;
  };

  static constexpr double kMinRate = 1e-12;                      // one token per ~31,700 years
  static constexpr double kMaxRate = 1e13;                       // use +infinity for "unlimited"
  static constexpr std::uint64_t kMaxBurst = 1'000'000'000'000;  // 1e12 tokens

  // Explains what is wrong with `settings`, or nullopt if valid: rate NaN, negative, positive
  // below kMinRate or finite above kMaxRate; burst above kMaxBurst; burst 0 with a finite rate.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);
  // The settings the constructor and setSettings() would use for `settings` (see the
  // constructor for the coercion rules).
  [[nodiscard]] static Settings coerced(Settings settings);

  // A booking of `tokens()` tokens for time timeToAct(), from reserve(). Move-only. Its
  // destructor does nothing: reserved tokens are spent, not held, and giving them back needs the
  // current time, which only the caller has (call cancel(now)). A Reservation must not outlive
  // the TokenBucket that made it. Not thread-safe itself (the bucket is).
  class Reservation {
   public:
    Reservation() = default;  // !ok()
    Reservation(Reservation&& other) noexcept;
    Reservation& operator=(Reservation&& other) noexcept;
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;
    ~Reservation() = default;

    // False if the request can never be satisfied (n > burst at a finite rate; rate 0 and not
    // enough tokens; debt beyond the queue limit) or would wait longer than max_wait. A !ok()
    // reservation changed nothing.
    [[nodiscard]] bool ok() const { return ok_; }
    // Tokens booked (the n passed to reserve()).
    [[nodiscard]] std::uint64_t tokens() const { return tokens_; }
    // When the caller may act: the reservation's `now` plus its wait, rounded up to whole ns
    // (saturates at TimePoint::max()). TimePoint::max() if !ok().
    [[nodiscard]] TimePoint timeToAct() const { return ok_ ? time_to_act_ : TimePoint::max(); }
    // How long to wait from `now` before acting: max(0, timeToAct() - now). Duration::max() if
    // !ok() (Go: InfDuration).
    [[nodiscard]] Duration delay(TimePoint now) const;
    // Gives back the tokens as Go's CancelAt does (see the file comment) and returns how many
    // were given back (fractional; 0 when now > timeToAct(), when cancelled before, for !ok(),
    // n == 0 or unlimited-rate reservations, or when everything reserved has been re-booked by
    // later reservations). Only the first call can return anything.
    double cancel(TimePoint now);

   private:
    friend class TokenBucket;
    TokenBucket* bucket_ = nullptr;  // null when there is nothing left to give back
    bool ok_ = false;
    std::uint64_t tokens_ = 0;
    TimePoint time_to_act_{};
    // When it may act (Go's timeToAct: the end of its booking, or the time it was made if it
    // was available at once), exactly in the bucket's units (valid while its parameters are
    // still generation gen_) and rounded down to a TimePoint (used after they changed); and
    // the rate it was made at, which converts time booked after it into tokens (as Go does).
    std::uint64_t gen_ = 0;
    double rate_ = 0.0;
    std::int64_t act_units_ = 0;
    TimePoint act_floor_{};
  };
  static_assert(std::is_nothrow_move_constructible_v<Reservation>);
  static_assert(std::is_nothrow_move_assignable_v<Reservation>);

  // A full bucket at `now`. Invalid settings are coerced, never rejected: NaN or negative rate
  // -> 0; positive rate below kMinRate -> kMinRate; finite rate above kMaxRate -> kMaxRate;
  // burst above kMaxBurst -> kMaxBurst.
  TokenBucket(const Settings& settings, TimePoint now);
  TokenBucket(double rate_per_second, std::uint64_t burst, TimePoint now)
      : TokenBucket(Settings{.rate_per_second = rate_per_second, .burst = burst}, now) {}
  TokenBucket(const TokenBucket&) = delete;
  TokenBucket& operator=(const TokenBucket&) = delete;
  TokenBucket(TokenBucket&&) = delete;
  TokenBucket& operator=(TokenBucket&&) = delete;
  ~TokenBucket() = default;

  // Takes n tokens if n are available at `now` (Go: AllowN). Returns false and changes nothing
  // otherwise. n == 0 is always allowed; n > burst never is (unless the rate is +infinity).
  [[nodiscard]] bool tryAcquire(std::uint64_t n, TimePoint now);
  [[nodiscard]] bool tryAcquire(TimePoint now) { return tryAcquire(1, now); }

  // Books n tokens now, to be used at the returned reservation's timeToAct() (Go: ReserveN with
  // a maximum wait). If the wait would exceed `max_wait`, or the request is impossible, returns
  // an !ok() reservation and changes nothing. The default waits any length; a negative
  // max_wait is treated as zero (only an immediate booking is ok).
  [[nodiscard]] Reservation reserve(std::uint64_t n, TimePoint now,
                                    Duration max_wait = Duration::max());

  // Change the rate, the burst, or both, keeping the tokens available at `now` (a smaller burst
  // caps them). Values are coerced as in the constructor. Serialised by a mutex; concurrent
  // acquirers wait for a few tens of nanoseconds.
  void setRate(double rate_per_second, TimePoint now);
  void setBurst(std::uint64_t burst, TimePoint now);
  void setSettings(const Settings& settings, TimePoint now);

  // The current (coerced) settings.
  [[nodiscard]] Settings settings() const;

  // Tokens available at `now` (Go: TokensAt): at most burst, negative while reservations are in
  // debt, +infinity when the rate is +infinity. A snapshot: other threads may change it at once.
  [[nodiscard]] double tokens(TimePoint now) const;

 private:
  enum class Mode : std::uint8_t { Finite, Frozen, Unlimited };  // rate > 0, == 0, == +inf

  // A consistent copy of the parameters; consistent with a word read just before it as long as
  // the word is unchanged afterwards (parameters change only while the word is kWordLocked).
  struct Params {
    std::int64_t origin_ns = 0;       // time of unit 0
    std::int32_t shift = 0;           // units = ns * 2^shift
    std::int64_t unit_per_token = 1;  // ceil(T * 2^shift)
    std::int64_t burst_units = 0;     // burst * unit_per_token
    std::int64_t max_rel_ns = 0;      // |now - origin| beyond this needs a rebase / is too old
    Mode mode = Mode::Finite;
    std::uint64_t burst = 0;
    double rate = 0.0;
    std::uint64_t gen = 0;
  };

  // 16 bytes, returned in registers: the hot path pays for the rounded-up value only if used.
  struct NowUnits {
    std::int64_t units = 0;  // rounded down
    bool inexact = false;    // `now` lies strictly between two units
    [[nodiscard]] std::int64_t ceil() const { return units + (inexact ? 1 : 0); }
    bool rebase = false;   // now is too far after the origin: rebase first
    bool too_old = false;  // now is too far before the origin: no tokens
  };

  [[nodiscard]] Params loadParams() const;
  void storeParams(const Params& p);
  [[nodiscard]] std::uint64_t loadUnlocked() const;  // waits while the word is kWordLocked
  [[nodiscard]] bool unchanged(std::uint64_t word) const;
  void reconfigure(const std::optional<Settings>& next, TimePoint now);
  void reconfigureLocked(const std::optional<Settings>& next, TimePoint now);
  double cancelReservation(const Reservation& r, TimePoint now);

  // Exact intermediates for unit conversions off the hot path (GCC/Clang, 64-bit targets).
  __extension__ typedef __int128 Wide;  // NOLINT(modernize-use-using): __extension__ needs typedef
  // What a cancel learns about the bookings after its reservation (token_bucket.cc).
  struct Finding {
    Wide after = 0;                  // units booked after it
    std::int64_t last_event_ns = 0;  // Go's lastEvent once it is cancelled
  };
  Finding bookedAfterSameUnits(const Reservation& r, const Params& p, std::uint64_t w,
                               const NowUnits& t, Wide cost) const;
  Finding bookedAfterChanged(const Reservation& r, const Params& p, std::uint64_t w,
                             TimePoint now) const;

  static NowUnits toUnits(TimePoint now, const Params& p);
  static std::int64_t takeFrom(std::int64_t e, const NowUnits& t, const Params& p);
  static bool admits(std::int64_t e, std::int64_t cost, const NowUnits& t);

  // The hot word: E in units (upper 56 bits, signed) | generation tag (lower 8 bits).
  alignas(64) std::atomic<std::uint64_t> word_;
  // Parameters, read by every call, written only under mu_ while word_ is kWordLocked. Kept off
  // word_'s cache line so that CAS traffic does not evict them.
  alignas(64) std::atomic<std::int64_t> origin_ns_{0};
  std::atomic<std::int32_t> shift_{0};
  std::atomic<std::int64_t> unit_per_token_{1};
  std::atomic<std::int64_t> burst_units_{0};
  std::atomic<std::int64_t> max_rel_ns_{0};
  std::atomic<Mode> mode_{Mode::Finite};
  std::atomic<std::uint64_t> burst_{0};
  std::atomic<double> rate_{0.0};
  std::atomic<std::uint64_t> gen_{0};
  std::mutex mu_;  // serialises reconfigure() and cancel()
  // Go's lastEvent, the latest booking's time to act, as a time (ns since the epoch): kept when
  // a cancel or a reconfigure moved it away from what the word implies, and valid while word_ ==
  // event_word_ (~0, kWordLocked, matches no word). Every take moves E forward, so an unchanged
  // word proves nothing was booked since. Otherwise it is E if that is ahead, else the take was
  // immediate and `now` is the latest it can have been (Go keeps that take's own time; sluice's
  // takes are one compare-and-swap and keep nothing else, so a cancel counts from `now`, which
  // gives back no more than Go). Guarded by mu_.
  std::uint64_t event_word_ = ~std::uint64_t{0};
  std::int64_t event_ns_ = 0;
};

}  // namespace sluice::resilience
