#include "resilience/sharded_token_bucket.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <thread>

namespace sluice::resilience {
namespace {

// Threads are numbered in order of their first call into any ShardedTokenBucket; a thread's
// home shard is its number modulo the shard count.
std::size_t threadSlot() {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t slot = next.fetch_add(1, std::memory_order_relaxed);
  return slot;
}

std::size_t capacityFor(std::size_t requested) {
  if (requested == 0) {
    requested = std::max(1U, std::thread::hardware_concurrency());
  }
  return std::bit_floor(std::min(requested, ShardedTokenBucket::kMaxShards));
}

}  // namespace

ShardedTokenBucket::Settings ShardedTokenBucket::shareOf(const Settings& total, std::size_t k,
                                                         std::size_t i) {
  if (i >= k) {
    return {.rate_per_second = 0.0, .burst = 0};  // unused: admits nothing
  }
  if (k == 1) {
    return total;
  }
  const std::uint64_t base = total.burst / k;
  const std::uint64_t burst = base + (i < total.burst % k ? 1 : 0);
  double rate = total.rate_per_second;
  if (std::isfinite(rate) && rate > 0.0) {
    if (total.burst % k == 0) {
      rate /= static_cast<double>(k);  // k is a power of two: exact
    } else {
      // Two roundings may each add half an ulp; shaving 2^-50 keeps every share below its exact
      // value, so the shards' rates never sum above the total (a relative loss of ~1e-15).
      rate = rate * static_cast<double>(burst) / static_cast<double>(total.burst) * (1.0 - 0x1p-50);
    }
  }
  return {.rate_per_second = rate, .burst = burst};
}

std::size_t ShardedTokenBucket::shardsFor(const Settings& total, std::size_t capacity) {
  // Every share holds at least two tokens: a shard drained below one token then has room for
  // another whole share interval of refill, so a client that returns at least that often loses
  // nothing to a full shard while the total is not full.
  std::size_t k = capacity;
  if (total.burst / 2 < k) {
    k = std::max<std::size_t>(1, std::bit_floor(static_cast<std::size_t>(total.burst / 2)));
  }
  // The smallest share (the last) must keep a legal TokenBucket rate: not below kMinRate, and
  // not 0 (underflow) when the total is not.
  while (k > 1 && total.rate_per_second > 0.0 &&
         shareOf(total, k, k - 1).rate_per_second < TokenBucket::kMinRate) {
    k /= 2;
  }
  return k;
}

ShardedTokenBucket::ShardedTokenBucket(const Settings& settings, TimePoint now, std::size_t shards)
    : settings_(TokenBucket::coerced(settings)) {
  const std::size_t capacity = capacityFor(shards);
  const std::size_t k = shardsFor(settings_, capacity);
  shards_.reserve(capacity);
  for (std::size_t i = 0; i < capacity; ++i) {
    shards_.push_back(std::make_unique<TokenBucket>(shareOf(settings_, k, i), now));
  }
  active_.store(k, std::memory_order_release);
}

bool ShardedTokenBucket::tryAcquire(std::uint64_t n, TimePoint now) {
  return tryAcquire(n, now, threadSlot());
}

bool ShardedTokenBucket::tryAcquire(std::uint64_t n, TimePoint now, std::size_t home) {
  const std::size_t k = active_.load(std::memory_order_acquire);
  home &= k - 1;  // k is a power of two
  if (shards_[home]->tryAcquire(n, now)) {
    return true;
  }
  for (std::size_t step = 1; step < k; ++step) {
    if (shards_[(home + step) & (k - 1)]->tryAcquire(n, now)) {
      return true;
    }
  }
  return false;
}

void ShardedTokenBucket::setRate(double rate_per_second, TimePoint now) {
  const std::lock_guard lock(mu_);
  apply({.rate_per_second = rate_per_second, .burst = settings_.burst}, now);
}

void ShardedTokenBucket::setBurst(std::uint64_t burst, TimePoint now) {
  const std::lock_guard lock(mu_);
  apply({.rate_per_second = settings_.rate_per_second, .burst = burst}, now);
}

void ShardedTokenBucket::setSettings(const Settings& settings, TimePoint now) {
  const std::lock_guard lock(mu_);
  apply(settings, now);
}

void ShardedTokenBucket::apply(const Settings& settings, TimePoint now) {
  settings_ = TokenBucket::coerced(settings);
  const std::size_t k = shardsFor(settings_, shards_.size());
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    shards_[i]->setSettings(shareOf(settings_, k, i), now);
  }
  active_.store(k, std::memory_order_release);
}

ShardedTokenBucket::Settings ShardedTokenBucket::settings() const {
  const std::lock_guard lock(mu_);
  return settings_;
}

double ShardedTokenBucket::tokens(TimePoint now) const {
  double sum = 0.0;
  for (const auto& shard : shards_) {
    sum += shard->tokens(now);
  }
  return sum;
}

}  // namespace sluice::resilience
