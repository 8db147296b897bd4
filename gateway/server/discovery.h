// DiscoveryService: changes clusters' hosts while sluice runs, on the main thread.
//
//   registry  the admin API (mounted at /registry):
//               PUT    /registry/<cluster>/<ip:port>   register, or renew with new weight/TTL;
//                      body (optional, JSON): {"weight": 2, "ttl_ms": 10000,
//                      "metadata": {"zone": "a"}}  -> 201 added / 200 renewed
//               POST   /registry/<cluster>/<ip:port>/heartbeat   renew the TTL -> 200, or 404
//                      once it expired (the instance should register again)
//               DELETE /registry/<cluster>/<ip:port>   leave now -> 200 / 404
//               GET    /registry                        every registered host, with TTL left
//             A host whose TTL passes without a heartbeat is removed (checked every 100 ms).
//   file      discovery.file is polled every file_interval (size, mtime, inode: an atomic
//             rename is seen too); a valid new version replaces the file's hosts, an invalid
//             one is reported (file:line:column) and the previous hosts stay.
//   etcd      the keys under discovery.etcd are watched (etcd/range_watch.h); after each change
//             the cluster's etcd hosts become the values there (registry_request.h:
//             parseEtcdEndpoint); a value that is not a valid endpoint is reported with its key
//             and that key keeps its last valid value (a typo in an update does not take a
//             serving host out), or gives no host. While etcd is unreachable the hosts stay. A host
//             whose key goes (deleted, or its lease expired) leaves and drains.
//
// After every change `publish(cluster)` is called; the server then tells health checking,
// outlier detection and the workers (Server::publishHosts).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json_fwd.hpp>

#include "gateway/admin/admin_server.h"
#include "gateway/config/config.h"
#include "gateway/etcd/range_watch.h"
#include "gateway/upstream/host_set.h"

namespace sluice::gateway::server {

class DiscoveryService {
 public:
  // A cluster as discovery sees it: its definition and its hosts (owned by the state registry;
  // both outlive the service, which the server rebuilds on every reload).
  struct Target {
    const config::Cluster* config;
    upstream::HostSet* hosts;
  };
  using Publish = std::function<void(std::size_t cluster)>;  // an index in `clusters`

  // `etcd`: the client of the config's etcd section (null without one; then no cluster has
  // discovery.etcd). Clusters without discovery.etcd lose any hosts they had from etcd.
  DiscoveryService(boost::asio::io_context& io, std::vector<Target> clusters, Publish publish,
                   etcd::EtcdClient* etcd = nullptr);
  ~DiscoveryService();

  // Reads the endpoint files once (so that their hosts are there before traffic) and starts the
  // TTL sweep and file polls.
  void start();
  void stop();
  [[nodiscard]] admin::Response handle(const admin::ApiRequest& request);
  [[nodiscard]] bool any() const noexcept {
    return registry_ || !files_.empty() || !prefixes_.empty();
  }

 private:
  struct WatchedFile {
    std::size_t cluster;
    std::string path;
    config::Millis interval;
    struct stat seen {};
    bool read_once = false;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  struct WatchedPrefix {
    std::size_t cluster;
    std::string prefix;
    std::unique_ptr<etcd::RangeWatch> watch;
    // Each key's last valid value: a bad write to a key keeps its host as it was.
    std::map<std::string, upstream::HostSet::Host> valid;
  };

  void sweep();
  void applyEtcd(WatchedPrefix& p, const etcd::RangeWatch::State& state);
  void poll(WatchedFile& f);
  void schedulePoll(WatchedFile& f);
  [[nodiscard]] nlohmann::json listJson() const;
  [[nodiscard]] std::optional<std::size_t> clusterNamed(std::string_view name) const;

  boost::asio::io_context& io_;
  std::vector<Target> clusters_;
  Publish publish_;
  bool registry_ = false;
  boost::asio::steady_timer sweep_timer_;
  std::vector<WatchedFile> files_;
  etcd::EtcdClient* etcd_;
  std::vector<WatchedPrefix> prefixes_;
  bool stopped_ = false;
};

}  // namespace sluice::gateway::server
