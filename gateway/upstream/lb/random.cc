#include "gateway/upstream/lb/random.h"

#include "gateway/common/random.h"

namespace sluice::gateway::upstream {

std::optional<std::size_t> RandomBalancer::pick(const PickContext& ctx) {
  return pickPreferring(ctx, [&](auto&& eligible) { return random_.pick(randomU64(), eligible); });
}

}  // namespace sluice::gateway::upstream
