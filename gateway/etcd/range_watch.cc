#include "gateway/etcd/range_watch.h"

#include <atomic>
#include <chrono>
#include <mutex>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

namespace sluice::gateway::etcd {

namespace asio = boost::asio;

struct RangeWatch::Shared : std::enable_shared_from_this<RangeWatch::Shared> {
  Shared(asio::io_context& owner, EtcdClient& etcd, KeyRange r, OnChange changed)
      : io(owner), client(etcd), range(std::move(r)), on_change(std::move(changed)) {}

  [[nodiscard]] std::string name() const {
    return range.range_end.empty() ? range.key : range.key + "*";
  }

  // Any thread: lists the range, delivers it and watches from the revision after the listing.
  void list() {
    client.range(range, [self = shared_from_this()](Result<RangeResponse> r) {
      if (!r.ok()) {
        spdlog::warn("etcd: cannot list {}: {}; trying again in 1 s", self->name(),
                     r.status.message);
        self->listLater();
        return;
      }
      State listed;
      listed.revision = r.value.revision;
      for (auto& kv : r.value.kvs) listed.kvs.emplace(kv.key, std::move(kv));
      {
        std::lock_guard lock(self->mu);
        self->state = std::move(listed);
      }
      self->deliver();
      self->watchFrom(r.value.revision + 1);
    });
  }

  // Posts `f` to the owner's loop unless the watch has stopped. Under the lock stop() takes, so
  // that once stop() has returned nothing of this watch touches the owner's io_context again
  // from the client's thread: the owner may destroy it right after.
  template <typename F>
  void postToOwner(F f) {
    std::lock_guard lock(mu);
    if (stopped) return;
    asio::post(io, std::move(f));
  }

  void listLater() {
    postToOwner([self = shared_from_this()] {
      if (self->stopped) return;
      auto timer = std::make_shared<asio::steady_timer>(self->io, std::chrono::seconds(1));
      timer->async_wait([self, timer](const boost::system::error_code& ec) {
        if (!ec && !self->stopped) self->list();
      });
    });
  }

  void watchFrom(std::int64_t revision) {
    std::lock_guard lock(mu);
    if (stopped) return;
    watch = client.watch(range, revision,
                         [self = shared_from_this()](const WatchUpdate& u) { self->watched(u); });
  }

  // Client's thread.
  void watched(const WatchUpdate& u) {
    if (u.relist) {
      spdlog::warn("etcd: {}: the watch's revision was compacted (oldest kept: {}); listing again",
                   name(), u.compact_revision);
      list();
      return;
    }
    if (u.events.empty()) return;
    {
      std::lock_guard lock(mu);
      for (const auto& e : u.events) {
        if (e.type == WatchEvent::Type::Put) {
          state.kvs[e.kv.key] = e.kv;
        } else {
          state.kvs.erase(e.kv.key);
        }
        state.revision = std::max(state.revision, e.kv.mod_revision);
      }
    }
    deliver();
  }

  // Hands the state as it is now to the owner's thread.
  void deliver() {
    postToOwner([self = shared_from_this()] {
      if (self->stopped) return;
      State copy;
      {
        std::lock_guard lock(self->mu);
        // Several posts may be queued; the first to run delivers the latest state, the others
        // have nothing new to say.
        if (self->state.revision <= self->delivered) return;
        self->delivered = self->state.revision;
        copy = self->state;
      }
      self->on_change(copy);
    });
  }

  asio::io_context& io;
  EtcdClient& client;
  const KeyRange range;
  OnChange on_change;  // owner's thread
  std::mutex mu;       // state, delivered, watch: the client's thread and the owner's
  State state;
  std::int64_t delivered = -1;  // the revision of the last state delivered
  Subscription watch;
  std::atomic<bool> stopped{false};
};

RangeWatch::RangeWatch(asio::io_context& io, EtcdClient& client, KeyRange range, OnChange on_change)
    : shared_(std::make_shared<Shared>(io, client, std::move(range), std::move(on_change))) {}

RangeWatch::~RangeWatch() { stop(); }

void RangeWatch::start() { shared_->list(); }

void RangeWatch::start(State known) {
  const std::int64_t from = known.revision + 1;
  {
    std::lock_guard lock(shared_->mu);
    shared_->delivered = known.revision;
    shared_->state = std::move(known);
  }
  shared_->watchFrom(from);
}

void RangeWatch::stop() {
  Subscription watch;
  {
    std::lock_guard lock(shared_->mu);
    shared_->stopped = true;
    watch = std::move(shared_->watch);
  }
  watch.cancel();
}

}  // namespace sluice::gateway::etcd
