// Keep-alive connections to one upstream host, for one worker.
//
//   auto r = co_await pool.acquire(deadline);    // reuses an idle connection or opens one
//   if (!r.lease) -> r.error (ConnectFailure / ConnectTimeout / PoolTimeout)
//   ... use r.lease->socket() ...
//   r.lease.keep();   // the exchange ended cleanly (nothing left unread): back to the pool
//   // a lease dropped without keep() closes its connection (errors, bad framing, truncation)
//
// Limits: at most `max_connections` open (idle + in use); beyond that, acquire waits up to
// `max_wait` for one to be released or closed, FIFO, then fails with PoolTimeout (503). A
// cluster bulkhead adds caps across workers and hosts: a connection over its connection cap, or
// a wait over its pending cap, fails at once with Overflow (503). At most
// `max_idle` are kept idle; idle ones are closed after `idle_timeout` (sweep()) and when the
// upstream closes them (checked on reuse with a non-blocking peek, so a dead keep-alive
// connection is never handed out knowingly). Not thread-safe: one pool per worker and host.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <optional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "gateway/config/config.h"
#include "gateway/net/pending_wait.h"
#include "gateway/net/socket_deadline.h"
#include "gateway/stats/request_phase.h"
#include "gateway/stats/worker_stats.h"
#include "gateway/upstream/bulkhead.h"

namespace sluice::gateway::upstream {

struct UpstreamConnection {
  explicit UpstreamConnection(boost::asio::any_io_executor ex) : socket(std::move(ex)) {}
  boost::asio::ip::tcp::socket socket;
  std::chrono::steady_clock::time_point idle_since{};
  std::uint64_t requests = 0;  // exchanges completed on this connection
  Bulkhead::Slot counted;      // its unit of the cluster's connection cap, if there is one
};

class ConnectionPool;

// Use of one pooled connection. Move-only; returns the connection on keep() + destruction,
// closes it otherwise.
class Lease {
 public:
  Lease() = default;
  Lease(ConnectionPool* pool, std::unique_ptr<UpstreamConnection> conn, bool reused) noexcept
      : pool_(pool), conn_(std::move(conn)), reused_(reused) {}
  Lease(Lease&& other) noexcept
      : pool_(std::exchange(other.pool_, nullptr)),
        conn_(std::move(other.conn_)),
        reused_(other.reused_),
        keep_(other.keep_) {}
  Lease& operator=(Lease&& other) noexcept {
    if (this != &other) {
      reset();
      pool_ = std::exchange(other.pool_, nullptr);
      conn_ = std::move(other.conn_);
      reused_ = other.reused_;
      keep_ = other.keep_;
    }
    return *this;
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() { reset(); }

  explicit operator bool() const noexcept { return conn_ != nullptr; }
  UpstreamConnection& connection() noexcept { return *conn_; }
  boost::asio::ip::tcp::socket& socket() noexcept { return conn_->socket; }
  // The connection had served an earlier request (so a failure may just mean it went stale).
  [[nodiscard]] bool reused() const noexcept { return reused_; }
  void keep() noexcept { keep_ = true; }
  void reset() noexcept;

 private:
  ConnectionPool* pool_ = nullptr;
  std::unique_ptr<UpstreamConnection> conn_;
  bool reused_ = false;
  bool keep_ = false;
};

static_assert(std::is_nothrow_move_constructible_v<Lease>);

class ConnectionPool {
 public:
  ConnectionPool(boost::asio::any_io_executor executor, boost::asio::ip::tcp::endpoint endpoint,
                 const config::PoolSettings& settings, stats::HostStats& stats,
                 Bulkhead* bulkhead = nullptr);
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;
  ~ConnectionPool();

  struct Acquired {
    Lease lease;
    stats::UpstreamError error = stats::UpstreamError::ConnectFailure;  // when !lease
  };
  // A live idle connection, if there is one: the common case, decided without suspending (so
  // without a coroutine frame). An empty Lease means acquire() is needed.
  [[nodiscard]] Lease takeIdle();
  // `deadline` bounds the connect (armed with pool.connect_timeout). Neither the wait for a free
  // connection nor the connect lasts past `until` (the request's deadline for this try).
  // `phase`, if given, is set to Waiting or Connecting as the acquisition goes. `wait`, if given,
  // holds the wait for a free connection while it lasts, for the caller to cut short (then it
  // ends as a PoolTimeout; a connect is cut short through `deadline`).
  boost::asio::awaitable<Acquired> acquire(
      net::SocketDeadline& deadline,
      std::chrono::steady_clock::time_point until = std::chrono::steady_clock::time_point::max(),
      stats::RequestPhase* phase = nullptr, net::PendingWait* wait = nullptr);

  // New limits (a reload): idle connections stay (beyond a lowered max_idle they close as they
  // are next released or time out); a raised max_connections lets waiters connect at once.
  void setSettings(const config::PoolSettings& settings);
  // Takes over `from`'s idle connections (the pool to the same host of the Cluster this one's
  // replaces), the most recently used first, up to max_idle and max_connections. A connection
  // moves into this pool's bulkhead, or closes if that is full. Same worker.
  void adoptIdle(ConnectionPool& from);
  // Closes idle connections unused for idle_timeout. Called from the worker's housekeeping tick.
  void sweep(std::chrono::steady_clock::time_point now);
  // Closes every idle connection (drain / shutdown). In-use ones close when their lease ends.
  void closeIdle();
  // The host left: close idle connections, fail waiters at once, and close each connection in
  // use when its lease ends. Done when open() is 0.
  void drain();

  [[nodiscard]] const boost::asio::ip::tcp::endpoint& endpoint() const noexcept {
    return endpoint_;
  }
  [[nodiscard]] std::size_t open() const noexcept { return open_; }
  [[nodiscard]] std::size_t idle() const noexcept { return idle_.size(); }

 private:
  friend class Lease;
  struct Waiter {
    explicit Waiter(boost::asio::any_io_executor ex) : timer(std::move(ex)) {}
    boost::asio::steady_timer timer;
    std::unique_ptr<UpstreamConnection> handed;  // a released connection given to this waiter
    bool may_connect = false;                    // a slot freed: the waiter opens its own
    bool listed = true;                          // in waiters_
  };
  // Takes the first waiter off the list (to hand it a connection or a slot).
  Waiter* popWaiter() noexcept;

  void release(std::unique_ptr<UpstreamConnection> conn, bool keep);
  std::unique_ptr<UpstreamConnection> takeLiveIdle();
  // Opens a connection in a slot already counted in open_.
  boost::asio::awaitable<Acquired> connect(net::SocketDeadline& deadline,
                                           std::chrono::steady_clock::time_point until);
  // Closes `conn` (counted under `reason`; a connection that never opened is not counted) and
  // frees its slot, or hands the slot to the first waiter.
  void closeConnection(std::unique_ptr<UpstreamConnection> conn,
                       std::optional<stats::CloseReason> reason);

  boost::asio::any_io_executor executor_;
  boost::asio::ip::tcp::endpoint endpoint_;
  config::PoolSettings settings_;
  stats::HostStats& stats_;
  Bulkhead* bulkhead_;  // the cluster's caps on connections and pending requests, if any
  std::deque<std::unique_ptr<UpstreamConnection>> idle_;  // back = most recently used
  std::size_t open_ = 0;                                  // idle + leased + connecting
  std::list<Waiter*> waiters_;                            // FIFO
  bool draining_ = false;
};

}  // namespace sluice::gateway::upstream
