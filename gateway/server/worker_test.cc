// In-process tests of a real worker: listeners, connections, guards and forwarding on loopback,
// with guards injected through the guard seam (no test back doors).
#include "gateway/server/worker.h"

#include <arpa/inet.h>
#include <atomic>
#include <netinet/in.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "gateway/config/loader.h"
#include "gateway/demo/demo_upstreams.h"
#include "gateway/server/listen_socket.h"
#include "gateway/server/state_registry.h"

namespace sluice::gateway::server {
namespace {

std::uint16_t freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Sends one request on a new connection; returns everything received until the server closes
// (or the first response, when the server keeps the connection: the status line is enough).
std::string exchange(std::uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "connect failed";
  }
  ::send(fd, request.data(), request.size(), 0);
  std::string out;
  char buf[4096];
  for (;;) {
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.find("\r\n\r\n") != std::string::npos &&
        out.find("Connection: close") == std::string::npos) {
      break;
    }
  }
  ::close(fd);
  return out;
}

class ThrowingGuard final : public guards::Guard {
 public:
  std::string_view name() const override { return "throwing"; }
  boost::asio::awaitable<guards::Admission> admit(proxy::RequestContext& ctx) override {
    if (ctx.path == "/boom") throw std::runtime_error("guard bug");
    if (ctx.path == "/limited") {
      auto r = http::LocalReply::text(429, "slow down");
      r.fields.emplace_back("Retry-After", "2");
      co_return guards::Admission{guards::Verdict::Limited, r};
    }
    co_return guards::Admission::allowed();
  }
  void complete(proxy::RequestContext& /*ctx*/, const guards::Completion& c) override {
    completed.fetch_add(1);
    last_status.store(c.status);
  }
  std::atomic<int> completed{0};
  std::atomic<int> last_status{0};
};

// A worker on loopback, its config generations built by a real state registry.
class WorkerFixture : public ::testing::Test {
 protected:
  void TearDown() override {
    if (worker_) {
      worker_->stop();
      worker_->join();
    }
    upstreams_.stop();
  }
  // The next generation of `yaml` for the worker, with `extra` guards on every route.
  WorkerUpdate update(const std::string& yaml, const StateRegistry::ExtraGuards& extra = {}) {
    auto loaded = config::load(yaml, "test.yaml");
    EXPECT_TRUE(loaded.ok()) << loaded.diagnostics.front().format();
    WorkerUpdate u;
    u.snapshot = registry_.build(std::move(*loaded.config), ++generation_, extra);
    for (const auto& c : u.snapshot->config.clusters) {
      u.hosts.push_back(std::make_shared<const std::vector<upstream::HostSet::Host>>(
          registry_.cluster(c.name)->hosts->slots()));
    }
    return u;
  }
  // Binds the first generation's listener and starts the worker on it.
  void start(WorkerUpdate first) {
    auto fd = bindListener(first.snapshot->config.listeners.front());
    ASSERT_TRUE(std::holds_alternative<int>(fd)) << std::get<std::string>(fd);
    first.listeners.add(first.snapshot->config.listeners.front().name, std::get<int>(fd));
    worker_ = std::make_unique<Worker>(0, std::move(first));
    worker_->start();
  }

  demo::DemoUpstreams upstreams_;
  boost::asio::io_context main_io_;
  StateRegistry registry_{main_io_, 1};
  std::uint64_t generation_ = 0;
  std::uint16_t port_ = 0;
  std::unique_ptr<Worker> worker_;
};

class WorkerTest : public WorkerFixture {
 protected:
  void SetUp() override {
    const auto upstream = upstreams_.start({{"up", std::chrono::milliseconds(0)}});
    port_ = freePort();
    const std::string yaml = "listeners: [{ name: p, address: 127.0.0.1:" + std::to_string(port_) +
                             " }]\nclusters: [{ name: c, endpoints: [" + upstream[0] +
                             "] }]\nroutes: [{ name: r, cluster: c }]\n";
    guard_ = std::make_shared<ThrowingGuard>();
    start(update(yaml, [this](const config::Route&) {
      return std::vector<std::shared_ptr<guards::Guard>>{guard_};
    }));
  }

  std::shared_ptr<ThrowingGuard> guard_;
};

TEST_F(WorkerTest, ForwardsThroughTheGuardSeam) {
  const std::string r = exchange(port_, "GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK", 0), 0U) << r;
}

// Verifies isolation: a request whose handling throws gets a 500, is counted, and the worker
// goes on serving other requests.
TEST_F(WorkerTest, AThrowingHandlerAnswers500AndTheWorkerKeepsServing) {
  const std::string boom = exchange(port_, "GET /boom HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(boom.rfind("HTTP/1.1 500 Internal Server Error", 0), 0U) << boom;
  EXPECT_NE(boom.find("Connection: close"), std::string::npos);
  for (int i = 0; i < 3; ++i) {
    const std::string ok = exchange(port_, "GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK", 0), 0U) << ok;
  }
  EXPECT_EQ(worker_->stats().exceptions.value(), 1U);
}

TEST_F(WorkerTest, AGuardCanAnswerLocallyAndOnlyAdmittedRequestsComplete) {
  const std::string limited =
      exchange(port_, "GET /limited HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(limited.rfind("HTTP/1.1 429 Too Many Requests", 0), 0U) << limited;
  EXPECT_NE(limited.find("Retry-After: 2"), std::string::npos);
  EXPECT_EQ(guard_->completed.load(), 0);  // the guard refused it: no completion feedback
  const std::string ok =
      exchange(port_, "GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK", 0), 0U);
  // Completion runs right after the last response byte; wait for it without sleeping blindly.
  for (int i = 0; i < 500 && guard_->completed.load() == 0; ++i) usleep(2000);
  EXPECT_EQ(guard_->completed.load(), 1);
  EXPECT_EQ(guard_->last_status.load(), 200);
}

// A worker that adopts new config generations while requests run.
class ReloadingWorkerTest : public WorkerFixture {
 protected:
  void SetUp() override {
    const auto up = upstreams_.start(
        {{"slow", std::chrono::milliseconds(300)}, {"fast", std::chrono::milliseconds(0)}});
    slow_ = up[0];
    fast_ = up[1];
    port_ = freePort();
    start(update(yaml("slow")));
  }
  [[nodiscard]] std::string yaml(const std::string& cluster) const {
    return "listeners: [{ name: p, address: 127.0.0.1:" + std::to_string(port_) +
           " }]\nclusters: [{ name: slow, endpoints: [" + slow_ +
           "] }, { name: fast, endpoints: [" + fast_ +
           "] }]\nroutes: [{ name: r, cluster: " + cluster + " }]\n";
  }
  // Hands the worker `u` and waits until it serves it.
  void adopt(WorkerUpdate u) {
    std::atomic<bool> done{false};
    worker_->adopt(std::move(u), [&] { done = true; });
    for (int i = 0; i < 1000 && !done; ++i) usleep(1000);
    ASSERT_TRUE(done);
  }

  std::string slow_;
  std::string fast_;
};

TEST_F(ReloadingWorkerTest, ARequestFinishesOnTheGenerationItStartedOn) {
  std::string in_flight;
  std::thread client([&] {
    in_flight = exchange(port_, "GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  });
  usleep(100 * 1000);  // the request is at the slow upstream now
  adopt(update(yaml("fast")));
  EXPECT_EQ(worker_->generation(), 2U);
  // The next request is served by the new generation at once...
  const std::string now =
      exchange(port_, "GET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_NE(now.find("\"upstream\":\"fast\""), std::string::npos) << now;
  // ...while the one in flight finishes where it started.
  client.join();
  EXPECT_EQ(in_flight.rfind("HTTP/1.1 200 OK", 0), 0U) << in_flight;
  EXPECT_NE(in_flight.find("\"upstream\":\"slow\""), std::string::npos) << in_flight;
}

TEST_F(ReloadingWorkerTest, AnOldGenerationIsFreedWhenItsLastRequestEnds) {
  std::weak_ptr<const Snapshot> old;
  std::thread client;
  {
    // Generation 2 (still slow) is adopted first so that this test holds its only outside
    // reference; the worker's own is all that keeps it once the test lets go.
    auto second = update(yaml("slow"));
    old = second.snapshot;
    adopt(std::move(second));
    client = std::thread(
        [&] { exchange(port_, "GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"); });
    usleep(100 * 1000);
    adopt(update(yaml("fast")));
  }
  EXPECT_FALSE(old.expired());  // pinned by the request at the slow upstream
  client.join();
  for (int i = 0; i < 500 && !old.expired(); ++i) usleep(1000);
  EXPECT_TRUE(old.expired());
}

}  // namespace
}  // namespace sluice::gateway::server
