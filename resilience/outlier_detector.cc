#include "resilience/outlier_detector.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include "resilience/deadline.h"

namespace sluice::resilience {
namespace {

// Smallest m with base * m >= max: beyond it the ejection time is capped anyway, and a larger m
// would only make the host wait longer for forgiveness.
std::uint32_t maxMultiplier(Duration base, Duration max) {
  if (base <= Duration::zero() || max <= base) {
    return 1;
  }
  const auto q = static_cast<std::uint64_t>(max / base) + (max % base != Duration::zero() ? 1 : 0);
  return static_cast<std::uint32_t>(
      std::min<std::uint64_t>(q, std::numeric_limits<std::uint32_t>::max()));
}

TimePoint later(TimePoint now, Duration d) { return Deadline::after(now, d).timePoint(); }

}  // namespace

std::optional<std::string> OutlierDetector::validate(const Settings& settings) {
  if (settings.interval <= Duration::zero()) {
    return "interval must be positive";
  }
  if (settings.base_ejection_time <= Duration::zero()) {
    return "base_ejection_time must be positive";
  }
  if (settings.max_ejection_time < settings.base_ejection_time) {
    return "max_ejection_time must be at least base_ejection_time";
  }
  if (!(settings.max_ejection_percent >= 0.0 && settings.max_ejection_percent <= 100.0)) {
    return "max_ejection_percent must be in [0, 100]";
  }
  if (settings.failure_percentage_threshold && !(*settings.failure_percentage_threshold > 0.0 &&
                                                 *settings.failure_percentage_threshold <= 100.0)) {
    return "failure_percentage_threshold must be in (0, 100]";
  }
  return std::nullopt;
}

OutlierDetector::Outcome OutlierDetector::classifyHttpStatus(int status) noexcept {
  if (status == 502 || status == 503 || status == 504) {
    return Outcome::GatewayFailure;
  }
  if (status >= 500 && status <= 599) {
    return Outcome::ServerError;
  }
  return Outcome::Success;
}

OutlierDetector::OutlierDetector(const Settings& settings, TimePoint now)
    : settings_(settings),
      max_multiplier_(maxMultiplier(settings.base_ejection_time, settings.max_ejection_time)),
      next_sweep_(later(now, settings.interval)) {}

OutlierDetector::HostId OutlierDetector::addHost() {
  const std::lock_guard lock(mutex_);
  const HostId id = next_id_++;
  hosts_.emplace(id, Host{});
  return id;
}

bool OutlierDetector::removeHost(HostId host) {
  const std::lock_guard lock(mutex_);
  const auto it = hosts_.find(host);
  if (it == hosts_.end()) {
    return false;
  }
  if (it->second.ejected) {
    --ejected_;
  }
  hosts_.erase(it);
  return true;
}

void OutlierDetector::readmitDueLocked(TimePoint now) {
  for (auto& [id, h] : hosts_) {
    if (h.ejected && now >= h.ejected_until) {
      h.ejected = false;
      h.readmitted_at = h.ejected_until;  // when it was due, not when we noticed
      h.consecutive_5xx = 0;
      h.consecutive_gateway = 0;
      --ejected_;
    }
  }
}

bool OutlierDetector::capAllowsLocked() const {
  if (settings_.always_eject_one_host && ejected_ == 0) {
    return true;
  }
  // Integer-valued on the left, so the comparison is exact for integral percentages.
  return static_cast<double>(ejected_ + 1) * 100.0 <=
         settings_.max_ejection_percent * static_cast<double>(hosts_.size());
}

std::optional<TimePoint> OutlierDetector::tryEjectLocked(Host& host, TimePoint now) {
  if (host.ejected || !capAllowsLocked()) {
    return std::nullopt;
  }
  host.multiplier = std::min(host.multiplier + 1, max_multiplier_);
  const Duration base = settings_.base_ejection_time;
  // base * m, saturating, then capped.
  const Duration grown = host.multiplier > Duration::max() / base
                             ? Duration::max()
                             : base * static_cast<Duration::rep>(host.multiplier);
  host.ejected = true;
  host.ejected_until = later(now, std::min(grown, settings_.max_ejection_time));
  host.times_ejected += 1;
  host.consecutive_5xx = 0;
  host.consecutive_gateway = 0;
  ++ejected_;
  return host.ejected_until;
}

std::optional<OutlierDetector::Reason> OutlierDetector::record(HostId host, Outcome outcome,
                                                               TimePoint now) {
  const std::lock_guard lock(mutex_);
  const auto it = hosts_.find(host);
  if (it == hosts_.end()) {
    return std::nullopt;
  }
  Host& h = it->second;
  if (h.ejected) {
    if (now < h.ejected_until) {
      return std::nullopt;
    }
    readmitDueLocked(now);
  }
  h.interval_requests += 1;
  switch (outcome) {
    case Outcome::Success:
      h.consecutive_5xx = 0;
      h.consecutive_gateway = 0;
      break;
    case Outcome::ServerError:
      h.interval_failures += 1;
      h.consecutive_5xx += 1;
      h.consecutive_gateway = 0;
      break;
    case Outcome::GatewayFailure:
      h.interval_failures += 1;
      h.consecutive_5xx += 1;
      h.consecutive_gateway += 1;
      break;
  }
  // A detection resets its run whether or not the cap lets the ejection happen, so that a capped
  // host needs a fresh run before it is considered again.
  const std::uint32_t gateway_limit = settings_.consecutive_gateway_failure;
  const std::uint32_t limit = settings_.consecutive_5xx;
  const bool gateway_due = gateway_limit > 0 && h.consecutive_gateway >= gateway_limit;
  const bool server_due = limit > 0 && h.consecutive_5xx >= limit;
  if (gateway_due || server_due) {
    readmitDueLocked(now);  // the cap needs an exact count
  }
  if (gateway_due) {
    h.consecutive_gateway = 0;
    if (tryEjectLocked(h, now)) {
      return Reason::ConsecutiveGatewayFailure;
    }
  }
  if (server_due) {
    h.consecutive_5xx = 0;
    if (tryEjectLocked(h, now)) {
      return Reason::Consecutive5xx;
    }
  }
  return std::nullopt;
}

bool OutlierDetector::isEjected(HostId host, TimePoint now) const {
  const std::lock_guard lock(mutex_);
  const auto it = hosts_.find(host);
  return it != hosts_.end() && ejectedAt(it->second, now);
}

std::vector<OutlierDetector::Ejection> OutlierDetector::evaluate(TimePoint now) {
  const std::lock_guard lock(mutex_);
  std::vector<Ejection> ejections;
  if (now < next_sweep_) {
    return ejections;
  }
  readmitDueLocked(now);

  if (settings_.failure_percentage_threshold) {
    const double threshold = *settings_.failure_percentage_threshold;
    struct Candidate {
      HostId id;
      Host* host;
    };
    std::vector<Candidate> candidates;
    for (auto& [id, h] : hosts_) {
      if (!h.ejected && h.interval_requests >= settings_.failure_percentage_request_volume &&
          h.interval_requests > 0) {
        candidates.push_back({id, &h});
      }
    }
    if (!candidates.empty() && candidates.size() >= settings_.failure_percentage_minimum_hosts) {
      // Worst first (then by id, for determinism), so that when the cap binds it ejects the
      // hosts that fail most.
      std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
        // Compare failures_a / requests_a > failures_b / requests_b without division.
        const double lhs = static_cast<double>(a.host->interval_failures) *
                           static_cast<double>(b.host->interval_requests);
        const double rhs = static_cast<double>(b.host->interval_failures) *
                           static_cast<double>(a.host->interval_requests);
        return std::tie(rhs, a.id) < std::tie(lhs, b.id);
      });
      for (const Candidate& c : candidates) {
        const auto failures = static_cast<double>(c.host->interval_failures);
        const auto requests = static_cast<double>(c.host->interval_requests);
        if (failures * 100.0 >= threshold * requests) {
          if (auto until = tryEjectLocked(*c.host, now)) {
            ejections.push_back({c.id, Reason::FailurePercentage, *until});
          }
        }
      }
    }
  }

  for (auto& [id, h] : hosts_) {
    if (!h.ejected && h.multiplier > 0 && now >= later(h.readmitted_at, settings_.interval)) {
      h.multiplier -= 1;
    }
    h.interval_requests = 0;
    h.interval_failures = 0;
  }
  next_sweep_ = later(now, settings_.interval);
  return ejections;
}

std::optional<OutlierDetector::HostStatus> OutlierDetector::hostStatus(HostId host,
                                                                       TimePoint now) const {
  const std::lock_guard lock(mutex_);
  const auto it = hosts_.find(host);
  if (it == hosts_.end()) {
    return std::nullopt;
  }
  const Host& h = it->second;
  HostStatus s;
  s.ejected = ejectedAt(h, now);
  s.ejected_until = h.ejected_until;
  s.multiplier = h.multiplier;
  s.times_ejected = h.times_ejected;
  s.consecutive_5xx = h.consecutive_5xx;
  s.consecutive_gateway_failures = h.consecutive_gateway;
  s.interval_requests = h.interval_requests;
  s.interval_failures = h.interval_failures;
  return s;
}

std::size_t OutlierDetector::hostCount() const {
  const std::lock_guard lock(mutex_);
  return hosts_.size();
}

std::size_t OutlierDetector::ejectedCount(TimePoint now) const {
  const std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(
      std::count_if(hosts_.begin(), hosts_.end(),
                    [&](const auto& entry) { return ejectedAt(entry.second, now); }));
}

TimePoint OutlierDetector::nextEvaluation() const {
  const std::lock_guard lock(mutex_);
  return next_sweep_;
}

void OutlierDetector::reconfigure(const Settings& settings, TimePoint now) {
  const std::lock_guard lock(mutex_);
  settings_ = settings;
  max_multiplier_ = maxMultiplier(settings.base_ejection_time, settings.max_ejection_time);
  // A multiplier above the new cap would only delay forgiveness: the ejection time is capped.
  for (auto& [id, h] : hosts_) {
    h.multiplier = std::min(h.multiplier, max_multiplier_);
  }
  // A shorter interval must not wait out the rest of a long one; a longer one lets the sweep
  // already due keep its time (its counts cover the interval so far either way).
  next_sweep_ = std::min(next_sweep_, later(now, settings.interval));
}

OutlierDetector::Settings OutlierDetector::settings() const {
  const std::lock_guard lock(mutex_);
  return settings_;
}

const char* toString(OutlierDetector::Reason reason) noexcept {
  switch (reason) {
    case OutlierDetector::Reason::Consecutive5xx:
      return "consecutive_5xx";
    case OutlierDetector::Reason::ConsecutiveGatewayFailure:
      return "consecutive_gateway_failure";
    case OutlierDetector::Reason::FailurePercentage:
      return "failure_percentage";
  }
  return "unknown";
}

}  // namespace sluice::resilience
