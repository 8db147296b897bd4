// Weighted round robin (nginx's smooth variant, resilience::SmoothWeightedRoundRobin): with
// weights 5,1,1 the order is a a b a c a a. Ejected hosts (outlier detection) and hosts already
// tried by the request are skipped while others are left.
#pragma once

#include <cstdint>
#include <vector>

#include "gateway/upstream/load_balancer.h"
#include "resilience/lb/smooth_weighted_round_robin.h"

namespace sluice::gateway::upstream {

class RoundRobin final : public LoadBalancer {
 public:
  explicit RoundRobin(std::vector<std::uint32_t> weights) : rr_(std::move(weights)) {}

  [[nodiscard]] std::optional<std::size_t> pick(const PickContext& ctx) override;
  void setWeight(std::size_t host, std::uint32_t weight) override { rr_.setWeight(host, weight); }

 private:
  resilience::SmoothWeightedRoundRobin rr_;
};

}  // namespace sluice::gateway::upstream
