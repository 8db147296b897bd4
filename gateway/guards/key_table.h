// KeyTable: the per-key limiters of a rate_limit guard, bounded so that a flood of distinct keys
// (spoofed headers, a scan from many addresses) cannot exhaust memory.
//
// At most `max_keys` keys are tracked. A key unused for longer than the limiter's idleReset()
// is in its initial state again, so forgetting it changes no decision: such keys are evicted
// first (a few per insertion, from the least recently used end). When the table is full of
// active keys the least recently used one is evicted anyway and counted in `evicted()` - its
// client starts over with a fresh limiter, the price of a bounded table (nginx limit_req
// answers 503 instead; we prefer to keep serving).
//
// The table is split into shards by key hash, each with its own mutex and LRU list, so workers
// rarely contend; keys are hashed with a per-table random seed (XXH3). Memory: about 200 bytes per
// key with gcra (key strings up to 15 bytes are stored inline), more with the other algorithms
// (token_bucket keeps a 200-byte bucket).
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gateway/guards/key_limiter.h"

namespace sluice::gateway::guards {

class KeyTable {
 public:
  KeyTable(std::size_t max_keys, const KeyLimiterFactory& factory);

  // The limiter's decision for `key` at `now`, creating the key if it is new.
  [[nodiscard]] RateDecision acquire(std::string_view key, TimePoint now);

  // Whether a table for `max_keys` can be this one (it splits into as many shards).
  [[nodiscard]] bool canHold(std::size_t max_keys) const;
  // A reload: gives `factory` (this table's) its new settings and every key its share of them
  // (KeyLimiter::reconfigure), with every shard locked so that no request sees a key and the
  // factory disagree; a lowered max_keys forgets the least recently used keys beyond it.
  // canHold(max_keys) must hold.
  void reconfigure(KeyLimiterFactory& factory, const config::RateLimit& settings,
                   std::size_t max_keys, TimePoint now);

  [[nodiscard]] std::size_t size() const { return size_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t evicted() const { return evicted_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    std::string key;
    std::unique_ptr<KeyLimiter> limiter;
    TimePoint last_used{};
  };
  // Keys can be chosen by clients (header parts), so the hash is seeded per table with a random
  // value: without the seed, keys cannot be crafted to collide into one bucket.
  struct Hash {
    using is_transparent = void;
    std::uint64_t seed = 0;
    std::size_t operator()(std::string_view s) const noexcept;
  };
  struct Shard {
    explicit Shard(const Hash& hash) : index(16, hash) {}
    std::mutex mu;
    std::list<Entry> lru;  // front = most recently used
    std::unordered_map<std::string_view, std::list<Entry>::iterator, Hash, std::equal_to<>> index;
  };

  void evictIdle(Shard& shard, TimePoint now);
  void evictOldest(Shard& shard);

  const KeyLimiterFactory& factory_;
  Hash hash_;
  std::size_t shard_capacity_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<std::size_t> size_{0};
  std::atomic<std::uint64_t> evicted_{0};
};

}  // namespace sluice::gateway::guards
