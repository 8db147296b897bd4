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

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "gateway/upstream/outlier_ejection.h"

namespace sluice::gateway::upstream {

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
  std::chrono::steady_clock::time_point finished{};
};

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;

  // The host for the next attempt, or nullopt when none is eligible.
  [[nodiscard]] virtual std::optional<std::size_t> pick(const PickContext& ctx) = 0;

  // An attempt on `host` starts now; every onStart is followed by exactly one onResult for the
  // same host. Default: ignored (load-aware policies count requests in flight).
  virtual void onStart(std::size_t /*host*/) {}

  // Feedback for one finished attempt on `host`. Default: ignored.
  virtual void onResult(std::size_t /*host*/, const AttemptResult& /*result*/) {}
};

// Runs `pick(eligible)` with progressively weaker eligibility until it finds a host: a healthy
// host this request has not tried yet, then any healthy host, then (only when outlier
// detection has every host out) an untried host, then any host. Every policy selects through it.
template <typename Pick>
[[nodiscard]] std::optional<std::size_t> pickPreferring(const PickContext& ctx, Pick&& pick) {
  const auto untried = [&](std::size_t i) {
    return std::find(ctx.tried.begin(), ctx.tried.end(), i) == ctx.tried.end();
  };
  const auto healthy = [&](std::size_t i) {
    return ctx.ejection == nullptr || !ctx.ejection->ejected(i, ctx.now);
  };
  if (ctx.tried.empty() && ctx.ejection == nullptr) return pick([](std::size_t) { return true; });
  if (auto h = pick([&](std::size_t i) { return untried(i) && healthy(i); })) return h;
  if (auto h = pick(healthy)) return h;
  if (auto h = pick(untried)) return h;
  return pick([](std::size_t) { return true; });
}

}  // namespace sluice::gateway::upstream
