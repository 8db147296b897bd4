// AutoLimit: a throughput-and-latency adaptive concurrency limit after brpc's automatic
// concurrency limiter (`max_concurrency = "auto"`; apache/brpc
// src/brpc/policy/auto_concurrency_limiter.cpp and docs/cn/auto_concurrency_limiter.md). Where
// GradientLimit and VegasLimit compare latencies only, AutoLimit applies Little's law directly:
// the best concurrency is the peak throughput times the no-load latency, and the limit sits a
// little above it to leave room for throughput to grow:
//
//   limit = min_latency * max_qps * (1 + explore_ratio)
//
//   AdaptiveConcurrencyLimiter limiter(std::make_unique<AutoLimit>(AutoLimit::Settings{}));
//
// Rules, in the order onSample(now, rtt, dropped) applies them (t = the latest `now` seen):
//   * Successes: every success counts toward the window's throughput, sampled or not.
//   * Sampling: at most one sample per `sampling_interval` (t - last_sample >= interval); other
//     completions add nothing else. brpc does this to keep its lock cold; it also sets how many
//     requests a window of max_sample_count samples spans at high rates.
//   * Remeasure drain: while draining (see below) samples are ignored; the first sample at or
//     after the drain's end forgets min_latency, schedules the next remeasure at
//     t + remeasure_interval * (1 - remeasure_jitter + remeasure_jitter * u), u uniform in [0, 1)
//     from a PRNG seeded with `seed` (brpc: interval/2 + rand(interval/2)), and opens a window.
//     The first remeasure is scheduled the same way from the first sample.
//   * Window: opens at its first sample; a success adds its rtt to the success sum, a drop adds
//     its rtt to the failure sum (or nothing if !error_punish). With n = samples in it and
//     elapsed = t - opened_at:
//       n <  min_sample_count:  if elapsed >= sample_window, the window is discarded (too little
//                               traffic to say anything: the limit is kept);
//       n >= max_sample_count or elapsed >= sample_window (and elapsed > 0): the window closes.
//   * Close with at least one success, over s successes (all of them) and the samples in it:
//       avg_latency = (failure_sum * fail_punish_ratio + success_sum) / successful samples
//       qps         = s / elapsed
//       min_latency = avg_latency if unset; else if avg_latency < min_latency:
//                     min_latency += (avg_latency - min_latency) * ema_alpha   (never up)
//       max_qps     = qps if qps >= max_qps; else max_qps += (qps - max_qps) * ema_alpha / 10
//     If the remeasure time has come (t >= scheduled): start draining until t + 2 * avg_latency
//     and set limit = ceil(max_qps * min_latency * reduce_ratio_while_remeasure) - low enough
//     that the queue empties, so the next windows see the no-load latency again.
//     Otherwise adjust the explore ratio (starting at max_explore_ratio) and set the limit:
//       if avg_latency <= min_latency * (1 + min_explore_ratio * latency_fluctuation_correction)
//          or qps <= max_qps / (1 + min_explore_ratio):       (no queueing, or room to grow)
//         explore = min(max_explore_ratio, explore + explore_ratio_step)
//       else:                                                 (latency up at peak throughput)
//         explore = max(min_explore_ratio, explore - explore_ratio_step)
//       limit = ceil(min_latency * max_qps * (1 + explore)
//                    + (burst_headroom * sqrt(min_latency * max_qps) if avg_latency <= the
//                       tolerated latency above, else 0))
//   * Close with no success (every sample failed): limit = limit / 2.
//   The limit is then clamped to [min_limit, max_limit]; every close or discard opens the next
//   window at t with its counts (and the success count) at zero.
// Defaults are brpc's flags (auto_cl_*): initial 40, window 1 s / 100..200 samples, sampling
// 0.1 ms, remeasure every 50 s with 50 % jitter at 0.9, EMA 0.1, punish 1.0, explore 0.3 down to
// 0.06 by 0.02. The behaviour: a steady, unsaturated service settles at 1.3x its Little's-law
// concurrency; once latency rises at peak throughput the headroom shrinks to 6 %; and every
// 25-50 s the limit dips to 0.9x to re-learn a no-load latency that may have moved up.
//
// Where this deliberately differs from brpc, and why:
//   * Time is the caller's: the first remeasure is scheduled from the first sample, not from
//     construction (a constructor reads no clock). Jitter comes from `seed`, so runs repeat.
//   * Latencies are kept in nanoseconds as doubles; brpc rounds each window's average up to a
//     whole microsecond. A window cannot close while elapsed == 0 (brpc would divide by zero).
//   * The floor is min_limit (brpc floors at bthread_concurrency, whose default is 9, so that is
//     the default here too) and there is a ceiling, max_limit (brpc has none).
//   * While requests do not queue, the limit also leaves room for the demand's bursts:
//     burst_headroom (2) x sqrt(little), the spread of a Poisson count of requests in flight.
//     brpc's limit is 1.3 x the mean demand, which at low load is less than one request above
//     it: behind a gateway at half a small service's capacity, Poisson bursts then queued in the
//     gateway (p99 36 ms against 17 ms unlimited). Once latency rises the headroom goes, so the
//     limit at saturation is brpc's. burst_headroom = 0 is brpc's behaviour.
//   * The limit is rounded up, not truncated: with truncation a small limit cannot grow (a
//     limit of 2 admits 2 x throughput, and floor(2 x 1.3) is 2 again), which brpc's floor of 9
//     hides; in front of a service that does 4 at once a floor of 9 is the queue we are avoiding.
//   * brpc's document says min_latency follows latencies above it by the EMA; its code (which
//     we follow) moves min_latency only downwards and relies on the remeasure to raise it. The
//     document's formula `max_qps * ((2 + alpha) * min_latency - latency)` is the older version
//     that the explore ratio replaced in the code.
//   * `inflight` is not used: brpc has no app-limited check. The max-QPS term plays that role -
//     an idle service measures no higher throughput, so its limit does not grow.
//   * brpc ignores completions it rejected itself (ELIMIT); AdaptiveConcurrencyLimiter reports
//     only admitted requests, so there is nothing to ignore.
//
// Edge input: negative rtt is treated as zero; a `now` earlier than one already seen is treated
// as the latest seen. Thread-safety: see AdaptiveLimit (limit() and the diagnostics from any
// thread; onSample() serialized by the caller).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "resilience/adaptive_limit.h"
#include "resilience/clock.h"

namespace sluice::resilience {

class AutoLimit final : public AdaptiveLimit {
 public:
  struct Settings {
    std::size_t initial_limit = 40;     // auto_cl_initial_max_concurrency
    std::size_t min_limit = 9;          // >= 1; brpc: bthread_concurrency (default 9)
    std::size_t max_limit = kMaxLimit;  // in [min_limit, kMaxLimit]; brpc: none
    Duration sample_window = std::chrono::seconds(1);  // > 0: auto_cl_sample_window_size_ms
    std::size_t min_sample_count = 100;                // >= 1: auto_cl_min_sample_count
    std::size_t max_sample_count = 200;  // >= min_sample_count: auto_cl_max_sample_count
    Duration sampling_interval = std::chrono::microseconds(100);  // >= 0: ..._sampling_interval_ms
    Duration remeasure_interval = std::chrono::seconds(50);       // > 0: ..._remeasure_interval_ms
    double remeasure_jitter = 0.5;              // in [0, 1]: share of the interval that is random
    double reduce_ratio_while_remeasure = 0.9;  // in (0, 1]
    double ema_alpha = 0.1;                     // in (0, 1]: auto_cl_alpha_factor_for_ema
    bool error_punish = true;                   // auto_cl_enable_error_punish
    double fail_punish_ratio = 1.0;             // >= 0: auto_cl_fail_punish_ratio
    double max_explore_ratio = 0.3;             // >= min_explore_ratio: auto_cl_max_explore_ratio
    double min_explore_ratio = 0.06;            // >= 0: auto_cl_min_explore_ratio
    double explore_ratio_step = 0.02;           // > 0: auto_cl_change_rate_of_explore_ratio
    double latency_fluctuation_correction = 1;  // >= 0: ..._latency_fluctuation_correction_factor
    double burst_headroom = 2;    // >= 0: sqrt(little) multiples added while unqueued (brpc: 0)
    std::uint64_t seed = 0x5eed;  // remeasure jitter PRNG seed (fixed => reproducible)
  };

  // Explains what is wrong with `settings`, or nullopt when they are usable.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // Precondition: validate(settings) is nullopt (otherwise values are clamped into range).
  explicit AutoLimit(const Settings& settings) noexcept;

  [[nodiscard]] std::size_t limit() const noexcept override {
    return limit_.load(std::memory_order_relaxed);
  }
  void onSample(TimePoint now, Duration rtt, std::size_t inflight, bool dropped) noexcept override;

  // Diagnostics, safe from any thread (relaxed snapshots of the last window close): the no-load
  // latency estimate (zero while unknown), the smoothed peak throughput in requests per second
  // (zero before the first close), the explore ratio, and whether a remeasure drain is running.
  [[nodiscard]] Duration minLatency() const noexcept {
    return Duration(min_latency_snapshot_.load(std::memory_order_relaxed));
  }
  [[nodiscard]] double maxQps() const noexcept {
    return max_qps_snapshot_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] double exploreRatio() const noexcept {
    return explore_snapshot_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] bool remeasuring() const noexcept {
    return remeasuring_snapshot_.load(std::memory_order_relaxed);
  }

 private:
  void closeWindow(double elapsed_ns) noexcept;
  void openWindow() noexcept;
  void setLimit(double target) noexcept;
  void publish() noexcept;
  [[nodiscard]] Duration nextRemeasureDelay() noexcept;

  Settings settings_;
  std::atomic<std::size_t> limit_;
  std::atomic<std::int64_t> min_latency_snapshot_{0};
  std::atomic<double> max_qps_snapshot_{0};
  std::atomic<double> explore_snapshot_;
  std::atomic<bool> remeasuring_snapshot_{false};

  // Single-writer state, touched only by onSample().
  std::mt19937_64 rng_;
  TimePoint latest_{};
  bool started_ = false;
  std::optional<TimePoint> last_sample_;
  TimePoint next_remeasure_{};
  std::optional<TimePoint> draining_until_;
  double min_latency_ns_ = 0;  // 0 = unknown (forgotten by a remeasure)
  bool have_min_latency_ = false;
  double max_qps_ = 0;
  bool have_max_qps_ = false;
  double explore_;
  std::optional<TimePoint> window_opened_at_;
  std::uint64_t window_successes_ = 0;  // every success since the window opened
  std::uint64_t window_ok_samples_ = 0;
  std::uint64_t window_failed_samples_ = 0;
  double window_ok_sum_ns_ = 0;
  double window_failed_sum_ns_ = 0;
};

}  // namespace sluice::resilience
