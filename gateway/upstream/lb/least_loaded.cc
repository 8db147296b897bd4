#include "gateway/upstream/lb/least_loaded.h"

#include "gateway/common/random.h"

namespace sluice::gateway::upstream {

LeastLoaded::LeastLoaded(config::LbPolicy policy, const std::vector<std::uint32_t>& weights,
                         config::Millis ewma_decay, std::chrono::steady_clock::time_point now)
    : policy_(policy), p2c_(weights), least_(weights), in_flight_(weights.size(), 0) {
  if (policy_ == config::LbPolicy::PeakEwma) {
    settings_.decay_time = ewma_decay;
    ewma_.assign(weights.size(), resilience::PeakEwma(settings_, now));
  }
}

std::optional<std::size_t> LeastLoaded::pick(const PickContext& ctx) {
  const auto in_flight = [this](std::size_t i) { return in_flight_[i]; };
  switch (policy_) {
    case config::LbPolicy::LeastConnections:
      return pickPreferring(
          ctx, [&](auto&& eligible) { return least_.pick(randomU64(), in_flight, eligible); });
    case config::LbPolicy::PeakEwma: {
      const auto cost = [&](std::size_t i) {
        return ewma_[i].estimateNanos(ctx.now) * static_cast<double>(in_flight_[i] + 1);
      };
      return pickPreferring(
          ctx, [&](auto&& eligible) { return p2c_.pick(randomU64(), cost, eligible); });
    }
    default:
      return pickPreferring(
          ctx, [&](auto&& eligible) { return p2c_.pick(randomU64(), in_flight, eligible); });
  }
}

void LeastLoaded::onResult(std::size_t host, const AttemptResult& result) {
  if (in_flight_[host] > 0) --in_flight_[host];
  if (!ewma_.empty() && result.success) ewma_[host].observe(result.latency, result.finished);
}

}  // namespace sluice::gateway::upstream
