#include "gateway/server/service_notify.h"

#include <cstdlib>
#include <ctime>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace sluice::gateway::server {

std::string servingStatus(std::uint64_t generation, std::string_view listeners) {
  return fmt::format("serving generation {} on {}", generation, listeners);
}

std::string refusedStatus(std::uint64_t generation, std::string_view listeners,
                          std::size_t problems) {
  return fmt::format("reload refused ({} problem{}, see the log); serving generation {} on {}",
                     problems, problems == 1 ? "" : "s", generation, listeners);
}

std::string readyMessage(std::string_view status, long pid) {
  return fmt::format("READY=1\nSTATUS={}\nMAINPID={}", status, pid);
}

std::string reloadingMessage(std::uint64_t monotonic_usec) {
  return fmt::format("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC={}", monotonic_usec);
}

std::string stoppingMessage(std::string_view status) {
  return fmt::format("STOPPING=1\nSTATUS={}", status);
}

ServiceNotifier::ServiceNotifier(boost::asio::io_context& io) : ping_timer_(io) {
  const char* socket = std::getenv("NOTIFY_SOCKET");  // NOLINT(concurrency-mt-unsafe): at start
  enabled_ = socket != nullptr && *socket != '\0';
  if (!enabled_) return;
  std::uint64_t usec = 0;
  const int r = sd_watchdog_enabled(0, &usec);
  if (r > 0) {
    watchdog_ = std::chrono::microseconds(usec);
  } else if (r < 0) {
    spdlog::warn("systemd watchdog: WATCHDOG_USEC/WATCHDOG_PID unusable (error {}); not pinging",
                 -r);
  }
}

void ServiceNotifier::ready(std::string_view status) {
  if (!enabled_ || stopping_) return;
  send(readyMessage(status, static_cast<long>(::getpid())));
  if (watchdog_.count() > 0 && !pinging_) {
    pinging_ = true;
    spdlog::info("systemd watchdog: {} ms, pinged every {} ms", watchdog_.count() / 1000,
                 watchdog_.count() / 2000);
    pingSoon();
  }
}

void ServiceNotifier::reloading() {
  if (!enabled_ || stopping_) return;
  // CLOCK_MONOTONIC, as systemd compares it with its own (sd_notify(3), MONOTONIC_USEC).
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  send(reloadingMessage(static_cast<std::uint64_t>(now.tv_sec) * 1'000'000U +
                        static_cast<std::uint64_t>(now.tv_nsec) / 1000U));
}

void ServiceNotifier::stopping(std::string_view status) {
  if (!enabled_ || stopping_) return;
  stopping_ = true;
  send(stoppingMessage(status));
}

void ServiceNotifier::send(const std::string& message) {
  const int r = sd_notify(0, message.c_str());
  if (r < 0 && !warned_) {
    // Once: a broken NOTIFY_SOCKET would otherwise fill the log at every watchdog ping.
    warned_ = true;
    spdlog::warn("sd_notify failed (error {}); systemd may not see sluice's state", -r);
  }
}

void ServiceNotifier::pingSoon() {
  // Half the interval, as sd_watchdog_enabled(3) advises: one late ping is not yet a restart.
  ping_timer_.expires_after(watchdog_ / 2);
  ping_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    send("WATCHDOG=1");
    pingSoon();
  });
}

}  // namespace sluice::gateway::server
