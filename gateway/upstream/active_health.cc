#include "gateway/upstream/active_health.h"

namespace sluice::gateway::upstream {

ActiveHealth::ActiveHealth(std::size_t hosts, std::uint32_t healthy_threshold,
                           std::uint32_t unhealthy_threshold)
    : hosts_(hosts),
      healthy_threshold_(healthy_threshold == 0 ? 1 : healthy_threshold),
      unhealthy_threshold_(unhealthy_threshold == 0 ? 1 : unhealthy_threshold),
      healthy_(std::make_unique<std::atomic<bool>[]>(hosts)),
      healthy_since_(std::make_unique<std::atomic<std::int64_t>[]>(hosts)),
      healthy_count_(hosts),
      occupied_(hosts),
      status_(std::make_unique<HostStatus[]>(hosts)) {
  for (std::size_t h = 0; h < hosts; ++h) {
    healthy_[h].store(true, std::memory_order_relaxed);
    healthy_since_[h].store(0, std::memory_order_relaxed);
  }
}

void ActiveHealth::occupy(std::size_t host) {
  vacate(host);
  status_[host] = HostStatus{};
  occupied_.fetch_add(1, std::memory_order_relaxed);
  healthy_count_.fetch_add(1, std::memory_order_relaxed);
  healthy_[host].store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
}

void ActiveHealth::vacate(std::size_t host) {
  HostStatus& s = status_[host];
  if (s.vacant) return;
  if (s.healthy) healthy_count_.fetch_sub(1, std::memory_order_relaxed);
  occupied_.fetch_sub(1, std::memory_order_relaxed);
  healthy_[host].store(false, std::memory_order_relaxed);
  s = HostStatus{};
  s.healthy = false;
  s.vacant = true;
  generation_.fetch_add(1, std::memory_order_release);
}

bool ActiveHealth::record(std::size_t host, Result result, TimePoint now) {
  HostStatus& s = status_[host];
  if (s.vacant) return false;
  const bool success = result == Result::Success;
  const bool first = !s.checked;
  s.checked = true;
  s.last_result = result;
  s.last_check = now;
  ++s.results[static_cast<std::size_t>(result)];
  if (success) {
    ++s.consecutive_successes;
    s.consecutive_failures = 0;
  } else {
    ++s.consecutive_failures;
    s.consecutive_successes = 0;
  }
  bool change = false;
  if (s.healthy && !success) {
    change = first || s.consecutive_failures >= unhealthy_threshold_;
  } else if (!s.healthy && success) {
    change = s.consecutive_successes >= healthy_threshold_;
  }
  if (!change) return false;
  s.healthy = !s.healthy;
  if (s.healthy) {
    ++s.became_healthy;
    healthy_since_[host].store(now.time_since_epoch().count(), std::memory_order_relaxed);
    healthy_count_.fetch_add(1, std::memory_order_relaxed);
  } else {
    ++s.became_unhealthy;
    healthy_count_.fetch_sub(1, std::memory_order_relaxed);
  }
  healthy_[host].store(s.healthy, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);  // publishes healthy_since_ with it
  return true;
}

}  // namespace sluice::gateway::upstream
