// A progressive canary as the server runs it (docs/traffic-management.md, "Progressive canary").
//
// A route with `canary` splits between a baseline (the split's first side) and a canary (its
// second). This object runs the rollout (resilience/canary_rollout.h) on the main thread: every
// tick it reads both sides' counters - requests, 5xx and the latency histogram of the (route,
// cluster) pairs, summed over workers - feeds them to the rollout, and publishes the canary's
// share, which workers read when they pick a side (RoutePlan::pick). Every decision is logged
// with its numbers and kept in the history the admin API shows; operators pause, resume,
// promote, abort and restart through it.
//
// The state registry keeps it across a reload that leaves its definition unchanged (the
// route's canary settings and the two clusters): the rollout goes on where it was. Any change
// starts a new one at step 0.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json_fwd.hpp>

#include "gateway/config/config.h"
#include "gateway/stats/shards.h"
#include "resilience/canary_rollout.h"

namespace sluice::gateway::server {

class RouteCanary : public std::enable_shared_from_this<RouteCanary> {
 public:
  // `route` (of `config`) has a canary and a two-sided split; `baseline` / `canary`: its sides'
  // counters. Made with std::make_shared (its timer holds it weakly).
  RouteCanary(boost::asio::io_context& io, const config::Config& config, const config::Route& route,
              std::shared_ptr<const stats::RouteCounters> baseline,
              std::shared_ptr<const stats::RouteCounters> canary);
  RouteCanary(const RouteCanary&) = delete;
  RouteCanary& operator=(const RouteCanary&) = delete;

  // Whether `route` of `config` asks for this very rollout, so that a reload keeps it: the same
  // canary settings, the same two clusters with the same endpoints and discovery (new
  // endpoints are a new build to judge from the start).
  [[nodiscard]] bool runs(const config::Config& config, const config::Route& route) const;
  // The operator calls act() takes.
  [[nodiscard]] static bool isAction(std::string_view action);

  void start();  // ticks from now on
  void stop();

  // Any thread: the canary's share of the route's requests, in millionths (RoutePlan holds it).
  [[nodiscard]] const std::atomic<std::uint32_t>& share() const noexcept { return share_; }
  [[nodiscard]] std::uint32_t shareMillionths() const noexcept {
    return share_.load(std::memory_order_relaxed);
  }
  static constexpr std::uint32_t kWhole = 1'000'000;

  // Operator calls: pause, resume, promote, abort, restart. An error message when `action` is
  // unknown or does not apply now.
  std::optional<std::string> act(std::string_view action);

  [[nodiscard]] const resilience::CanaryRollout& rollout() const noexcept { return rollout_; }
  [[nodiscard]] const std::string& route() const noexcept { return route_; }
  [[nodiscard]] const std::string& baselineCluster() const noexcept { return baseline_name_; }
  [[nodiscard]] const std::string& canaryCluster() const noexcept { return canary_name_; }
  // State, settings, the latest analysis and the history (admin API).
  [[nodiscard]] nlohmann::json toJson() const;

  // Reads both sides now and lets the rollout decide (the timer's work; tests call it).
  void tick();

 private:
  void applied(const resilience::CanaryRollout::Decision& d);
  void schedule();

  boost::asio::steady_timer timer_;
  std::string route_;
  config::Canary definition_;
  std::string baseline_name_;
  std::string canary_name_;
  // What runs() compares of each side's cluster.
  std::vector<config::Endpoint> baseline_endpoints_;
  std::vector<config::Endpoint> canary_endpoints_;
  std::optional<config::Discovery> baseline_discovery_;
  std::optional<config::Discovery> canary_discovery_;
  std::shared_ptr<const stats::RouteCounters> baseline_;
  std::shared_ptr<const stats::RouteCounters> canary_;
  resilience::CanaryRollout rollout_;
  std::atomic<std::uint32_t> share_{0};
  bool running_ = false;
};

}  // namespace sluice::gateway::server
