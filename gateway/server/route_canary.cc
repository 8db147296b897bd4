#include "gateway/server/route_canary.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "gateway/stats/histogram.h"

namespace sluice::gateway::server {

namespace {

using Clock = std::chrono::steady_clock;
using resilience::CanaryRollout;

CanaryRollout::Settings rolloutSettings(const config::Canary& c) {
  CanaryRollout::Settings s;
  for (const double p : c.steps) s.steps.push_back(p / 100);
  s.interval = c.interval;
  s.analysis.min_requests = c.min_requests;
  s.analysis.max_error_increase = c.max_error_increase / 100;
  s.analysis.max_latency_ratio = c.max_latency_ratio;
  s.analysis.min_latency_increase = std::chrono::duration<double>(c.min_latency_increase).count();
  s.analysis.confidence = c.confidence / 100;
  s.latency_bounds.assign(stats::LatencyHistogram::kBounds.begin(),
                          stats::LatencyHistogram::kBounds.end());
  return s;
}

// A side's counters, summed over workers: every request answered, its 5xx and latencies.
resilience::CanarySample canarySample(const stats::RouteCounters& counters) {
  resilience::CanarySample s;
  s.latency.assign(stats::LatencyHistogram::kBounds.size() + 1, 0);
  for (std::size_t w = 0; w < counters.shards.size(); ++w) {
    const stats::RouteStats& r = counters.shards[w].requests;
    for (std::size_t c = 0; c < stats::kStatusClasses.size(); ++c) {
      s.requests += r.by_class[c].value();
    }
    s.errors += r.by_class[stats::kStatusClasses.size() - 1].value();  // 5xx
    for (std::size_t b = 0; b < s.latency.size(); ++b) s.latency[b] += r.latency.bucket(b);
  }
  return s;
}

// Ticks often enough to roll back early in an interval, rarely enough to cost nothing.
Clock::duration tickEvery(config::Millis interval) {
  return std::clamp<Clock::duration>(interval / 10, std::chrono::milliseconds(50),
                                     std::chrono::seconds(1));
}

double canaryMs(double seconds) { return std::round(seconds * 1e5) / 100; }  // two decimals

nlohmann::json analysisJson(const resilience::CanaryAnalysis& a) {
  return {{"verdict", resilience::toString(a.verdict)},
          {"baseline_error_rate", a.baseline_error_rate},
          {"canary_error_rate", a.canary_error_rate},
          {"error_z", std::isfinite(a.error_z) ? a.error_z : 1e9},
          {"baseline_p99_ms", canaryMs(a.baseline_latency)},
          {"canary_p99_ms", canaryMs(a.canary_latency)},
          {"latency_threshold_ms", canaryMs(a.latency_threshold)},
          {"canary_slow_share", a.canary_slow_share},
          {"latency_z", std::isfinite(a.latency_z) ? a.latency_z : 1e9},
          {"critical_z", a.critical_z}};
}

}  // namespace

RouteCanary::RouteCanary(boost::asio::io_context& io, const config::Config& config,
                         const config::Route& route,
                         std::shared_ptr<const stats::RouteCounters> baseline,
                         std::shared_ptr<const stats::RouteCounters> canary)
    : timer_(io),
      route_(route.name),
      definition_(*route.canary),
      baseline_name_(route.split[0].cluster),
      canary_name_(route.split[1].cluster),
      baseline_(std::move(baseline)),
      canary_(std::move(canary)),
      rollout_(rolloutSettings(*route.canary), Clock::now()) {
  if (const auto* b = config.findCluster(baseline_name_)) {
    baseline_endpoints_ = b->endpoints;
    baseline_discovery_ = b->discovery;
  }
  if (const auto* c = config.findCluster(canary_name_)) {
    canary_endpoints_ = c->endpoints;
    canary_discovery_ = c->discovery;
  }
  applied(rollout_.history().back());
}

bool RouteCanary::runs(const config::Config& config, const config::Route& route) const {
  if (!route.canary || *route.canary != definition_ || route.split.size() != 2 ||
      route.split[0].cluster != baseline_name_ || route.split[1].cluster != canary_name_) {
    return false;
  }
  const auto* b = config.findCluster(baseline_name_);
  const auto* c = config.findCluster(canary_name_);
  return b != nullptr && c != nullptr && b->endpoints == baseline_endpoints_ &&
         b->discovery == baseline_discovery_ && c->endpoints == canary_endpoints_ &&
         c->discovery == canary_discovery_;
}

bool RouteCanary::isAction(std::string_view action) {
  return action == "pause" || action == "resume" || action == "promote" || action == "abort" ||
         action == "restart";
}

void RouteCanary::start() {
  if (running_) return;
  running_ = true;
  tick();  // the counters as of now open the first window
  schedule();
}

void RouteCanary::stop() {
  running_ = false;
  timer_.cancel();
}

void RouteCanary::schedule() {
  timer_.expires_after(tickEvery(definition_.interval));
  // Weakly: a reload may drop this canary while the tick is already queued (cancel() is too
  // late for a handler that has been posted).
  timer_.async_wait([self = weak_from_this()](const boost::system::error_code& ec) {
    const auto canary = self.lock();
    if (ec || !canary || !canary->running_) return;
    canary->tick();
    canary->schedule();
  });
}

void RouteCanary::tick() {
  if (auto d = rollout_.tick(canarySample(*baseline_), canarySample(*canary_), Clock::now())) {
    applied(*d);
  }
}

void RouteCanary::applied(const CanaryRollout::Decision& d) {
  share_.store(static_cast<std::uint32_t>(std::lround(d.share * kWhole)),
               std::memory_order_relaxed);
  const auto& a = d.analysis;
  const bool judged = a.verdict != resilience::CanaryAnalysis::Verdict::Insufficient;
  const auto level =
      d.action == CanaryRollout::Action::Rollback ? spdlog::level::warn : spdlog::level::info;
  if (judged) {
    spdlog::log(level,
                "canary route '{}' ({} -> {}): {}{} at step {}, {:.4g}% -> {:.4g}% ({}): baseline "
                "{} requests, {:.2f}% 5xx, p99 {:.2f} ms; canary {} requests, {:.2f}% 5xx, p99 "
                "{:.2f} canaryMs (error z {:.2f}, latency z {:.2f}, critical {:.2f})",
                route_, baseline_name_, canary_name_, resilience::toString(d.action),
                d.manual ? " (operator)" : "", d.step, d.share_before * 100, d.share * 100,
                resilience::toString(a.verdict), d.baseline_requests, a.baseline_error_rate * 100,
                a.baseline_latency * 1000, d.canary_requests, a.canary_error_rate * 100,
                a.canary_latency * 1000, a.error_z, a.latency_z, a.critical_z);
  } else {
    spdlog::log(level, "canary route '{}' ({} -> {}): {}{} at step {}, {:.4g}% -> {:.4g}%{}",
                route_, baseline_name_, canary_name_, resilience::toString(d.action),
                d.manual ? " (operator)" : "", d.step, d.share_before * 100, d.share * 100,
                d.action == CanaryRollout::Action::Hold
                    ? fmt::format(" (too little traffic: baseline {}, canary {} requests, {} "
                                  "needed on each side)",
                                  d.baseline_requests, d.canary_requests, definition_.min_requests)
                    : std::string());
  }
}

std::optional<std::string> RouteCanary::act(std::string_view action) {
  const auto now = Clock::now();
  std::optional<CanaryRollout::Decision> d;
  if (action == "pause") {
    d = rollout_.pause(now);
  } else if (action == "resume") {
    d = rollout_.resume(now);
  } else if (action == "promote") {
    d = rollout_.promote(now);
  } else if (action == "abort") {
    d = rollout_.abort(now);
  } else if (action == "restart") {
    d = rollout_.restart(now);
  } else {
    return "unknown action '" + std::string(action) +
           "' (use pause, resume, promote, abort or restart)";
  }
  if (!d) {
    return "cannot " + std::string(action) + " a canary that is " +
           std::string(resilience::toString(rollout_.state()));
  }
  applied(*d);
  return std::nullopt;
}

nlohmann::json RouteCanary::toJson() const {
  const auto now = Clock::now();
  const auto since = [&](Clock::time_point t) {
    return std::chrono::duration<double>(now - t).count();
  };
  nlohmann::json history = nlohmann::json::array();
  for (const auto& d : rollout_.history()) {
    nlohmann::json h = {{"seconds_ago", since(d.at)},
                        {"action", resilience::toString(d.action)},
                        {"operator", d.manual},
                        {"state", resilience::toString(d.state)},
                        {"step", d.step},
                        {"percent_before", d.share_before * 100},
                        {"percent", d.share * 100}};
    if (d.repeats > 1) h["repeats"] = d.repeats;
    if (d.analysis.verdict != resilience::CanaryAnalysis::Verdict::Insufficient ||
        d.action == CanaryRollout::Action::Hold) {
      h["baseline_requests"] = d.baseline_requests;
      h["canary_requests"] = d.canary_requests;
      h["analysis"] = analysisJson(d.analysis);
    }
    history.push_back(std::move(h));
  }
  return {{"route", route_},
          {"baseline", baseline_name_},
          {"canary", canary_name_},
          {"state", resilience::toString(rollout_.state())},
          {"step", rollout_.step()},
          {"steps", definition_.steps},
          {"percent", shareMillionths() / 10'000.0},
          {"interval_ms", definition_.interval.count()},
          {"step_seconds", since(rollout_.stepStarted())},
          {"min_requests", definition_.min_requests},
          {"latest", analysisJson(rollout_.latest())},
          {"history", std::move(history)}};
}

}  // namespace sluice::gateway::server
