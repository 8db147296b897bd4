// EtcdClient: etcd v3 over its JSON gateway (HTTP/1.1 POSTs to /v3/...), on a thread of its own,
// for the gateway's distributed features: config from a key, discovery from a prefix,
// registration under a lease (docs/distributed.md; ARCHITECTURE.md says why JSON over Beast and
// not libgrpc++).
//
//   EtcdClient etcd({.endpoints = {{"10.0.0.1", 2379}, {"10.0.0.2", 2379}}});
//   etcd.range(KeyRange::prefix("/services/api/"), [&](Result<RangeResponse> r) {
//     if (!r.ok()) return retryLater(r.status);
//     load(r.value.kvs);
//     // Continue where the listing left off; a compaction asks for the listing again.
//     watch_ = etcd.watch(KeyRange::prefix("/services/api/"), r.value.revision + 1,
//                         [&](const WatchUpdate& u) { u.relist ? relist() : apply(u.events); });
//   });
//
// Requests. Each one has a deadline (settings.timeout from when it is made) and its callback
// runs exactly once, on the client's thread, with the answer or an error value: no exception
// crosses this API, and a body that is not what etcd sends is ErrorCode::BadResponse. A request
// that cannot be sent, times out or gets a 5xx on one endpoint goes to the next (starting from
// the last one that answered), each attempt given an equal share of the time left; an etcd
// error below 500 (a compacted revision, a missing lease) is an answer, not a failover. Writes
// retried on another endpoint after a timeout may have been applied twice (etcd has no request
// ids); a put of the same value, a delete and a keep-alive are harmless twice, a lease grant
// leaks a lease until its TTL. Each request uses a connection of its own (etcd traffic here is
// a few requests a second; no pooled connection can go stale under a failover).
//
// Watches. watch() streams the changes of a key range from a revision; the stream survives
// disconnects, restarts and failover by reopening, with exponential backoff and full jitter
// (50 ms to 2 s) once every endpoint has failed, from the revision after the last one it
// delivered: no change is missed or repeated. If that revision has been compacted away, the
// callback gets one update with `relist` set and the watch ends: the caller ranges the key range
// again and watches from that range's revision + 1. Progress notifications are not delivered.
// Watches require a leader (clientv3's WithRequireLeader): a member that loses its leader ends
// the stream and the watch moves to another endpoint.
// A stream that is silently cut (no FIN, no RST) is noticed by TCP keep-alive (about 20 s).
//
// Leases. keepAlive() renews a lease every TTL/3 until cancelled; if the lease expires or is
// revoked (etcd answers a renewal with TTL 0), or no renewal succeeds before the TTL since the
// last success has run out, it reports the loss once and stops.
//
// Metrics (read from any thread): requests per op and result, durations of answered requests,
// up() - for sluice_etcd_requests_total{op,result}, sluice_etcd_request_duration_seconds{op} and
// sluice_etcd_up once the server exports them.
//
// Thread-safety: every method from any thread; callbacks run on the client's thread and must not
// block. A Subscription (watch or keep-alive) must be cancelled or destroyed before the client
// is.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "gateway/config/config.h"
#include "gateway/etcd/etcd_messages.h"
#include "gateway/stats/counter.h"
#include "gateway/stats/histogram.h"

namespace sluice::resilience {
class Backoff;
}  // namespace sluice::resilience

namespace sluice::gateway::etcd {

// What a request is for: the `op` label of its metrics. Watch counts stream openings (ok: etcd
// confirmed the watch), not messages.
enum class Op : std::uint8_t {
  Range,
  Put,
  Delete,
  LeaseGrant,
  LeaseKeepAlive,
  LeaseRevoke,
  Compact,
  Watch,
  Count
};
inline constexpr std::array<std::string_view, 8> kOpNames = {
    "range", "put", "delete", "lease_grant", "lease_keepalive", "lease_revoke", "compact", "watch"};

struct ClientSettings {
  std::vector<config::Address> endpoints;  // etcd members' client URLs (plain HTTP); not empty
  // The deadline of each request, and of opening a watch stream (connect, request, headers).
  std::chrono::milliseconds timeout{2000};
};

// The changes one watch message carried, in revision order.
struct WatchUpdate {
  std::vector<WatchEvent> events;
  std::int64_t revision = 0;  // the store revision when etcd sent them
  // The start revision is compacted: nothing more comes from this watch; range and watch again.
  bool relist = false;
  std::int64_t compact_revision = 0;  // with relist: the oldest revision still watchable
};

class EtcdClient;

// A running watch or keep-alive. Move-only; cancel() (or the destructor) stops it: no callback
// starts after cancel() returns (one already running on the client's thread may finish), and
// from the client's thread (a callback) it takes effect at once. Must not outlive its client.
class Subscription {
 public:
  Subscription() = default;
  ~Subscription() { cancel(); }
  Subscription(Subscription&& other) noexcept;
  Subscription& operator=(Subscription&& other) noexcept;
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  void cancel();
  // Still running: not cancelled, and a watch not ended by a relist, a keep-alive not lost.
  [[nodiscard]] bool active() const noexcept;

  struct State;  // shared with the client's coroutine

 private:
  friend class EtcdClient;
  Subscription(EtcdClient* client, std::shared_ptr<State> state)
      : client_(client), state_(std::move(state)) {}
  EtcdClient* client_ = nullptr;
  std::shared_ptr<State> state_;
};

class EtcdClient {
 public:
  template <typename T>
  using Callback = std::function<void(Result<T>)>;

  // Starts the thread; connects lazily (the first request or watch). Endpoints that are not IP
  // addresses fail their attempts (Unavailable) - names are not resolved here.
  explicit EtcdClient(ClientSettings settings);
  ~EtcdClient();  // stop()
  // Closes every connection and joins the thread: no callback runs after it returns (requests
  // made later never complete). Idempotent; not from a callback.
  void stop();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // The keys in `range` at `revision` (0: the latest), at most `limit` of them (0: all).
  void range(const KeyRange& range, Callback<RangeResponse> done, std::int64_t revision = 0,
             std::int64_t limit = 0);
  // Writes `key`; with a lease (non-zero) the key is deleted when the lease ends.
  void put(std::string_view key, std::string_view value, Callback<PutResponse> done,
           std::int64_t lease = 0);
  void deleteRange(const KeyRange& range, Callback<DeleteResponse> done);
  // range(), waiting for the answer: for start-up and explicit reloads, never from a callback
  // (the client's thread would wait for itself) nor after stop().
  [[nodiscard]] Result<RangeResponse> rangeAndWait(const KeyRange& range);

  // A lease of `ttl` (etcd raises TTLs below its minimum, about 1.5 s by default).
  void leaseGrant(std::chrono::seconds ttl, Callback<LeaseGrant> done);
  // One renewal; a lease that no longer exists answers ok with ttl 0.
  void leaseKeepAlive(std::int64_t id, Callback<LeaseKeepAliveResponse> done);
  // Ends the lease now and deletes its keys; an unknown lease is ErrorCode::Server, kGrpcNotFound.
  void leaseRevoke(std::int64_t id, Callback<Empty> done);
  // Discards history before `revision` (tools and tests; etcd's --auto-compaction-* is the
  // normal way). A revision already compacted is ErrorCode::Server, kGrpcOutOfRange.
  void compact(std::int64_t revision, Callback<Empty> done);

  // Renews lease `id` (of `ttl`) every ttl/3, the first time at once, until cancelled. `lost`
  // runs once (client's thread) if the lease is gone: etcd says so, or ttl has passed since the
  // last renewal without a successful one; the status says which.
  [[nodiscard]] Subscription keepAlive(std::int64_t id, std::chrono::seconds ttl,
                                       std::function<void(const Status&)> lost);

  // Streams the changes to `range` from `start_revision` (0: from the next change) to `changed`,
  // one call per etcd message with events, in revision order, on the client's thread.
  [[nodiscard]] Subscription watch(KeyRange range, std::int64_t start_revision,
                                   std::function<void(const WatchUpdate&)> changed);

  // The last attempt to reach etcd - a request, or opening a watch - got an answer from some
  // endpoint; false before the first one and once every endpoint has failed.
  [[nodiscard]] bool up() const noexcept { return up_.load(std::memory_order_acquire); }

  struct Stats {
    std::array<std::array<stats::Counter, kResultNames.size()>, kOpNames.size()> requests;
    std::array<stats::LatencyHistogram, kOpNames.size()> duration;  // answered requests
  };
  [[nodiscard]] const Stats& stats() const noexcept { return stats_; }

 private:
  friend class Subscription;
  struct Answer;
  struct Exchange;

  template <typename T>
  void unary(Op op, const char* path, std::string body, Result<T> (*parse)(std::string_view),
             Callback<T> done);
  template <typename T>
  boost::asio::awaitable<void> runUnary(Op op, const char* path, std::string body,
                                        Result<T> (*parse)(std::string_view), Callback<T> done);
  boost::asio::awaitable<Answer> call(Op op, std::string path, std::string body);
  boost::asio::awaitable<Exchange> exchange(const config::Address& endpoint,
                                            const std::string& path, const std::string& body,
                                            std::chrono::steady_clock::time_point deadline);
  enum class StreamEnd : std::uint8_t;
  boost::asio::awaitable<StreamEnd> watchOnce(
      std::shared_ptr<Subscription::State> w, std::size_t endpoint, const KeyRange& range,
      std::int64_t& next, const std::function<void(const WatchUpdate&)>& changed,
      resilience::Backoff& backoff);
  boost::asio::awaitable<void> runWatch(std::shared_ptr<Subscription::State> w, KeyRange range,
                                        std::int64_t next_revision,
                                        std::function<void(const WatchUpdate&)> changed);
  boost::asio::awaitable<void> runKeepAlive(std::shared_ptr<Subscription::State> k, std::int64_t id,
                                            std::chrono::seconds ttl,
                                            std::function<void(const Status&)> lost);
  void cancel(const std::shared_ptr<Subscription::State>& state) noexcept;
  void count(Op op, const Status& status, std::chrono::steady_clock::duration took);

  boost::asio::io_context io_;
  ClientSettings settings_;
  std::size_t preferred_ = 0;  // the endpoint that answered last (client's thread only)
  std::atomic<bool> up_{false};
  std::atomic<bool> stopping_{false};
  bool logged_down_ = false;  // client's thread only
  // Running watches and keep-alives, closed by stop() (client's thread only).
  std::unordered_map<Subscription::State*, std::shared_ptr<Subscription::State>> running_;
  Stats stats_;
  std::thread thread_;
};

}  // namespace sluice::gateway::etcd
