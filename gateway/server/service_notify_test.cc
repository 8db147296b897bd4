#include "gateway/server/service_notify.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace sluice::gateway::server {
namespace {

// The environment is only changed while the test's single thread runs (no worker, no io thread).
void setEnv(const char* name, const std::string& value) {
  ::setenv(name, value.c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
}
void unsetEnv(const char* name) {
  ::unsetenv(name);  // NOLINT(concurrency-mt-unsafe)
}

TEST(ServiceNotify, StatusTexts) {
  EXPECT_EQ(servingStatus(3, "0.0.0.0:80, [::]:443"),
            "serving generation 3 on 0.0.0.0:80, [::]:443");
  EXPECT_EQ(refusedStatus(2, "127.0.0.1:8080", 1),
            "reload refused (1 problem, see the log); serving generation 2 on 127.0.0.1:8080");
  EXPECT_EQ(refusedStatus(2, "127.0.0.1:8080", 4),
            "reload refused (4 problems, see the log); serving generation 2 on 127.0.0.1:8080");
}

TEST(ServiceNotify, Messages) {
  EXPECT_EQ(readyMessage("serving generation 1 on a", 42),
            "READY=1\nSTATUS=serving generation 1 on a\nMAINPID=42");
  EXPECT_EQ(reloadingMessage(123456789), "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=123456789");
  EXPECT_EQ(stoppingMessage("draining"), "STOPPING=1\nSTATUS=draining");
}

// A datagram socket standing in for systemd's, bound in a temporary directory; NOTIFY_SOCKET
// and the watchdog variables point at it for the test's duration.
class NotifySocket : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-notify-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "notify").string();
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    ASSERT_LT(path_.size(), sizeof(addr.sun_path));
    std::copy(path_.begin(), path_.end(), std::begin(addr.sun_path));
    ASSERT_EQ(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
    timeval tv{0, 100'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setEnv("NOTIFY_SOCKET", path_);
    unsetEnv("WATCHDOG_USEC");
    unsetEnv("WATCHDOG_PID");
  }
  void TearDown() override {
    unsetEnv("NOTIFY_SOCKET");
    unsetEnv("WATCHDOG_USEC");
    unsetEnv("WATCHDOG_PID");
    if (fd_ >= 0) ::close(fd_);
    std::filesystem::remove_all(dir_);
  }
  // The next datagram, or nullopt after 100 ms without one.
  [[nodiscard]] std::optional<std::string> next() const {
    std::array<char, 4096> buf{};
    const auto n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n < 0) return std::nullopt;
    return std::string(buf.data(), static_cast<std::size_t>(n));
  }

  std::filesystem::path dir_;
  std::string path_;
  int fd_ = -1;
};

TEST_F(NotifySocket, WithoutNotifySocketNothingIsSent) {
  unsetEnv("NOTIFY_SOCKET");
  setEnv("WATCHDOG_USEC", "20000");
  boost::asio::io_context io;
  ServiceNotifier n(io);
  EXPECT_FALSE(n.enabled());
  EXPECT_EQ(n.watchdogInterval().count(), 0);
  n.ready("x");
  n.reloading();
  n.stopping("y");
  EXPECT_EQ(io.run_for(std::chrono::milliseconds(50)), 0U);  // no watchdog timer armed
  EXPECT_EQ(next(), std::nullopt);
}

TEST_F(NotifySocket, ReadyReloadingStoppingAndNothingAfterStopping) {
  boost::asio::io_context io;
  ServiceNotifier n(io);
  ASSERT_TRUE(n.enabled());
  n.ready("serving generation 1 on a");
  EXPECT_EQ(next(), readyMessage("serving generation 1 on a", ::getpid()));
  n.reloading();
  const auto reloading = next();
  ASSERT_TRUE(reloading.has_value());
  EXPECT_TRUE(reloading->starts_with("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC="));
  n.stopping("draining");
  EXPECT_EQ(next(), stoppingMessage("draining"));
  n.ready("serving generation 2 on a");  // a reload refused while draining
  n.reloading();
  EXPECT_EQ(next(), std::nullopt);
}

TEST_F(NotifySocket, WatchdogPingsAtHalfTheInterval) {
  setEnv("WATCHDOG_USEC", "40000");
  boost::asio::io_context io;
  ServiceNotifier n(io);
  EXPECT_EQ(n.watchdogInterval(), std::chrono::milliseconds(40));
  n.ready("s");
  ASSERT_TRUE(next().has_value());  // READY=1
  const auto start = std::chrono::steady_clock::now();
  io.run_one();  // the first ping: not before half the interval
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(20));
  io.run_for(std::chrono::milliseconds(100));  // at most 5 more, every 20 ms
  int pings = 0;
  while (const auto m = next()) {
    EXPECT_EQ(*m, "WATCHDOG=1");
    ++pings;
  }
  EXPECT_GE(pings, 3);
  EXPECT_LE(pings, 6);
}

TEST_F(NotifySocket, AnotherProcessWatchdogIsNotPinged) {
  setEnv("WATCHDOG_USEC", "40000");
  setEnv("WATCHDOG_PID", std::to_string(::getpid() + 1));
  boost::asio::io_context io;
  ServiceNotifier n(io);
  EXPECT_EQ(n.watchdogInterval().count(), 0);
}

}  // namespace
}  // namespace sluice::gateway::server
