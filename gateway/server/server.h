// The process: N workers, plus the main thread that owns signals, the admin listener and the
// drain.
//
//   auto server = Server::create(std::move(config), &error);   // binds every socket or fails
//   return server->run();   // serves until SIGTERM/SIGINT (or requestDrain()), drains, returns 0
//
// Active health checks (upstream/health_checker.h) run on the main thread's event loop too.
//
// Drain: on the first SIGTERM or SIGINT every worker stops accepting (after taking the
// connections already queued by the kernel), closes idle keep-alive connections, lets in-flight
// requests finish (their responses carry Connection: close), and the process exits 0 once every
// connection is gone or drain_timeout has passed. /ready answers 503 from the first moment of
// the drain so that load balancers stop sending. A second signal abandons the drain at once.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json_fwd.hpp>

#include "gateway/config/config.h"

namespace sluice::gateway::admin {
class AdminServer;
}
namespace sluice::gateway::log {
class AccessLog;
}
namespace sluice::gateway::upstream {
class HealthChecker;
}

namespace sluice::gateway::server {

class Worker;
struct Snapshot;
class DiscoveryService;

class Server {
 public:
  [[nodiscard]] static std::unique_ptr<Server> create(config::Config config, std::string* error);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves until a signal or requestDrain(), then drains. Returns the process exit code.
  int run();
  void requestDrain();  // thread-safe

  [[nodiscard]] std::size_t workerCount() const noexcept { return workers_.size(); }
  [[nodiscard]] boost::asio::io_context& mainContext() noexcept { return io_; }

 private:
  Server() = default;
  void startDrain();
  void pollDrain();
  [[nodiscard]] std::string renderMetrics() const;
  [[nodiscard]] nlohmann::json breakersJson() const;
  [[nodiscard]] nlohmann::json upstreamsJson() const;
  // A cluster's HostSet changed: reset per-slot health state of slots that changed hands, and
  // post the new slots to every worker.
  void publishHosts(std::size_t cluster);
  // Publishes at once, or - within 20 ms of the last publish - once at the end of those 20 ms
  // for all the changes made meanwhile: a burst of registrations (or a client looping
  // PUT/DELETE) costs the workers at most 50 updates a second.
  void schedulePublish(std::size_t cluster);

  boost::asio::io_context io_{1};
  std::shared_ptr<const Snapshot> snapshot_;
  std::vector<std::unique_ptr<upstream::HealthChecker>> health_checkers_;  // [cluster] or null
  std::unique_ptr<DiscoveryService> discovery_;
  std::vector<std::vector<std::uint64_t>> published_occupants_;             // [cluster][slot]
  std::vector<std::unique_ptr<boost::asio::steady_timer>> publish_timers_;  // [cluster]
  std::vector<bool> publish_pending_;                                       // [cluster]
  std::vector<std::chrono::steady_clock::time_point> last_publish_;         // [cluster]
  std::unique_ptr<log::AccessLog> access_log_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<admin::AdminServer> admin_;
  std::atomic<bool> draining_{false};
  std::chrono::steady_clock::time_point drain_deadline_{};
  int signals_seen_ = 0;
};

}  // namespace sluice::gateway::server
