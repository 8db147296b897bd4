#include "gateway/upstream/lb/round_robin.h"

#include <algorithm>

namespace sluice::gateway::upstream {

std::optional<std::size_t> RoundRobin::pick(const PickContext& ctx) {
  if (ctx.tried.empty()) return rr_.pick();
  auto untried = [&](std::size_t i) {
    return std::find(ctx.tried.begin(), ctx.tried.end(), i) == ctx.tried.end();
  };
  if (auto host = rr_.pick(untried)) return host;
  return rr_.pick();  // every host tried: a retry may still go to one of them
}

}  // namespace sluice::gateway::upstream
