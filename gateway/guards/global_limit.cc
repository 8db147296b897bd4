#include "gateway/guards/global_limit.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice::gateway::guards {
namespace {

namespace asio = boost::asio;
constexpr std::size_t kShards = 16;
constexpr Duration kRateWindow = std::chrono::milliseconds(100);
constexpr int kMaxRounds = 4;  // fetches a waiting request sits through (within its timeout)

resilience::Gcra::Params paramsOf(const config::RateLimit& s) {
  return resilience::Gcra::paramsFor({.limit = s.requests,
                                      .period = std::chrono::duration_cast<Duration>(s.period),
                                      .burst = std::max<std::uint64_t>(1, s.burst)});
}

}  // namespace

struct GlobalLimit::Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  bool woken = false;
};

struct GlobalLimit::Lease {
  explicit Lease(std::string k) : key(std::move(k)) {}
  const std::string key;  // in the store
  std::mutex mu;
  std::uint64_t permits = 0;  // granted, not yet used
  TimePoint expires{};        // when unused permits go back
  std::uint64_t refund = 0;   // to give back with the next fetch
  bool fetching = false;
  std::uint64_t asked = 0;       // by the fetch under way, or the last one
  std::uint64_t lease_size = 0;  // the last batch asked for
  TimePoint denied_until{};
  TimePoint failed_until{};
  // The fleet's numbers at the last grant, for the headers.
  std::uint64_t remaining = 0;
  Duration reset{};
  TimePoint granted_at{};
  // Demand: requests counted in the current window, and the rate it last measured.
  TimePoint window_start{};
  std::uint64_t window_count = 0;
  double rate = 0;  // per second
  std::atomic<std::int64_t> last_used_ns{0};
  std::vector<std::pair<asio::any_io_executor, std::shared_ptr<Waiter>>> waiters;
};

GlobalLimit::GlobalLimit(std::string name, const config::RateLimit& settings, PermitStore* store,
                         std::size_t max_keys)
    : name_(std::move(name)),
      store_(store),
      params_(paramsOf(settings)),
      max_keys_(std::max<std::size_t>(max_keys, 1)),
      shards_(kShards) {}

GlobalLimit::~GlobalLimit() = default;

std::string GlobalLimit::storeKey(std::string_view key) const {
  std::string k;
  k.reserve(name_.size() + 1 + key.size());
  k.append(name_).push_back(':');
  k.append(key);
  return k;
}

void GlobalLimit::reconfigure(const config::RateLimit& settings) {
  params_.store(paramsOf(settings));
}

std::shared_ptr<GlobalLimit::Lease> GlobalLimit::lease(std::string_view key, TimePoint now) {
  Shard& shard = shards_[Hash{}(key) % kShards];
  std::lock_guard lock(shard.mu);
  if (const auto it = shard.keys.find(key); it != shard.keys.end()) return it->second;
  const std::size_t cap = std::max<std::size_t>(1, max_keys_ / kShards);
  if (shard.keys.size() >= cap) {
    // Forget keys nobody is using: idle ones first (a few per insertion), else any not
    // fetching. Permits they held are lost to the fleet until the store's state expires.
    const auto idle_before = (now - 2 * kLeaseTtl).time_since_epoch().count();
    int scanned = 0;
    for (auto it = shard.keys.begin(); it != shard.keys.end() && scanned < 8; ++scanned) {
      if (it->second.use_count() == 1 &&
          it->second->last_used_ns.load(std::memory_order_relaxed) < idle_before) {
        it = shard.keys.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = shard.keys.begin(); shard.keys.size() >= cap && it != shard.keys.end();) {
      it = it->second.use_count() == 1 ? shard.keys.erase(it) : std::next(it);
    }
  }
  auto l = std::make_shared<Lease>(storeKey(key));
  shard.keys.emplace(std::string(key), l);
  return l;
}

RateDecision GlobalLimit::rejection(const Lease& l, TimePoint now) const {
  const auto p = params_.load();
  RateDecision d;
  d.kind = RateDecision::Kind::Reject;
  d.wait = std::max(Duration{p.emission_interval_ns}, l.denied_until - now);
  d.quota = p.burst;
  d.window = Duration{p.burst_offset_ns};
  d.remaining = 0;
  d.reset = std::max(Duration::zero(), l.reset - (now - l.granted_at));
  return d;
}

GlobalLimit::Answer GlobalLimit::decide(const std::shared_ptr<Lease>& lp, TimePoint now,
                                        bool count) {
  Lease& l = *lp;
  l.last_used_ns.store(now.time_since_epoch().count(), std::memory_order_relaxed);
  if (count) {
    if (l.window_start == TimePoint{}) l.window_start = now;
    const Duration elapsed = now - l.window_start;
    if (elapsed >= kRateWindow) {
      const double measured =
          static_cast<double>(l.window_count) / std::chrono::duration<double>(elapsed).count();
      l.rate = l.rate == 0 ? measured : 0.5 * l.rate + 0.5 * measured;
      l.window_start = now;
      l.window_count = 0;
    }
    ++l.window_count;
  }
  if (l.permits > 0 && now >= l.expires) l.refund += std::exchange(l.permits, 0);
  const bool can_fetch = !l.fetching && now >= l.denied_until && now >= l.failed_until;
  if (l.permits > 0) {
    --l.permits;
    // Refill ahead of need: half the lease used, the next one is asked for.
    if (can_fetch && l.permits * 2 <= l.lease_size && store_->available()) startFetch(lp, now);
    return {Kind::Allow, {}};
  }
  if (now < l.denied_until) return {Kind::Reject, rejection(l, now)};
  if (now < l.failed_until || (!l.fetching && !store_->available())) return {Kind::Failed, {}};
  if (can_fetch) startFetch(lp, now);
  return {Kind::Fetch, {}};
}

void GlobalLimit::startFetch(const std::shared_ptr<Lease>& lp, TimePoint now) {
  Lease& l = *lp;
  const auto p = params_.load();
  const double horizon = std::chrono::duration<double>(kLeaseHorizon).count();
  auto want = static_cast<std::uint64_t>(std::ceil(l.rate * horizon));
  want = std::max(want, kMinLease);
  want = std::max<std::uint64_t>(want, l.waiters.size() + 1);
  want = std::min(want, p.burst);
  l.fetching = true;
  l.asked = want;
  l.lease_size = want;
  // Only permits whose time is still ahead go back: the state Redis keeps is a time, and a
  // permit granted for a slot that has passed frees nothing (refunding it would let the fleet
  // take it twice).
  std::uint64_t refund = std::exchange(l.refund, 0);
  const auto ahead = (l.granted_at + l.reset - now).count();
  refund = ahead <= 0 ? 0
                      : std::min<std::uint64_t>(
                            refund, static_cast<std::uint64_t>(ahead / p.emission_interval_ns));
  fetches_.fetch_add(1, std::memory_order_relaxed);
  // The store answers on its own thread, never inside take(); `self` keeps this limit alive
  // until then (a reload may have dropped it).
  store_->take(
      l.key, want, refund, p,
      [self = shared_from_this(), lp](const PermitStore::Grant& g) { self->onGrant(lp, g, g.at); });
}

void GlobalLimit::onGrant(const std::shared_ptr<Lease>& lp, const PermitStore::Grant& g,
                          TimePoint now) {
  Lease& l = *lp;
  std::vector<std::pair<asio::any_io_executor, std::shared_ptr<Waiter>>> waiters;
  {
    std::lock_guard lock(l.mu);
    l.fetching = false;
    if (!g.ok) {
      failures_.fetch_add(1, std::memory_order_relaxed);
      l.failed_until = now + kFailHold;
    } else {
      const auto p = params_.load();
      l.failed_until = {};
      l.permits += g.granted;
      l.expires = now + kLeaseTtl;
      l.remaining = g.remaining;
      l.reset = g.reset;
      l.granted_at = now;
      if (g.granted < l.asked) {
        // The fleet is at its limit: refuse locally for a while. Getting g of `asked` says that
        // about asked/g instances compete for the key; waiting asked/g leases' time lets each
        // of them find about a whole lease at its next fetch (so calls per admitted request stay
        // ~1/lease), and never longer than the burst takes to refill, so that the fleet's bucket
        // does not overflow while everyone waits.
        const auto interval = static_cast<double>(p.emission_interval_ns);
        const auto asked = static_cast<double>(l.asked);
        const auto got = static_cast<double>(std::max<std::uint64_t>(g.granted, 1));
        const auto cap = static_cast<double>(p.burst_offset_ns);
        const double missing = (asked - static_cast<double>(g.granted)) * interval;
        const double wait = std::min(cap, std::max(missing, interval * asked * asked / got));
        l.denied_until = now + std::max(g.retry_after, Duration(static_cast<std::int64_t>(wait)));
      } else {
        l.denied_until = {};
      }
    }
    waiters.swap(l.waiters);
  }
  for (auto& [ex, w] : waiters) {
    asio::post(ex, [w = std::move(w)] {
      w->woken = true;
      w->timer.cancel();
    });
  }
}

GlobalLimit::Answer GlobalLimit::tryTake(std::string_view key, TimePoint now) {
  const auto l = lease(key, now);
  std::lock_guard lock(l->mu);
  return decide(l, now, true);
}

asio::awaitable<GlobalLimit::Answer> GlobalLimit::take(std::string key,
                                                       std::chrono::nanoseconds timeout,
                                                       asio::any_io_executor ex) {
  const auto l = lease(key, resilience::Clock::now());
  // One deadline for the whole wait, however many fetches it sits through.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (int round = 0; round < kMaxRounds; ++round) {
    auto w = std::make_shared<Waiter>(ex);
    {
      std::lock_guard lock(l->mu);
      // Not counted as demand: tryTake() counted this request before sending it here.
      const Answer a = decide(l, resilience::Clock::now(), false);
      if (a.kind != Kind::Fetch) co_return a;
      l->waiters.emplace_back(ex, w);
    }
    w->timer.expires_at(deadline);
    co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!w->woken) {
      std::lock_guard lock(l->mu);
      std::erase_if(l->waiters, [&](const auto& e) { return e.second == w; });
      co_return Answer{Kind::Failed, {}};
    }
  }
  // Every fetch we waited for was used up by others before our turn: refused if the fleet said
  // it is at its limit, else Redis could not keep up - the failure mode decides.
  std::lock_guard lock(l->mu);
  const TimePoint now = resilience::Clock::now();
  if (now < l->denied_until) co_return Answer{Kind::Reject, rejection(*l, now)};
  co_return Answer{Kind::Failed, {}};
}

GlobalLimit::Counts GlobalLimit::counts() const {
  Counts c;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    c.keys += s.keys.size();
  }
  c.fetches = fetches_.load(std::memory_order_relaxed);
  c.failures = failures_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace sluice::gateway::guards
