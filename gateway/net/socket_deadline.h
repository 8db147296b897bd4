// One deadline for whatever a connection is waiting on, on top of the worker's TimerWheel.
//
//   deadline.arm(socket, now + timeout);
//   auto [ec, n] = co_await socket.async_read_some(buffer, kNoThrow);
//   if (deadline.disarm()) -> timed out (ec is operation_aborted)
//
// When the deadline passes, the armed socket's pending operations are cancelled; disarm() then
// tells the waiter it was a timeout and not some other cancellation. Arming costs no allocation,
// no syscall and no handler: unlike an Asio timer per operation, a fired or cancelled deadline
// leaves nothing queued behind that could touch the connection later.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "gateway/net/timer_wheel.h"

namespace sluice::gateway::net {

class SocketDeadline {
 public:
  explicit SocketDeadline(TimerWheel& wheel) noexcept
      : wheel_(wheel), entry_(&SocketDeadline::onExpire, this) {}

  void arm(boost::asio::ip::tcp::socket& socket, TimerWheel::TimePoint deadline) noexcept {
    socket_ = &socket;
    expired_ = false;
    cancelled_ = false;
    wheel_.schedule(entry_, deadline);
  }

  // Returns true if the deadline had passed (the operation was cancelled by it).
  bool disarm() noexcept {
    wheel_.cancel(entry_);
    socket_ = nullptr;
    return expired_;
  }

  // Cancels the armed operation now, as if the deadline had passed (used by drain).
  void expireNow() noexcept {
    if (entry_.armed()) {
      wheel_.cancel(entry_);
      onExpire(this);
    }
  }

  // Cancels the armed operation now without calling it a timeout: disarm() will say false (used
  // when the client of a request waiting on an upstream socket went away).
  void cancelNow() noexcept {
    if (entry_.armed() && socket_ != nullptr) {
      cancelled_ = true;
      boost::system::error_code ignored;
      socket_->cancel(ignored);
    }
  }

  // Whether cancelNow() or the deadline ended the wait armed last; ask before disarm(). A
  // socket's cancel reaches only operations still queued in the reactor: one whose completion
  // is already posted (input was there) completes without an error, and its handler must still
  // see that it was told to stop.
  [[nodiscard]] bool stopped() const noexcept { return cancelled_ || expired_; }

  [[nodiscard]] bool armed() const noexcept { return entry_.armed(); }

 private:
  static void onExpire(void* self) {
    auto* d = static_cast<SocketDeadline*>(self);
    d->expired_ = true;
    if (d->socket_ != nullptr) {
      boost::system::error_code ignored;
      d->socket_->cancel(ignored);
    }
  }

  TimerWheel& wheel_;
  TimerWheel::Entry entry_;
  boost::asio::ip::tcp::socket* socket_ = nullptr;
  bool expired_ = false;
  bool cancelled_ = false;
};

}  // namespace sluice::gateway::net
