#include "gateway/server/worker.h"

#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "gateway/common/heap.h"
#include "gateway/net/buffer_pool.h"
#include "gateway/net/socket_io.h"
#include "gateway/proxy/downstream_connection.h"

namespace sluice::gateway::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kTick = std::chrono::milliseconds(10);
constexpr auto kSweepEvery = std::chrono::seconds(1);
constexpr int kBacklog = 4096;

using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

}  // namespace

Worker::Worker(std::size_t index, std::shared_ptr<const Snapshot> snapshot,
               log::AccessLog* access_log)
    // One thread runs each io_context and only it touches the worker's sockets: reactor I/O
    // needs no locking (other threads only post to the scheduler, which stays locked).
    : index_(index),
      io_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO),
      work_(asio::make_work_guard(io_)),
      snapshot_(std::move(snapshot)),
      access_log_(access_log),
      stats_(std::make_unique<stats::WorkerStats>(snapshot_->config.routes.size(),
                                                  snapshot_->hostsPerCluster(),
                                                  snapshot_->layout.guard_labels.size())),
      wheel_(kTick, Clock::now()) {
  const auto& clusters = snapshot_->config.clusters;
  for (std::size_t c = 0; c < clusters.size(); ++c) {
    clusters_.push_back(std::make_unique<upstream::Cluster>(
        io_.get_executor(), clusters[c], snapshot_->host_sets[c]->slots(), stats_->hosts[c],
        *snapshot_->retry_budgets[c], snapshot_->outliers[c].get(), snapshot_->bulkheads[c].get(),
        snapshot_->health[c].get()));
  }
}

Worker::~Worker() {
  stop();
  join();
  // Coroutine frames still pending (connections, accept and tick loops) reference the wheel, the
  // pools and the stats: destroy them now, while those are alive, and only then the pools and
  // listeners, whose sockets the io_context's services must outlive.
  io_.destroyPendingHandlers();
  acceptors_.clear();
  clusters_.clear();
}

std::optional<std::string> Worker::listen() {
  for (const auto& l : snapshot_->config.listeners) {
    auto a = std::make_unique<Acceptor>(Acceptor{&l, tcp::acceptor(io_)});
    boost::system::error_code ec;
    const tcp::endpoint ep(asio::ip::make_address(l.address.ip), l.address.port);
    const auto fail = [&](const char* what) {
      return "listener '" + l.name + "' on " + l.address.text() + ": " + what + ": " + ec.message();
    };
    a->socket.open(ep.protocol(), ec);
    if (ec) return fail("open");
    a->socket.set_option(tcp::acceptor::reuse_address(true), ec);
    if (ec) return fail("SO_REUSEADDR");
    // Each worker has its own listening socket on the same address; the kernel balances new
    // connections across them (no accept lock, no thundering herd).
    a->socket.set_option(ReusePort(true), ec);
    if (ec) return fail("SO_REUSEPORT");
    a->socket.bind(ep, ec);
    if (ec) return fail("bind");
    a->socket.listen(kBacklog, ec);
    if (ec) return fail("listen");
    acceptors_.push_back(std::move(a));
  }
  return std::nullopt;
}

void Worker::start() {
  for (auto& a : acceptors_) asio::co_spawn(io_, acceptLoop(*a), asio::detached);
  asio::co_spawn(io_, tickLoop(), asio::detached);
  thread_ = std::thread([this] {
    const std::string name = "sluice-w" + std::to_string(index_);
    pthread_setname_np(pthread_self(), name.c_str());
    for (;;) {
      try {
        io_.run();
        break;
      } catch (const std::exception& e) {
        // A handler outside any request's isolation threw: log it and keep the loop serving.
        stats_->exceptions.inc();
        spdlog::error("worker {}: unexpected exception: {}", index_, e.what());
      }
    }
  });
}

void Worker::updateHosts(std::size_t cluster,
                         std::shared_ptr<const std::vector<upstream::HostSet::Host>> slots) {
  asio::post(io_, [this, cluster, slots = std::move(slots)] {
    clusters_[cluster]->applyHosts(*slots, Clock::now());
  });
}

void Worker::beginDrain() {
  asio::post(io_, [this] { drainNow(); });
}

void Worker::stop() {
  work_.reset();
  io_.stop();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::attach(proxy::DownstreamConnection& c) noexcept {
  c.prev = nullptr;
  c.next = connections_;
  if (connections_ != nullptr) connections_->prev = &c;
  connections_ = &c;
  connection_count_.fetch_add(1, std::memory_order_relaxed);
}

void Worker::detach(proxy::DownstreamConnection& c) noexcept {
  if (c.prev != nullptr) c.prev->next = c.next;
  if (c.next != nullptr) c.next->prev = c.prev;
  if (connections_ == &c) connections_ = c.next;
  c.prev = c.next = nullptr;
  connection_count_.fetch_sub(1, std::memory_order_relaxed);
  if (draining_) checkFinished();
}

void Worker::spawn(tcp::socket socket, const config::Listener& listener) {
  proxy::DownstreamConnection::spawn(
      std::make_unique<proxy::DownstreamConnection>(*this, listener, std::move(socket)));
}

asio::awaitable<void> Worker::acceptLoop(Acceptor& a) {
  asio::steady_timer backoff(io_);
  for (;;) {
    auto [ec, socket] = co_await a.socket.async_accept(net::kNoThrow);
    if (!ec) {
      spawn(std::move(socket), *a.listener);
      continue;
    }
    if (draining_ || !a.socket.is_open() || ec == asio::error::operation_aborted) co_return;
    if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
        ec == asio::error::no_memory) {
      // Out of file descriptors: the pending connection stays queued and the listener stays
      // readable, so retrying at once would spin. Pause accepting briefly instead.
      spdlog::warn("worker {}: accept failed ({}), pausing accepts for 100ms", index_,
                   ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(net::kNoThrow);
    }
  }
}

asio::awaitable<void> Worker::tickLoop() {
  asio::steady_timer timer(io_);
  auto next_sweep = Clock::now() + kSweepEvery;
  for (;;) {
    timer.expires_after(kTick);
    auto [ec] = co_await timer.async_wait(net::kNoThrow);
    if (ec) co_return;
    const auto now = Clock::now();
    wheel_.advance(now);
    if (now >= next_sweep) {
      next_sweep = now + kSweepEvery;
      for (auto& c : clusters_) c->sweep(now);
      if (cold_since_trim_ > 0) {
        // Connections that went cold freed their per-request memory; the allocator keeps freed
        // heap pages mapped unless asked, and so does the buffer pool (beyond a warm reserve),
        // which would leave the RSS of a burst of clients behind long after they idle. At most
        // once a sweep; its cost grows with the free memory, not with the heap.
        cold_since_trim_ = 0;
        heap::releaseFree();
        net::BufferPool::trim();
      }
    }
  }
}

void Worker::drainNow() {
  if (draining_) return;
  draining_ = true;
  for (auto& a : acceptors_) {
    // Connections the kernel already completed sit in the accept queue; closing the listener
    // would reset them. Take them first: they are served (with Connection: close) like the rest.
    boost::system::error_code ec;
    a->socket.non_blocking(true, ec);
    for (;;) {
      tcp::socket s(io_);
      a->socket.accept(s, ec);
      if (ec) break;
      spawn(std::move(s), *a->listener);
    }
    a->socket.close(ec);
  }
  for (auto* c = connections_; c != nullptr;) {
    auto* next = c->next;
    c->drain();
    c = next;
  }
  for (auto& c : clusters_) c->closeIdle();
  checkFinished();
}

void Worker::checkFinished() {
  if (connections_ == nullptr) finished_.store(true, std::memory_order_release);
}

}  // namespace sluice::gateway::server
