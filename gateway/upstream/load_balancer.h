// The seam between a cluster and the policy that spreads its requests over hosts.
//
// One LoadBalancer instance serves one cluster on one worker (no locking). The forwarding loop
// calls pick() once per attempt, passing the hosts this request already tried so that a retry
// goes elsewhere where it can; it reports every attempt's outcome back through onResult(), which
// latency- or load-aware policies use and simple ones ignore. Outlier ejection (and, later,
// active health checks) narrow the eligible set: a policy skips a host that PickContext says is
// ejected while any other is left. Policies stay pure selection logic over host indices
// (resilience/lb/ holds the algorithms).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace sluice::gateway::upstream {

class OutlierEjection;

struct PickContext {
  std::span<const std::size_t> tried;  // host indices already attempted for this request
  std::uint64_t hash = 0;              // the request's balancing-key hash, for hashing policies
  // Hosts ejected at `now` are skipped while any other host is left (null: none are ejected).
  const OutlierEjection* ejection = nullptr;
  std::chrono::steady_clock::time_point now{};
};

struct AttemptResult {
  bool success = false;                 // a response head arrived (any status)
  std::chrono::nanoseconds latency{0};  // attempt start to response head (or failure)
};

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;

  // The host for the next attempt, or nullopt when none is eligible.
  [[nodiscard]] virtual std::optional<std::size_t> pick(const PickContext& ctx) = 0;

  // Feedback for one finished attempt on `host`. Default: ignored.
  virtual void onResult(std::size_t /*host*/, const AttemptResult& /*result*/) {}
};

}  // namespace sluice::gateway::upstream
