#include "gateway/upstream/connection_pool.h"

#include <algorithm>
#include <sys/socket.h>

#include "gateway/net/coarse_clock.h"
#include "gateway/net/socket_io.h"

namespace sluice::gateway::upstream {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto kTrustIdleFor = std::chrono::seconds(1);

void Lease::reset() noexcept {
  if (conn_ != nullptr && pool_ != nullptr) {
    conn_->requests += keep_ ? 1 : 0;
    pool_->release(std::move(conn_), keep_);
  }
  conn_.reset();
  pool_ = nullptr;
  keep_ = false;
}

ConnectionPool::ConnectionPool(asio::any_io_executor executor, tcp::endpoint endpoint,
                               const config::PoolSettings& settings, stats::HostStats& stats,
                               Bulkhead* bulkhead)
    : executor_(std::move(executor)),
      endpoint_(std::move(endpoint)),
      settings_(settings),
      stats_(stats),
      bulkhead_(bulkhead) {}

ConnectionPool::~ConnectionPool() {
  closeIdle();
  for (Waiter* w : waiters_) w->timer.cancel();
}

std::unique_ptr<UpstreamConnection> ConnectionPool::takeLiveIdle() {
  const auto now = net::coarseNow();
  while (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    stats_.idle.dec();
    // Upstreams close idle keep-alive connections after seconds, not microseconds: a connection
    // released moments ago is reused without a syscall (the forwarder replays a bodiless
    // idempotent request if it went stale anyway). Older ones are checked: an idle keep-alive
    // connection must have nothing to read; bytes mean broken framing, EOF means it was closed.
    if (now - conn->idle_since < kTrustIdleFor) return conn;
    char probe = 0;
    const auto n = ::recv(conn->socket.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return conn;
    closeConnection(std::move(conn), stats::CloseReason::UpstreamClosed);
  }
  return nullptr;
}

Lease ConnectionPool::takeIdle() {
  auto conn = takeLiveIdle();
  if (conn == nullptr) return {};
  stats_.active.inc();
  return {this, std::move(conn), true};
}

asio::awaitable<ConnectionPool::Acquired> ConnectionPool::acquire(
    net::SocketDeadline& deadline, std::chrono::steady_clock::time_point until,
    stats::RequestPhase* phase, net::PendingWait* wait) {
  Acquired idle{takeIdle()};
  if (idle.lease) co_return std::move(idle);
  if (open_ < settings_.max_connections) {
    ++open_;
    if (phase != nullptr) *phase = stats::RequestPhase::Connecting;
    co_return co_await connect(deadline, until);
  }
  if (settings_.max_wait.count() == 0) co_return Acquired{{}, stats::UpstreamError::PoolTimeout};
  auto pending = Bulkhead::acquire(bulkhead_, Bulkhead::Limit::Pending);
  if (!pending) co_return Acquired{{}, stats::UpstreamError::Overflow};

  Waiter waiter(executor_);
  waiter.timer.expires_at(std::min(net::coarseNow() + settings_.max_wait, until));
  const auto it = waiters_.insert(waiters_.end(), &waiter);
  // A waiter still listed when its coroutine is destroyed (a worker stopping with requests in
  // flight) takes itself off: the list must never point at a dead frame.
  struct Unlist {
    std::list<Waiter*>& list;
    std::list<Waiter*>::iterator it;
    Waiter& waiter;
    Unlist(std::list<Waiter*>& l, std::list<Waiter*>::iterator i, Waiter& w)
        : list(l), it(i), waiter(w) {}
    Unlist(const Unlist&) = delete;
    Unlist& operator=(const Unlist&) = delete;
    Unlist(Unlist&&) = delete;
    Unlist& operator=(Unlist&&) = delete;
    ~Unlist() {
      if (waiter.listed) list.erase(it);
      waiter.listed = false;
    }
  } unlist(waiters_, it, waiter);
  stats_.pending.inc();
  if (phase != nullptr) *phase = stats::RequestPhase::Waiting;
  if (wait != nullptr) wait->set(waiter.timer);
  co_await waiter.timer.async_wait(net::kNoThrow);
  if (wait != nullptr) wait->clear();
  stats_.pending.dec();
  pending->release();
  // release() removes a waiter it serves; a waiter that timed out is removed by `unlist`.
  if (draining_) {
    // The host left while this request waited: it gets no connection to it, even one handed
    // over just before the drain (which closes instead), and gives back a slot it was given.
    if (waiter.handed != nullptr) {
      stats_.active.inc();  // release() counts it back down
      release(std::move(waiter.handed), false);
    } else if (waiter.may_connect) {
      --open_;
    }
    co_return Acquired{{}, stats::UpstreamError::PoolTimeout};
  }
  if (waiter.handed == nullptr && !waiter.may_connect) {
    co_return Acquired{{}, stats::UpstreamError::PoolTimeout};  // unlisted on the way out
  }
  if (waiter.handed != nullptr) {
    stats_.active.inc();
    co_return Acquired{Lease(this, std::move(waiter.handed), true)};
  }
  if (phase != nullptr) *phase = stats::RequestPhase::Connecting;
  co_return co_await connect(deadline, until);  // closeConnection() handed us its slot
}

asio::awaitable<ConnectionPool::Acquired> ConnectionPool::connect(
    net::SocketDeadline& deadline, std::chrono::steady_clock::time_point until) {
  auto conn = std::make_unique<UpstreamConnection>(executor_);
  auto counted = Bulkhead::acquire(bulkhead_, Bulkhead::Limit::Connections);
  if (!counted) {
    closeConnection(std::move(conn), std::nullopt);  // frees the slot, or hands it to a waiter
    co_return Acquired{{}, stats::UpstreamError::Overflow};
  }
  conn->counted = std::move(*counted);
  deadline.arm(conn->socket, std::min(net::coarseNow() + settings_.connect_timeout, until));
  auto [ec] = co_await conn->socket.async_connect(endpoint_, net::kNoThrow);
  const bool timed_out = deadline.disarm();
  if (ec) {
    closeConnection(std::move(conn), std::nullopt);  // frees the slot, or hands it to a waiter
    co_return Acquired{
        {},
        timed_out ? stats::UpstreamError::ConnectTimeout : stats::UpstreamError::ConnectFailure};
  }
  boost::system::error_code ignored;
  conn->socket.set_option(tcp::no_delay(true), ignored);
  stats_.connects.inc();
  stats_.active.inc();
  co_return Acquired{Lease(this, std::move(conn), false)};
}

void ConnectionPool::release(std::unique_ptr<UpstreamConnection> conn, bool keep) {
  stats_.active.dec();
  if (draining_) {
    closeConnection(std::move(conn), stats::CloseReason::Drain);
    return;
  }
  if (keep && conn->socket.is_open()) {
    if (!waiters_.empty()) {
      Waiter* w = popWaiter();
      w->handed = std::move(conn);
      w->timer.cancel();
      return;
    }
    if (idle_.size() < settings_.max_idle) {
      conn->idle_since = net::coarseNow();
      idle_.push_back(std::move(conn));
      stats_.idle.inc();
      return;
    }
    closeConnection(std::move(conn), stats::CloseReason::IdleFull);
    return;
  }
  closeConnection(std::move(conn), stats::CloseReason::NotReusable);
}

ConnectionPool::Waiter* ConnectionPool::popWaiter() noexcept {
  Waiter* w = waiters_.front();
  waiters_.pop_front();
  w->listed = false;
  return w;
}

void ConnectionPool::closeConnection(std::unique_ptr<UpstreamConnection> conn,
                                     std::optional<stats::CloseReason> reason) {
  if (reason) stats_.closedFor(*reason);
  boost::system::error_code ignored;
  conn->socket.close(ignored);
  conn.reset();
  if (waiters_.empty() || draining_) {
    --open_;
    return;
  }
  // The slot passes straight to the first waiter, so nobody can overtake it and open_ never
  // exceeds max_connections.
  Waiter* w = popWaiter();
  w->may_connect = true;
  w->timer.cancel();
}

void ConnectionPool::setSettings(const config::PoolSettings& settings) {
  settings_ = settings;
  while (!waiters_.empty() && open_ < settings_.max_connections && !draining_) {
    Waiter* w = popWaiter();
    ++open_;
    w->may_connect = true;
    w->timer.cancel();
  }
}

void ConnectionPool::adoptIdle(ConnectionPool& from) {
  std::deque<std::unique_ptr<UpstreamConnection>> taken;
  while (!from.idle_.empty() && !draining_ && idle_.size() + taken.size() < settings_.max_idle &&
         open_ < settings_.max_connections) {
    auto conn = std::move(from.idle_.back());
    from.idle_.pop_back();
    from.stats_.idle.dec();
    --from.open_;  // a pool with idle connections has no waiters to hand the slot to
    if (from.bulkhead_ != bulkhead_) {
      conn->counted.release();
      auto counted = Bulkhead::acquire(bulkhead_, Bulkhead::Limit::Connections);
      if (!counted) {
        from.stats_.closedFor(stats::CloseReason::Drain);
        boost::system::error_code ignored;
        conn->socket.close(ignored);
        continue;
      }
      conn->counted = std::move(*counted);
    }
    ++open_;
    stats_.idle.inc();
    taken.push_front(std::move(conn));
  }
  for (auto& conn : taken) idle_.push_back(std::move(conn));
}

void ConnectionPool::sweep(std::chrono::steady_clock::time_point now) {
  while (!idle_.empty() && now - idle_.front()->idle_since >= settings_.idle_timeout) {
    auto conn = std::move(idle_.front());
    idle_.pop_front();
    stats_.idle.dec();
    closeConnection(std::move(conn), stats::CloseReason::IdleTimeout);
  }
}

void ConnectionPool::drain() {
  draining_ = true;
  closeIdle();
  // Each waiter wakes with neither a connection nor a slot (PoolTimeout, at once) and takes
  // itself off the list; nothing is handed to waiters from now on.
  for (Waiter* w : waiters_) w->timer.cancel();
}

void ConnectionPool::closeIdle() {
  while (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    stats_.idle.dec();
    closeConnection(std::move(conn), stats::CloseReason::Drain);
  }
}

}  // namespace sluice::gateway::upstream
