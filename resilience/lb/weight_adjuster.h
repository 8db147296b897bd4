// WeightAdjuster: turns what is observed about each host - response latency and errors, or a
// load value the upstream reports - into effective weights for any weighted balancer.
//
//   WeightAdjuster adjuster(WeightAdjuster::Settings{}, hosts.size(), now);
//   adjuster.recordResponse(host, latency, /*success=*/status < 500, now);   // per response
//   adjuster.reportUtilization(host, 0.7, now);     // Signal::ReportedUtilization: per report
//   // periodically (e.g. every second), not per pick:
//   std::vector<std::uint32_t> weights = adjuster.effectiveWeights(base_weights, now);
//   for (i...) swrr.setWeight(i, weights[i]);
//
// Per host it keeps time-decayed sums (each sample weighted by exp(-age / decay_time)): count N,
// latency sum, error count. So mean latency = latency sum / N, error rate = errors / N, request
// rate qps = N / decay_time, error rate eps = errors / decay_time. Samples at the same instant all
// count (unlike a per-sample EWMA whose weight depends on the time since the previous sample).
// A host has data once N >= min_samples; hosts without data get the mean factor of those with
// data (1 if none), so a new host is neither starved nor flooded.
//
// Factor per host with data, relative to the best host, clamped into [min_factor, 1]:
//   Signal::Latency:  factor_i = (L_best / L_i) * max(0, 1 - error_penalty * error_rate_i)
//                     L = mean latency, L_best = the lowest among hosts with data. Latency is a
//                     proxy for capacity (Little's law: at a given concurrency, throughput is
//                     inversely proportional to latency); errors cut the weight in proportion.
//   Signal::ReportedUtilization (after gRFC A58, client-side weighted round robin):
//                     capacity_i = 1 / (u_i + (eps_i / qps_i) * error_penalty)
//                     factor_i = capacity_i / max_j capacity_j
//                     u_i = the last utilization the host reported (e.g. ORCA's cpu or
//                     application utilization, 0..1). A report counts after `blackout` since the
//                     host's first report of its current run and until `report_ttl` after the
//                     latest one (A58's blackout_period and weight_expiration_period); u_i <= 0
//                     or no responses means no data. A58 multiplies by the qps the host
//                     reports serving; the qps this client observes is only its own share, set
//                     by its own weights, so multiplying by it would feed the weights back into
//                     themselves (a host given less traffic would look ever less capable).
//                     Weighting by 1 / utilization instead drives hosts towards equal
//                     utilization: a loaded host gets less, cools down, and is given more.
//   effective_i = round(base_i * factor_i), at least 1 when base_i > 0, 0 when base_i is 0.
// Hash-based tables (RingHash, Maglev) rebuild on every weight change: feed them adjusted
// weights rarely, if at all.
//
// Thread-safety: none; one per worker (or guard it). Time going backwards: a sample stamped
// before the last one counts as taken at the last one.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "resilience/clock.h"

namespace sluice::resilience {

class WeightAdjuster {
 public:
  enum class Signal { Latency, ReportedUtilization };

  struct Settings {
    Signal signal = Signal::Latency;
    // Age at which a sample's weight has fallen to 1/e; > 0.
    std::chrono::nanoseconds decay_time = std::chrono::seconds(10);
    // Decayed sample count a host needs before its own factor is used; >= 0.
    double min_samples = 10.0;
    // Latency: weight lost per unit of error rate (1: 10 % errors cost 10 % of the weight).
    // ReportedUtilization: A58's error_utilization_penalty. >= 0, finite.
    double error_penalty = 1.0;
    // Lowest factor any host gets, (0, 1]: a slow host keeps a trickle of traffic, so that its
    // recovery is noticed.
    double min_factor = 0.1;
    // ReportedUtilization only: A58's blackout_period (>= 0) and weight_expiration_period (> 0).
    std::chrono::nanoseconds blackout = std::chrono::seconds(10);
    std::chrono::nanoseconds report_ttl = std::chrono::minutes(3);
  };

  // nullopt if usable, else what is wrong.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // `hosts` hosts without data. Precondition: validate(settings) is nullopt (out-of-range
  // values are clamped to the nearest valid ones).
  WeightAdjuster(const Settings& settings, std::size_t hosts, TimePoint now);

  // One response from host: its latency (negative counts as 0) and whether it succeeded (a
  // failure counts towards the error rate; its latency counts like any other). Out of range:
  // ignored.
  void recordResponse(std::size_t host, Duration latency, bool success, TimePoint now);

  // The host's own load report (ReportedUtilization). Non-finite values are ignored; values
  // <= 0 mean "no usable report" (the host's report run restarts, with a new blackout).
  void reportUtilization(std::size_t host, double utilization, TimePoint now);

  // Every host's factor in [min_factor, 1] at `now` (formulas in the file comment). O(n).
  [[nodiscard]] std::vector<double> factors(TimePoint now) const;

  // round(base[i] * factor_i) per host, at least 1 when base[i] > 0. Hosts beyond base.size()
  // are left out; base entries beyond size() are copied unchanged. O(n).
  [[nodiscard]] std::vector<std::uint32_t> effectiveWeights(const std::vector<std::uint32_t>& base,
                                                            TimePoint now) const;

  // Observed values, for diagnostics and tests (nullopt: no data).
  [[nodiscard]] std::optional<double> meanLatencyNanos(std::size_t host) const;
  [[nodiscard]] std::optional<double> errorRate(std::size_t host) const;
  [[nodiscard]] double requestsPerSecond(std::size_t host, TimePoint now) const;

  // Appends a host without data (index size() before the call).
  void addHost(TimePoint now);
  // Erases host, shifting later hosts down one index. Out of range: no effect.
  void removeHost(std::size_t host);
  // Forgets a host's data (e.g. after it restarted).
  void resetHost(std::size_t host, TimePoint now);

  [[nodiscard]] std::size_t size() const { return hosts_.size(); }

 private:
  struct HostState {
    explicit HostState(TimePoint now) : stamp(now) {}
    TimePoint stamp;  // sums below are as of this time
    double count = 0;
    double latency_sum_ns = 0;
    double errors = 0;
    double utilization = 0;
    std::optional<TimePoint> report_run_start;  // first report of the current run
    TimePoint last_report{};
  };

  void decayTo(HostState& state, TimePoint now) const;
  [[nodiscard]] double decayFactor(const HostState& state, TimePoint now) const;
  [[nodiscard]] bool hasData(const HostState& state, TimePoint now) const;
  [[nodiscard]] bool reportUsable(const HostState& state, TimePoint now) const;

  Settings settings_;
  double tau_ns_;
  std::vector<HostState> hosts_;
};

}  // namespace sluice::resilience
