// RingHash: consistent hashing on a ring of virtual nodes (Karger et al., STOC 1997; the ketama /
// Envoy RING_HASH scheme). A key goes to the host owning the first point at or after the key's
// hash, so adding or removing one host moves only the keys that host gains or loses.
//
//   std::shared_ptr<const RingHash> ring = RingHash::build(hosts, RingHash::Settings{}, hasher);
//   std::optional<std::size_t> host = ring->pick(XXH3_64bits(key.data(), key.size()),
//                                                [&](std::size_t i) { return healthy[i]; });
//   ring = RingHash::rebuild(ring, new_hosts, settings, hasher);  // same object if unchanged
//
// Points: host i gets w_i * vnodes_per_weight_unit points at hasher(identity, v) for
// v = 0, 1, ...; if the total exceeds max_ring_size, every host's count is scaled down to
// max(1, floor(w_i * vnodes_per_weight_unit * max_ring_size / total)) (integer arithmetic, so
// every instance builds the same ring). More points per host = a more even split of keys
// (relative spread of a host's share ~ 1 / sqrt(points per host)) at 12 bytes per point.
// Lookup boundary: a key hash h goes to the first point with hash >= h; past the last point it
// wraps to the first. Points with equal hashes are ordered by host index.
// Unhealthy hosts: the walk continues clockwise to the first point of an eligible host, so an
// ineligible host's keys spread over the hosts that follow its points while other keys stay put.
// After kMaxWalk points without an eligible host (most hosts ineligible), it falls back to the
// first eligible host by index after the host at the key's point (cyclically): still
// deterministic per key.
//
// Immutable once built: share one table across threads via shared_ptr<const RingHash>; all
// methods are const and thread-safe. Rebuilding is the only way to change it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "resilience/lb/weighted_host.h"

namespace sluice::resilience {

class RingHash {
 public:
  struct Settings {
    // Points per unit of weight. Must be in [1, 65536].
    std::uint32_t vnodes_per_weight_unit = 100;
    // Upper bound on the points of the whole ring (hosts with weight keep at least one point
    // each, so the ring may exceed it by up to the number of hosts). Must be >= 1.
    std::size_t max_ring_size = std::size_t{1} << 22U;

    friend bool operator==(const Settings&, const Settings&) = default;
  };

  // Points walked past ineligible hosts before the by-index fallback.
  static constexpr std::size_t kMaxWalk = 256;

  // nullopt if usable, else what is wrong.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // Builds the ring for `hosts` (index i in the result = hosts[i]). O(P log P) for P points,
  // plus P hasher calls. Precondition: validate(settings) is nullopt (otherwise values are
  // clamped into range) and hasher is callable. No hosts, or all of weight 0: an empty ring
  // whose picks return nullopt.
  [[nodiscard]] static std::shared_ptr<const RingHash> build(std::vector<WeightedHost> hosts,
                                                             const Settings& settings,
                                                             const HostHasher& hasher);

  // The ring for `hosts`, reusing `previous` as far as possible: `previous` itself when hosts
  // and settings are unchanged (no work beyond comparing them); otherwise a new ring identical
  // to build(hosts, ...) that re-hashes only hosts that are new or changed their point count,
  // keeps everyone else's points and merges (O(P + Q log Q) for Q new points). Falls back to
  // build() when previous is null or its settings differ.
  [[nodiscard]] static std::shared_ptr<const RingHash> rebuild(
      const std::shared_ptr<const RingHash>& previous, std::vector<WeightedHost> hosts,
      const Settings& settings, const HostHasher& hasher);

  // The host for key_hash, walking clockwise past hosts for which eligible(i) is false (see the
  // file comment); nullopt if the ring is empty or no host with points is eligible. eligible
  // may be called more than once per host and must answer consistently within a pick.
  // O(1) expected for the lookup (a bucket index over the top bits of the hash, then a binary
  // search in a bucket of ~1-2 points) plus the walk.
  template <typename Eligible>
  [[nodiscard]] std::optional<std::size_t> pick(std::uint64_t key_hash, Eligible&& eligible) const {
    static_assert(std::is_invocable_r_v<bool, Eligible&, std::size_t>,
                  "eligible must be callable as bool(std::size_t host)");
    if (point_hashes_.empty()) {
      return std::nullopt;
    }
    std::size_t point = firstPoint(key_hash);
    const std::size_t home = point_hosts_[point];
    std::size_t previous = kNoHost;
    const std::size_t walk = point_hashes_.size() < kMaxWalk ? point_hashes_.size() : kMaxWalk;
    for (std::size_t step = 0; step < walk; ++step) {
      const std::size_t host = point_hosts_[point];
      if (host != previous && eligible(host)) {
        return host;
      }
      previous = host;
      point = nextPoint(point);
    }
    for (std::size_t step = 1; step <= hosts_.size(); ++step) {
      const std::size_t host = (home + step) % hosts_.size();
      if (points_per_host_[host] != 0 && eligible(host)) {
        return host;
      }
    }
    return std::nullopt;
  }

  // The host owning the first point at or after key_hash; nullopt only for an empty ring.
  [[nodiscard]] std::optional<std::size_t> pick(std::uint64_t key_hash) const {
    if (point_hashes_.empty()) {
      return std::nullopt;
    }
    return point_hosts_[firstPoint(key_hash)];
  }

  // Walking primitives (for BoundedLoad and diagnostics). Precondition: pointCount() > 0.
  // The index of the first point with hash >= key_hash, wrapping to 0 past the last.
  [[nodiscard]] std::size_t firstPoint(std::uint64_t key_hash) const;
  // The point after `point`, wrapping.
  [[nodiscard]] std::size_t nextPoint(std::size_t point) const {
    return point + 1 == point_hashes_.size() ? 0 : point + 1;
  }
  [[nodiscard]] std::size_t pointHost(std::size_t point) const { return point_hosts_[point]; }
  [[nodiscard]] std::uint64_t pointHash(std::size_t point) const { return point_hashes_[point]; }

  // Hosts as given to build() (including weight-0 ones), and points on the ring.
  [[nodiscard]] std::size_t hostCount() const { return hosts_.size(); }
  [[nodiscard]] std::size_t pointCount() const { return point_hashes_.size(); }
  [[nodiscard]] const WeightedHost& host(std::size_t i) const { return hosts_[i]; }
  [[nodiscard]] std::uint32_t pointsOf(std::size_t i) const { return points_per_host_[i]; }
  [[nodiscard]] const Settings& settings() const { return settings_; }

  static constexpr std::size_t kNoHost = static_cast<std::size_t>(-1);

 private:
  struct Point {
    std::uint64_t hash;
    std::uint32_t host;
  };

  RingHash(std::vector<WeightedHost> hosts, const Settings& settings);
  void assignPointCounts();
  void finish(std::vector<Point> points);

  std::vector<WeightedHost> hosts_;
  Settings settings_;
  std::vector<std::uint32_t> points_per_host_;
  // The ring, sorted by (hash, host), as two parallel arrays so the search touches only hashes.
  std::vector<std::uint64_t> point_hashes_;
  std::vector<std::uint32_t> point_hosts_;
  // bucket_start_[b] = first point whose hash has top bits >= b; size 2^bucket_bits_ + 1.
  std::vector<std::uint32_t> bucket_start_;
  unsigned bucket_bits_ = 0;
};

}  // namespace sluice::resilience
