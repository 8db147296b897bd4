// OutlierEjection: a cluster's passive health, shared by every worker.
//
// Wraps resilience::OutlierDetector (one per cluster): the forwarding loop reports each try's
// outcome (the status, or a connection failure/timeout), and hosts that fail more than their
// peers are ejected for a while. Host selection asks ejected(host, now) on every pick, so that
// answer is lock-free: each host's readmission time is mirrored in an atomic, refreshed whenever
// a report or a sweep changes it. Reports take the detector's mutex (a few tens of ns; only
// clusters with outlier_detection configured pay it). The interval sweep (failure percentage,
// multiplier decay) runs from the workers' once-a-second housekeeping.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/config.h"
#include "resilience/outlier_detector.h"

namespace sluice::gateway::upstream {

class OutlierEjection {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  static constexpr std::size_t kReasons = 3;  // resilience::OutlierDetector::Reason values

  // `cluster` names the cluster in the log line of each ejection.
  OutlierEjection(const config::OutlierDetection& config, std::size_t hosts, TimePoint now,
                  std::string cluster = {});

  [[nodiscard]] bool ejected(std::size_t host, TimePoint now) const noexcept {
    return now.time_since_epoch().count() < until_[host].load(std::memory_order_relaxed);
  }

  // One try's outcome: the response status, or 0 for a connection failure, reset or timeout.
  // `occupant` is the slot's host when the try was picked (HostSet::Host::occupant): a late
  // result of a host that has left is not held against its successor.
  void record(std::size_t host, std::uint64_t occupant, int status, TimePoint now);
  // New thresholds and ejection times (a reload), keeping every host's state: ejections in
  // progress keep their end. Any thread.
  void reconfigure(const config::OutlierDetection& config, TimePoint now);
  // The interval sweep, when due.
  void evaluate(TimePoint now);
  // The slot got another host (`address`, for the log), or none (occupant 0): forget the last
  // one. Main thread. An empty slot has no place in the detector, so max_ejection_percent
  // counts real hosts only.
  void reset(std::size_t host, std::uint64_t occupant, std::string_view address = {});

  [[nodiscard]] std::size_t hosts() const noexcept { return count_; }
  [[nodiscard]] std::uint64_t ejections(std::size_t reason) const noexcept {
    return ejections_[reason].load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::optional<resilience::OutlierDetector::HostStatus> status(std::size_t host,
                                                                              TimePoint now) const {
    return detector_.hostStatus(hosts_[host].load(std::memory_order_relaxed), now);
  }

 private:
  void mirror(std::size_t host, TimePoint now);
  // An ejection is a decision an operator must see: logged at warn, throttled per thread and
  // cluster (logFailure's rule), with the reason and how long the host stays out.
  void logEjection(std::size_t host, std::size_t reason, TimePoint until, TimePoint now);

  resilience::OutlierDetector detector_;
  std::size_t count_;
  // Slot -> detector id (0: empty slot) and the host it belongs to; replaced (main thread) when
  // the slot changes hands, read by workers.
  std::unique_ptr<std::atomic<resilience::OutlierDetector::HostId>[]> hosts_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> occupants_;
  // Serialises writes of until_ (a worker's mirror() against reset()), off the pick path.
  std::mutex mirror_mutex_;
  std::unique_ptr<std::atomic<std::int64_t>[]> until_;  // ns since the clock's epoch
  std::string cluster_;
  std::vector<std::string> addresses_;  // [slot], for the log; guarded by mirror_mutex_
  std::array<std::atomic<std::uint64_t>, kReasons> ejections_{};
};

}  // namespace sluice::gateway::upstream
