#include "gateway/upstream/outlier_ejection.h"

#include <algorithm>

#include "gateway/config/outlier_config.h"

namespace sluice::gateway::upstream {

using Detector = resilience::OutlierDetector;

OutlierEjection::OutlierEjection(const config::OutlierDetection& config, std::size_t hosts,
                                 TimePoint now)
    : detector_(config::outlierSettings(config), now),
      count_(hosts),
      hosts_(std::make_unique<std::atomic<Detector::HostId>[]>(hosts)),
      until_(std::make_unique<std::atomic<std::int64_t>[]>(hosts)) {
  for (std::size_t i = 0; i < hosts; ++i) {
    hosts_[i].store(detector_.addHost(), std::memory_order_relaxed);
    until_[i].store(0, std::memory_order_relaxed);
  }
}

void OutlierEjection::reset(std::size_t host) {
  // A worker still reporting under the old id reports to nobody (the detector ignores it).
  const auto old = hosts_[host].exchange(detector_.addHost(), std::memory_order_relaxed);
  detector_.removeHost(old);
  until_[host].store(0, std::memory_order_relaxed);
}

void OutlierEjection::mirror(std::size_t host, TimePoint now) {
  const auto s = detector_.hostStatus(hosts_[host].load(std::memory_order_relaxed), now);
  const std::int64_t until =
      s && s->ejected ? s->ejected_until.time_since_epoch().count() : std::int64_t{0};
  until_[host].store(until, std::memory_order_relaxed);
}

void OutlierEjection::record(std::size_t host, int status, TimePoint now) {
  const Detector::Outcome outcome =
      status == 0 ? Detector::Outcome::GatewayFailure : Detector::classifyHttpStatus(status);
  if (const auto reason =
          detector_.record(hosts_[host].load(std::memory_order_relaxed), outcome, now)) {
    ejections_[static_cast<std::size_t>(*reason)].fetch_add(1, std::memory_order_relaxed);
    mirror(host, now);
  }
}

void OutlierEjection::evaluate(TimePoint now) {
  if (now < detector_.nextEvaluation()) return;
  for (const auto& e : detector_.evaluate(now)) {
    ejections_[static_cast<std::size_t>(e.reason)].fetch_add(1, std::memory_order_relaxed);
  }
  // Readmissions need no mirroring (the stored time passes), but a sweep may eject anyone.
  for (std::size_t i = 0; i < count_; ++i) mirror(i, now);
}

}  // namespace sluice::gateway::upstream
