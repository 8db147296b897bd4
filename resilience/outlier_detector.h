// OutlierDetector: passive health checking; eject hosts that fail more than their peers.
//
// Modelled on Envoy's outlier detection (envoyproxy.io, "Outlier detection" architecture
// overview and config.cluster.v3.OutlierDetection), reimplemented over explicit time. The owner
// reports each response's outcome per host; the load balancer skips hosts for which
// isEjected(host, now) is true. Three detectors:
//
//   consecutive 5xx      - `consecutive_5xx` ServerError/GatewayFailure outcomes in a row
//                          (checked on every record; a Success resets the run);
//   consecutive gateway  - `consecutive_gateway_failure` GatewayFailure outcomes in a row
//                          (502/503/504, connect failures, timeouts; any other outcome resets it);
//   failure percentage   - at each interval sweep (evaluate(now)), among hosts with at least
//                          `failure_percentage_request_volume` requests in the interval, if there
//                          are at least `failure_percentage_minimum_hosts` of them, eject each one
//                          whose failures * 100 >= threshold * requests.
//
// Ejection: a host is ejected for min(base_ejection_time * m, max_ejection_time), where the
// multiplier m is incremented on each ejection (up to ceil(max / base), where the product reaches
// the cap) and decremented by one at each sweep that finds the host readmitted for at least one
// interval, so a host that keeps failing is ejected for longer and longer, and one that recovers
// is forgiven over time (Envoy's decaying ejection multiplier). It is readmitted exactly at
// ejected_at + that time: isEjected is true for now < that instant, false from it on.
//
// Cap: an ejection happens only if afterwards (ejected hosts) * 100 <= max_ejection_percent *
// (hosts), so with the default 10 % a cluster needs at least 10 hosts before any host can be
// ejected (as in Envoy). `always_eject_one_host` lifts the cap for the first ejected host.
// A consecutive detector resets its run when it fires, whether or not the cap let the ejection
// happen; both runs are also reset when the host is ejected and when it is readmitted.
//
// No timers: consecutive detectors act inside record(); readmission is observed through `now`
// by every call; the interval sweep (failure percentage and multiplier decay) runs when the owner
// calls evaluate(now) at or after the due time (call it every `interval`, e.g. from a periodic
// task; a late call covers the longer interval since the previous sweep).
//
//   OutlierDetector detector(OutlierDetector::Settings{});
//   const auto host = detector.addHost();
//   detector.record(host, OutlierDetector::classifyHttpStatus(502), now);
//   if (!detector.isEjected(host, now)) pick(host);
//   detector.evaluate(now);   // periodically
//
// Not provided: Envoy's success-rate (standard deviation) detector, enforcement percentages and
// ejection jitter. Results against an ejected host are ignored.
//
// Settings can change in place (reconfigure): a config reload keeps every host's state.
//
// Thread-safety: all members are thread-safe (one internal mutex; every call is O(1) except
// ejection decisions, evaluate() and reconfigure(), which are O(hosts)).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "resilience/clock.h"

namespace sluice::resilience {

class OutlierDetector {
 public:
  using HostId = std::uint64_t;

  enum class Outcome : std::uint8_t {
    Success,         // anything that is not a server-side failure (including 4xx)
    ServerError,     // 5xx other than 502/503/504
    GatewayFailure,  // 502, 503, 504, connection failure, reset, timeout
  };

  enum class Reason : std::uint8_t { Consecutive5xx, ConsecutiveGatewayFailure, FailurePercentage };

  struct Settings {
    std::uint32_t consecutive_5xx = 5;  // 0 disables
    std::uint32_t consecutive_gateway_failure =
        0;  // 0 disables (Envoy does not enforce it by default)
    // Failure-percentage detector; nullopt disables. Threshold in percent, 0 < t <= 100.
    std::optional<double> failure_percentage_threshold = 85.0;
    std::uint32_t failure_percentage_minimum_hosts = 5;
    std::uint32_t failure_percentage_request_volume = 50;
    Duration interval = std::chrono::seconds(10);
    Duration base_ejection_time = std::chrono::seconds(30);
    Duration max_ejection_time = std::chrono::seconds(300);
    double max_ejection_percent = 10.0;  // in [0, 100]
    bool always_eject_one_host = false;
  };

  // Explains what is wrong, or nullopt: interval > 0, base_ejection_time > 0,
  // max_ejection_time >= base_ejection_time, max_ejection_percent in [0, 100], threshold in
  // (0, 100] when set.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // 502/503/504 -> GatewayFailure, other 5xx -> ServerError, everything else -> Success.
  [[nodiscard]] static Outcome classifyHttpStatus(int status) noexcept;

  // Pass settings accepted by validate(); the first sweep is due at now + interval.
  OutlierDetector(const Settings& settings, TimePoint now);

  // Adds a host (not ejected, multiplier 0) and returns its id; ids are never reused.
  HostId addHost();
  // Forgets a host (an ejected one stops counting against the cap). False if unknown.
  bool removeHost(HostId host);

  // Records one response from `host`. Returns the reason if this record ejected the host.
  // Unknown hosts and hosts ejected at `now` are ignored. Time going backwards is accepted
  // (counts are not time-bucketed; readmission compares with `now` as given).
  std::optional<Reason> record(HostId host, Outcome outcome, TimePoint now);

  // True while `host` is ejected: now < its readmission time. Unknown hosts are not ejected.
  [[nodiscard]] bool isEjected(HostId host, TimePoint now) const;

  struct Ejection {
    HostId host = 0;
    Reason reason = Reason::FailurePercentage;
    TimePoint until;  // readmission time
  };
  // Runs the interval sweep if it is due (now >= previous sweep + interval): readmissions,
  // failure-percentage ejections, multiplier decay, then starts a new interval at `now`.
  // Returns the ejections the sweep made (empty if not due).
  std::vector<Ejection> evaluate(TimePoint now);

  struct HostStatus {
    bool ejected = false;
    TimePoint ejected_until;       // meaningful when ejected
    std::uint32_t multiplier = 0;  // current ejection multiplier m
    std::uint64_t times_ejected = 0;
    std::uint32_t consecutive_5xx = 0;
    std::uint32_t consecutive_gateway_failures = 0;
    std::uint64_t interval_requests = 0;  // since the last sweep
    std::uint64_t interval_failures = 0;
  };
  [[nodiscard]] std::optional<HostStatus> hostStatus(HostId host, TimePoint now) const;

  [[nodiscard]] std::size_t hostCount() const;
  [[nodiscard]] std::size_t ejectedCount(TimePoint now) const;
  // When the next sweep is due.
  [[nodiscard]] TimePoint nextEvaluation() const;

  // Replaces the settings in place (pass settings accepted by validate()) and keeps every
  // host's state; the new settings apply from the next record() or evaluate(). reconfigure
  // itself ejects and readmits nothing. Kept:
  //   - ejections in progress, with their readmission time (not shortened or lengthened by a
  //     new base or max ejection time), even beyond a lowered max_ejection_percent: the cap
  //     only blocks new ejections until enough hosts are readmitted;
  //   - ejection multipliers, capped at the new ceil(max_ejection_time / base_ejection_time);
  //     the next ejection lasts min(new base * (m + 1), new max);
  //   - consecutive runs: a run already at or beyond a lowered consecutive_5xx /
  //     consecutive_gateway_failure ejects at the host's next failure of that kind (a Success
  //     still resets it); a detector set to 0 stops firing, its run is kept but unused;
  //   - the interval's request and failure counts, judged at the next sweep by the new
  //     failure-percentage settings (a disabled detector ignores them). The sweep stays due at
  //     its time, or at now + the new interval if that is sooner.
  // Thread-safety: takes the internal mutex (O(hosts)); calls racing it see the old or the new
  // settings, never a mix.
  void reconfigure(const Settings& settings, TimePoint now);

  // The settings in effect (a copy, taken under the internal mutex).
  [[nodiscard]] Settings settings() const;

 private:
  struct Host {
    bool ejected = false;  // as of the last refresh; see ejectedAt()
    TimePoint ejected_until;
    TimePoint readmitted_at;  // when the last ejection ended (valid if times_ejected > 0)
    std::uint32_t multiplier = 0;
    std::uint64_t times_ejected = 0;
    std::uint32_t consecutive_5xx = 0;
    std::uint32_t consecutive_gateway = 0;
    std::uint64_t interval_requests = 0;
    std::uint64_t interval_failures = 0;
  };

  static bool ejectedAt(const Host& h, TimePoint now) noexcept {
    return h.ejected && now < h.ejected_until;
  }
  void readmitDueLocked(TimePoint now);
  [[nodiscard]] bool capAllowsLocked() const;
  std::optional<TimePoint> tryEjectLocked(Host& host, TimePoint now);

  mutable std::mutex mutex_;
  // Guarded by mutex_:
  Settings settings_;
  std::uint32_t max_multiplier_;
  std::unordered_map<HostId, Host> hosts_;
  HostId next_id_ = 1;
  std::size_t ejected_ = 0;  // hosts with Host::ejected set
  TimePoint next_sweep_;
};

[[nodiscard]] const char* toString(OutlierDetector::Reason reason) noexcept;

}  // namespace sluice::resilience
