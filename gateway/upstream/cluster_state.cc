#include "gateway/upstream/cluster_state.h"

namespace sluice::gateway::upstream {

resilience::RetryBudget::Settings retryBudgetSettings(const config::RetryBudget& c) {
  resilience::RetryBudget::Settings s;
  s.retry_ratio = c.percent / 100.0;
  s.min_retries_per_second = c.min_per_second;
  s.window = c.window;
  s.bucket_count = 10;
  return s;
}

std::size_t ClusterState::slotsFor(const config::Cluster& config) {
  return config.endpoints.size() + (config.discovery ? config.discovery->max_hosts : 0);
}

ClusterState::ClusterState(const config::Cluster& config, std::size_t host_slots,
                           std::size_t workers, TimePoint now)
    : name_(config.name),
      slots_(host_slots),
      retry_budget_(retryBudgetSettings(config.retry_budget)),
      outliers_(config.outlier_detection
                    ? std::make_unique<OutlierEjection>(*config.outlier_detection, host_slots, now,
                                                        config.name)
                    : nullptr),
      bulkhead_(config.bulkhead ? std::make_unique<Bulkhead>(*config.bulkhead) : nullptr),
      health_(config.health_check ? std::make_shared<ActiveHealth>(
                                        host_slots, config.health_check->healthy_threshold,
                                        config.health_check->unhealthy_threshold)
                                  : nullptr),
      counters_(workers, host_slots) {}

bool ClusterState::fits(const config::Cluster& next) const {
  return next.name == name_ && slotsFor(next) <= slots_ &&
         next.outlier_detection.has_value() == (outliers_ != nullptr) &&
         next.bulkhead.has_value() == (bulkhead_ != nullptr) &&
         next.health_check.has_value() == (health_ != nullptr);
}

void ClusterState::reconfigure(const config::Cluster& next, TimePoint now) {
  retry_budget_.reconfigure(retryBudgetSettings(next.retry_budget), now);
  if (outliers_) outliers_->reconfigure(*next.outlier_detection, now);
  if (bulkhead_) bulkhead_->setCaps(*next.bulkhead);
  if (health_) {
    health_->setThresholds(next.health_check->healthy_threshold,
                           next.health_check->unhealthy_threshold);
  }
}

}  // namespace sluice::gateway::upstream
