// ActiveHealth: a cluster's actively checked host health, shared by every worker.
//
// The health checker (upstream/health_checker.h, on the main thread) is the only writer: it
// records each probe's result, and a host changes state after unhealthy_threshold consecutive
// failures or healthy_threshold consecutive successes. Workers ask healthy(host) on every pick
// and healthyCount() for the panic threshold: relaxed atomic loads, no lock, no shared write.
//
// A host starts healthy, so that a config change never takes traffic away before anything was
// checked; its first result then decides at once (a host that is down at start leaves
// selection after one failed probe instead of unhealthy_threshold of them).
//
// generation() changes with every transition, so a worker notices a host that came back (and
// slow-starts it from healthySince(), the same instant on every worker) with one load per pick.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "gateway/stats/worker_stats.h"

namespace sluice::gateway::upstream {

class ActiveHealth {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  enum class Result : std::uint8_t {
    Success,
    ConnectFailure,  // refused, unreachable, reset before an answer
    Timeout,         // no connection or no complete answer within the check's timeout
    BadStatus,       // http: a status outside expected_statuses
    BadResponse,     // http: not a valid HTTP/1.x response head
  };
  static constexpr const auto& kResultNames = stats::kHealthCheckResults;

  ActiveHealth(std::size_t hosts, std::uint32_t healthy_threshold,
               std::uint32_t unhealthy_threshold);

  [[nodiscard]] std::size_t hosts() const noexcept { return hosts_; }
  // Hosts in occupied slots (HostSet): what the panic threshold is a share of.
  [[nodiscard]] std::size_t occupied() const noexcept {
    return occupied_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] bool healthy(std::size_t host) const noexcept {
    return healthy_[host].load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t healthyCount() const noexcept {
    return healthy_count_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t generation() const noexcept {
    return generation_.load(std::memory_order_acquire);
  }
  // When the host last went from unhealthy to healthy (the epoch if it never did).
  [[nodiscard]] TimePoint healthySince(std::size_t host) const noexcept {
    return TimePoint(TimePoint::duration(healthy_since_[host].load(std::memory_order_relaxed)));
  }

  // New thresholds (a reload; same writer). Hosts keep their state and consecutive counts: a
  // count already past a lowered threshold turns the host at its next result.
  void setThresholds(std::uint32_t healthy_threshold, std::uint32_t unhealthy_threshold) noexcept {
    healthy_threshold_ = healthy_threshold == 0 ? 1 : healthy_threshold;
    unhealthy_threshold_ = unhealthy_threshold == 0 ? 1 : unhealthy_threshold;
  }

  // One probe's result. Returns true when the host changed state. Single writer.
  bool record(std::size_t host, Result result, TimePoint now);
  // The slot got a new host (healthy until its first probe says otherwise) / went empty (never
  // picked). Same writer.
  void occupy(std::size_t host);
  void vacate(std::size_t host);

  // What the admin page and /metrics show (read on the main thread, beside the writer).
  struct HostStatus {
    bool healthy = true;
    bool checked = false;  // at least one result so far
    bool vacant = false;   // the slot has no host
    std::uint32_t consecutive_successes = 0;
    std::uint32_t consecutive_failures = 0;
    Result last_result = Result::Success;
    TimePoint last_check{};
    std::array<std::uint64_t, kResultNames.size()> results{};
    std::uint64_t became_healthy = 0;
    std::uint64_t became_unhealthy = 0;
  };
  [[nodiscard]] const HostStatus& status(std::size_t host) const noexcept { return status_[host]; }

 private:
  std::size_t hosts_;
  std::uint32_t healthy_threshold_;
  std::uint32_t unhealthy_threshold_;
  // The workers' side, written only on transitions.
  std::unique_ptr<std::atomic<bool>[]> healthy_;
  std::unique_ptr<std::atomic<std::int64_t>[]> healthy_since_;  // ns since the clock's epoch
  std::atomic<std::size_t> healthy_count_;
  std::atomic<std::size_t> occupied_;
  std::atomic<std::uint64_t> generation_{0};
  // The checker's side, on its own cache lines.
  std::unique_ptr<HostStatus[]> status_;
};

}  // namespace sluice::gateway::upstream
