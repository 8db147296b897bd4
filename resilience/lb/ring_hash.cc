#include "resilience/lb/ring_hash.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sluice::resilience {
namespace {

static_assert(sizeof(void*) >= 8, "RingHash assumes a 64-bit platform");
#if !defined(__SIZEOF_INT128__)
#error "RingHash needs 128-bit integers to size the ring exactly (same ring on every instance)"
#endif
__extension__ using Wide = unsigned __int128;

constexpr std::uint32_t kMaxVnodesPerWeightUnit = 65536;
constexpr std::size_t kMaxRingSize = std::size_t{1} << 31U;

std::uint32_t clampVnodes(std::uint32_t vnodes) {
  return std::clamp<std::uint32_t>(vnodes, 1, kMaxVnodesPerWeightUnit);
}
std::size_t clampRingSize(std::size_t size) {
  return std::clamp<std::size_t>(size, 1, kMaxRingSize);
}

}  // namespace

std::optional<std::string> RingHash::validate(const Settings& settings) {
  if (settings.vnodes_per_weight_unit < 1 ||
      settings.vnodes_per_weight_unit > kMaxVnodesPerWeightUnit) {
    return "RingHash: vnodes_per_weight_unit must be in [1, 65536], got " +
           std::to_string(settings.vnodes_per_weight_unit);
  }
  if (settings.max_ring_size < 1 || settings.max_ring_size > kMaxRingSize) {
    return "RingHash: max_ring_size must be in [1, 2^31], got " +
           std::to_string(settings.max_ring_size);
  }
  return std::nullopt;
}

RingHash::RingHash(std::vector<WeightedHost> hosts, const Settings& settings)
    : hosts_(std::move(hosts)), settings_(settings) {
  settings_.vnodes_per_weight_unit = clampVnodes(settings_.vnodes_per_weight_unit);
  settings_.max_ring_size = clampRingSize(settings_.max_ring_size);
  assignPointCounts();
}

void RingHash::assignPointCounts() {
  points_per_host_.assign(hosts_.size(), 0);
  Wide total = 0;
  for (const WeightedHost& host : hosts_) {
    total += static_cast<Wide>(host.weight) * settings_.vnodes_per_weight_unit;
  }
  const bool scale = total > settings_.max_ring_size;
  for (std::size_t i = 0; i < hosts_.size(); ++i) {
    if (hosts_[i].weight == 0) {
      continue;
    }
    Wide points = static_cast<Wide>(hosts_[i].weight) * settings_.vnodes_per_weight_unit;
    if (scale) {
      // Exact integer scaling: weight * vnodes < 2^48 and max_ring_size <= 2^31 fit in 128 bits.
      points = points * settings_.max_ring_size / total;
    }
    points_per_host_[i] = static_cast<std::uint32_t>(std::max<Wide>(points, 1));
  }
}

std::shared_ptr<const RingHash> RingHash::build(std::vector<WeightedHost> hosts,
                                                const Settings& settings,
                                                const HostHasher& hasher) {
  std::shared_ptr<RingHash> ring(new RingHash(std::move(hosts), settings));
  std::size_t total = 0;
  for (const std::uint32_t count : ring->points_per_host_) {
    total += count;
  }
  std::vector<Point> points;
  points.reserve(total);
  for (std::size_t i = 0; i < ring->hosts_.size(); ++i) {
    const std::string_view identity = ring->hosts_[i].identity;
    for (std::uint32_t v = 0; v < ring->points_per_host_[i]; ++v) {
      points.push_back(Point{hasher(identity, v), static_cast<std::uint32_t>(i)});
    }
  }
  std::sort(points.begin(), points.end(), [](const Point& a, const Point& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.host < b.host;
  });
  ring->finish(std::move(points));
  return ring;
}

std::shared_ptr<const RingHash> RingHash::rebuild(const std::shared_ptr<const RingHash>& previous,
                                                  std::vector<WeightedHost> hosts,
                                                  const Settings& settings,
                                                  const HostHasher& hasher) {
  if (previous == nullptr) {
    return build(std::move(hosts), settings, hasher);
  }
  Settings clamped = settings;
  clamped.vnodes_per_weight_unit = clampVnodes(clamped.vnodes_per_weight_unit);
  clamped.max_ring_size = clampRingSize(clamped.max_ring_size);
  if (!(previous->settings_ == clamped)) {
    return build(std::move(hosts), settings, hasher);
  }
  if (previous->hosts_ == hosts) {
    return previous;
  }
  std::shared_ptr<RingHash> ring(new RingHash(std::move(hosts), settings));

  // Old index -> new index for hosts whose points are unchanged: same identity, same count
  // (a point's hash depends only on the identity and the point's number).
  std::unordered_map<std::string_view, std::uint32_t> old_index;
  old_index.reserve(previous->hosts_.size());
  for (std::size_t i = 0; i < previous->hosts_.size(); ++i) {
    old_index.emplace(previous->hosts_[i].identity, static_cast<std::uint32_t>(i));
  }
  constexpr std::uint32_t kDropped = 0xFFFFFFFFU;
  std::vector<std::uint32_t> moved_to(previous->hosts_.size(), kDropped);
  std::vector<bool> reused(ring->hosts_.size(), false);
  for (std::size_t i = 0; i < ring->hosts_.size(); ++i) {
    const auto it = old_index.find(ring->hosts_[i].identity);
    if (it != old_index.end() && moved_to[it->second] == kDropped &&
        previous->points_per_host_[it->second] == ring->points_per_host_[i]) {
      moved_to[it->second] = static_cast<std::uint32_t>(i);
      reused[i] = true;
    }
  }

  std::vector<Point> kept;
  kept.reserve(previous->point_hashes_.size());
  for (std::size_t p = 0; p < previous->point_hashes_.size(); ++p) {
    const std::uint32_t to = moved_to[previous->point_hosts_[p]];
    if (to != kDropped) {
      kept.push_back(Point{previous->point_hashes_[p], to});
    }
  }
  std::vector<Point> fresh;
  for (std::size_t i = 0; i < ring->hosts_.size(); ++i) {
    if (reused[i]) {
      continue;
    }
    const std::string_view identity = ring->hosts_[i].identity;
    for (std::uint32_t v = 0; v < ring->points_per_host_[i]; ++v) {
      fresh.push_back(Point{hasher(identity, v), static_cast<std::uint32_t>(i)});
    }
  }
  const auto by_hash_then_host = [](const Point& a, const Point& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.host < b.host;
  };
  std::sort(fresh.begin(), fresh.end(), by_hash_then_host);
  // `kept` is sorted by hash; among equal hashes its hosts follow the old indices, which the
  // renumbering may have reordered, so re-sort those (rare) runs to match build() exactly.
  for (auto run = kept.begin(); run != kept.end();) {
    auto end = std::find_if(run, kept.end(), [&](const Point& p) { return p.hash != run->hash; });
    if (std::distance(run, end) > 1) {
      std::sort(run, end, by_hash_then_host);
    }
    run = end;
  }
  std::vector<Point> points;
  points.reserve(kept.size() + fresh.size());
  std::merge(kept.begin(), kept.end(), fresh.begin(), fresh.end(), std::back_inserter(points),
             by_hash_then_host);
  ring->finish(std::move(points));
  return ring;
}

void RingHash::finish(std::vector<Point> points) {
  point_hashes_.resize(points.size());
  point_hosts_.resize(points.size());
  for (std::size_t p = 0; p < points.size(); ++p) {
    point_hashes_[p] = points[p].hash;
    point_hosts_[p] = points[p].host;
  }
  // About one point per bucket: the largest power of two <= the number of points.
  bucket_bits_ = 0;
  while (bucket_bits_ < 31 && (std::size_t{2} << bucket_bits_) <= points.size()) {
    ++bucket_bits_;
  }
  const std::size_t buckets = std::size_t{1} << bucket_bits_;
  bucket_start_.assign(buckets + 1, 0);
  std::size_t p = 0;
  for (std::size_t b = 0; b < buckets; ++b) {
    bucket_start_[b] = static_cast<std::uint32_t>(p);
    while (p < points.size() &&
           (bucket_bits_ == 0 ? 0 : point_hashes_[p] >> (64U - bucket_bits_)) == b) {
      ++p;
    }
  }
  bucket_start_[buckets] = static_cast<std::uint32_t>(points.size());
}

std::size_t RingHash::firstPoint(std::uint64_t key_hash) const {
  const std::size_t bucket = bucket_bits_ == 0 ? 0 : key_hash >> (64U - bucket_bits_);
  const auto begin = point_hashes_.begin() + bucket_start_[bucket];
  const auto end = point_hashes_.begin() + bucket_start_[bucket + 1];
  // Points in earlier buckets hash below key_hash, points in later ones above it, so the answer
  // is in this bucket or is the first point after it.
  const auto it = std::lower_bound(begin, end, key_hash);
  const auto index = static_cast<std::size_t>(it - point_hashes_.begin());
  return index == point_hashes_.size() ? 0 : index;
}

}  // namespace sluice::resilience
