// The counters of one route or one cluster: one shard per worker, owned under the route's or
// cluster's name by the server's state registry (server/state_registry.h).
//
// Why per entity and not one table per worker: a reload adds, removes and reorders routes and
// clusters while requests of the previous config are still running. Counters that belong to the
// entity, not to a position in a config, make "unchanged route, same counters" a pointer
// comparison: Prometheus counters of a route or cluster that a reload kept stay monotonic, a
// removed one leaves /metrics when the registry drops it, and a request still running on the old
// config keeps writing into the shard it started with (the old generation holds it) without any
// table being resized under a worker's feet.
//
// Writers: worker w writes only shard w (single-writer counters, counter.h); the main thread
// sums the shards at scrape time. Shards are cache-line aligned so that two workers never write
// one line.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/stats/worker_stats.h"

namespace sluice::gateway::stats {

template <typename T>
class PerWorker {
 public:
  template <typename... Args>
  explicit PerWorker(std::size_t workers, const Args&... args) : size_(workers) {
    shards_.reserve(workers);
    for (std::size_t w = 0; w < workers; ++w) shards_.push_back(std::make_unique<Shard>(args...));
  }

  [[nodiscard]] T& operator[](std::size_t worker) noexcept { return shards_[worker]->value; }
  [[nodiscard]] const T& operator[](std::size_t worker) const noexcept {
    return shards_[worker]->value;
  }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  template <typename F>
  [[nodiscard]] std::uint64_t sum(F&& f) const {
    std::uint64_t total = 0;
    for (const auto& s : shards_) total += f(s->value);
    return total;
  }
  template <typename F>
  [[nodiscard]] std::int64_t sumSigned(F&& f) const {
    std::int64_t total = 0;
    for (const auto& s : shards_) total += f(s->value);
    return total;
  }

 private:
  struct alignas(64) Shard {
    template <typename... Args>
    explicit Shard(const Args&... args) : value(args...) {}
    T value;
  };
  std::size_t size_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

// Guard verdict counters of one route, by guard name. A route has at most a handful of guards
// (five kinds today); a guard keeps its slot for the life of the route's counters, so removing
// a guard and adding it back continues its counters.
inline constexpr std::size_t kMaxRouteGuards = 8;

struct RouteShard {
  RouteStats requests;
  std::array<GuardStats, kMaxRouteGuards> guards;
};

class RouteCounters {
 public:
  explicit RouteCounters(std::size_t workers) : shards(workers) {}

  // The guard slot of `guard` (main thread), allocated on first use; nullopt when every slot is
  // taken by other names (not reachable with the built-in guards).
  [[nodiscard]] std::optional<std::size_t> guardSlot(std::string_view guard);
  [[nodiscard]] const std::vector<std::string>& guardNames() const noexcept { return names_; }

  PerWorker<RouteShard> shards;

 private:
  std::vector<std::string> names_;  // [slot]
};

// What became of the copies a route's mirror made (proxy/mirror.h), as
// sluice_mirror_requests_total{result}: a response of each status class, or why there was none.
enum class MirrorResult : std::uint8_t {
  Status2xx,
  Status3xx,
  Status4xx,
  Status5xx,
  Failed,        // connect failure, reset or an invalid response
  Timeout,       // the mirror's timeout passed first
  NoHost,        // no healthy host in the mirror cluster
  Overflow,      // max_in_flight copies were running, or the mirror cluster's pool was full
  BodyTooLarge,  // the request body was over max_body: not copied
  Incomplete,    // the request body never arrived whole (the client or the primary failed)
  Count,
};
inline constexpr std::array<std::string_view, static_cast<std::size_t>(MirrorResult::Count)>
    kMirrorResults = {"2xx",       "3xx",      "4xx",
                      "5xx",       "failed",   "timeout",
                      "no_host",   "overflow", "body_too_large",
                      "incomplete"};

struct MirrorShard {
  std::array<Counter, kMirrorResults.size()> results;
  Gauge in_flight;  // copies sent and not finished

  void count(MirrorResult r) noexcept { results[static_cast<std::size_t>(r)].inc(); }
};

// A route's mirror counters, kept across reloads under (route, mirror cluster).
struct MirrorCounters {
  explicit MirrorCounters(std::size_t workers) : shards(workers) {}
  PerWorker<MirrorShard> shards;
};

struct ClusterShard {
  explicit ClusterShard(std::size_t host_slots) : hosts(host_slots) {}
  ClusterStats cluster;
  std::vector<HostStats> hosts;  // [HostSet slot]
};

// A cluster's counters; sized for the host slots of the cluster state they belong to.
struct ClusterCounters {
  ClusterCounters(std::size_t workers, std::size_t host_slots) : shards(workers, host_slots) {}

  // Starts these (new, not yet written) counters where `before` - the counters of the state
  // this one replaces - are, so that the cluster's series stay monotonic across the
  // replacement: the cluster's own counters, and each host's by `slot_map` ([new slot] = old
  // slot of the same host, or npos). Gauges are not carried: they follow the connections.
  // Main thread, before any worker writes these.
  void carryFrom(const ClusterCounters& before, const std::vector<std::size_t>& slot_map);

  PerWorker<ClusterShard> shards;
};

inline void ClusterCounters::carryFrom(const ClusterCounters& before,
                                       const std::vector<std::size_t>& slot_map) {
  const auto sum = [&](auto get) {
    return before.shards.sum([&](const ClusterShard& s) { return get(s).value(); });
  };
  ClusterShard& into = shards[0];
  for (std::size_t k = 0; k < into.cluster.errors.size(); ++k) {
    into.cluster.errors[k].inc(
        sum([&](const ClusterShard& s) -> const Counter& { return s.cluster.errors[k]; }));
  }
  into.cluster.retries.inc(
      sum([](const ClusterShard& s) -> const Counter& { return s.cluster.retries; }));
  into.cluster.retries_denied.inc(
      sum([](const ClusterShard& s) -> const Counter& { return s.cluster.retries_denied; }));
  for (std::size_t h = 0; h < slot_map.size() && h < into.hosts.size(); ++h) {
    const std::size_t o = slot_map[h];
    if (o == static_cast<std::size_t>(-1)) continue;
    auto& host = into.hosts[h];
    host.connects.inc(
        sum([&](const ClusterShard& s) -> const Counter& { return s.hosts[o].connects; }));
    host.requests.inc(
        sum([&](const ClusterShard& s) -> const Counter& { return s.hosts[o].requests; }));
    for (std::size_t r = 0; r < host.closed.size(); ++r) {
      host.closed[r].inc(
          sum([&](const ClusterShard& s) -> const Counter& { return s.hosts[o].closed[r]; }));
    }
  }
}

inline std::optional<std::size_t> RouteCounters::guardSlot(std::string_view guard) {
  for (std::size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == guard) return i;
  }
  if (names_.size() == kMaxRouteGuards) return std::nullopt;
  names_.emplace_back(guard);
  return names_.size() - 1;
}

}  // namespace sluice::gateway::stats
