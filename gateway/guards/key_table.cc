#include "gateway/guards/key_table.h"

#include <algorithm>
#include <random>

#include <xxhash.h>

namespace sluice::gateway::guards {
namespace {

// Idle keys examined per insertion: bounded work, yet enough to keep up with any arrival rate
// (each insertion adds one key and can remove several).
constexpr int kIdleChecksPerInsert = 4;

std::size_t shardCount(std::size_t max_keys) { return max_keys >= 1024 ? 16 : 1; }

}  // namespace

std::size_t KeyTable::Hash::operator()(std::string_view s) const noexcept {
  return static_cast<std::size_t>(XXH3_64bits_withSeed(s.data(), s.size(), seed));
}

KeyTable::KeyTable(std::size_t max_keys, const KeyLimiterFactory& factory)
    : factory_(factory),
      hash_{(static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()},
      shard_capacity_((max_keys + shardCount(max_keys) - 1) / shardCount(max_keys)) {
  for (std::size_t i = 0; i < shardCount(max_keys); ++i) {
    shards_.push_back(std::make_unique<Shard>(hash_));
  }
}

bool KeyTable::canHold(std::size_t max_keys) const {
  return shardCount(max_keys) == shards_.size();
}

void KeyTable::reconfigure(KeyLimiterFactory& factory, const config::RateLimit& settings,
                           std::size_t max_keys, TimePoint now) {
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.reserve(shards_.size());
  for (auto& shard : shards_) locks.emplace_back(shard->mu);  // always in index order
  factory.setSettings(settings);
  shard_capacity_ = (max_keys + shards_.size() - 1) / shards_.size();
  for (auto& shard : shards_) {
    for (auto& entry : shard->lru) entry.limiter->reconfigure(factory, now);
    while (shard->lru.size() > shard_capacity_) evictOldest(*shard);
  }
}

RateDecision KeyTable::acquire(std::string_view key, TimePoint now) {
  // The shard comes from the hash's high bits, the bucket inside it from the low bits.
  Shard& shard = *shards_[(hash_(key) >> 48) % shards_.size()];
  std::lock_guard lock(shard.mu);
  if (auto it = shard.index.find(key); it != shard.index.end()) {
    auto entry = it->second;
    shard.lru.splice(shard.lru.begin(), shard.lru, entry);
    entry->last_used = std::max(entry->last_used, now);
    return entry->limiter->acquire(now);
  }
  evictIdle(shard, now);
  if (shard.lru.size() >= shard_capacity_) evictOldest(shard);
  shard.lru.push_front(Entry{std::string(key), factory_.make(now), now});
  auto entry = shard.lru.begin();
  try {
    shard.index.emplace(entry->key, entry);
  } catch (...) {
    shard.lru.pop_front();
    throw;
  }
  size_.fetch_add(1, std::memory_order_relaxed);
  return entry->limiter->acquire(now);
}

void KeyTable::evictIdle(Shard& shard, TimePoint now) {
  for (int i = 0; i < kIdleChecksPerInsert && !shard.lru.empty(); ++i) {
    const Entry& oldest = shard.lru.back();
    if (now - oldest.last_used <= factory_.idleReset()) return;
    shard.index.erase(oldest.key);
    shard.lru.pop_back();
    size_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void KeyTable::evictOldest(Shard& shard) {
  if (shard.lru.empty()) return;
  shard.index.erase(shard.lru.back().key);
  shard.lru.pop_back();
  size_.fetch_sub(1, std::memory_order_relaxed);
  evicted_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace sluice::gateway::guards
