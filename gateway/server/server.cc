#include "gateway/server/server.h"

#include <algorithm>
#include <thread>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "gateway/admin/admin_server.h"
#include "gateway/config/config_json.h"
#include "gateway/guards/circuit_breaker_guard.h"
#include "gateway/log/access_log.h"
#include "gateway/server/discovery.h"
#include "gateway/server/snapshot.h"
#include "gateway/server/worker.h"
#include "gateway/stats/prometheus.h"
#include "gateway/upstream/health_checker.h"
#include "resilience/lb/panic_threshold.h"
#include "resilience/lb/slow_start.h"

namespace sluice::gateway::server {

namespace asio = boost::asio;

std::unique_ptr<Server> Server::create(config::Config config, std::string* error) {
  std::unique_ptr<Server> s(new Server());
  const std::uint32_t n =
      config.workers != 0 ? config.workers : std::max(1U, std::thread::hardware_concurrency());
  if (config.access_log.enabled) {
    s->access_log_ = log::AccessLog::open(config.access_log, error);
    if (!s->access_log_) return nullptr;
  }
  s->snapshot_ = Snapshot::build(std::move(config));
  const auto& clusters = s->snapshot_->config.clusters;
  for (std::size_t c = 0; c < clusters.size(); ++c) {
    s->publish_timers_.push_back(std::make_unique<asio::steady_timer>(s->io_));
    s->publish_pending_.push_back(false);
    s->last_publish_.emplace_back();
    auto& occupants = s->published_occupants_.emplace_back();
    for (const auto& h : s->snapshot_->host_sets[c]->slots()) occupants.push_back(h.occupant);
    s->health_checkers_.push_back(clusters[c].health_check
                                      ? std::make_unique<upstream::HealthChecker>(
                                            s->io_, clusters[c].name, *clusters[c].health_check,
                                            *s->snapshot_->host_sets[c], s->snapshot_->health[c])
                                      : nullptr);
  }
  {
    Server* self = s.get();
    auto discovery = std::make_unique<DiscoveryService>(
        s->io_, *s->snapshot_, [self](std::size_t c) { self->schedulePublish(c); });
    if (discovery->any()) s->discovery_ = std::move(discovery);
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    s->workers_.push_back(std::make_unique<Worker>(i, s->snapshot_, s->access_log_.get()));
    if (auto e = s->workers_.back()->listen()) {
      *error = *e;
      return nullptr;
    }
  }
  if (const auto& a = s->snapshot_->config.admin) {
    s->admin_ = std::make_unique<admin::AdminServer>(
        s->io_, asio::ip::tcp::endpoint(asio::ip::make_address(a->address.ip), a->address.port));
    if (auto e = s->admin_->listen()) {
      *error = *e;
      return nullptr;
    }
    Server* self = s.get();
    s->admin_->handle("/metrics", "Prometheus metrics", [self] {
      return admin::Response{200, "text/plain; version=0.0.4; charset=utf-8",
                             self->renderMetrics()};
    });
    s->admin_->handle("/ready", "200 while serving, 503 while draining", [self] {
      return self->draining_.load()
                 ? admin::Response{503, "text/plain; charset=utf-8", "draining\n"}
                 : admin::Response{200, "text/plain; charset=utf-8", "ready\n"};
    });
    s->admin_->handle("/live", "200 while the process runs", [] {
      return admin::Response{200, "text/plain; charset=utf-8", "live\n"};
    });
    s->admin_->handle("/config", "the active configuration as JSON", [self] {
      return admin::Response{200, "application/json",
                             config::toJson(self->snapshot_->config).dump(2) + "\n"};
    });
    s->admin_->handle(
        "/upstreams", "clusters and hosts: weight, health checks, outlier ejection, pools (JSON)",
        [self] {
          return admin::Response{200, "application/json", self->upstreamsJson().dump(2) + "\n"};
        });
    if (s->discovery_) {
      s->admin_->handleApi(
          "/registry",
          "registered hosts; PUT/DELETE /registry/<cluster>/<ip:port>, POST "
          ".../heartbeat (JSON)",
          [self](const admin::ApiRequest& r) { return self->discovery_->handle(r); });
    }
    s->admin_->handle("/breakers", "circuit breakers: state, rates and transitions (JSON)", [self] {
      return admin::Response{200, "application/json", self->breakersJson().dump(2) + "\n"};
    });
  }
  return s;
}

namespace {

bool inPanic(const config::Cluster& cluster, const upstream::ActiveHealth* health) {
  return health != nullptr && resilience::PanicThreshold({cluster.lb.panic_threshold})
                                  .inPanic(health->healthyCount(), health->occupied());
}

// In selection now: passing active checks (or the cluster in panic) and not ejected.
bool inSelection(const Snapshot& snap, std::size_t c, std::size_t h,
                 std::chrono::steady_clock::time_point now) {
  const auto* health = snap.health[c].get();
  const auto* outliers = snap.outliers[c].get();
  return (health == nullptr || health->healthy(h) || inPanic(snap.config.clusters[c], health)) &&
         (outliers == nullptr || !outliers->ejected(h, now));
}

nlohmann::json activeHealthJson(const upstream::ActiveHealth& health, std::size_t h,
                                std::chrono::steady_clock::time_point now) {
  const auto& s = health.status(h);
  nlohmann::json results = nlohmann::json::object();
  for (std::size_t k = 0; k < s.results.size(); ++k) {
    results[std::string(upstream::ActiveHealth::kResultNames[k])] = s.results[k];
  }
  nlohmann::json out = {
      {"healthy", s.healthy},
      {"last_result",
       s.checked
           ? nlohmann::json(
                 upstream::ActiveHealth::kResultNames[static_cast<std::size_t>(s.last_result)])
           : nlohmann::json(nullptr)},
      {"last_check_ms_ago",
       s.checked
           ? nlohmann::json(
                 std::chrono::duration_cast<std::chrono::milliseconds>(now - s.last_check).count())
           : nlohmann::json(nullptr)},
      {"consecutive_successes", s.consecutive_successes},
      {"consecutive_failures", s.consecutive_failures},
      {"results", std::move(results)}};
  return out;
}

// The slow-start factor every worker computes for the host: its ramp starts when it joined (a
// discovered host) or last came back from failing its health checks, whichever is later.
double slowStartFactor(const config::SlowStart& ss, const upstream::HostSet::Host& host,
                       const upstream::ActiveHealth* health, std::size_t h,
                       std::chrono::steady_clock::time_point now) {
  std::chrono::steady_clock::time_point since{};
  if (host.source != upstream::HostSet::Source::Static) since = host.added;
  if (health != nullptr) since = std::max(since, health->healthySince(h));
  resilience::SlowStart ramp({ss.window, ss.aggression, ss.min_weight_percent}, 1);
  if (since.time_since_epoch().count() != 0) ramp.start(0, since);
  return ramp.factor(0, now);
}

}  // namespace

Server::~Server() {
  for (auto& w : workers_) w->stop();
  for (auto& w : workers_) w->join();
}

nlohmann::json Server::upstreamsJson() const {
  const Snapshot& snap = *snapshot_;
  const auto now = std::chrono::steady_clock::now();
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t c = 0; c < snap.config.clusters.size(); ++c) {
    const auto& cl = snap.config.clusters[c];
    const auto* outliers = snap.outliers[c].get();
    const auto* health = snap.health[c].get();
    nlohmann::json hosts = nlohmann::json::array();
    const auto& slots = snap.host_sets[c]->slots();
    for (std::size_t h = 0; h < slots.size(); ++h) {
      const auto& slot = slots[h];
      if (slot.empty()) continue;
      // Pool numbers summed over the workers (each has its own pool per host).
      std::int64_t active = 0;
      std::int64_t idle = 0;
      std::int64_t pending = 0;
      std::uint64_t created = 0;
      std::uint64_t requests = 0;
      std::array<std::uint64_t, stats::kCloseReasonNames.size()> closed{};
      for (const auto& w : workers_) {
        const auto& hs = w->stats().hosts[c][h];
        active += hs.active.value();
        idle += hs.idle.value();
        pending += hs.pending.value();
        created += hs.connects.value();
        requests += hs.requests.value();
        for (std::size_t r = 0; r < closed.size(); ++r) closed[r] += hs.closed[r].value();
      }
      nlohmann::json closed_json = nlohmann::json::object();
      for (std::size_t r = 0; r < closed.size(); ++r) {
        closed_json[std::string(stats::kCloseReasonNames[r])] = closed[r];
      }
      nlohmann::json host = {{"address", slot.address},
                             {"weight", slot.weight},
                             {"source", upstream::HostSet::sourceName(slot.source)},
                             {"healthy", inSelection(snap, c, h, now)},
                             {"ejected", false},
                             {"requests", requests},
                             {"connections",
                              {{"active", active},
                               {"idle", idle},
                               {"pending", pending},
                               {"created", created},
                               {"closed", closed_json}}}};
      if (health != nullptr) host["active_health"] = activeHealthJson(*health, h, now);
      if (const auto& ss = cl.lb.slow_start) {
        host["slow_start_factor"] = slowStartFactor(*ss, slot, health, h, now);
      }
      if (!slot.metadata.empty()) host["metadata"] = slot.metadata;
      if (outliers != nullptr) {
        if (const auto s = outliers->status(h, now)) {
          host["ejected"] = s->ejected;
          host["ejected_for_ms"] =
              s->ejected
                  ? std::chrono::duration_cast<std::chrono::milliseconds>(s->ejected_until - now)
                        .count()
                  : 0;
          host["times_ejected"] = s->times_ejected;
          host["ejection_multiplier"] = s->multiplier;
        }
      }
      hosts.push_back(std::move(host));
    }
    out.push_back({{"cluster", cl.name},
                   {"outlier_detection", outliers != nullptr},
                   {"health_check", health != nullptr},
                   {"healthy_hosts",
                    health != nullptr ? health->healthyCount() : snap.host_sets[c]->occupied()},
                   {"panic", inPanic(cl, health)},
                   {"hosts", std::move(hosts)}});
  }
  return out;
}

nlohmann::json Server::breakersJson() const {
  // Each breaker once: a cluster's breaker is listed with its cluster and no route.
  const Snapshot& snap = *snapshot_;
  nlohmann::json out = nlohmann::json::array();
  std::vector<const guards::Guard*> seen;
  for (std::size_t r = 0; r < snap.route_guards.size(); ++r) {
    for (const auto& guard : snap.route_guards[r]) {
      const auto* b = dynamic_cast<const guards::CircuitBreakerGuard*>(guard.get());
      if (b == nullptr || std::find(seen.begin(), seen.end(), b) != seen.end()) continue;
      seen.push_back(b);
      const bool shared = b->name().starts_with("cluster_");
      nlohmann::json j = b->status();
      j["route"] = shared ? nlohmann::json(nullptr) : nlohmann::json(snap.layout.route_names[r]);
      j["cluster"] = snap.layout.route_clusters[r];
      j["guard"] = b->name();
      out.push_back(std::move(j));
    }
  }
  return out;
}

std::string Server::renderMetrics() const {
  std::vector<const stats::WorkerStats*> shards;
  shards.reserve(workers_.size());
  for (const auto& w : workers_) shards.push_back(&w->stats());
  stats::ProcessFacts facts;
  facts.workers = workers_.size();
  facts.draining = draining_.load();
  facts.access_log_dropped = access_log_ ? log::AccessLog::dropped() : 0;
  // Each guard once: a cluster's rate limit is shared by its routes, so it is labelled with the
  // cluster and an empty route (summing over routes must not count it twice).
  const Snapshot& snap = *snapshot_;
  std::vector<const guards::Guard*> seen;
  for (std::size_t r = 0; r < snap.route_guards.size(); ++r) {
    for (const auto& guard : snap.route_guards[r]) {
      if (std::find(seen.begin(), seen.end(), guard.get()) != seen.end()) continue;
      seen.push_back(guard.get());
      const bool shared = guard->name().starts_with("cluster_");
      for (const auto& g : guard->gauges()) {
        facts.guard_gauges.push_back({std::string(g.name), std::string(g.help), std::string(g.type),
                                      shared ? std::string() : snap.layout.route_names[r],
                                      snap.layout.route_clusters[r], std::string(guard->name()),
                                      g.value, std::string(g.label), std::string(g.label_value)});
      }
    }
  }
  const auto now = std::chrono::steady_clock::now();
  for (std::size_t c = 0; c < snap.config.clusters.size(); ++c) {
    auto& healthy = facts.host_healthy.emplace_back();
    for (std::size_t h = 0; h < snap.host_sets[c]->capacity(); ++h) {
      healthy.push_back(inSelection(snap, c, h, now));
    }
    const auto* health = snap.health[c].get();
    if (health == nullptr) continue;
    auto& f = facts.health_checks.emplace_back();
    f.cluster = c;
    f.panic = inPanic(snap.config.clusters[c], health);
    for (std::size_t h = 0; h < health->hosts(); ++h) {
      const auto& s = health->status(h);
      f.results.push_back(s.results);
      f.transitions.push_back({s.became_healthy, s.became_unhealthy});
    }
  }
  for (std::size_t c = 0; c < snap.outliers.size(); ++c) {
    const auto* o = snap.outliers[c].get();
    if (o == nullptr) continue;
    auto& f = facts.outliers.emplace_back();
    f.cluster = c;
    for (std::size_t k = 0; k < f.ejections.size(); ++k) f.ejections[k] = o->ejections(k);
    for (std::size_t h = 0; h < o->hosts(); ++h) f.ejected.push_back(o->ejected(h, now));
  }
  for (std::size_t c = 0; c < snap.bulkheads.size(); ++c) {
    const auto* b = snap.bulkheads[c].get();
    if (b == nullptr) continue;
    auto& f = facts.bulkheads.emplace_back();
    f.cluster = c;
    for (std::size_t k = 0; k < upstream::Bulkhead::kLimits; ++k) {
      f.in_use[k] = b->inUse(k);
      f.max[k] = b->max(k);
      f.overflows[k] = b->overflows(k);
    }
  }
  // Host labels as the slots are now (an empty slot has none, and is not rendered).
  stats::MetricsLayout layout = snap.layout;
  for (std::size_t c = 0; c < snap.host_sets.size(); ++c) {
    const auto& slots = snap.host_sets[c]->slots();
    for (std::size_t h = 0; h < slots.size(); ++h) {
      layout.host_addresses[c][h] = slots[h].address;
      layout.host_weights[c][h] = slots[h].weight;
    }
  }
  return stats::renderPrometheus(layout, shards, facts);
}

int Server::run() {
  asio::signal_set signals(io_, SIGINT, SIGTERM);
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (++signals_seen_ == 1) {
        spdlog::info("received signal {}: draining (up to {} ms)", signo,
                     snapshot_->config.drain_timeout.count());
        startDrain();
        wait_signal();
      } else {
        spdlog::warn("received signal {} again: stopping now", signo);
        drain_deadline_ = std::chrono::steady_clock::now();
      }
    });
  };
  wait_signal();
  // Endpoint files are read before workers take traffic: the hosts are posted to each worker's
  // loop ahead of its first accept.
  if (discovery_) {
    discovery_->start();
    for (std::size_t c = 0; c < snapshot_->host_sets.size(); ++c) publishHosts(c);
  }
  for (auto& w : workers_) w->start();
  if (admin_) admin_->start();
  for (auto& checker : health_checkers_) {
    if (checker) checker->start();
  }
  io_.run();
  for (auto& w : workers_) w->stop();
  for (auto& w : workers_) w->join();
  if (access_log_) access_log_->flush();
  return 0;
}

void Server::schedulePublish(std::size_t c) {
  // A change after a quiet spell goes out at once; changes that follow within kPublishGap of a
  // publish wait for its end and go out together.
  constexpr auto kPublishGap = std::chrono::milliseconds(20);
  if (publish_pending_[c]) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_publish_[c] >= kPublishGap) {
    last_publish_[c] = now;
    publishHosts(c);
    return;
  }
  publish_pending_[c] = true;
  publish_timers_[c]->expires_at(last_publish_[c] + kPublishGap);
  publish_timers_[c]->async_wait([this, c](const boost::system::error_code& ec) {
    publish_pending_[c] = false;
    if (ec) return;
    last_publish_[c] = std::chrono::steady_clock::now();
    publishHosts(c);
  });
}

void Server::publishHosts(std::size_t c) {
  const auto& slots = snapshot_->host_sets[c]->slots();
  auto& known = published_occupants_[c];
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].occupant == known[i]) continue;
    known[i] = slots[i].occupant;
    if (auto* o = snapshot_->outliers[c].get()) o->reset(i, slots[i].occupant);
    if (auto* health = snapshot_->health[c].get()) {
      if (slots[i].empty()) {
        health->vacate(i);
      } else {
        health->occupy(i);
      }
    }
    if (health_checkers_[c]) health_checkers_[c]->wake(i);
  }
  auto copy = std::make_shared<const std::vector<upstream::HostSet::Host>>(slots);
  for (auto& w : workers_) w->updateHosts(c, copy);
}

void Server::requestDrain() {
  asio::post(io_, [this] { startDrain(); });
}

void Server::startDrain() {
  if (draining_.exchange(true)) return;
  drain_deadline_ = std::chrono::steady_clock::now() + snapshot_->config.drain_timeout;
  for (auto& w : workers_) w->beginDrain();
  pollDrain();
}

void Server::pollDrain() {
  std::size_t left = 0;
  bool all_done = true;
  for (const auto& w : workers_) {
    all_done = all_done && w->finished();
    left += w->connections();
  }
  if (all_done || std::chrono::steady_clock::now() >= drain_deadline_) {
    if (!all_done) {
      spdlog::warn("drain timeout: closing {} connection(s) still open", left);
    } else {
      spdlog::info("drained: exiting");
    }
    if (admin_) admin_->stop();
    io_.stop();
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(20));
  timer->async_wait([this, timer](const boost::system::error_code& ec) {
    if (!ec) pollDrain();
  });
}

}  // namespace sluice::gateway::server
