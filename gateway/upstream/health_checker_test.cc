// Probes against real sockets on 127.0.0.1: each kind of answer maps to its result.
#include "gateway/upstream/health_checker.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "gateway/net/socket_io.h"

namespace sluice::gateway::upstream {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using R = ActiveHealth::Result;

// Accepts connections and answers each with `reply` once a request head arrived (nothing at
// all when `reply` is empty), remembering the last request.
struct FakeHost {
  FakeHost(asio::io_context& io, std::string answer)
      : acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        reply(std::move(answer)) {
    asio::co_spawn(io, serve(), asio::detached);
  }
  asio::awaitable<void> serve() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(net::kNoThrow);
      if (ec) co_return;
      std::string got;
      std::array<char, 1024> buf{};
      while (got.find("\r\n\r\n") == std::string::npos) {
        auto [rec, n] = co_await socket.async_read_some(asio::buffer(buf), net::kNoThrow);
        if (rec) break;
        got.append(buf.data(), n);
      }
      request = got;
      if (reply.empty()) {
        held.push_back(std::move(socket));  // never answers
        continue;
      }
      co_await asio::async_write(socket, asio::buffer(reply), net::kNoThrow);
    }
  }
  tcp::endpoint endpoint() const { return acceptor.local_endpoint(); }

  tcp::acceptor acceptor;
  std::string reply;
  std::string request;
  std::vector<tcp::socket> held;
};

tcp::endpoint closedPort(asio::io_context& io) {
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint();  // closed when `a` goes
}

// Runs one probe of every host (interval 1 h, no jitter: the first probe is at once).
std::shared_ptr<ActiveHealth> probeAll(asio::io_context& io, config::HealthCheck hc,
                                       const std::vector<tcp::endpoint>& hosts) {
  hc.interval = std::chrono::hours(1);
  hc.jitter = config::Millis(0);
  hc.timeout = config::Millis(300);
  std::vector<HostSet::Host> statics;
  for (const auto& e : hosts) {
    HostSet::Host h;
    h.address = e.address().to_string() + ":" + std::to_string(e.port());
    h.endpoint = e;
    statics.push_back(h);
  }
  const HostSet set(statics, 0);
  auto health = std::make_shared<ActiveHealth>(hosts.size(), 1, 1);
  HealthChecker checker(io, "c", hc, set, health);
  checker.start();
  const auto all_checked = [&] {
    for (std::size_t h = 0; h < hosts.size(); ++h) {
      if (!health->status(h).checked) return false;
    }
    return true;
  };
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!all_checked() && std::chrono::steady_clock::now() < give_up) {
    io.run_for(std::chrono::milliseconds(10));
  }
  return health;
}

TEST(HealthChecker, HttpProbeResults) {
  asio::io_context io;
  FakeHost ok(io, "HTTP/1.1 204 No Content\r\n\r\n");
  FakeHost failing(io, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
  FakeHost garbage(io, "SSH-2.0-OpenSSH\r\n\r\n");
  FakeHost silent(io, "");
  config::HealthCheck hc;
  hc.path = "/healthz?deep=1";
  hc.host = "api.internal";
  const auto health = probeAll(
      io, hc,
      {ok.endpoint(), failing.endpoint(), garbage.endpoint(), silent.endpoint(), closedPort(io)});
  const auto result = [&](std::size_t h) { return health->status(h).last_result; };
  EXPECT_EQ(result(0), R::Success);
  EXPECT_EQ(result(1), R::BadStatus);
  EXPECT_EQ(result(2), R::BadResponse);
  EXPECT_EQ(result(3), R::Timeout);
  EXPECT_EQ(result(4), R::ConnectFailure);
  EXPECT_TRUE(health->healthy(0));
  EXPECT_EQ(health->healthyCount(), 1U);
  EXPECT_EQ(ok.request,
            "GET /healthz?deep=1 HTTP/1.1\r\nHost: api.internal\r\n"
            "User-Agent: sluice-health-check\r\nConnection: close\r\n\r\n");
}

TEST(HealthChecker, HostDefaultsToTheEndpointAndStatusesAreConfigurable) {
  asio::io_context io;
  FakeHost moved(io, "HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n");
  config::HealthCheck hc;
  auto health = probeAll(io, hc, {moved.endpoint()});
  EXPECT_EQ(health->status(0).last_result, R::BadStatus);
  EXPECT_NE(
      moved.request.find("\r\nHost: 127.0.0.1:" + std::to_string(moved.endpoint().port()) + "\r\n"),
      std::string::npos);
  hc.expected_statuses = {{200, 299}, {301, 301}};
  health = probeAll(io, hc, {moved.endpoint()});
  EXPECT_EQ(health->status(0).last_result, R::Success);
}

TEST(HealthChecker, TcpProbeOnlyConnects) {
  asio::io_context io;
  FakeHost silent(io, "");
  config::HealthCheck hc;
  hc.type = config::HealthCheck::Type::Tcp;
  const auto health = probeAll(io, hc, {silent.endpoint(), closedPort(io)});
  EXPECT_EQ(health->status(0).last_result, R::Success);
  EXPECT_EQ(health->status(1).last_result, R::ConnectFailure);
}

}  // namespace
}  // namespace sluice::gateway::upstream
