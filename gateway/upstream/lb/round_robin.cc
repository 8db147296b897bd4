#include "gateway/upstream/lb/round_robin.h"

namespace sluice::gateway::upstream {

std::optional<std::size_t> RoundRobin::pick(const PickContext& ctx) {
  return pickPreferring(ctx, [&](auto&& eligible) { return rr_.pick(eligible); });
}

}  // namespace sluice::gateway::upstream
