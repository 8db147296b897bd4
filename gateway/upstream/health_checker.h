// HealthChecker: probes every host of one cluster on the main thread's event loop, off the
// workers, and records the results in the cluster's ActiveHealth (upstream/active_health.h),
// which workers read on every pick.
//
//   auto checker = std::make_unique<HealthChecker>(io, cluster.name, *cluster.health_check,
//                                                  host_set, health);
//   checker->start();   // one probe loop per slot of the HostSet
//   checker->wake(slot);  // the slot got a new host: probe it now
//   checker->stop();    // or destroy it; a probe in flight is abandoned
//
// Each host is probed on its own schedule: the first probe within `jitter` of start (so that a
// host down at start leaves selection at once, and checks of many hosts do not fire together),
// then `interval` plus a random share of `jitter` after the previous probe finished - probes of
// one host never overlap, whatever the timeout. A probe is a fresh connection:
//   tcp   the connect succeeds;
//   http  `GET path HTTP/1.1` with Host (the configured host or the endpoint's address),
//         `Connection: close` and `User-Agent: sluice-health-check`; the response head is read
//         by the same strict parser as proxied responses and its status must be expected;
//         the body is not read.
// All within `timeout`. One probe costs a connect, a write and a read: with hundreds of hosts
// checked every second the main thread stays far from busy.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/config/config.h"
#include "gateway/upstream/active_health.h"
#include "gateway/upstream/host_set.h"

namespace sluice::gateway::upstream {

class HealthChecker {
 public:
  // `hosts` must outlive the checker; it is read on the same (main) thread that changes it.
  HealthChecker(boost::asio::io_context& io, const std::string& cluster,
                const config::HealthCheck& settings, const HostSet& hosts,
                const std::shared_ptr<ActiveHealth>& health);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  void start();
  void stop();
  void wake(std::size_t slot);

  struct Probe;  // one host's loop state (health_checker.cc)

 private:
  boost::asio::io_context& io_;
  std::vector<std::shared_ptr<Probe>> probes_;
};

}  // namespace sluice::gateway::upstream
