#include "gateway/upstream/outlier_ejection.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "gateway/config/outlier_config.h"
#include "gateway/log/log_throttle.h"
#include "gateway/stats/prometheus.h"

namespace sluice::gateway::upstream {

using Detector = resilience::OutlierDetector;

OutlierEjection::OutlierEjection(const config::OutlierDetection& config, std::size_t hosts,
                                 TimePoint now, std::string cluster)
    : detector_(config::outlierSettings(config), now),
      count_(hosts),
      hosts_(std::make_unique<std::atomic<Detector::HostId>[]>(hosts)),
      occupants_(std::make_unique<std::atomic<std::uint64_t>[]>(hosts)),
      until_(std::make_unique<std::atomic<std::int64_t>[]>(hosts)),
      cluster_(std::move(cluster)),
      addresses_(hosts) {
  for (std::size_t i = 0; i < hosts; ++i) {
    hosts_[i].store(detector_.addHost(), std::memory_order_relaxed);
    occupants_[i].store(0, std::memory_order_relaxed);  // set by reset() for every slot
    until_[i].store(0, std::memory_order_relaxed);
  }
}

void OutlierEjection::reconfigure(const config::OutlierDetection& config, TimePoint now) {
  detector_.reconfigure(config::outlierSettings(config), now);
}

void OutlierEjection::reset(std::size_t host, std::uint64_t occupant, std::string_view address) {
  const std::lock_guard lock(mirror_mutex_);
  addresses_[host].assign(address);
  // The occupant first: a worker that sees the new id (acquire) sees the new occupant too, and
  // drops a result picked for the old one. One that still holds the old id reports to a host
  // the detector forgets now.
  occupants_[host].store(occupant, std::memory_order_relaxed);
  const Detector::HostId id = occupant != 0 ? detector_.addHost() : 0;
  const auto old = hosts_[host].exchange(id, std::memory_order_acq_rel);
  if (old != 0) detector_.removeHost(old);
  until_[host].store(0, std::memory_order_relaxed);
}

void OutlierEjection::mirror(std::size_t host, TimePoint now) {
  const std::lock_guard lock(mirror_mutex_);
  const auto s = detector_.hostStatus(hosts_[host].load(std::memory_order_relaxed), now);
  const std::int64_t until =
      s && s->ejected ? s->ejected_until.time_since_epoch().count() : std::int64_t{0};
  until_[host].store(until, std::memory_order_relaxed);
}

void OutlierEjection::record(std::size_t host, std::uint64_t occupant, int status, TimePoint now) {
  const auto id = hosts_[host].load(std::memory_order_acquire);
  if (id == 0 || occupants_[host].load(std::memory_order_relaxed) != occupant) return;
  const Detector::Outcome outcome =
      status == 0 ? Detector::Outcome::GatewayFailure : Detector::classifyHttpStatus(status);
  if (const auto reason = detector_.record(id, outcome, now)) {
    ejections_[static_cast<std::size_t>(*reason)].fetch_add(1, std::memory_order_relaxed);
    mirror(host, now);
    const auto s = detector_.hostStatus(id, now);
    logEjection(host, static_cast<std::size_t>(*reason), s ? s->ejected_until : now, now);
  }
}

void OutlierEjection::logEjection(std::size_t host, std::size_t reason, TimePoint until,
                                  TimePoint now) {
  thread_local gateway::log::LogThrottle throttle(5, std::chrono::seconds(1));
  std::uint64_t held_back = 0;
  if (!throttle.allow(cluster_, now, held_back)) return;
  std::string address;
  {
    const std::lock_guard lock(mirror_mutex_);
    address = addresses_[host];
  }
  spdlog::warn("outlier detection: {} {} ejected for {} ms ({}){}", cluster_,
               address.empty() ? "slot " + std::to_string(host) : address,
               std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count(),
               stats::kEjectionReasons[reason],
               held_back > 0 ? fmt::format(" ({} more since)", held_back) : std::string());
}

void OutlierEjection::evaluate(TimePoint now) {
  if (now < detector_.nextEvaluation()) return;
  for (const auto& e : detector_.evaluate(now)) {
    ejections_[static_cast<std::size_t>(e.reason)].fetch_add(1, std::memory_order_relaxed);
    for (std::size_t i = 0; i < count_; ++i) {
      if (hosts_[i].load(std::memory_order_relaxed) == e.host) {
        logEjection(i, static_cast<std::size_t>(e.reason), e.until, now);
      }
    }
  }
  // Readmissions need no mirroring (the stored time passes), but a sweep may eject anyone.
  for (std::size_t i = 0; i < count_; ++i) mirror(i, now);
}

}  // namespace sluice::gateway::upstream
