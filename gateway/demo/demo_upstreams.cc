#include "gateway/demo/demo_upstreams.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

#include "gateway/net/socket_io.h"

namespace sluice::gateway::demo {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

asio::awaitable<void> serve(tcp::socket socket, DemoUpstreamSpec spec) {
  boost::beast::flat_buffer buffer;
  asio::steady_timer delay(socket.get_executor());
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(1024 * 1024);
    auto [ec, n] = co_await bhttp::async_read(socket, buffer, parser, net::kNoThrow);
    if (ec) break;
    const auto& req = parser.get();
    if (spec.latency.count() > 0) {
      delay.expires_after(spec.latency);
      co_await delay.async_wait(net::kNoThrow);
    }
    nlohmann::json body = {{"upstream", spec.name},
                           {"method", std::string(req.method_string())},
                           {"path", std::string(req.target())},
                           {"latency_ms", spec.latency.count()},
                           {"request_id", std::string(req["X-Request-Id"])},
                           {"forwarded_for", std::string(req["X-Forwarded-For"])}};
    bhttp::response<bhttp::string_body> res{bhttp::status::ok, req.version()};
    res.set(bhttp::field::content_type, "application/json");
    res.set(bhttp::field::server, "sluice-demo-upstream");
    res.body() = body.dump() + "\n";
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    auto [wec, wn] = co_await bhttp::async_write(socket, res, net::kNoThrow);
    if (wec || !req.keep_alive()) break;
  }
}

asio::awaitable<void> acceptLoop(std::shared_ptr<tcp::acceptor> acceptor, DemoUpstreamSpec spec) {
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(net::kNoThrow);
    if (ec) co_return;
    asio::co_spawn(acceptor->get_executor(), serve(std::move(socket), spec), asio::detached);
  }
}

}  // namespace

DemoUpstreams::DemoUpstreams() = default;

DemoUpstreams::~DemoUpstreams() { stop(); }

std::vector<std::string> DemoUpstreams::start(const std::vector<DemoUpstreamSpec>& specs) {
  std::vector<std::string> addresses;
  for (const auto& spec : specs) {
    auto acceptor =
        std::make_shared<tcp::acceptor>(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    addresses.push_back("127.0.0.1:" + std::to_string(acceptor->local_endpoint().port()));
    asio::co_spawn(io_, acceptLoop(acceptor, spec), asio::detached);
  }
  thread_ = std::thread([this] { io_.run(); });
  return addresses;
}

void DemoUpstreams::stop() {
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace sluice::gateway::demo
