// How slowly, and for how long in all, a connection waits on its peer to move a body: the
// defence against a client that drips a request body or reads a response a byte at a time.
//
//   TransferPace pace({.total = 5min, .min_rate = 512, .window = 20s, .grace = 10s});
//   pace.start(now);                                  // a read or write on the client is issued
//   socket_deadline.arm(socket, std::min(per_io_deadline, pace.deadline()));
//   ... bytes moved:  if (pace.progress(now, n) != Verdict::Ok) -> too slow / too long
//   ... it timed out: pace.expired(now) says which limit (Ok: neither, another deadline)
//   pace.stop(now);
//
// Only time between start() and stop() counts: the time a connection spends waiting on this peer,
// not the time it waits on the other side (a slow upstream, a streamed response's pauses). Over
// that time:
//   - total: the waits may add up to at most this (zero: no limit);
//   - min_rate: in each `window` of it at least min_rate x window bytes must move; the first
//     window is longer by `grace` (slow start, a client's first round trips). Bytes beyond a
//     window's quota do not carry over to the next one, so a fast start buys no right to stall.
//     Zero: no minimum.
// A window ends on the time waited, so it is checked only by a wait that reaches its end: the
// deadline() of a wait is the earliest moment a limit breaks if nothing more moves, and arming
// the connection's one socket deadline with it costs no timer of its own. The verdict is sticky:
// once a limit broke, every later call reports it.
//
// Time is a parameter (any steady time points); not thread-safe (one connection's).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace sluice::gateway::net {

class TransferPace {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;
  using Duration = Clock::duration;

  struct Limits {
    Duration total{};            // zero: no limit on the time waited in all
    std::uint64_t min_rate = 0;  // bytes per second; zero: no minimum
    Duration window{std::chrono::seconds(20)};
    Duration grace{};  // added to the first window
  };
  enum class Verdict : std::uint8_t {
    Ok,
    TooSlow,  // a window ended with fewer than min_rate x window bytes moved in it
    TooLong,  // the waits added up to more than total
  };

  TransferPace() = default;  // no limits
  explicit TransferPace(const Limits& limits) noexcept
      : limits_(limits),
        quota_(quotaOf(limits)),
        window_end_(limits.grace + limits.window),
        need_(quota_) {}

  // A wait on the peer starts at `now`.
  void start(TimePoint now) noexcept {
    wait_start_ = now;
    wait_bytes_ = 0;
    waiting_ = true;
  }

  // `bytes` moved at `now`, during the current wait. Returns the verdict so far.
  Verdict progress(TimePoint now, std::uint64_t bytes) noexcept {
    if (verdict_ != Verdict::Ok) return verdict_;
    wait_bytes_ += bytes;
    const Duration t = waitedAt(now);
    if (quota_ > 0 && t >= window_end_) {
      // The window ended before these bytes: it had to be full already, and the next one must
      // not have ended too (a whole window with nothing moved).
      if (need_ > 0 || t >= window_end_ + limits_.window) return verdict_ = Verdict::TooSlow;
      window_end_ += limits_.window;
      need_ = quota_;
    }
    need_ -= std::min(need_, bytes);
    if (limits_.total > Duration::zero() && t >= limits_.total) verdict_ = Verdict::TooLong;
    return verdict_;
  }

  // The wait that started is over at `now`.
  void stop(TimePoint now) noexcept {
    if (!waiting_) return;
    waited_ += now - wait_start_;
    waiting_ = false;
  }

  // When the current wait breaks a limit if nothing more moves; TimePoint::max() when no limit
  // applies. Only meaningful between start() and stop().
  [[nodiscard]] TimePoint deadline() const noexcept {
    Duration until = Duration::max();  // in time waited
    if (quota_ > 0) until = need_ > 0 ? window_end_ : window_end_ + limits_.window;
    if (limits_.total > Duration::zero()) until = std::min(until, limits_.total);
    if (until == Duration::max()) return TimePoint::max();
    return until > waited_ ? wait_start_ + (until - waited_) : wait_start_;
  }

  // A wait that timed out at `now`: which limit it broke (Ok: neither; the deadline that ended
  // it was another one). Sticky like progress().
  Verdict expired(TimePoint now) noexcept {
    if (verdict_ != Verdict::Ok) return verdict_;
    const Duration t = waitedAt(now);
    if (limits_.total > Duration::zero() && t >= limits_.total) {
      verdict_ = Verdict::TooLong;
    } else if (quota_ > 0 &&
               ((need_ > 0 && t >= window_end_) || t >= window_end_ + limits_.window)) {
      verdict_ = Verdict::TooSlow;
    }
    return verdict_;
  }

  [[nodiscard]] Verdict verdict() const noexcept { return verdict_; }
  // Bytes reported by progress() since the current wait started.
  [[nodiscard]] std::uint64_t waitBytes() const noexcept { return wait_bytes_; }
  // Time waited so far, the current wait included up to `now`.
  [[nodiscard]] Duration waitedAt(TimePoint now) const noexcept {
    return waiting_ ? waited_ + (now - wait_start_) : waited_;
  }

 private:
  static std::uint64_t quotaOf(const Limits& l) noexcept {
    // Bounded by the config (rate <= 1 GiB/s, window <= 1 h): no overflow.
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(l.window).count();
    if (l.min_rate == 0 || ms <= 0) return 0;
    return std::max<std::uint64_t>(1, l.min_rate * static_cast<std::uint64_t>(ms) / 1000);
  }

  Limits limits_;
  std::uint64_t quota_ = 0;  // bytes per window; 0: no minimum rate
  Duration waited_{};        // by the waits that ended
  TimePoint wait_start_{};
  Duration window_end_{};   // in time waited
  std::uint64_t need_ = 0;  // bytes the current window still needs
  std::uint64_t wait_bytes_ = 0;
  bool waiting_ = false;
  Verdict verdict_ = Verdict::Ok;
};

}  // namespace sluice::gateway::net
