// RedisClient against a real redis-server (Debian's, installed by scripts/setup.sh), started on a
// free loopback port by the test and killed by PID: replies in order under concurrent callers,
// deadlines when the server stalls, reconnection after a restart, AUTH and SELECT, NOSCRIPT.
// Skipped when redis-server is not installed.
#include "gateway/redis/redis_client.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <netinet/in.h>
#include <spawn.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

extern char** environ;  // NOLINT(readability-redundant-declaration): posix_spawn's argument

namespace sluice::gateway::redis {
namespace {

using namespace std::chrono_literals;

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

bool haveRedis() { return std::system("command -v redis-server >/dev/null 2>&1") == 0; }

class Server {
 public:
  explicit Server(std::uint16_t port, std::string password = {})
      : port_(port), password_(std::move(password)) {
    start();
  }
  ~Server() { kill(); }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void start() {
    std::vector<std::string> args = {
        "redis-server", "--port", std::to_string(port_),    "--bind", "127.0.0.1", "--save",   "",
        "--appendonly", "no",     "--enable-debug-command", "local",  "--logfile", "/dev/null"};
    if (!password_.empty()) {
      args.emplace_back("--requirepass");
      args.push_back(password_);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(::posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(), environ), 0);
    // Wait until it accepts connections.
    for (int i = 0; i < 200; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port_);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(fd);
      if (up) return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "redis-server did not listen on " << port_;
  }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::uint16_t port_;
  std::string password_;
  pid_t pid_ = -1;
};

ClientSettings settingsFor(std::uint16_t port, std::chrono::milliseconds timeout = 200ms) {
  ClientSettings s;
  s.redis.address = {"127.0.0.1", port};
  s.redis.timeout = timeout;
  return s;
}

// Waits (really: this drives a real server) until `pred` holds or `limit` passes.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// Blocks until the call's callback ran; returns its result.
Result callAndWait(RedisClient& c, std::vector<std::string> args) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result> out;
  c.call(Op::Lease, std::move(args), [&](Result r) {
    std::lock_guard lock(mu);
    out = std::move(r);
    cv.notify_one();
  });
  std::unique_lock lock(mu);
  // Every call is answered within its deadline; 5 s means the client lost the callback.
  if (!cv.wait_for(lock, 5s, [&] { return out.has_value(); })) {
    ADD_FAILURE() << "no answer within 5 s";
    return Result{CallError::Count, {}};
  }
  return std::move(*out);
}

class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!haveRedis()) GTEST_SKIP() << "redis-server is not installed (scripts/setup.sh)";
  }
};

TEST_F(RedisClientTest, ConcurrentCallersGetTheirOwnRepliesInOrder) {
  const auto port = freePort();
  Server server(port);
  RedisClient client(settingsFor(port));
  ASSERT_TRUE(eventually([&] { return client.up(); }));
  constexpr int kThreads = 4;
  constexpr int kCalls = 500;
  std::atomic<int> ok{0};
  std::atomic<int> wrong{0};
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        const std::string value = std::to_string(t) + ":" + std::to_string(i);
        client.call(Op::Lease, {"ECHO", value}, [&, value](Result r) {
          if (r.ok() && r.reply.text() == value) {
            ++ok;
          } else {
            ++wrong;
          }
          ++done;
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(eventually([&] { return done.load() == kThreads * kCalls; }));
  EXPECT_EQ(ok.load(), kThreads * kCalls);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(client.stats().requests[1][0].value(), static_cast<std::uint64_t>(kThreads * kCalls));
}

TEST_F(RedisClientTest, AStalledServerTimesCallsOutAtTheirDeadline) {
  const auto port = freePort();
  Server server(port);
  RedisClient client(settingsFor(port, 50ms));
  ASSERT_TRUE(eventually([&] { return client.up(); }));
  // DEBUG SLEEP blocks the server for 400 ms: the calls behind it get no reply in time.
  client.call(Op::Lease, {"DEBUG", "SLEEP", "0.4"}, [](Result) {});
  std::this_thread::sleep_for(10ms);
  const auto start = std::chrono::steady_clock::now();
  const Result r = callAndWait(client, {"PING"});
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.error, CallError::Timeout);
  EXPECT_LT(took, 300ms);
  // The late replies are read and dropped: the connection stays in step.
  ASSERT_TRUE(eventually([&] {
    const Result again = callAndWait(client, {"ECHO", "after"});
    return again.ok() && again.reply.text() == "after";
  }));
}

TEST_F(RedisClientTest, ReconnectsAfterTheServerComesBack) {
  const auto port = freePort();
  Server server(port);
  RedisClient client(settingsFor(port));
  ASSERT_TRUE(eventually([&] { return client.up(); }));
  server.kill();
  ASSERT_TRUE(eventually([&] { return !client.up(); }));
  const Result down = callAndWait(client, {"PING"});
  EXPECT_EQ(down.error, CallError::Unavailable);
  server.start();
  ASSERT_TRUE(eventually([&] { return client.up(); }, 10s));
  ASSERT_TRUE(eventually([&] { return callAndWait(client, {"PING"}).ok(); }));
}

TEST_F(RedisClientTest, AuthenticatesAndSelectsItsDatabase) {
  const auto port = freePort();
  Server server(port, "a-password-of-some-length");
  auto s = settingsFor(port);
  s.password = "a-password-of-some-length";
  s.redis.db = 5;
  RedisClient client(s);
  ASSERT_TRUE(eventually([&] { return client.up(); }));
  ASSERT_TRUE(callAndWait(client, {"SET", "k", "v"}).ok());
  const Result r = callAndWait(client, {"CLIENT", "INFO"});
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r.reply.text().find(" db=5 "), std::string_view::npos) << r.reply.text();
}

TEST_F(RedisClientTest, AWrongPasswordNeverComesUp) {
  const auto port = freePort();
  Server server(port, "the-right-password");
  auto s = settingsFor(port);
  s.password = "a-wrong-password";
  RedisClient client(s);
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(client.up());
  EXPECT_EQ(callAndWait(client, {"PING"}).error, CallError::Unavailable);
}

TEST_F(RedisClientTest, ScriptsSurviveAScriptFlush) {
  const auto port = freePort();
  Server server(port);
  RedisClient client(settingsFor(port));
  const std::size_t id = client.registerScript("return ARGV[1] .. KEYS[1]");
  ASSERT_TRUE(eventually([&] { return client.up(); }));
  const auto run = [&] {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Result> out;
    client.callScript(Op::Lease, id, {"k"}, {"a"}, [&](Result r) {
      std::lock_guard lock(mu);
      out = std::move(r);
      cv.notify_one();
    });
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, 5s, [&] { return out.has_value(); })) {
      ADD_FAILURE() << "no answer within 5 s";
      return Result{CallError::Count, {}};
    }
    return std::move(*out);
  };
  ASSERT_TRUE(eventually([&] { return run().ok(); }));
  ASSERT_TRUE(callAndWait(client, {"SCRIPT", "FLUSH"}).ok());
  const Result r = run();  // NOSCRIPT -> EVAL, transparently
  ASSERT_TRUE(r.ok()) << static_cast<int>(r.error) << " " << r.reply.text();
  EXPECT_EQ(r.reply.text(), "ak");
}

}  // namespace
}  // namespace sluice::gateway::redis
