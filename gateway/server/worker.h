// One worker: an event loop on its own thread with its own SO_REUSEPORT listening sockets,
// its own connections, upstream pools, load-balancer state and stat shard. Nothing on a worker's
// request path is shared with another worker: the kernel spreads connections over the
// listeners, and a connection never leaves the worker that accepted it.
//
// Lifecycle (driven by server::Server on the main thread):
//   Worker w(i, snapshot, log);  w.listen();  w.start();
//   ... w.beginDrain();  (stop accepting, close idle connections, finish in-flight requests)
//   ... until w.finished() or the drain timeout;  w.stop();  w.join();
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/http/request_id.h"
#include "gateway/net/timer_wheel.h"
#include "gateway/server/snapshot.h"
#include "gateway/stats/worker_stats.h"
#include "gateway/upstream/cluster.h"

namespace sluice::gateway::log {
class AccessLog;
}
namespace sluice::gateway::proxy {
class DownstreamConnection;
}

namespace sluice::gateway::server {

class Worker {
 public:
  Worker(std::size_t index, std::shared_ptr<const Snapshot> snapshot, log::AccessLog* access_log);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  // Binds this worker's listening sockets. Main thread, before start(). An error names the
  // listener and the reason (address in use, permission denied, ...).
  [[nodiscard]] std::optional<std::string> listen();
  void start();
  void beginDrain();  // any thread
  // A cluster's hosts changed (any thread): applied on the worker's loop between requests.
  void updateHosts(std::size_t cluster,
                   std::shared_ptr<const std::vector<upstream::HostSet::Host>> slots);
  void stop();  // any thread: abandon whatever is left
  void join();
  [[nodiscard]] bool finished() const noexcept { return finished_.load(std::memory_order_acquire); }
  [[nodiscard]] std::size_t connections() const noexcept {
    return connection_count_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] const stats::WorkerStats& stats() const noexcept { return *stats_; }

  // Worker thread only.
  [[nodiscard]] boost::asio::io_context& io() noexcept { return io_; }
  [[nodiscard]] net::TimerWheel& wheel() noexcept { return wheel_; }
  [[nodiscard]] stats::WorkerStats& stats() noexcept { return *stats_; }
  [[nodiscard]] const Snapshot& snapshot() const noexcept { return *snapshot_; }
  [[nodiscard]] upstream::Cluster& cluster(std::size_t i) noexcept { return *clusters_[i]; }
  [[nodiscard]] http::RequestIdGenerator& requestIds() noexcept { return request_ids_; }
  [[nodiscard]] log::AccessLog* accessLog() const noexcept { return access_log_; }
  [[nodiscard]] bool draining() const noexcept { return draining_; }
  [[nodiscard]] const bool& drainingFlag() const noexcept { return draining_; }
  // A connection freed its per-request memory on going idle; the worker hands such memory back
  // to the OS in bulk (see tickLoop).
  void noteColdConnection() noexcept { ++cold_since_trim_; }
  void attach(proxy::DownstreamConnection& c) noexcept;
  void detach(proxy::DownstreamConnection& c) noexcept;

 private:
  struct Acceptor {
    const config::Listener* listener;
    boost::asio::ip::tcp::acceptor socket;
  };

  boost::asio::awaitable<void> acceptLoop(Acceptor& a);
  boost::asio::awaitable<void> tickLoop();
  void spawn(boost::asio::ip::tcp::socket socket, const config::Listener& listener);
  void drainNow();
  void checkFinished();

  // An io_context whose pending handlers can be destroyed before it is (see ~Worker).
  class Context : public boost::asio::io_context {
   public:
    using boost::asio::io_context::io_context;
    void destroyPendingHandlers() { shutdown(); }
  };

  std::size_t index_;
  Context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::shared_ptr<const Snapshot> snapshot_;
  log::AccessLog* access_log_;
  std::unique_ptr<stats::WorkerStats> stats_;
  net::TimerWheel wheel_;
  std::vector<std::unique_ptr<upstream::Cluster>> clusters_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  http::RequestIdGenerator request_ids_;
  proxy::DownstreamConnection* connections_ = nullptr;  // intrusive list head
  std::atomic<std::size_t> connection_count_{0};
  bool draining_ = false;
  std::size_t cold_since_trim_ = 0;
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

}  // namespace sluice::gateway::server
