// PeakEwma: a latency estimate that jumps up at once on a slow response and decays smoothly
// otherwise, the latency signal of Finagle's, linkerd's and Pingora-style "peak EWMA" balancing.
//
//   PeakEwma rtt(PeakEwma::Settings{}, clock.now());
//   rtt.observe(std::chrono::milliseconds(12), clock.now());
//   double ns = rtt.estimateNanos(clock.now());
//
// Balancing on it: cost = estimate * (in_flight + 1), cheapest of two random hosts wins
// (HostStats::cost() + PowerOfTwoChoices). A host that slows down gets a high estimate on its
// first slow response ("peak"), so it sheds load immediately; the estimate then decays with
// time, so it is retried once it may have recovered.
//
// Formulas (tau = Settings::decay_time, dt = time since the last observation, w = exp(-dt/tau);
// after Finagle's PeakEwma, finagle-core .../loadbalancer/PeakEwma.scala, and tower's
// tower/src/load/peak_ewma.rs):
//   reads:        estimate(now) = E * w              (no observation: decays towards zero)
//   observe(rtt): v = E * w;  E = rtt                    if rtt >= v   (peak: jump up at once)
//                             E = E * w + rtt * (1 - w)  if rtt < v    (EWMA down towards rtt)
// The EWMA step is Finagle's and tower's, the old estimate decayed once. Two differences, both
// from reading the estimate as a pure function of the observations and the time:
//  * A read does not change the estimate (in Finagle and tower every load read is an
//    observation of 0, so the decay depends on how often the balancer looks).
//  * A response is a peak if it is slower than the estimate as read now (v), where they compare
//    with the undecayed E: theirs can move the estimate above both the current reading and the
//    response (E = 100 ms read as 50 ms, then a 60 ms response: 80 ms); here it becomes 60 ms.
// Edge input: a negative rtt counts as 0; `now` earlier than the last observation counts as equal
// to it (time never runs backwards for the estimate); an estimate that decayed below 1e-300 ns
// reads as 0, so an idle host costs nothing until its next response.
//
// Thread-safety: none; one instance per host per worker.
#pragma once

#include <chrono>
#include <cmath>
#include <optional>
#include <string>

#include "resilience/clock.h"

namespace sluice::resilience {

class PeakEwma {
 public:
  struct Settings {
    // tau: after decay_time without a response the estimate has fallen to 1/e (37 %) of its
    // value; a response moves a current estimate by the fraction 1 - exp(-dt / tau) towards
    // itself. Finagle and linkerd default to 10 s.
    std::chrono::nanoseconds decay_time = std::chrono::seconds(10);
    // The estimate before the first response (linkerd's default_rtt, 30 ms): a new host
    // neither looks free (0 would flood it) nor too slow to be tried.
    std::chrono::nanoseconds initial_rtt = std::chrono::milliseconds(30);
  };

  // nullopt if usable, else what is wrong: decay_time must be > 0, initial_rtt >= 0.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings) {
    if (settings.decay_time <= std::chrono::nanoseconds::zero()) {
      return "PeakEwma: decay_time must be positive";
    }
    if (settings.initial_rtt < std::chrono::nanoseconds::zero()) {
      return "PeakEwma: initial_rtt must not be negative";
    }
    return std::nullopt;
  }

  // Starts at settings.initial_rtt as observed at `now`. Precondition: validate(settings) is
  // nullopt (a non-positive decay_time is treated as 1 ns, a negative initial_rtt as 0).
  PeakEwma(const Settings& settings, TimePoint now)
      : tau_ns_(settings.decay_time.count() > 0 ? static_cast<double>(settings.decay_time.count())
                                                : 1.0),
        estimate_ns_(nonNegative(static_cast<double>(settings.initial_rtt.count()))),
        stamp_(now) {}

  // Feeds one response time observed at `now` (formula in the file comment).
  void observe(Duration rtt, TimePoint now) {
    const double sample = nonNegative(static_cast<double>(rtt.count()));
    const TimePoint at = now > stamp_ ? now : stamp_;
    const double w = decay(at);
    const double decayed = estimate_ns_ * w;
    estimate_ns_ = sample >= decayed ? sample : decayed + sample * (1.0 - w);  // E w + rtt (1 - w)
    stamp_ = at;
  }

  // The estimate at `now`, in nanoseconds: E * exp(-dt / tau). Never negative.
  [[nodiscard]] double estimateNanos(TimePoint now) const {
    const double value = estimate_ns_ * decay(now);
    return value < kNegligibleNs ? 0.0 : value;
  }

  // estimateNanos() rounded to the nearest Duration tick (ns).
  [[nodiscard]] Duration estimate(TimePoint now) const {
    return Duration(static_cast<Duration::rep>(std::llround(estimateNanos(now))));
  }

  // When the last observation (or construction) happened.
  [[nodiscard]] TimePoint lastObservation() const { return stamp_; }

 private:
  static constexpr double kNegligibleNs = 1e-300;

  static double nonNegative(double value) { return value > 0 ? value : 0.0; }

  // exp(-dt / tau) for dt = now - stamp_, 1 for now <= stamp_.
  [[nodiscard]] double decay(TimePoint now) const {
    if (now <= stamp_) {
      return 1.0;
    }
    return std::exp(-static_cast<double>((now - stamp_).count()) / tau_ns_);
  }

  double tau_ns_;
  double estimate_ns_;
  TimePoint stamp_;
};

}  // namespace sluice::resilience
