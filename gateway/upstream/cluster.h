// One cluster as one worker sees it: its load balancer and a connection pool per host.
// Not thread-safe; each worker builds its own from the shared Snapshot.
#pragma once

#include <memory>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/config/config.h"
#include "gateway/stats/worker_stats.h"
#include "gateway/upstream/connection_pool.h"
#include "gateway/upstream/load_balancer.h"

namespace sluice::gateway::upstream {

class Cluster {
 public:
  Cluster(boost::asio::any_io_executor executor, const config::Cluster& config,
          const std::vector<boost::asio::ip::tcp::endpoint>& endpoints,
          std::vector<stats::HostStats>& host_stats);

  [[nodiscard]] const config::Cluster& config() const noexcept { return config_; }
  [[nodiscard]] LoadBalancer& balancer() noexcept { return *balancer_; }
  [[nodiscard]] ConnectionPool& pool(std::size_t host) noexcept { return *pools_[host]; }
  [[nodiscard]] std::size_t size() const noexcept { return pools_.size(); }
  [[nodiscard]] const std::string& address(std::size_t host) const noexcept {
    return addresses_[host];
  }

  void sweep(std::chrono::steady_clock::time_point now);
  void closeIdle();

 private:
  const config::Cluster& config_;
  std::unique_ptr<LoadBalancer> balancer_;
  std::vector<std::unique_ptr<ConnectionPool>> pools_;
  std::vector<std::string> addresses_;
};

}  // namespace sluice::gateway::upstream
