// What a worker's connections hold on to across a reload (worker.h tells the whole story):
//   WorkerListener   a listening address on one worker, whose limits and timeouts a reload may
//                    change in place and which a reload may remove while its connections drain;
//   WorkerGeneration one config generation on one worker;
//   GenerationPin    a request's hold on the generation it started on.
// Worker thread only, all of it.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/config/config.h"
#include "gateway/server/snapshot.h"
#include "gateway/stats/shards.h"
#include "gateway/upstream/cluster.h"

namespace sluice::gateway::server {

class Worker;

// A listening address as one worker serves it.
struct WorkerListener {
  WorkerListener(boost::asio::io_context& io, config::Listener c)
      : config(std::move(c)), acceptor(io) {}
  config::Listener config;  // updated in place by a reload that keeps the listener
  boost::asio::ip::tcp::acceptor acceptor;
  std::size_t connections = 0;  // open connections accepted here
  bool accepting = false;       // its accept loop runs
  bool removed = false;         // a reload removed it: freed once its connections are gone
  bool draining = false;        // the worker drains, or the listener was removed
};

// One config generation on one worker.
struct WorkerGeneration {
  std::shared_ptr<const Snapshot> snapshot;
  std::vector<std::shared_ptr<upstream::Cluster>> clusters;  // [cluster]
  std::vector<stats::RouteShard*> backends;  // [RouteBackend::slot]: this worker's counters
  std::vector<stats::MirrorShard*> mirrors;  // [route]: this worker's, null for no mirror
  std::size_t pins = 0;                      // requests running on it
  bool retired = false;                      // no longer current
  Worker* worker = nullptr;
};

// A request's hold on its generation. Move-only; releasing the last pin of a retired
// generation frees it.
class GenerationPin {
 public:
  GenerationPin() = default;
  explicit GenerationPin(WorkerGeneration* g) noexcept : g_(g) { ++g_->pins; }
  GenerationPin(GenerationPin&& o) noexcept : g_(std::exchange(o.g_, nullptr)) {}
  GenerationPin& operator=(GenerationPin&& o) noexcept {
    if (this != &o) {
      release();
      g_ = std::exchange(o.g_, nullptr);
    }
    return *this;
  }
  GenerationPin(const GenerationPin&) = delete;
  GenerationPin& operator=(const GenerationPin&) = delete;
  ~GenerationPin() { release(); }

  void release() noexcept;
  explicit operator bool() const noexcept { return g_ != nullptr; }
  WorkerGeneration* operator->() const noexcept { return g_; }
  WorkerGeneration& operator*() const noexcept { return *g_; }

 private:
  WorkerGeneration* g_ = nullptr;
};

}  // namespace sluice::gateway::server
