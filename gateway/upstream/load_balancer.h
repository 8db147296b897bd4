// The seam between a cluster and the policy that spreads its requests over hosts.
//
// One LoadBalancer instance serves one cluster on one worker (no locking). The forwarding loop
// calls pick() once per attempt, passing the hosts this request already tried so that a retry
// goes elsewhere where it can; it reports every attempt's outcome back through onResult(), which
// latency- or load-aware policies use and simple ones ignore. Health narrows the eligible set:
// a host that fails its active health checks is out (unless the cluster is in panic), and an
// outlier-ejected host is skipped while any other is left. Policies stay pure selection logic
// over host indices (resilience/lb/ holds the algorithms).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "gateway/upstream/active_health.h"
#include "gateway/upstream/outlier_ejection.h"

namespace sluice::gateway::upstream {

struct PickContext {
  std::span<const std::size_t> tried;  // host indices already attempted for this request
  std::uint64_t hash = 0;              // the request's balancing-key hash, for hashing policies
  // Hosts ejected at `now` are skipped while any other host is left (null: none are ejected).
  const OutlierEjection* ejection = nullptr;
  std::chrono::steady_clock::time_point now{};
  // Hosts failing their active health checks are never picked, unless `panic` (too few are
  // healthy: balance across all). Null: no active health checking.
  const ActiveHealth* health = nullptr;
  bool panic = false;
};

struct AttemptResult {
  bool success = false;                 // a response head arrived (any status)
  std::chrono::nanoseconds latency{0};  // attempt start to response head (or failure)
  std::chrono::steady_clock::time_point finished{};
  int status = 0;          // the response's status (0: none)
  double utilization = 0;  // the load the host reported (lb.dynamic_weights), 0: none
  bool verdict = true;     // false: the try ended for a local reason, nothing learnt of the host
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

  // The host's weight from the next pick on (slow start ramps it; 0: the slot is empty, never
  // picked). Default: ignored (policies whose picks do not depend on weights after
  // construction; the cluster rebuilds those when hosts come and go).
  virtual void setWeight(std::size_t /*host*/, std::uint32_t /*weight*/) {}

  // The slot got another host: forget what was learnt about the last one. Default: nothing.
  virtual void resetHost(std::size_t /*host*/, std::chrono::steady_clock::time_point /*now*/) {}
};

// Runs `pick(eligible)` with progressively weaker eligibility until it finds a host. Only hosts
// that pass their active health checks (all of them in panic) are ever eligible; among those: a
// host neither ejected nor tried by this request, then one not ejected, then (only when outlier
// detection has every such host out) an untried one, then any. nullopt: no host is up. Every
// policy selects through it.
template <typename Pick>
[[nodiscard]] std::optional<std::size_t> pickPreferring(const PickContext& ctx, Pick&& pick) {
  const bool checked = ctx.health != nullptr && !ctx.panic;
  if (ctx.tried.empty() && ctx.ejection == nullptr && !checked) {
    return pick([](std::size_t) { return true; });
  }
  const auto up = [&](std::size_t i) { return !checked || ctx.health->healthy(i); };
  const auto untried = [&](std::size_t i) {
    return up(i) && std::find(ctx.tried.begin(), ctx.tried.end(), i) == ctx.tried.end();
  };
  const auto in = [&](std::size_t i) {
    return up(i) && (ctx.ejection == nullptr || !ctx.ejection->ejected(i, ctx.now));
  };
  if (auto h = pick([&](std::size_t i) { return untried(i) && in(i); })) return h;
  if (auto h = pick(in)) return h;
  if (auto h = pick(untried)) return h;
  return pick(up);
}

}  // namespace sluice::gateway::upstream
