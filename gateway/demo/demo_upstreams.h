// The built-in upstreams of `sluice demo`: small HTTP/1.1 servers on 127.0.0.1 that answer every
// request with a JSON description of it after a fixed latency, so the demo shows balancing,
// timeouts and metrics without any other process. Not for production use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

namespace sluice::gateway::demo {

struct DemoUpstreamSpec {
  std::string name;
  std::chrono::milliseconds latency{0};
};

class DemoUpstreams {
 public:
  DemoUpstreams();
  ~DemoUpstreams();
  DemoUpstreams(const DemoUpstreams&) = delete;
  DemoUpstreams& operator=(const DemoUpstreams&) = delete;

  // Starts one server per spec on 127.0.0.1 and a free port; returns "127.0.0.1:port" of each.
  std::vector<std::string> start(const std::vector<DemoUpstreamSpec>& specs);
  void stop();

 private:
  boost::asio::io_context io_;
  std::thread thread_;
};

}  // namespace sluice::gateway::demo
