#include "gateway/server/server.h"

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <fstream>
#include <future>
#include <iterator>
#include <mutex>
#include <sstream>
#include <thread>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <xxhash.h>

#include "gateway/admin/admin_server.h"
#include "gateway/admin/admin_token.h"
#include "gateway/config/config_json.h"
#include "gateway/config/config_yaml.h"
#include "gateway/config/loader.h"
#include "gateway/etcd/etcd_client.h"
#include "gateway/guards/breaker_sync.h"
#include "gateway/log/access_log.h"
#include "gateway/log/diagnostic_log.h"
#include "gateway/redis/redis_breaker_store.h"
#include "gateway/redis/redis_permit_store.h"
#include "gateway/server/admin_views.h"
#include "gateway/server/config_watcher.h"
#include "gateway/server/cpu_limit.h"
#include "gateway/server/discovery.h"
#include "gateway/server/fleet.h"
#include "gateway/server/listen_socket.h"
#include "gateway/server/operator_actions.h"
#include "gateway/server/service_notify.h"
#include "gateway/server/snapshot.h"
#include "gateway/server/state_registry.h"
#include "gateway/server/stats_view.h"
#include "gateway/server/worker.h"
#include "gateway/trace/span_exporter.h"

namespace sluice::gateway::server {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

std::size_t workerCountFor(const config::Config& c, int override_workers) {
  if (override_workers > 0) return static_cast<std::size_t>(override_workers);
  if (c.workers != 0) return c.workers;
  const CpuLimit cpus = detectCpuLimit();
  spdlog::info("workers: auto = {} ({} CPUs in the affinity mask, {})", cpus.workers, cpus.affinity,
               cpus.quota ? fmt::format("a cgroup quota of {:.2f} CPUs", *cpus.quota)
                          : std::string("no cgroup CPU quota"));
  return cpus.workers;
}

// GET /log, PUT /log?level=<trace|debug|info|warn|error|off>: the level holds until the next
// reload that changes the config's `log` section.
admin::Response logLevelResponse(const admin::ApiRequest& r) {
  if (r.path != "/log") return admin::Response{404, "text/plain; charset=utf-8", "not found\n"};
  if (r.method == "PUT" || r.method == "POST") {
    std::optional<config::Log::Level> level;
    if (r.query.starts_with("level=")) level = log::parseLogLevel(r.query.substr(6));
    if (!level) {
      return admin::jsonError(400, "use PUT /log?level=<trace|debug|info|warn|error|off>");
    }
    log::setLogLevel(*level);
    spdlog::warn("log level set to {} through the admin listener", log::toString(*level));
  } else if (r.method != "GET" && r.method != "HEAD") {
    return admin::jsonError(405, "use GET, or PUT /log?level=...");
  }
  return admin::jsonResponse(200, {{"level", log::toString(log::currentLogLevel())}});
}

bool sameListener(const config::Listener& a, const config::Listener& b) {
  return a.name == b.name && a.address == b.address;
}

// Binds `n` descriptors (one per worker) for each listener of `next` that `current` lacks.
// Returns the descriptors per worker, or the first error (with nothing left bound).
std::variant<std::vector<ListenFds>, std::string> bindNew(const config::Config& next,
                                                          const config::Config* current,
                                                          std::size_t n) {
  std::vector<ListenFds> fds(n);
  for (const auto& l : next.listeners) {
    if (current != nullptr &&
        std::any_of(current->listeners.begin(), current->listeners.end(),
                    [&](const config::Listener& c) { return sameListener(c, l); })) {
      continue;
    }
    for (std::size_t w = 0; w < n; ++w) {
      auto bound = bindListener(l);
      if (auto* e = std::get_if<std::string>(&bound)) return *e;
      fds[w].add(l.name, std::get<int>(bound));
    }
  }
  return fds;
}

std::shared_ptr<const std::vector<upstream::HostSet::Host>> slotsOf(const StateRegistry& registry,
                                                                    std::string_view cluster) {
  return std::make_shared<const std::vector<upstream::HostSet::Host>>(
      registry.cluster(cluster)->hosts->slots());
}

// What every worker gets for `snap`: the generation and each cluster's hosts as they are now.
WorkerUpdate updateFor(const StateRegistry& registry, std::shared_ptr<const Snapshot> snap) {
  WorkerUpdate u;
  for (const auto& c : snap->config.clusters) u.hosts.push_back(slotsOf(registry, c.name));
  u.snapshot = std::move(snap);
  return u;
}

// The metrics of a Redis or etcd client (both count requests by [op][result] and time them by op).
template <typename Client, typename OpNames, typename ResultNames>
stats::ProcessFacts::Client clientFacts(const Client& client, const OpNames& ops,
                                        const ResultNames& results) {
  stats::ProcessFacts::Client c;
  c.up = client.up();
  const auto& st = client.stats();
  for (std::size_t op = 0; op < ops.size(); ++op) {
    for (std::size_t res = 0; res < results.size(); ++res) {
      c.requests.push_back({ops[op], results[res], st.requests[op][res].value()});
    }
    c.durations.emplace_back(ops[op], &st.duration[op]);
  }
  return c;
}

}  // namespace

std::string contentHash(std::string_view bytes) {
  return fmt::format("xxh3:{:016x}", XXH3_64bits(bytes.data(), bytes.size()));
}

Server::Server() = default;

std::unique_ptr<Server> Server::create(config::Config config, Options options, std::string* error) {
  std::unique_ptr<Server> s(new Server());
  s->options_ = std::move(options);
  s->notifier_ = std::make_unique<ServiceNotifier>(s->io_);
  log::applyLogConfig(config.log, s->options_.log_level);
  const std::size_t n = workerCountFor(config, s->options_.workers);
  if (config.access_log.enabled) {
    s->access_log_ = log::AccessLog::open(config.access_log, error);
    if (!s->access_log_) return nullptr;
  }
  auto bound = bindNew(config, nullptr, n);
  if (auto* e = std::get_if<std::string>(&bound)) {
    *error = *e;
    return nullptr;
  }
  auto& fds = std::get<std::vector<ListenFds>>(bound);
  std::optional<redis::ClientSettings> redis_settings;
  if (config.redis) {
    redis_settings = redis::clientSettings(*config.redis, error);
    if (!redis_settings) return nullptr;
  }
  if (s->options_.etcd) {
    s->etcd_ = std::make_unique<etcd::EtcdClient>(
        etcd::ClientSettings{.endpoints = s->options_.etcd->url.endpoints});
    s->config_revision_ = s->options_.etcd->revision;
  }
  s->registry_ = std::make_unique<StateRegistry>(s->io_, n);
  s->generation_ = 1;
  guards::PermitStore* permits = s->applyRedis(redis_settings);
  s->snapshot_ = s->registry_->build(std::move(config), s->generation_, {}, permits,
                                     s->breakerStore(redis_settings));
  if (s->breaker_sync_) s->breaker_sync_->setBreakers(s->registry_->sharedBreakers());
  s->last_success_ = std::chrono::system_clock::now();
  s->started_at_ = s->last_success_;
  s->reload_history_.record({s->started_at_, "start", true, s->generation_, {}, 0, 0});
  trace::SpanExporter* spans = s->applyTracing(s->snapshot_->config);
  for (std::size_t i = 0; i < n; ++i) {
    WorkerUpdate u = updateFor(*s->registry_, s->snapshot_);
    u.listeners = std::move(fds[i]);
    u.access_log = s->access_log_.get();
    u.spans = spans;
    s->workers_.push_back(std::make_unique<Worker>(i, std::move(u)));
  }
  s->rebuildDiscovery();
  if (const auto& a = s->snapshot_->config.admin) {
    s->admin_ = std::make_unique<admin::AdminServer>(
        s->io_, asio::ip::tcp::endpoint(asio::ip::make_address(a->address.ip), a->address.port));
    if (auto e = s->admin_->listen()) {
      *error = *e;
      return nullptr;
    }
    if (!a->token_file.empty()) {
      auto read = admin::readTokenFile(a->token_file);
      if (!read.error.empty()) {
        *error = "admin.token_file: " + read.error;
        return nullptr;
      }
      if (!read.warning.empty()) spdlog::warn("{}", read.warning);
      s->admin_->setToken(std::move(read.token));
    }
    s->registerAdmin();
  }
  return s;
}

void Server::registerAdmin() {
  admin_->handle("/metrics", "Prometheus metrics", [this] {
    std::vector<const stats::WorkerStats*> shards;
    shards.reserve(workers_.size());
    for (const auto& w : workers_) shards.push_back(&w->stats());
    stats::ProcessFacts facts;
    facts.process = stats::readProcessMetrics();
    facts.workers = workers_.size();
    facts.draining = draining_.load();
    facts.access_log_dropped = access_log_ ? log::AccessLog::dropped() : 0;
    if (spans_) {
      const auto c = spans_->counts();
      facts.tracing = stats::ProcessFacts::Tracing{c.exported, c.dropped, c.failed, c.queued};
    }
    if (redis_) facts.redis = clientFacts(*redis_, redis::kOpNames, redis::kResultNames);
    if (const etcd::EtcdClient* e = etcd_ ? etcd_.get() : section_etcd_) {
      facts.etcd = clientFacts(*e, etcd::kOpNames, etcd::kResultNames);
    }
    facts.reloads = {generation_, reloads_ok_, reloads_failed_,
                     std::chrono::duration<double>(last_success_.time_since_epoch()).count()};
    return admin::Response{200, "text/plain; version=0.0.4; charset=utf-8",
                           renderMetrics(*snapshot_, *registry_, shards, std::move(facts))};
  });
  admin_->handle("/stats",
                 "everything the dashboard at / shows, in one compact JSON: traffic, latency "
                 "buckets and guard verdicts per route, breakers, hosts, reloads (counters since "
                 "start: rates come from two polls)",
                 [this] { return statsResponse(); });
  admin_->handleApi("/log",
                    "the diagnostic log's level and format; PUT /log?level=debug changes the level",
                    [](const admin::ApiRequest& r) { return logLevelResponse(r); });
  admin_->handle("/ready", "200 while serving, 503 while draining", [this] {
    return draining_.load() ? admin::Response{503, "text/plain; charset=utf-8", "draining\n"}
                            : admin::Response{200, "text/plain; charset=utf-8", "ready\n"};
  });
  admin_->handle("/live", "200 while the process runs", [] {
    return admin::Response{200, "text/plain; charset=utf-8", "live\n"};
  });
  admin_->handleApi(
      "/config",
      "the configuration being served, every default filled in (JSON; ?format=yaml: in the "
      "config file's own keys and units); POST /config/reload reads the file again",
      [this](const admin::ApiRequest& r) {
        if (r.path == "/config/reload") return reloadResponse(r.method);
        if (r.path != "/config") {
          return admin::Response{404, "text/plain; charset=utf-8", "not found\n"};
        }
        if (r.method != "GET" && r.method != "HEAD") {
          return admin::Response{405, "text/plain; charset=utf-8", "use GET\n"};
        }
        return configResponse(r.query);
      });
  admin_->handleApi(
      "/upstreams",
      "clusters and hosts: weight, health checks, outlier ejection, pools (JSON); POST "
      "/upstreams/<cluster>/<ip:port>/{drain,undrain}",
      [this](const admin::ApiRequest& r) {
        if (r.path != "/upstreams") {
          return hostAction(*registry_, r, [this](std::string_view c) { schedulePublish(c); });
        }
        if (r.method != "GET" && r.method != "HEAD") return admin::jsonError(405, "use GET");
        return admin::jsonResponse(200, upstreamsJson(*snapshot_, *registry_));
      });
  admin_->handleApi("/registry",
                    "registered hosts; PUT/DELETE /registry/<cluster>/<ip:port>, POST "
                    ".../heartbeat (JSON)",
                    [this](const admin::ApiRequest& r) {
                      if (!discovery_) {
                        return admin::jsonError(
                            404, "no cluster takes registrations (discovery.registry)");
                      }
                      return discovery_->handle(r);
                    });
  admin_->handleApi("/fleet",
                    "the sluice instances registered in etcd (etcd.register): address, admin "
                    "URL, version, config generation (JSON)",
                    [this](const admin::ApiRequest& r) {
                      if (r.method != "GET" && r.method != "HEAD") {
                        return admin::jsonError(405, "use GET");
                      }
                      if (!fleet_) {
                        return admin::jsonError(404,
                                                "this instance does not register in etcd "
                                                "(etcd.register)");
                      }
                      return admin::jsonResponse(200, fleet_->list());
                    });
  admin_->handleApi("/breakers",
                    "circuit breakers: state, rates and transitions (JSON); POST "
                    "/breakers/{route,cluster}/<name>/{force-open,force-closed,normal}",
                    [this](const admin::ApiRequest& r) {
                      if (r.path != "/breakers") return breakerAction(*snapshot_, r);
                      if (r.method != "GET" && r.method != "HEAD") {
                        return admin::jsonError(405, "use GET");
                      }
                      return admin::jsonResponse(200, breakersJson(*snapshot_));
                    });
  admin_->handleApi("/debug/requests",
                    "requests in flight, oldest first: route, phase, age, upstream host, "
                    "deadline left (JSON; ?limit=n)",
                    [this](const admin::ApiRequest& r) { return debugRequestsResponse(r); });
  admin_->handleApi("/canaries",
                    "progressive canaries: state, step, analysis and decisions; POST "
                    "/canaries/<route>/{pause,resume,promote,abort,restart} (JSON)",
                    [this](const admin::ApiRequest& r) { return canaryResponse(r); });
}

admin::Response Server::debugRequestsResponse(const admin::ApiRequest& r) {
  if (r.path != "/debug/requests") return admin::jsonError(404, "not found");
  if (r.method != "GET" && r.method != "HEAD") return admin::jsonError(405, "use GET");
  std::size_t limit = 1000;
  if (!r.query.empty()) {
    std::size_t n = 0;
    const auto v = r.query.substr(std::min(r.query.size(), std::string_view("limit=").size()));
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (!r.query.starts_with("limit=") || ec != std::errc() || end != v.data() + v.size() ||
        n == 0) {
      return admin::jsonError(400, "unknown query: use ?limit=<n> (default 1000)");
    }
    limit = n;
  }
  // Each worker copies its own requests on its own loop, between two of their steps; the main
  // loop waits for them (as a reload does), a stuck worker for at most a second.
  struct Gathered {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t pending = 0;
    std::vector<proxy::InFlightRequest> requests;
  };
  auto g = std::make_shared<Gathered>();  // shared: a late answer finds it alive
  g->pending = workers_.size();
  for (auto& w : workers_) {
    w->collectRequests([g](std::vector<proxy::InFlightRequest> mine) {
      const std::lock_guard lock(g->mu);
      std::move(mine.begin(), mine.end(), std::back_inserter(g->requests));
      if (--g->pending == 0) g->cv.notify_one();
    });
  }
  std::unique_lock lock(g->mu);
  g->cv.wait_for(lock, std::chrono::seconds(1), [&] { return g->pending == 0; });
  const std::size_t answered = workers_.size() - g->pending;
  return admin::jsonResponse(
      200, inFlightJson(std::move(g->requests), limit, answered, workers_.size()));
}

admin::Response Server::canaryResponse(const admin::ApiRequest& r) {
  if (r.path == "/canaries") {
    if (r.method != "GET" && r.method != "HEAD") {
      return admin::jsonError(405, "use GET");
    }
    nlohmann::json out = nlohmann::json::array();
    for (const auto& route : snapshot_->config.routes) {
      if (const RouteCanary* c = registry_->canary(route.name)) out.push_back(c->toJson());
    }
    return admin::jsonResponse(200, out);
  }
  // /canaries/<route>/<action>
  const std::string_view rest = r.path.substr(std::string_view("/canaries/").size());
  const auto slash = rest.find('/');
  const std::string_view name = rest.substr(0, slash);
  RouteCanary* c = registry_->canary(name);
  if (c == nullptr) {
    return admin::jsonError(404, "no route '" + std::string(name) + "' with a canary");
  }
  if (slash == std::string_view::npos) {
    if (r.method != "GET" && r.method != "HEAD") {
      return admin::jsonError(405, "use GET");
    }
    return admin::jsonResponse(200, c->toJson());
  }
  const std::string_view action = rest.substr(slash + 1);
  if (!RouteCanary::isAction(action)) {
    return admin::jsonError(404, "unknown canary action '" + std::string(action) +
                                     "' (use pause, resume, promote, abort or restart)");
  }
  if (r.method != "POST") return admin::jsonError(405, "use POST");
  if (auto error = c->act(action)) {
    return admin::jsonError(409, *error);
  }
  return admin::jsonResponse(200, c->toJson());
}

admin::Response Server::configResponse(std::string_view query) const {
  const bool yaml = query == "format=yaml";
  if (!yaml && !query.empty() && query != "format=json") {
    return admin::Response{400, "text/plain; charset=utf-8",
                           "unknown query: use ?format=yaml or ?format=json\n"};
  }
  if (yaml) {
    // Comments keep the document a config that `sluice validate` and `run` take as it is.
    return admin::Response{
        200, "application/yaml; charset=utf-8",
        fmt::format("# generation {} from {}{} ({})\n", generation_, options_.source,
                    options_.etcd ? fmt::format(" at revision {}", config_revision_) : "",
                    options_.hash) +
            config::toYaml(snapshot_->config)};
  }
  auto j = config::toJson(snapshot_->config);
  j["generation"] = generation_;
  j["source"] = options_.source;
  j["hash"] = options_.hash;
  if (options_.etcd) j["revision"] = config_revision_;
  return admin::jsonResponse(200, j);
}

admin::Response Server::reloadResponse(std::string_view method) {
  if (method != "POST") return admin::Response{405, "text/plain; charset=utf-8", "use POST\n"};
  const auto r = reload("admin API");
  nlohmann::json j = {{"generation", r.generation}, {"applied", r.applied}};
  if (!r.applied) j["errors"] = r.problems;
  return admin::jsonResponse(r.applied ? 200 : 400, j);
}

void Server::noteReload(std::string_view trigger, const ReloadResult& r,
                        Clock::time_point started) {
  reload_history_.record(
      {std::chrono::system_clock::now(), std::string(trigger), r.applied, r.generation, r.problems,
       r.problems.size(),
       std::chrono::duration<double, std::milli>(Clock::now() - started).count()});
}

admin::Response Server::statsResponse() const {
  std::vector<const stats::WorkerStats*> shards;
  shards.reserve(workers_.size());
  for (const auto& w : workers_) shards.push_back(&w->stats());
  const ServerFacts facts{workers_.size(), draining_.load(), generation_,
                          options_.source, options_.hash,    reloads_ok_,
                          reloads_failed_, &reload_history_, started_at_};
  // Compact: a dashboard polls this every second or two.
  return admin::Response{200,
                         "application/json",
                         statsJson(*snapshot_, *registry_, shards, facts)
                             .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                         {}};
}

Server::~Server() {
  for (auto& w : workers_) w->stop();
  for (auto& w : workers_) w->join();
  if (redis_) redis_->stop();
  discovery_.reset();
  fleet_.reset();
  etcd_config_.reset();
  if (section_client_) section_client_->stop();
  if (etcd_) etcd_->stop();
}

trace::SpanExporter* Server::applyTracing(const config::Config& config) {
  if (!config.tracing) return nullptr;
  if (spans_) {
    spans_->reconfigure(*config.tracing);
  } else {
    spans_ = std::make_unique<trace::SpanExporter>(*config.tracing);
  }
  return spans_.get();
}

guards::PermitStore* Server::applyRedis(const std::optional<redis::ClientSettings>& settings) {
  if (!settings) return nullptr;
  if (redis_) {
    redis_->reconfigure(*settings);
    permits_->setKeyPrefix(settings->redis.key_prefix);
    breaker_store_->setKeyPrefix(settings->redis.key_prefix);
  } else {
    redis_ = std::make_unique<redis::RedisClient>(*settings);
    permits_ = std::make_unique<redis::RedisPermitStore>(*redis_, settings->redis.key_prefix);
    breaker_store_ =
        std::make_unique<redis::RedisBreakerStore>(*redis_, settings->redis.key_prefix);
    breaker_sync_ = std::make_unique<guards::BreakerSync>(*breaker_store_);
    if (running_) syncBreakersSoon();  // a reload added the redis section; run() starts it else
  }
  return permits_.get();
}

guards::BreakerStore* Server::breakerStore(
    const std::optional<redis::ClientSettings>& settings) const {
  return settings ? breaker_store_.get() : nullptr;
}

void Server::syncBreakersSoon() {
  breaker_timer_.expires_after(guards::BreakerSync::kInterval);
  breaker_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    breaker_sync_->tick();
    syncBreakersSoon();
  });
}

void Server::syncRedisAtStart() {
  // Long enough for a first connection (AUTH, SELECT, scripts) and a read on a healthy network;
  // a Redis that is not there costs a restart no more than this.
  constexpr auto kStartSync = std::chrono::milliseconds(500);
  if (!redis_) return;
  const auto deadline = Clock::now() + kStartSync;
  // The main thread, before any worker runs: nothing else waits on it yet. Without this wait the
  // first requests would find the connection still being set up and get the limits' on_failure.
  while (!redis_->up() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!redis_->up()) {
    spdlog::warn(
        "redis: not reachable at start; global limits apply their on_failure and shared "
        "circuit breakers start closed until it is");
    return;
  }
  if (!breaker_sync_ || breaker_sync_->empty()) return;
  auto answered = std::make_shared<std::promise<bool>>();
  auto read = answered->get_future();
  breaker_sync_->tick([answered](bool ok) { answered->set_value(ok); });
  if (read.wait_until(deadline) != std::future_status::ready || !read.get()) {
    spdlog::warn("shared circuit breakers: no answer from Redis at start; starting closed");
  }
}

std::vector<std::string> Server::checkReloadable(const config::Config& next) const {
  std::vector<std::string> problems;
  if (spans_ && next.tracing && next.tracing->queue != spans_->capacity()) {
    problems.push_back("tracing.queue: changing the span queue (" +
                       std::to_string(spans_->capacity()) + " now, " +
                       std::to_string(next.tracing->queue) + " in the new config) needs a restart");
  }
  const auto& now = snapshot_->config;
  const std::size_t n = workerCountFor(next, options_.workers);
  if (n != workers_.size()) {
    problems.push_back("workers: changing the number of workers (" +
                       std::to_string(workers_.size()) + " now, " + std::to_string(n) +
                       " in the new config) needs a restart");
  }
  const auto admin_text = [](const std::optional<config::Admin>& a) {
    return a ? a->address.text() : std::string("none");
  };
  if (now.admin.has_value() != next.admin.has_value() ||
      (now.admin && now.admin->address != next.admin->address)) {
    problems.push_back("admin.address: moving the admin listener (" + admin_text(now.admin) +
                       " now, " + admin_text(next.admin) + " in the new config) needs a restart");
  }
  return problems;
}

std::string Server::listenersText() const {
  std::string text;
  for (const auto& l : snapshot_->config.listeners) {
    text += (text.empty() ? "" : ", ") + l.address.text();
  }
  return text;
}

Server::ReloadResult Server::reload(std::string_view trigger) {
  return toldToSystemd([&] { return readAndApply(trigger); });
}

Server::ReloadResult Server::toldToSystemd(const std::function<ReloadResult()>& reload) {
  notifier_->reloading();
  ReloadResult r = reload();
  notifier_->ready(r.applied ? servingStatus(generation_, listenersText())
                             : refusedStatus(generation_, listenersText(), r.problems.size()));
  return r;
}

void Server::applyEtcdChange(const etcd::RangeWatch::State& state) {
  const auto started = Clock::now();
  const auto it = state.kvs.find(options_.etcd->url.key);
  if (it != state.kvs.end() && it->second.mod_revision <= config_revision_) return;
  const std::int64_t revision = it == state.kvs.end() ? state.revision : it->second.mod_revision;
  const std::string trigger = fmt::format("etcd revision {}", revision);
  (void)toldToSystemd([&] {
    if (it != state.kvs.end()) {
      return loadAndApply(it->second.value, options_.source, revision, trigger, started);
    }
    ReloadResult r;
    r.generation = generation_;
    r.problems.push_back(options_.source + ": the key was deleted; the running config stays");
    return refuse(std::move(r), trigger, started);
  });
}

Server::ReloadResult Server::readAndApply(std::string_view trigger) {
  const auto started = Clock::now();
  ReloadResult r;
  r.generation = generation_;
  if (options_.etcd) {
    auto read = etcd_->rangeAndWait(etcd::KeyRange::single(options_.etcd->url.key));
    if (!read.ok()) {
      r.problems.push_back(options_.source + ": " + read.status.message);
    } else if (read.value.kvs.empty()) {
      r.problems.push_back(options_.source + ": the key does not exist");
    } else {
      const auto& kv = read.value.kvs.front();
      return loadAndApply(kv.value, options_.source, kv.mod_revision, trigger, started);
    }
  } else if (options_.config_path.empty()) {
    r.problems.emplace_back("this config has no file to read again (sluice demo)");
  } else {
    std::ifstream in(options_.config_path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    if (in) return loadAndApply(bytes.str(), options_.config_path, 0, trigger, started);
    r.problems.push_back(options_.config_path + ": cannot read the file");
  }
  return refuse(std::move(r), trigger, started);
}

Server::ReloadResult Server::loadAndApply(const std::string& text, const std::string& name,
                                          std::int64_t revision, std::string_view trigger,
                                          Clock::time_point started) {
  auto loaded = config::load(text, name);
  for (const auto& w : loaded.warnings) spdlog::warn("{}", w.format());
  if (loaded.ok()) {
    ReloadResult r = apply(std::move(*loaded.config), text, trigger, started);
    if (r.applied) config_revision_ = revision;
    return r;
  }
  ReloadResult r;
  r.generation = generation_;
  for (const auto& d : loaded.diagnostics) r.problems.push_back(d.format());
  return refuse(std::move(r), trigger, started);
}

Server::ReloadResult Server::refuse(ReloadResult r, std::string_view trigger,
                                    Clock::time_point started) {
  ++reloads_failed_;
  noteReload(trigger, r, started);
  spdlog::error("reload ({}) refused, still serving generation {}: {} problem(s)", trigger,
                generation_, r.problems.size());
  for (const auto& p : r.problems) spdlog::error("  {}", p);
  return r;
}

Server::ReloadResult Server::apply(config::Config next, std::string_view text,
                                   std::string_view trigger, Clock::time_point started) {
  const auto t0 = Clock::now();
  ReloadResult r;
  r.generation = generation_;
  r.problems = checkReloadable(next);
  if (draining_.load()) r.problems.emplace_back("draining: the process is shutting down");
  std::unique_ptr<log::AccessLog> new_log;
  if (r.problems.empty() && next.access_log != snapshot_->config.access_log &&
      next.access_log.enabled) {
    std::string error;
    new_log = log::AccessLog::open(next.access_log, &error);
    if (!new_log) r.problems.push_back("access_log: " + error);
  }
  // A rotated token file applies with the reload; one that cannot be read refuses it.
  std::string token;
  if (r.problems.empty() && next.admin && !next.admin->token_file.empty()) {
    auto read = admin::readTokenFile(next.admin->token_file);
    if (!read.warning.empty()) spdlog::warn("{}", read.warning);
    if (read.error.empty()) {
      token = std::move(read.token);
    } else {
      r.problems.push_back("admin.token_file: " + read.error);
    }
  }
  // Likewise the Redis password file.
  std::optional<redis::ClientSettings> redis_settings;
  if (r.problems.empty() && next.redis) {
    std::string error;
    redis_settings = redis::clientSettings(*next.redis, &error);
    if (!redis_settings) r.problems.push_back("redis.password_file: " + error);
  }
  std::vector<ListenFds> fds;
  if (r.problems.empty()) {
    auto bound = bindNew(next, &snapshot_->config, workers_.size());
    if (auto* e = std::get_if<std::string>(&bound)) {
      r.problems.push_back(*e);
    } else {
      fds = std::move(std::get<std::vector<ListenFds>>(bound));
    }
  }
  if (!r.problems.empty()) return refuse(std::move(r), trigger, started);

  // From here on nothing can fail: the registry carries the state over and every worker is
  // handed the generation; the reload returns once all of them serve it.
  const bool log_changed = next.access_log != snapshot_->config.access_log;
  if (next.log != snapshot_->config.log) log::applyLogConfig(next.log, options_.log_level);
  if (admin_) admin_->setToken(std::move(token));
  guards::PermitStore* permits = applyRedis(redis_settings);
  auto snap =
      registry_->build(std::move(next), generation_ + 1, {}, permits, breakerStore(redis_settings));
  if (breaker_sync_) breaker_sync_->setBreakers(registry_->sharedBreakers());
  for (const auto& c : snap->config.clusters) noteOccupants(c.name);
  log::AccessLog* log_for_workers = log_changed ? new_log.get() : access_log_.get();
  trace::SpanExporter* spans = applyTracing(snap->config);
  struct Acks {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t pending = 0;
  };
  auto acks = std::make_shared<Acks>();  // shared: a late acknowledgement finds it alive
  acks->pending = workers_.size();
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    WorkerUpdate u = updateFor(*registry_, snap);
    u.listeners = std::move(fds[i]);
    u.access_log = log_for_workers;
    u.spans = spans;
    workers_[i]->adopt(std::move(u), [acks] {
      const std::lock_guard lock(acks->mu);
      if (--acks->pending == 0) acks->cv.notify_one();
    });
  }
  {
    // Workers take a generation between requests, in microseconds; waiting here keeps the
    // main loop (admin, health checks) still for that long. A worker that does not answer
    // within seconds is stuck in something else: the reload is reported once it does.
    std::unique_lock lock(acks->mu);
    while (!acks->cv.wait_for(lock, std::chrono::seconds(5), [&] { return acks->pending == 0; })) {
      spdlog::warn("reload ({}): {} worker(s) still to take generation {}", trigger, acks->pending,
                   snap->generation);
    }
  }
  if (log_changed) {
    // No worker writes to the old log any more: it is flushed and closed here.
    if (access_log_) access_log_->flush();
    access_log_ = std::move(new_log);
  }
  snapshot_ = std::move(snap);
  generation_ = snapshot_->generation;
  options_.hash = contentHash(text);
  rebuildDiscovery();
  if (running_ && discovery_) discovery_->start();
  ++reloads_ok_;
  last_success_ = std::chrono::system_clock::now();
  r.applied = true;
  r.generation = generation_;
  noteReload(trigger, r, started);
  const auto ms = [](Clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
  };
  spdlog::info(
      "reload ({}): every worker serves generation {} ({} routes, {} clusters) {:.1f} ms after "
      "the trigger (reading and validating {:.1f} ms, applying {:.1f} ms)",
      trigger, generation_, snapshot_->config.routes.size(), snapshot_->config.clusters.size(),
      ms(Clock::now() - started), ms(t0 - started), ms(Clock::now() - t0));
  return r;
}

void Server::rebuildDiscovery() {
  std::vector<DiscoveryService::Target> targets;
  bool any = false;
  for (const auto& c : snapshot_->config.clusters) {
    targets.push_back({&c, registry_->cluster(c.name)->hosts.get()});
    any = any || c.discovery.has_value();
  }
  discovery_.reset();
  etcd::EtcdClient* etcd = applyEtcdSection(snapshot_->config.etcd);
  if (fleet_) fleet_->setGeneration(generation_);
  const Snapshot* snap = snapshot_.get();
  discovery_ = std::make_unique<DiscoveryService>(
      io_, std::move(targets),
      [this, snap](std::size_t c) { schedulePublish(snap->config.clusters[c].name); }, etcd);
  if (!any || !discovery_->any()) discovery_.reset();
}

etcd::EtcdClient* Server::applyEtcdSection(const std::optional<config::Etcd>& section) {
  // A reload that moved the listeners or the admin listener changes what the entry says.
  const bool self_moved = fleet_ && section && section->self &&
                          !(Fleet::describe(snapshot_->config, *section->self) == fleet_->self());
  if (section == etcd_section_ && !self_moved) return section_etcd_;
  // The fleet entry and its watches go before the client they use (its revoke answered first).
  if (fleet_) {
    fleet_->leave();
    fleet_->waitLeft(etcd_section_ ? etcd_section_->timeout : config::Millis{2'000});
  }
  fleet_.reset();
  if (section_client_) section_client_->stop();
  section_client_.reset();
  section_etcd_ = nullptr;
  etcd_section_ = section;
  if (!section) return nullptr;
  const etcd::ClientSettings settings{.endpoints = section->endpoints, .timeout = section->timeout};
  if (etcd_ && options_.etcd->url.endpoints == section->endpoints &&
      section->timeout == etcd::ClientSettings{}.timeout) {
    section_etcd_ = etcd_.get();
  } else {
    section_client_ = std::make_unique<etcd::EtcdClient>(settings);
    section_etcd_ = section_client_.get();
  }
  if (section->self) {
    fleet_ =
        std::make_unique<Fleet>(io_, *section_etcd_, *section->self,
                                Fleet::describe(snapshot_->config, *section->self), generation_);
    if (running_) fleet_->start();
  }
  return section_etcd_;
}

int Server::run(const std::function<void()>& ready) {
  asio::signal_set stop_signals(io_, SIGINT, SIGTERM);
  asio::signal_set reload_signals(io_, SIGHUP);
  asio::signal_set reopen_signals(io_, SIGUSR1);
  std::function<void()> wait_stop = [&] {
    stop_signals.async_wait([&](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (++signals_seen_ == 1) {
        const auto& c = snapshot_->config;
        spdlog::info("received signal {}: draining ({} ms of accept grace, then up to {} ms)",
                     signo, c.drain_accept_grace.count(), c.drain_timeout.count());
        startDrain();
        wait_stop();
      } else {
        spdlog::warn("received signal {} again: stopping now", signo);
        stop_reason_ = "a second signal";
        drain_deadline_ = Clock::now();
        if (!workers_draining_) beginWorkerDrain();
      }
    });
  };
  std::function<void()> wait_reload = [&] {
    reload_signals.async_wait([&](const boost::system::error_code& ec, int /*signo*/) {
      if (ec) return;
      (void)reload("SIGHUP");
      wait_reload();
    });
  };
  std::function<void()> wait_reopen = [&] {
    reopen_signals.async_wait([&](const boost::system::error_code& ec, int /*signo*/) {
      if (ec) return;
      if (!access_log_) {
        spdlog::info("SIGUSR1: no access log to reopen");
      } else if (const auto e = access_log_->reopen()) {
        spdlog::error("SIGUSR1: cannot reopen the access log ({}); still writing the old file", *e);
      } else {
        spdlog::info("SIGUSR1: access log reopened ({})", snapshot_->config.access_log.path);
      }
      wait_reopen();
    });
  };
  wait_stop();
  wait_reload();
  wait_reopen();
  running_ = true;
  // Endpoint files are read before workers take traffic: the hosts are posted to each worker's
  // loop ahead of its first accept.
  if (discovery_) discovery_->start();
  syncRedisAtStart();
  for (auto& w : workers_) w->start();
  if (fleet_) fleet_->start();
  if (admin_) admin_->start();
  registry_->start();
  if (etcd_) {
    const auto& source = *options_.etcd;
    etcd_config_ = std::make_unique<etcd::RangeWatch>(
        io_, *etcd_, etcd::KeyRange::single(source.url.key),
        [this](const etcd::RangeWatch::State& state) { applyEtcdChange(state); });
    etcd::RangeWatch::State known;
    known.kvs[source.url.key] = {.key = source.url.key, .mod_revision = source.revision};
    known.revision = source.watch_from - 1;
    etcd_config_->start(std::move(known));
  }
  if (options_.watch && !options_.config_path.empty()) {
    watcher_ = std::make_unique<ConfigWatcher>(io_, options_.config_path, ConfigWatcher::Options{},
                                               [this] { (void)reload("file change"); });
    watcher_->start();
  }
  flushAccessLogSoon();
  if (breaker_sync_) syncBreakersSoon();
  if (ready) ready();
  // The listening sockets were bound in create() and every worker runs: connections are
  // accepted from here on.
  notifier_->ready(servingStatus(generation_, listenersText()));
  io_.run();
  for (auto& w : workers_) w->stop();
  for (auto& w : workers_) w->join();
  if (redis_) redis_->stop();
  // The drain revoked the fleet entry; let etcd answer before the client goes with the process.
  if (fleet_) fleet_->waitLeft(etcd_section_->timeout);
  if (access_log_) access_log_->flush();
  return exit_code_;
}

void Server::flushAccessLogSoon() {
  // Lines reach the file within a second (`tail -f` works), at one write per second at most.
  flush_timer_.expires_after(std::chrono::seconds(1));
  flush_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    if (access_log_) access_log_->flush();
    flushAccessLogSoon();
  });
}

void Server::schedulePublish(std::string_view cluster) {
  // A change after a quiet spell goes out at once; changes that follow within kPublishGap of a
  // publish wait for its end and go out together.
  constexpr auto kPublishGap = std::chrono::milliseconds(20);
  auto* e = registry_->cluster(cluster);
  if (e == nullptr || e->publish_pending) return;
  const auto now = Clock::now();
  if (now - e->last_publish >= kPublishGap) {
    e->last_publish = now;
    publishHosts(cluster);
    return;
  }
  e->publish_pending = true;
  e->publish_timer.expires_at(e->last_publish + kPublishGap);
  e->publish_timer.async_wait(
      [this, name = std::string(cluster)](const boost::system::error_code& ec) {
        auto* entry = registry_->cluster(name);
        if (entry == nullptr) return;  // removed by a reload meanwhile
        entry->publish_pending = false;
        if (ec) return;
        entry->last_publish = Clock::now();
        publishHosts(name);
      });
}

void Server::noteOccupants(std::string_view cluster) {
  auto& e = *registry_->cluster(cluster);
  const auto& slots = e.hosts->slots();
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].occupant == e.published[i]) continue;
    e.published[i] = slots[i].occupant;
    if (auto* o = e.state->outliers()) o->reset(i, slots[i].occupant, slots[i].address);
    if (const auto& health = e.state->health()) {
      if (slots[i].empty()) {
        health->vacate(i);
      } else {
        health->occupy(i);
      }
    }
    if (e.checker) e.checker->wake(i);
  }
}

void Server::publishHosts(std::string_view cluster) {
  noteOccupants(cluster);
  const auto& e = *registry_->cluster(cluster);
  auto copy = slotsOf(*registry_, cluster);
  for (auto& w : workers_) w->updateHosts(e.state, copy);
}

void Server::requestDrain() {
  asio::post(io_, [this] { startDrain(); });
}

void Server::startDrain() {
  if (draining_.exchange(true)) return;  // /ready answers 503 from now on
  if (fleet_) fleet_->leave();           // the fleet list drops this instance at once
  const auto& c = snapshot_->config;
  notifier_->stopping(fmt::format("draining ({} ms of accept grace, then up to {} ms)",
                                  c.drain_accept_grace.count(), c.drain_timeout.count()));
  if (c.drain_accept_grace.count() == 0) {
    beginWorkerDrain();
    return;
  }
  // Accept grace: still serving as usual, so that load balancers see /ready fail and move
  // away before any connection is refused.
  grace_timer_ = std::make_unique<asio::steady_timer>(io_, c.drain_accept_grace);
  grace_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !workers_draining_) beginWorkerDrain();
  });
}

void Server::beginWorkerDrain() {
  workers_draining_ = true;
  if (grace_timer_) grace_timer_->cancel();
  const auto now = Clock::now();
  if (drain_deadline_ == Clock::time_point{} || drain_deadline_ > now) {
    drain_deadline_ = now + snapshot_->config.drain_timeout;
  }
  for (auto& w : workers_) w->beginDrain();
  pollDrain();
}

void Server::pollDrain() {
  std::size_t left = 0;
  std::int64_t requests = 0;
  bool all_done = true;
  for (const auto& w : workers_) {
    all_done = all_done && w->finished();
    left += w->connections();
    requests += w->stats().requests_active.value();
  }
  if (all_done || Clock::now() >= drain_deadline_) {
    if (requests > 0) {
      // Requests still running are cut: the exit code says so (a deploy tool can tell a clean
      // stop from one that lost work).
      spdlog::warn("drain cut {} request(s) in flight ({} connection(s) open) after {}", requests,
                   left, stop_reason_);
      exit_code_ = 1;
    } else if (!all_done) {
      spdlog::info("drained: closing {} idle connection(s) and exiting", left);
    } else {
      spdlog::info("drained: exiting");
    }
    if (admin_) admin_->stop();
    if (watcher_) watcher_->stop();
    if (etcd_config_) etcd_config_->stop();
    if (fleet_) fleet_->stop();
    flush_timer_.cancel();
    breaker_timer_.cancel();
    registry_->stop();
    if (discovery_) discovery_->stop();
    io_.stop();
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(20));
  timer->async_wait([this, timer](const boost::system::error_code& ec) {
    if (!ec) pollDrain();
  });
}

}  // namespace sluice::gateway::server
