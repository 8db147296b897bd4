// ShardedTokenBucket: a token bucket split into per-thread shards, for one limit that many cores
// enforce at once (a route-wide limit checked by every worker, say).
//
// Why it exists: TokenBucket keeps its whole state in one atomic word, so it is exact, but every
// admit must own that word's cache line; two cores admitting at full speed pass the line back and
// forth and each admit costs one cache-line transfer (~17-25 ns here, the same order as a
// contended mutex). This class gives each thread its own shard (its own line) and reaches the
// other shards only when its own is empty, so admits on different cores do not touch each other.
//
//   ShardedTokenBucket bucket({.rate_per_second = 10'000, .burst = 200}, now);
//   if (!bucket.tryAcquire(1, now)) return reply429();
//
// Model: the bucket is k independent TokenBuckets ("shards"). Shard i holds burst_i tokens and
// refills at rate * burst_i / burst, with sum(burst_i) = burst (equal shares, the first
// burst % k shards one token more), so the shards' rates sum to the rate. tryAcquire(n) takes n
// tokens from the calling thread's home shard if it has them, else from the first other shard
// that has them (a "steal"), else fails and changes nothing.
//
// What holds, and what is given up against TokenBucket:
//  * The bound is exact: over any interval T at most rate*T + burst tokens are admitted, because
//    each shard admits at most rate_i*T + burst_i and every admit comes from one shard.
//  * With unlimited demand for single tokens the bound is reached: a thread whose home shard is
//    empty steals, so no token anywhere goes unused. One difference remains: each shard is full
//    at its own share, so a full shard stops refilling while another is not full (the exact
//    bucket keeps refilling until the total is). With at least two tokens per share, a client
//    that comes back at least once per share interval (k / rate) loses nothing to this.
//  * A request for n tokens must fit in one shard: n above the largest share, ceil(burst / k),
//    is never admitted, and n tokens spread over several shards do not add up. Use TokenBucket
//    (or 1 shard) when requests take many tokens at once.
//  * No reservations: waiting for tokens needs one queue, which is what sharding removes.
//  * A failed acquire probes every shard (loads only, no writes), so rejection costs up to k
//    shard loads instead of one.
//  * Which thread gets the last tokens is decided by who looks first, not by arrival order.
//
// Shards: `shards` is rounded down to a power of two in [1, kMaxShards]; 0 picks
// std::thread::hardware_concurrency(). The number of shards actually used, k, is also at most
// burst / 2 (every shard holds at least two tokens, see above) and is 1 when a share of the rate
// would fall below TokenBucket::kMinRate. A thread's home shard is fixed on its first call
// (threads are numbered in order of first use, modulo k), so with long-lived threads, one per
// core, and k >= cores every core has a shard of its own; callers that churn threads, or know
// their worker index, should pass it as `home`.
//
// Rate 0, +infinity, time going backwards and extreme values behave per shard exactly as in
// TokenBucket (see token_bucket.h); settings are coerced the same way.
//
// Runtime changes: setRate/setBurst/setSettings redistribute the shares under a mutex and keep
// each shard's accrued tokens, capped at its new share. That is conservative: when the burst
// shrinks, or k changes, tokens above a shard's new share are dropped even if the total would
// have fit (an exact TokenBucket keeps min(tokens, burst)). Acquirers never block on a change;
// one racing with it may see some shards already changed and others not.
//
// Thread-safety: every method may be called concurrently. tryAcquire is lock-free.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "resilience/clock.h"
#include "resilience/token_bucket.h"

namespace sluice::resilience {

class ShardedTokenBucket {
 public:
  using Settings = TokenBucket::Settings;  // the total rate and burst, before the split

  static constexpr std::size_t kMaxShards = 64;

  // What is wrong with `settings`, or nullopt: the rules of TokenBucket::validate.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings) {
    return TokenBucket::validate(settings);
  }

  // A full bucket at `now` with up to `shards` shards (see the file comment; 0 = one per
  // hardware thread).
  ShardedTokenBucket(const Settings& settings, TimePoint now, std::size_t shards = 0);
  ShardedTokenBucket(const ShardedTokenBucket&) = delete;
  ShardedTokenBucket& operator=(const ShardedTokenBucket&) = delete;
  ShardedTokenBucket(ShardedTokenBucket&&) = delete;
  ShardedTokenBucket& operator=(ShardedTokenBucket&&) = delete;
  ~ShardedTokenBucket() = default;

  // Takes n tokens from the calling thread's home shard, or else from another shard that has
  // them. Returns false and changes nothing if no single shard has n. n == 0 is always allowed.
  [[nodiscard]] bool tryAcquire(std::uint64_t n, TimePoint now);
  [[nodiscard]] bool tryAcquire(TimePoint now) { return tryAcquire(1, now); }
  // The same with the home shard chosen by the caller: shard `home` modulo the shards in use.
  // Pass a worker or core index where there is one, so that each worker keeps a shard of its
  // own however threads come and go.
  [[nodiscard]] bool tryAcquire(std::uint64_t n, TimePoint now, std::size_t home);

  // Change the rate, the burst or both; see "Runtime changes" in the file comment.
  void setRate(double rate_per_second, TimePoint now);
  void setBurst(std::uint64_t burst, TimePoint now);
  void setSettings(const Settings& settings, TimePoint now);

  // The current (coerced) settings, and the number of shards in use (k).
  [[nodiscard]] Settings settings() const;
  [[nodiscard]] std::size_t shardsInUse() const { return active_.load(std::memory_order_acquire); }

  // Tokens available at `now`, summed over the shards (+infinity when the rate is +infinity).
  // The largest n that tryAcquire could admit is a single shard's, not this sum.
  [[nodiscard]] double tokens(TimePoint now) const;

 private:
  // The settings of shard i when `total` is split k ways.
  static Settings shareOf(const Settings& total, std::size_t k, std::size_t i);
  // How many shards `total` can use, at most `capacity`.
  static std::size_t shardsFor(const Settings& total, std::size_t capacity);
  // Splits `settings` over the shards. Requires mu_.
  void apply(const Settings& settings, TimePoint now);

  // Shards are allocated one by one: each TokenBucket is cache-line aligned, so two shards
  // never share a line. The vector itself is never resized after construction.
  std::vector<std::unique_ptr<TokenBucket>> shards_;
  std::atomic<std::size_t> active_{1};  // k: shards [0, k) hold tokens, the rest are empty
  mutable std::mutex mu_;               // serialises reconfiguration; guards settings_
  Settings settings_;                   // coerced
};

}  // namespace sluice::resilience
