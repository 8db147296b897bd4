#include "gateway/upstream/lb/consistent_hash.h"

#include <xxhash.h>

namespace sluice::gateway::upstream {

std::uint64_t hash64(std::string_view data, std::uint64_t seed) {
  return XXH3_64bits_withSeed(data.data(), data.size(), seed);
}

ConsistentHash::ConsistentHash(const config::LoadBalancing& lb,
                               const std::vector<std::string>& identities,
                               const std::vector<std::uint32_t>& weights) {
  std::vector<resilience::WeightedHost> hosts;
  for (std::size_t i = 0; i < identities.size(); ++i) hosts.push_back({identities[i], weights[i]});
  const resilience::HostHasher hasher = [](std::string_view data, std::uint64_t seed) {
    return hash64(data, seed);
  };
  if (lb.policy == config::LbPolicy::Maglev) {
    maglev_ = resilience::Maglev::build(std::move(hosts), {lb.maglev_table_size}, hasher);
  } else {
    resilience::RingHash::Settings s;
    s.vnodes_per_weight_unit = lb.ring_vnodes;
    s.max_ring_size = lb.ring_max_size;
    ring_ = resilience::RingHash::build(std::move(hosts), s, hasher);
    if (lb.balance_factor) {
      bounded_.emplace(resilience::BoundedLoad::Settings{*lb.balance_factor});
      in_flight_.assign(identities.size(), 0);
    }
  }
}

std::optional<std::size_t> ConsistentHash::pick(const PickContext& ctx) {
  if (bounded_) {
    const auto load = [this](std::size_t i) { return in_flight_[i]; };
    return pickPreferring(
        ctx, [&](auto&& eligible) { return bounded_->pick(*ring_, ctx.hash, load, eligible); });
  }
  return pickPreferring(ctx, [&](auto&& eligible) {
    return maglev_ ? maglev_->pick(ctx.hash, eligible) : ring_->pick(ctx.hash, eligible);
  });
}

}  // namespace sluice::gateway::upstream
