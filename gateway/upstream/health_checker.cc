#include "gateway/upstream/health_checker.h"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "gateway/common/random.h"
#include "gateway/http/response_parser.h"
#include "gateway/net/socket_io.h"

namespace sluice::gateway::upstream {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Result = ActiveHealth::Result;

namespace {

constexpr std::size_t kMaxHead = std::size_t{16} * 1024;
constexpr std::size_t kMaxFields = 100;

}  // namespace

struct HealthChecker::Probe {
  Probe(asio::io_context& io, std::string cluster_name, config::HealthCheck hc, const HostSet& set,
        std::size_t slot, std::shared_ptr<ActiveHealth> h)
      : cluster(std::move(cluster_name)),
        settings(std::move(hc)),
        hosts(set),
        host(slot),
        health(std::move(h)),
        socket(io),
        timer(io),
        deadline(io) {}

  // Follows the slot's host; false while the slot is empty.
  bool track() {
    const HostSet::Host& h = hosts.slots()[host];
    if (h.empty()) return false;
    if (h.occupant == occupant) return true;
    occupant = h.occupant;
    host_address = h.address;
    endpoint = h.endpoint;
    if (settings.type == config::HealthCheck::Type::Http) {
      request = "GET " + settings.path +
                " HTTP/1.1\r\nHost: " + (settings.host.empty() ? host_address : settings.host) +
                "\r\nUser-Agent: sluice-health-check\r\nConnection: close\r\n\r\n";
    }
    return true;
  }

  std::string cluster;
  config::HealthCheck settings;
  const HostSet& hosts;
  std::size_t host;
  std::uint64_t occupant = 0;
  std::string host_address;
  tcp::endpoint endpoint;
  std::shared_ptr<ActiveHealth> health;
  std::string request;  // http only
  tcp::socket socket;
  asio::steady_timer timer;     // between probes
  asio::steady_timer deadline;  // the probe's timeout
  bool timed_out = false;
  bool stopped = false;
};

namespace {

Clock::duration randomUpTo(config::Millis max) {
  return std::chrono::duration_cast<Clock::duration>(max * uniformUnit());
}

asio::awaitable<Result> probeOnce(const std::shared_ptr<HealthChecker::Probe>& p) {
  auto& s = p->socket;
  boost::system::error_code ignored;
  s.close(ignored);
  p->timed_out = false;
  p->deadline.expires_after(p->settings.timeout);
  p->deadline.async_wait([p](const boost::system::error_code& ec) {
    if (ec) return;
    p->timed_out = true;
    boost::system::error_code e;
    p->socket.cancel(e);
  });
  const auto fail = [&](Result r) {
    p->deadline.cancel();
    s.close(ignored);
    return p->timed_out ? Result::Timeout : r;
  };
  auto [ec] = co_await s.async_connect(p->endpoint, net::kNoThrow);
  if (ec) co_return fail(Result::ConnectFailure);
  if (p->settings.type == config::HealthCheck::Type::Tcp) co_return fail(Result::Success);

  auto [wec, written] = co_await asio::async_write(s, asio::buffer(p->request), net::kNoThrow);
  if (wec) co_return fail(Result::ConnectFailure);
  std::string buffer;
  http::ResponseHead head;
  http::ResponseParser parser(head, kMaxHead, kMaxFields, /*head_request=*/false);
  std::array<char, 4096> chunk{};
  for (;;) {
    auto [rec, n] = co_await s.async_read_some(asio::buffer(chunk), net::kNoThrow);
    if (rec) co_return fail(buffer.empty() ? Result::ConnectFailure : Result::BadResponse);
    buffer.append(chunk.data(), n);
    // The parser consumes what it has seen; keep feeding it the rest.
    const auto r = parser.parseHead(buffer);
    buffer.erase(0, r.consumed);
    if (r.bad) co_return fail(Result::BadResponse);
    if (r.done) break;
    if (buffer.size() > kMaxHead) co_return fail(Result::BadResponse);
  }
  co_return fail(p->settings.expects(head.status) ? Result::Success : Result::BadStatus);
}

asio::awaitable<void> probeLoop(std::shared_ptr<HealthChecker::Probe> p) {
  const auto jitter = p->settings.effectiveJitter();
  p->timer.expires_after(randomUpTo(std::min(jitter, p->settings.interval)));
  while (!p->stopped) {
    co_await p->timer.async_wait(net::kNoThrow);  // cancelled: stopped, or woken for a new host
    if (p->stopped) co_return;
    if (!p->track()) {
      p->timer.expires_after(p->settings.interval);
      continue;
    }
    const std::uint64_t probed = p->occupant;
    const Result result = co_await probeOnce(p);
    if (p->stopped) co_return;
    if (probed != p->hosts.slots()[p->host].occupant) {
      p->timer.expires_after(std::chrono::seconds(0));  // the slot changed hands meanwhile
      continue;
    }
    if (p->health->record(p->host, result, Clock::now())) {
      if (p->health->healthy(p->host)) {
        spdlog::info("health check: {} {} is healthy again", p->cluster, p->host_address);
      } else {
        spdlog::warn("health check: {} {} is unhealthy ({})", p->cluster, p->host_address,
                     ActiveHealth::kResultNames[static_cast<std::size_t>(result)]);
      }
    }
    p->timer.expires_after(p->settings.interval + randomUpTo(jitter));
  }
}

}  // namespace

HealthChecker::HealthChecker(asio::io_context& io, const std::string& cluster,
                             const config::HealthCheck& settings, const HostSet& hosts,
                             const std::shared_ptr<ActiveHealth>& health)
    : io_(io) {
  for (std::size_t slot = 0; slot < hosts.capacity(); ++slot) {
    probes_.push_back(std::make_shared<Probe>(io, cluster, settings, hosts, slot, health));
  }
}

void HealthChecker::wake(std::size_t slot) {
  if (slot < probes_.size()) probes_[slot]->timer.cancel();
}

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::start() {
  for (const auto& p : probes_) asio::co_spawn(io_, probeLoop(p), asio::detached);
}

void HealthChecker::stop() {
  for (const auto& p : probes_) {
    p->stopped = true;
    p->timer.cancel();
    p->deadline.cancel();
    boost::system::error_code ignored;
    p->socket.cancel(ignored);
  }
}

}  // namespace sluice::gateway::upstream
