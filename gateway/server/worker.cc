#include "gateway/server/worker.h"

#include <algorithm>
#include <sys/socket.h>
#include <unistd.h>

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
constexpr auto kPoolSweepEvery = std::chrono::seconds(1);

}  // namespace

void GenerationPin::release() noexcept {
  if (g_ == nullptr) return;
  WorkerGeneration* g = std::exchange(g_, nullptr);
  if (--g->pins == 0 && g->retired) g->worker->free(g);
}

Worker::Worker(std::size_t index, WorkerUpdate first)
    // One thread runs each io_context and only it touches the worker's sockets: reactor I/O
    // needs no locking (other threads only post to the scheduler, which stays locked).
    : index_(index),
      io_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO),
      work_(asio::make_work_guard(io_)),
      stats_(std::make_unique<stats::WorkerStats>()),
      wheel_(kTick, Clock::now()) {
  apply(std::move(first));
}

Worker::~Worker() {
  stop();
  join();
  // Coroutine frames still pending (connections, accept and tick loops) reference the wheel, the
  // pools and the stats: destroy them now, while those are alive, and only then the pools and
  // listeners, whose sockets the io_context's services must outlive.
  io_.destroyPendingHandlers();
  current_.reset();
  retired_.clear();
  listeners_.clear();
}

void Worker::apply(WorkerUpdate update) {
  const auto now = Clock::now();
  auto gen = std::make_unique<WorkerGeneration>();
  gen->worker = this;
  gen->snapshot = std::move(update.snapshot);
  const Snapshot& snap = *gen->snapshot;
  for (std::size_t c = 0; c < snap.config.clusters.size(); ++c) {
    const config::Cluster& def = snap.config.clusters[c];
    const auto& state = snap.clusters[c];
    std::shared_ptr<upstream::Cluster> before;
    if (current_) {
      for (const auto& k : current_->clusters) {
        if (k->config().name == def.name) before = k;
      }
    }
    if (before && before->state() == state && before->config().lb == def.lb) {
      if (before->config() != def) before->reconfigure(def);
      before->applyHosts(*update.hosts[c], now);
      gen->clusters.push_back(std::move(before));
      continue;
    }
    auto fresh = std::make_shared<upstream::Cluster>(io_.get_executor(), def, state, index_,
                                                     *update.hosts[c]);
    if (before) fresh->adoptIdle(*before);
    gen->clusters.push_back(std::move(fresh));
  }
  gen->backends.resize(snap.backend_count);
  for (const auto& plan : snap.routes) {
    for (const auto& b : plan.backends) gen->backends[b.slot] = &b.counters->shards[index_];
    gen->mirrors.push_back(plan.mirror ? &plan.mirror->shards[index_] : nullptr);
  }
  applyListeners(snap.config, update.listeners);
  access_log_ = update.access_log;
  spans_ = update.spans;
  if (current_) {
    current_->retired = true;
    if (current_->pins == 0) {
      current_.reset();
    } else {
      retired_.push_back(std::move(current_));
    }
  }
  current_ = std::move(gen);
  generation_.store(snap.generation, std::memory_order_release);
}

void Worker::applyListeners(const config::Config& config, ListenFds& fds) {
  for (auto& l : listeners_) {
    if (l.removed) continue;
    const auto it = std::find_if(config.listeners.begin(), config.listeners.end(),
                                 [&](const config::Listener& c) {
                                   return c.name == l.config.name && c.address == l.config.address;
                                 });
    if (it == config.listeners.end()) {
      removeListener(l);
    } else {
      l.config = *it;  // new limits and timeouts, read by its connections at each request
    }
  }
  for (const auto& c : config.listeners) {
    const bool have = std::any_of(listeners_.begin(), listeners_.end(), [&](const auto& l) {
      return !l.removed && l.config.name == c.name;
    });
    if (have) continue;
    const int fd = fds.take(c.name);
    if (fd < 0) continue;  // the server bound none (cannot happen: it binds every new one)
    auto& l = listeners_.emplace_back(io_, c);
    boost::system::error_code ec;
    const auto protocol = c.address.ip.find(':') != std::string::npos ? tcp::v6() : tcp::v4();
    l.acceptor.assign(protocol, fd, ec);
    if (ec) {
      spdlog::error("worker {}: listener '{}': {}", index_, c.name, ec.message());
      ::close(fd);
      listeners_.pop_back();
      continue;
    }
    if (draining_) l.draining = true;
    if (started_ && !draining_) {
      l.accepting = true;
      asio::co_spawn(io_, acceptLoop(l), asio::detached);
    }
  }
}

void Worker::stopAccepting(WorkerListener& l) {
  l.draining = true;
  // Connections the kernel already completed sit in the accept queue; closing the listener
  // would reset them. Take them first: they are served (with Connection: close) like the rest.
  boost::system::error_code ec;
  l.acceptor.non_blocking(true, ec);
  for (;;) {
    tcp::socket s(io_);
    l.acceptor.accept(s, ec);
    if (ec) break;
    spawn(std::move(s), l);
  }
  l.acceptor.close(ec);
}

void Worker::removeListener(WorkerListener& l) {
  l.removed = true;
  stopAccepting(l);
  for (auto* c = connections_; c != nullptr;) {
    auto* next = c->next;
    if (&c->listener() == &l) c->drain();
    c = next;
  }
  maybeFree(l);
}

void Worker::maybeFree(WorkerListener& l) {
  if (!l.removed || l.accepting || l.connections > 0) return;
  listeners_.remove_if([&](const WorkerListener& x) { return &x == &l; });
}

void Worker::free(WorkerGeneration* g) {
  std::erase_if(retired_, [g](const auto& p) { return p.get() == g; });
}

std::vector<upstream::Cluster*> Worker::liveClusters() const {
  std::vector<upstream::Cluster*> out;
  const auto add = [&](const WorkerGeneration& g) {
    for (const auto& c : g.clusters) {
      if (std::find(out.begin(), out.end(), c.get()) == out.end()) out.push_back(c.get());
    }
  };
  if (current_) add(*current_);
  for (const auto& g : retired_) add(*g);
  return out;
}

void Worker::start() {
  started_ = true;
  for (auto& l : listeners_) {
    if (l.removed || l.draining) continue;
    l.accepting = true;
    asio::co_spawn(io_, acceptLoop(l), asio::detached);
  }
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

void Worker::adopt(WorkerUpdate update, std::function<void()> done) {
  // The update owns descriptors: moved into the handler, which asio requires to be copyable.
  auto held = std::make_shared<WorkerUpdate>(std::move(update));
  asio::post(io_, [this, held, done = std::move(done)] {
    apply(std::move(*held));
    if (done) done();
  });
}

void Worker::collectRequests(std::function<void(std::vector<proxy::InFlightRequest>)> done) {
  asio::post(io_, [this, done = std::move(done)] {
    std::vector<proxy::InFlightRequest> out;
    const auto now = Clock::now();
    for (const auto* c = connections_; c != nullptr; c = c->next) {
      if (auto r = c->inFlight(now)) {
        r->worker = index_;
        out.push_back(std::move(*r));
      }
    }
    done(std::move(out));
  });
}

void Worker::updateHosts(std::shared_ptr<const upstream::ClusterState> cluster,
                         std::shared_ptr<const std::vector<upstream::HostSet::Host>> slots) {
  asio::post(io_, [this, cluster = std::move(cluster), slots = std::move(slots)] {
    const auto now = Clock::now();
    for (auto* c : liveClusters()) {
      if (c->state() == cluster) c->applyHosts(*slots, now);
    }
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

void Worker::attach(proxy::DownstreamConnection& c, WorkerListener& l) noexcept {
  c.prev = nullptr;
  c.next = connections_;
  if (connections_ != nullptr) connections_->prev = &c;
  connections_ = &c;
  ++l.connections;
  connection_count_.fetch_add(1, std::memory_order_relaxed);
}

void Worker::detach(proxy::DownstreamConnection& c, WorkerListener& l) noexcept {
  if (c.prev != nullptr) c.prev->next = c.next;
  if (c.next != nullptr) c.next->prev = c.prev;
  if (connections_ == &c) connections_ = c.next;
  c.prev = c.next = nullptr;
  --l.connections;
  connection_count_.fetch_sub(1, std::memory_order_relaxed);
  maybeFree(l);
  if (draining_) checkFinished();
}

void Worker::spawn(tcp::socket socket, WorkerListener& listener) {
  proxy::DownstreamConnection::spawn(
      std::make_unique<proxy::DownstreamConnection>(*this, listener, std::move(socket)));
}

asio::awaitable<void> Worker::acceptLoop(WorkerListener& l) {
  asio::steady_timer backoff(io_);
  for (;;) {
    auto [ec, socket] = co_await l.acceptor.async_accept(net::kNoThrow);
    if (!ec) {
      spawn(std::move(socket), l);
      continue;
    }
    if (l.draining || !l.acceptor.is_open() || ec == asio::error::operation_aborted) break;
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
  l.accepting = false;
  maybeFree(l);
}

asio::awaitable<void> Worker::tickLoop() {
  asio::steady_timer timer(io_);
  auto next_sweep = Clock::now() + kPoolSweepEvery;
  for (;;) {
    timer.expires_after(kTick);
    auto [ec] = co_await timer.async_wait(net::kNoThrow);
    if (ec) co_return;
    const auto now = Clock::now();
    wheel_.advance(now);
    if (now >= next_sweep) {
      next_sweep = now + kPoolSweepEvery;
      for (auto* c : liveClusters()) c->sweep(now);
      // Socket buffers a whole second did not need go back to the kernel (buffer_pool.h).
      net::BufferPool::trim();
      if (cold_since_trim_ > 0) {
        // Connections that went cold freed their per-request memory; the allocator keeps freed
        // heap pages mapped unless asked, which would leave the RSS of a burst of clients behind
        // long after they idle. At most once a sweep; its cost grows with the free memory, not
        // with the heap.
        cold_since_trim_ = 0;
        heap::releaseFree();
      }
    }
  }
}

void Worker::drainNow() {
  if (draining_) return;
  draining_ = true;
  for (auto& l : listeners_) {
    if (!l.removed) stopAccepting(l);
  }
  for (auto* c = connections_; c != nullptr;) {
    auto* next = c->next;
    c->drain();
    c = next;
  }
  for (auto* c : liveClusters()) c->closeIdle();
  checkFinished();
}

void Worker::checkFinished() {
  if (connections_ == nullptr) finished_.store(true, std::memory_order_release);
}

}  // namespace sluice::gateway::server
