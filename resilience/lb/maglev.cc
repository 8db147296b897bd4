#include "resilience/lb/maglev.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <utility>
#include <vector>

namespace sluice::resilience {
namespace {

constexpr std::uint64_t kMinTableSize = 3;
constexpr std::uint64_t kMaxTableSize = (std::uint64_t{1} << 31U) - 1;  // 2^31 - 1 is prime
constexpr std::uint32_t kEmpty = 0xFFFFFFFFU;

// The table size build() uses for a possibly invalid request: the next prime >= it, in range.
std::uint64_t usableTableSize(std::uint64_t requested) {
  std::uint64_t size = std::clamp(requested, kMinTableSize, kMaxTableSize);
  while (!Maglev::isPrime(size)) {
    ++size;
  }
  return size;
}

}  // namespace

bool Maglev::isPrime(std::uint64_t n) {
  if (n < 2) {
    return false;
  }
  if (n % 2 == 0) {
    return n == 2;
  }
  for (std::uint64_t d = 3; d <= n / d; d += 2) {
    if (n % d == 0) {
      return false;
    }
  }
  return true;
}

std::optional<std::string> Maglev::validate(const Settings& settings) {
  if (settings.table_size < kMinTableSize || settings.table_size > kMaxTableSize) {
    return "Maglev: table_size must be in [3, 2^31 - 1], got " +
           std::to_string(settings.table_size);
  }
  if (!isPrime(settings.table_size)) {
    return "Maglev: table_size must be prime, got " + std::to_string(settings.table_size);
  }
  return std::nullopt;
}

std::shared_ptr<const Maglev> Maglev::build(std::vector<WeightedHost> hosts,
                                            const Settings& settings, const HostHasher& hasher) {
  Settings usable = settings;
  usable.table_size = usableTableSize(settings.table_size);
  std::shared_ptr<Maglev> table(new Maglev(std::move(hosts), usable));
  table->fill(hasher);
  return table;
}

std::shared_ptr<const Maglev> Maglev::rebuild(const std::shared_ptr<const Maglev>& previous,
                                              std::vector<WeightedHost> hosts,
                                              const Settings& settings, const HostHasher& hasher) {
  if (previous != nullptr &&
      previous->settings_.table_size == usableTableSize(settings.table_size) &&
      previous->hosts_ == hosts) {
    return previous;
  }
  return build(std::move(hosts), settings, hasher);
}

void Maglev::fill(const HostHasher& hasher) {
  const std::uint64_t size = settings_.table_size;
  slots_per_host_.assign(hosts_.size(), 0);

  struct Entry {
    std::uint64_t position;  // the next slot of this host's permutation to try
    std::uint64_t skip;
    std::uint64_t weight;
    std::uint64_t claims;
  };
  std::vector<Entry> entries(hosts_.size());
  std::uint64_t max_weight = 0;
  for (std::size_t i = 0; i < hosts_.size(); ++i) {
    if (hosts_[i].weight == 0) {
      continue;
    }
    const std::uint64_t offset = hasher(hosts_[i].identity, kOffsetSeed) % size;
    const std::uint64_t skip = hasher(hosts_[i].identity, kSkipSeed) % (size - 1) + 1;
    entries[i] = Entry{offset, skip, hosts_[i].weight, 0};
    max_weight = std::max<std::uint64_t>(max_weight, hosts_[i].weight);
  }
  if (max_weight == 0) {
    return;  // no host can take keys: an empty table
  }

  // Envoy's iterations as a priority queue of (iteration of the host's next turn, host index):
  // the same order as scanning hosts in index order once per iteration, without visiting hosts
  // whose turn has not come (a light host would otherwise be checked every iteration).
  using Turn = std::pair<std::uint64_t, std::size_t>;
  std::priority_queue<Turn, std::vector<Turn>, std::greater<>> turns;
  for (std::size_t i = 0; i < hosts_.size(); ++i) {
    if (hosts_[i].weight != 0) {
      turns.emplace(1, i);
    }
  }
  table_.assign(size, kEmpty);
  for (std::uint64_t filled = 0; filled < size; ++filled) {
    const auto [iteration, host] = turns.top();
    turns.pop();
    Entry& entry = entries[host];
    // skip is in [1, M-1] and M is prime, so the permutation reaches every slot: an empty one
    // exists while filled < M.
    while (table_[entry.position] != kEmpty) {
      entry.position += entry.skip;
      entry.position -= entry.position >= size ? size : 0;
    }
    table_[entry.position] = static_cast<std::uint32_t>(host);
    entry.position += entry.skip;
    entry.position -= entry.position >= size ? size : 0;
    ++entry.claims;
    ++slots_per_host_[host];
    // Next turn: the first later iteration t with t * w >= claims * w_max.
    const std::uint64_t due = (entry.claims * max_weight + entry.weight - 1) / entry.weight;
    turns.emplace(std::max(iteration + 1, due), host);
  }
}

}  // namespace sluice::resilience
