#include "gateway/upstream/lb/round_robin.h"

#include <algorithm>

#include "gateway/upstream/outlier_ejection.h"

namespace sluice::gateway::upstream {

std::optional<std::size_t> RoundRobin::pick(const PickContext& ctx) {
  if (ctx.tried.empty() && ctx.ejection == nullptr) return rr_.pick();
  auto untried = [&](std::size_t i) {
    return std::find(ctx.tried.begin(), ctx.tried.end(), i) == ctx.tried.end();
  };
  auto healthy = [&](std::size_t i) {
    return ctx.ejection == nullptr || !ctx.ejection->ejected(i, ctx.now);
  };
  // Preference: a healthy host not tried yet, then any healthy host, then (every healthy host
  // is gone - the ejection cap makes this rare) a host not tried yet, then anyone.
  if (auto host = rr_.pick([&](std::size_t i) { return untried(i) && healthy(i); })) return host;
  if (auto host = rr_.pick(healthy)) return host;
  if (auto host = rr_.pick(untried)) return host;
  return rr_.pick();
}

}  // namespace sluice::gateway::upstream
