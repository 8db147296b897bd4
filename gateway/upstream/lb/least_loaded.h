// Load-aware policies over this worker's view of each host (requests it has in flight there,
// and for peak_ewma a latency estimate fed by its own responses):
//
//   least_request      power of two choices (resilience::PowerOfTwoChoices): two hosts drawn
//                      by weight, the one with fewer requests in flight per unit of weight wins
//   least_connections  the host with the fewest in flight per unit of weight over all eligible
//                      hosts (resilience::LeastConnections; ties broken at random). With
//                      HTTP/1.1 one request in flight is one busy connection.
//   peak_ewma          power of two choices on cost = peak-EWMA latency x (in flight + 1)
//                      (resilience::PeakEwma; Finagle's and linkerd's formula): a host that
//                      slows down loses traffic within a few responses.
//
// Each worker balances its own share of the traffic on its own counts, as Envoy's workers do:
// no shared cache line on the request path. A failed attempt feeds no latency sample (a fast
// failure must not make a host look fast; outlier detection handles failing hosts).
#pragma once

#include <cstdint>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/upstream/load_balancer.h"
#include "resilience/lb/least_connections.h"
#include "resilience/lb/peak_ewma.h"
#include "resilience/lb/power_of_two_choices.h"

namespace sluice::gateway::upstream {

class LeastLoaded final : public LoadBalancer {
 public:
  LeastLoaded(config::LbPolicy policy, const std::vector<std::uint32_t>& weights,
              config::Millis ewma_decay, std::chrono::steady_clock::time_point now);

  [[nodiscard]] std::optional<std::size_t> pick(const PickContext& ctx) override;
  void onStart(std::size_t host) override { ++in_flight_[host]; }
  void onResult(std::size_t host, const AttemptResult& result) override;
  void resetHost(std::size_t host, std::chrono::steady_clock::time_point now) override {
    if (!ewma_.empty()) ewma_[host] = resilience::PeakEwma(settings_, now);
  }
  void setWeight(std::size_t host, std::uint32_t weight) override {
    p2c_.setWeight(host, weight);
    least_.setWeight(host, weight);
  }

  [[nodiscard]] std::uint32_t inFlight(std::size_t host) const { return in_flight_[host]; }

 private:
  config::LbPolicy policy_;
  resilience::PowerOfTwoChoices p2c_;
  resilience::LeastConnections least_;
  std::vector<std::uint32_t> in_flight_;
  resilience::PeakEwma::Settings settings_;
  std::vector<resilience::PeakEwma> ewma_;  // peak_ewma only
};

}  // namespace sluice::gateway::upstream
