// Weighted random (resilience::WeightedRandom): each pick draws a host with probability
// weight / total weight among the eligible ones. No state between picks, so no coordination
// between workers is needed for the shares to hold.
#pragma once

#include <cstdint>
#include <vector>

#include "gateway/upstream/load_balancer.h"
#include "resilience/lb/weighted_random.h"

namespace sluice::gateway::upstream {

class RandomBalancer final : public LoadBalancer {
 public:
  explicit RandomBalancer(std::vector<std::uint32_t> weights) : random_(std::move(weights)) {}

  [[nodiscard]] std::optional<std::size_t> pick(const PickContext& ctx) override;
  void setWeight(std::size_t host, std::uint32_t weight) override {
    random_.setWeight(host, weight);
  }

 private:
  resilience::WeightedRandom random_;
};

}  // namespace sluice::gateway::upstream
