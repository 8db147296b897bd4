// The process: N workers, plus the main thread that owns signals, the admin listener, config
// reloads and the drain.
//
//   auto server = Server::create(std::move(config), options, &error);  // binds every socket
//   return server->run();   // serves until SIGTERM/SIGINT (or requestDrain()), drains
//
// Active health checks (upstream/health_checker.h) and discovery run on the main thread's event
// loop too.
//
// Reload (SIGHUP, POST /config/reload, `run --watch`): the file is read and validated again; a
// config with any problem changes nothing (every problem is logged and counted). Otherwise the
// state registry builds the next generation - keeping every stateful object whose definition
// allows it (state_registry.h) - new listeners are bound here first (an address in use refuses
// the reload before anything changed), and each worker is handed the generation and
// acknowledges it; reload() returns once every worker serves it. Requests already running finish
// on the generation they started on. What cannot change without a restart is refused with a
// message saying so (checkReloadable): the worker count and the admin listener.
//
// Signals: SIGHUP reloads the config file; SIGUSR1 reopens the access log file (logrotate);
// SIGTERM and SIGINT drain.
//
// Under systemd (NOTIFY_SOCKET set) each of these steps is also told to the service manager:
// ready, reloading and ready again, stopping, and watchdog pings (service_notify.h).
//
// Drain: on the first SIGTERM or SIGINT, /ready answers 503 at once so that load balancers stop
// sending; for drain_accept_grace the listeners still accept and serve as usual (so that a
// balancer that has not yet seen /ready fail gets answers, not refusals); then every worker stops
// accepting (after taking the connections already queued by the kernel), closes idle keep-alive
// connections and lets in-flight requests finish (their responses carry Connection: close). The
// process exits 0 once every connection is gone. If drain_timeout passes first, or a second
// signal abandons the drain (and the grace) at once, the requests still running are cut: the
// number is logged and the exit code is 1.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "gateway/config/config.h"
#include "gateway/etcd/etcd_url.h"
#include "gateway/etcd/range_watch.h"
#include "gateway/redis/redis_client.h"
#include "gateway/server/reload_history.h"

namespace sluice::gateway::admin {
class AdminServer;
struct Response;
struct ApiRequest;
}  // namespace sluice::gateway::admin
namespace sluice::gateway::log {
class AccessLog;
}
namespace sluice::gateway::trace {
class SpanExporter;
}
namespace sluice::gateway::guards {
class PermitStore;
class BreakerStore;
class BreakerSync;
}  // namespace sluice::gateway::guards
namespace sluice::gateway::redis {
class RedisPermitStore;
class RedisBreakerStore;
}  // namespace sluice::gateway::redis
namespace sluice::gateway::etcd {
class EtcdClient;
}

namespace sluice::gateway::server {

class Worker;
struct Snapshot;
class StateRegistry;
class DiscoveryService;
class ConfigWatcher;
class ServiceNotifier;
class Fleet;

class Server {
 public:
  struct Options {
    // The file the config came from: SIGHUP, POST /config/reload and --watch read it again.
    // Empty: the config has no file (the demo), and a reload is refused.
    std::string config_path;
    std::string source;  // where the config came from, for /config (the path, or "<demo>")
    std::string hash;    // of the config's bytes, for /config
    bool watch = false;  // reload when config_path changes
    int workers = 0;     // overrides the config's `workers` when > 0 (`run -w`)
    // Overrides the config's log.level for the process's life (`--log-level`).
    std::optional<config::Log::Level> log_level;
    // `run -c etcd://...`: the config is the value of a key, watched; every change to it is
    // reloaded (and SIGHUP or POST /config/reload read it again). config_path is empty then.
    struct Etcd {
      etcd::EtcdUrl url;
      std::int64_t revision = 0;    // the revision that wrote the value the config came from
      std::int64_t watch_from = 0;  // the first store revision after the read
    };
    std::optional<Etcd> etcd;
  };

  [[nodiscard]] static std::unique_ptr<Server> create(config::Config config, Options options,
                                                      std::string* error);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves until a signal or requestDrain(), then drains. Returns the process exit code.
  // `ready` runs once every signal is handled and the workers accept (what a script waiting for
  // the "serving" line may rely on).
  int run(const std::function<void()>& ready = {});
  void requestDrain();  // thread-safe

  struct ReloadResult {
    bool applied = false;
    std::uint64_t generation = 0;       // the generation served now
    std::vector<std::string> problems;  // why not applied ("file:line:column: message", ...)
  };
  // Reads the config file again and applies it, or changes nothing. Main thread.
  ReloadResult reload(std::string_view trigger);
  // Applies an already validated config (`text`: its bytes, for the hash). Main thread.
  // `started`: when the reload began (reported in the log with the time it took).
  ReloadResult apply(
      config::Config next, std::string_view text, std::string_view trigger,
      std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now());

  [[nodiscard]] std::size_t workerCount() const noexcept { return workers_.size(); }
  [[nodiscard]] boost::asio::io_context& mainContext() noexcept { return io_; }

 private:
  Server();
  void registerAdmin();
  // reload() without telling systemd: reads the file (or the etcd key) and applies it, or refuses.
  ReloadResult readAndApply(std::string_view trigger);
  // Runs a reload, telling systemd it is reloading and then what is served.
  ReloadResult toldToSystemd(const std::function<ReloadResult()>& reload);
  // The etcd config key changed (written or deleted): from the watch.
  void applyEtcdChange(const etcd::RangeWatch::State& state);
  // Validates `text` (named `name` in diagnostics) and applies it, or refuses. `revision`: the
  // etcd revision that wrote it (0 for a file).
  ReloadResult loadAndApply(const std::string& text, const std::string& name, std::int64_t revision,
                            std::string_view trigger,
                            std::chrono::steady_clock::time_point started);
  // Counts, records and logs a refused reload; returns `r`.
  ReloadResult refuse(ReloadResult r, std::string_view trigger,
                      std::chrono::steady_clock::time_point started);
  [[nodiscard]] std::string listenersText() const;
  void startDrain();
  void beginWorkerDrain();
  void pollDrain();
  // Why `next` cannot replace the running config without a restart, if it cannot.
  [[nodiscard]] std::vector<std::string> checkReloadable(const config::Config& next) const;
  // (Re)builds discovery for the generation being served (and the etcd section's client and
  // fleet registration, when the section changed).
  void rebuildDiscovery();
  // The client for the config's etcd section (null without one): the config source's client
  // when they name the same cluster, else one of its own, remade when the section changes.
  etcd::EtcdClient* applyEtcdSection(const std::optional<config::Etcd>& section);
  // A cluster's HostSet changed: reset per-slot shared state of slots that changed hands, and
  // (post) give every worker the new slots.
  void noteOccupants(std::string_view cluster);
  void publishHosts(std::string_view cluster);
  // Publishes at once, or - within 20 ms of the last publish - once at the end of those 20 ms
  // for all the changes made meanwhile: a burst of registrations (or a client looping
  // PUT/DELETE) costs the workers at most 50 updates a second.
  void schedulePublish(std::string_view cluster);
  void flushAccessLogSoon();
  [[nodiscard]] admin::Response configResponse(std::string_view query) const;
  [[nodiscard]] admin::Response canaryResponse(const admin::ApiRequest& r);
  [[nodiscard]] admin::Response debugRequestsResponse(const admin::ApiRequest& r);
  // The span exporter for a generation of `config`: made or reconfigured here; null when the
  // config has no tracing.
  trace::SpanExporter* applyTracing(const config::Config& config);
  // The Redis client and permit store for a generation: made or reconfigured here; null when
  // the config has no redis section (`settings` unset).
  guards::PermitStore* applyRedis(const std::optional<redis::ClientSettings>& settings);
  // Likewise where shared circuit breakers keep their state; call after applyRedis.
  [[nodiscard]] guards::BreakerStore* breakerStore(
      const std::optional<redis::ClientSettings>& settings) const;
  // Shared circuit breakers: one read of the store every BreakerSync::kInterval, on this loop.
  void syncBreakersSoon();
  // Before the workers take traffic, so that the first requests find Redis set up (global limits
  // global, not on_failure) and a restarted instance starts from the shared breaker state: waits
  // for the Redis connection and one read of the shared breakers, for at most 500 ms.
  void syncRedisAtStart();
  [[nodiscard]] admin::Response reloadResponse(std::string_view method);
  [[nodiscard]] admin::Response statsResponse() const;
  // Keeps a reload's outcome for /stats (`started`: when its trigger came).
  void noteReload(std::string_view trigger, const ReloadResult& r,
                  std::chrono::steady_clock::time_point started);

  boost::asio::io_context io_{1};
  Options options_;
  std::unique_ptr<StateRegistry> registry_;
  std::shared_ptr<const Snapshot> snapshot_;  // the generation being served
  std::uint64_t generation_ = 0;
  std::uint64_t reloads_ok_ = 0;
  std::uint64_t reloads_failed_ = 0;
  std::chrono::system_clock::time_point last_success_{};
  std::chrono::system_clock::time_point started_at_{};
  ReloadHistory reload_history_;
  std::unique_ptr<DiscoveryService> discovery_;
  std::unique_ptr<ConfigWatcher> watcher_;
  std::unique_ptr<log::AccessLog> access_log_;
  // Created by the first config with `tracing` and kept (workers hold plain pointers to it):
  // declared before workers_ so that it outlives them.
  std::unique_ptr<trace::SpanExporter> spans_;
  // Created by the first config with `redis` and kept, like spans_ (guards hold plain pointers to
  // the store); stopped once the workers are, so that no reply wakes a request on a gone worker.
  std::unique_ptr<redis::RedisClient> redis_;
  std::unique_ptr<redis::RedisPermitStore> permits_;
  std::unique_ptr<redis::RedisBreakerStore> breaker_store_;
  std::unique_ptr<guards::BreakerSync> breaker_sync_;
  boost::asio::steady_timer breaker_timer_{io_};
  // `run -c etcd://...`: the client and the watch of the config key (the watch goes first).
  std::unique_ptr<etcd::EtcdClient> etcd_;
  std::unique_ptr<etcd::RangeWatch> etcd_config_;
  std::int64_t config_revision_ = 0;  // the etcd revision of the config served (0: from a file)
  // The config's etcd section: discovery.etcd and etcd.register use its client.
  std::optional<config::Etcd> etcd_section_;
  std::unique_ptr<etcd::EtcdClient> section_client_;  // when not the config source's
  etcd::EtcdClient* section_etcd_ = nullptr;
  std::unique_ptr<Fleet> fleet_;  // etcd.register
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<admin::AdminServer> admin_;
  std::atomic<bool> draining_{false};  // /ready says 503
  bool workers_draining_ = false;      // the accept grace is over
  std::unique_ptr<boost::asio::steady_timer> grace_timer_;
  boost::asio::steady_timer flush_timer_{io_};
  bool running_ = false;
  std::chrono::steady_clock::time_point drain_deadline_{};
  const char* stop_reason_ = "drain_timeout";
  int exit_code_ = 0;
  int signals_seen_ = 0;
  std::unique_ptr<ServiceNotifier> notifier_;  // sd_notify: readiness, reloads, watchdog
};

// "xxh3:<16 hex digits>" of a config's bytes: what /config shows as its hash.
[[nodiscard]] std::string contentHash(std::string_view bytes);

}  // namespace sluice::gateway::server
