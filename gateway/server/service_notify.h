// Tells the service manager where the process stands, through sd_notify(3), so that a systemd
// unit with Type=notify (deploy/systemd/sluice.service) knows when sluice serves, reloads and
// stops, and can restart it if its main loop hangs:
//
//   READY=1, STATUS=serving generation N on <listeners>, MAINPID   every listener accepts
//   RELOADING=1, MONOTONIC_USEC=<now>                              a reload starts
//   READY=1, STATUS=serving generation N ... | reload refused ...   the reload is done
//   STOPPING=1, STATUS=draining                                    the drain starts
//   WATCHDOG=1                                                     every WATCHDOG_USEC / 2
//
// RELOADING=1 with MONOTONIC_USEC is what systemd 253+ expects of Type=notify-reload; systemd
// 252 (Debian 12) takes RELOADING=1 and ignores the timestamp. The watchdog is pinged from the
// main loop (signals, reloads, the admin listener, the drain): a hung main loop is what a restart
// fixes. Workers are not pinged: a worker stuck in a request shows in /debug/requests and metrics.
//
// Without NOTIFY_SOCKET in the environment (not started by systemd, or Type=simple) every call
// returns at once and no timer is armed.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sluice::gateway::server {

// The STATUS= texts (`systemctl status` shows them).
[[nodiscard]] std::string servingStatus(std::uint64_t generation, std::string_view listeners);
[[nodiscard]] std::string refusedStatus(std::uint64_t generation, std::string_view listeners,
                                        std::size_t problems);

// The datagrams, exactly as sent.
[[nodiscard]] std::string readyMessage(std::string_view status, long pid);
[[nodiscard]] std::string reloadingMessage(std::uint64_t monotonic_usec);
[[nodiscard]] std::string stoppingMessage(std::string_view status);

class ServiceNotifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID once (sd_watchdog_enabled(3): the
  // watchdog is this process's if WATCHDOG_PID is unset or is its pid).
  explicit ServiceNotifier(boost::asio::io_context& io);

  [[nodiscard]] bool enabled() const noexcept { return enabled_; }
  // Zero without a watchdog.
  [[nodiscard]] std::chrono::microseconds watchdogInterval() const noexcept { return watchdog_; }

  // READY=1 with `status`; the first call also starts the watchdog pings on the io_context.
  void ready(std::string_view status);
  void reloading();
  // STOPPING=1. After it, ready() and reloading() send nothing: systemd must not see the unit
  // as running again while it drains.
  void stopping(std::string_view status);

 private:
  void send(const std::string& message);
  void pingSoon();

  bool enabled_ = false;
  bool stopping_ = false;
  bool pinging_ = false;
  bool warned_ = false;
  std::chrono::microseconds watchdog_{0};
  boost::asio::steady_timer ping_timer_;
};

}  // namespace sluice::gateway::server
