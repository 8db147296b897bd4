// The timer a request is waiting on now (a guard's queue or delay, a pool's wait for a free
// connection, a retry's backoff), so that something other than the wait itself can cut it short:
// the connection does when it sees the request's client go away (proxy/client_watch in
// downstream_connection.cc). Waits on sockets need no registration: the connection's
// SocketDeadline knows the socket it is armed on (SocketDeadline::cancelNow()).
//
//   ctx.wait.set(timer);
//   co_await timer.async_wait(...);   // ends early, with operation_aborted, on cancel()
//   ctx.wait.clear();
//
// One event loop: set, clear and cancel run on the thread that owns the timer. A registration
// must be cleared before its timer dies.
#pragma once

#include <boost/asio/steady_timer.hpp>

namespace sluice::gateway::net {

class PendingWait {
 public:
  void set(boost::asio::steady_timer& timer) noexcept { timer_ = &timer; }
  void clear() noexcept { timer_ = nullptr; }

  // Cancels the registered wait, if any (its handler runs later, with operation_aborted), and
  // forgets it.
  void cancel() noexcept {
    if (timer_ == nullptr) return;
    auto* t = timer_;
    timer_ = nullptr;
    try {
      t->cancel();
    } catch (...) {  // NOLINT(bugprone-empty-catch): Asio's timer cancel reports no real error
    }
  }

 private:
  boost::asio::steady_timer* timer_ = nullptr;
};

}  // namespace sluice::gateway::net
