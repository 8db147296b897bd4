// One worker: an event loop on its own thread with its own SO_REUSEPORT listening sockets,
// its own connections, upstream pools, load-balancer state and stat shards. Nothing on a worker's
// request path is shared with another worker: the kernel spreads connections over the
// listeners, and a connection never leaves the worker that accepted it.
//
// Lifecycle (driven by server::Server on the main thread):
//   Worker w(i, first_update, log);  w.start();
//   ... w.adopt(next_update, done);   (a reload: applied between requests, see below)
//   ... w.beginDrain();  (stop accepting, close idle connections, finish in-flight requests)
//   ... until w.finished() or the drain timeout;  w.stop();  w.join();
//
// Config generations. A worker serves one generation (WorkerGeneration: a Snapshot plus this
// worker's upstream::Cluster objects and counter shards) and keeps the older ones that requests
// still run on. A request pins the generation it started on (GenerationPin, taken when its
// route is chosen) and uses it to the end - its guards, cluster, pools, retries and counters -
// whatever reloads happen meanwhile; the next request on the same keep-alive connection takes
// the current one. Pins are a plain count on the worker's own thread (no shared atomic on the
// request path); an old generation is freed when its last pin goes.
//
// adopt() carries this worker's clusters over: a cluster whose state and `lb` are unchanged keeps
// its upstream::Cluster (new pool limits applied in place, hosts updated as discovery does);
// otherwise a new upstream::Cluster takes over the idle connections of the old one, which lives
// on for the requests still using it. Listeners are matched by name and address: a kept one
// takes new limits and timeouts at once (read by its connections at each request), a new one
// starts accepting on the descriptor the server bound for this worker, and a removed one stops
// accepting (after taking the connections already queued) while its connections drain as in a
// shutdown.
#pragma once

#include <atomic>
#include <functional>
#include <list>
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
#include "gateway/proxy/in_flight_request.h"
#include "gateway/server/generation.h"
#include "gateway/server/listen_socket.h"
#include "gateway/server/snapshot.h"
#include "gateway/stats/worker_stats.h"
#include "gateway/upstream/cluster.h"

namespace sluice::gateway::log {
class AccessLog;
}
namespace sluice::gateway::proxy {
class DownstreamConnection;
}
namespace sluice::gateway::trace {
class SpanExporter;
}

namespace sluice::gateway::server {

// What a worker is told to serve next.
struct WorkerUpdate {
  std::shared_ptr<const Snapshot> snapshot;
  // [cluster]: its HostSet's slots as of the update.
  std::vector<std::shared_ptr<const std::vector<upstream::HostSet::Host>>> hosts;
  // Bound descriptors of the listeners this worker does not have yet, by listener name.
  ListenFds listeners;
  log::AccessLog* access_log = nullptr;  // null: none; owned by the server, outlives the update
  trace::SpanExporter* spans = nullptr;  // null: tracing off; owned by the server, outlives it
};

class Worker {
 public:
  // Serves `first` from start() on. Main thread.
  Worker(std::size_t index, WorkerUpdate first);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  void start();
  // Serve `update` from the next request on (any thread); `done` runs on the worker's loop once
  // it does.
  void adopt(WorkerUpdate update, std::function<void()> done);
  void beginDrain();  // any thread
  // A cluster's hosts changed (any thread): applied on the worker's loop between requests, to
  // every upstream::Cluster built on `cluster` (the current one, and older ones still running).
  void updateHosts(std::shared_ptr<const upstream::ClusterState> cluster,
                   std::shared_ptr<const std::vector<upstream::HostSet::Host>> slots);
  // Copies of the requests in flight on this worker, handed to `done` on the worker's loop
  // (any thread).
  void collectRequests(std::function<void(std::vector<proxy::InFlightRequest>)> done);
  void stop();  // any thread: abandon whatever is left
  void join();
  [[nodiscard]] bool finished() const noexcept { return finished_.load(std::memory_order_acquire); }
  [[nodiscard]] std::size_t connections() const noexcept {
    return connection_count_.load(std::memory_order_relaxed);
  }
  // The generation this worker serves now (any thread).
  [[nodiscard]] std::uint64_t generation() const noexcept {
    return generation_.load(std::memory_order_acquire);
  }
  [[nodiscard]] const stats::WorkerStats& stats() const noexcept { return *stats_; }

  // Worker thread only.
  [[nodiscard]] boost::asio::io_context& io() noexcept { return io_; }
  [[nodiscard]] net::TimerWheel& wheel() noexcept { return wheel_; }
  [[nodiscard]] stats::WorkerStats& stats() noexcept { return *stats_; }
  // The current generation, pinned for a request.
  [[nodiscard]] GenerationPin pin() noexcept { return GenerationPin(current_.get()); }
  [[nodiscard]] http::RequestIdGenerator& requestIds() noexcept { return request_ids_; }
  [[nodiscard]] log::AccessLog* accessLog() const noexcept { return access_log_; }
  [[nodiscard]] trace::SpanExporter* spanExporter() const noexcept { return spans_; }
  [[nodiscard]] bool draining() const noexcept { return draining_; }
  // A connection freed its per-request memory on going idle; the worker hands such memory back
  // to the OS in bulk (see tickLoop).
  void noteColdConnection() noexcept { ++cold_since_trim_; }
  void attach(proxy::DownstreamConnection& c, WorkerListener& l) noexcept;
  void detach(proxy::DownstreamConnection& c, WorkerListener& l) noexcept;

 private:
  friend class GenerationPin;

  void apply(WorkerUpdate update);
  void applyListeners(const config::Config& config, ListenFds& fds);
  // Takes the connections already queued, then closes the listening socket.
  void stopAccepting(WorkerListener& l);
  void removeListener(WorkerListener& l);
  void maybeFree(WorkerListener& l);
  void free(WorkerGeneration* g);
  boost::asio::awaitable<void> acceptLoop(WorkerListener& l);
  boost::asio::awaitable<void> tickLoop();
  void spawn(boost::asio::ip::tcp::socket socket, WorkerListener& listener);
  void drainNow();
  void checkFinished();
  // Every upstream::Cluster alive on this worker (current generation first), each once.
  [[nodiscard]] std::vector<upstream::Cluster*> liveClusters() const;

  // An io_context whose pending handlers can be destroyed before it is (see ~Worker).
  class Context : public boost::asio::io_context {
   public:
    using boost::asio::io_context::io_context;
    void destroyPendingHandlers() { shutdown(); }
  };

  std::size_t index_;
  Context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  log::AccessLog* access_log_ = nullptr;
  trace::SpanExporter* spans_ = nullptr;
  std::unique_ptr<stats::WorkerStats> stats_;
  net::TimerWheel wheel_;
  std::unique_ptr<WorkerGeneration> current_;
  std::vector<std::unique_ptr<WorkerGeneration>> retired_;  // still pinned by requests
  std::atomic<std::uint64_t> generation_{0};
  std::list<WorkerListener> listeners_;  // stable addresses: connections point at theirs
  http::RequestIdGenerator request_ids_;
  proxy::DownstreamConnection* connections_ = nullptr;  // intrusive list head
  std::atomic<std::size_t> connection_count_{0};
  bool started_ = false;
  bool draining_ = false;
  std::size_t cold_since_trim_ = 0;
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

}  // namespace sluice::gateway::server
