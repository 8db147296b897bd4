// GlobalLimit: the fleet-wide side of a `rate_limit` with `scope: global` - one GCRA limit per
// key shared by every instance through a PermitStore (Redis), with local leasing so that most
// requests never wait for it (docs/distributed.md has the design and its bounds).
//
// Leasing. An instance does not ask the store for every request: it takes a batch of permits
// per key (a lease) and hands them out locally. The batch is sized from this instance's own
// demand for the key - its request rate over the last ~100 ms times kLeaseHorizon, at least
// kMinLease, at most the limit's burst (the store can grant no more at once) - and is refilled
// ahead of need: when half of it is used, one fetch goes out while the rest is served. At a
// steady rate a key therefore costs one store round trip per lease, <= 1/kMinLease per request
// when the burst allows a lease of kMinLease. Permits still unused kLeaseTtl after the key's last
// grant are given back (refunded) with the next fetch - those whose slot is still ahead: a
// permit for a slot that has passed frees nothing in the store, whose state is a time. The TTL is
// long (5 s) on purpose: a key with little traffic per instance (a per-client limit over many
// clients) would otherwise fetch for almost every request, and unused permits cost the fleet little
// anyway - the store's state is a time, and whatever was granted is whole again burst*T later.
//
// When the store grants fewer permits than asked (the fleet is at its limit), this instance
// refuses the key's requests locally - answering 429 with the fleet's RateLimit numbers - until
// the missing permits would have freed up, then asks again: an instance over its share does not
// send the store a request per refused request.
//
// The requests of a key with no permit at hand and a fetch under way wait for it (take(), on
// their worker's timer: nothing blocks), at most the store's timeout in all. When the store cannot
// answer (a failed or timed-out fetch, or available() false), the answer is Failed for
// kFailHold, and the guard applies the limit's on_failure; the next request after it tries the
// store again, so recovery needs nothing.
//
// Bounds (fleet-wide, exact arithmetic in the store): the permits granted in any interval t are
// at most rate*t + burst. An instance holds at most 1.5 leases of a key (the rest of one and the
// next), each at most `burst`, so the requests admitted in any interval t are at most
// rate*t + burst + 1.5*instances*lease: over-admission is bounded by what is held, not by time.
// Under-admission: permits granted but never used (an instance that dies holding a lease) are
// lost for at most burst*T.
//
// Thread-safety: everything may be called from any worker concurrently; each key has its own
// mutex, held for a few instructions.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "gateway/config/config.h"
#include "gateway/guards/key_limiter.h"
#include "gateway/guards/permit_store.h"

namespace sluice::gateway::guards {

class GlobalLimit : public std::enable_shared_from_this<GlobalLimit> {
 public:
  static constexpr Duration kLeaseHorizon = std::chrono::milliseconds(100);
  static constexpr std::uint64_t kMinLease = 20;
  static constexpr Duration kLeaseTtl = std::chrono::seconds(5);
  static constexpr Duration kFailHold = std::chrono::milliseconds(100);

  // `name` prefixes every key in the store (the route or cluster, with the guard's kind). Always
  // owned by a shared_ptr (a fetch keeps its limit alive).
  GlobalLimit(std::string name, const config::RateLimit& settings, PermitStore* store,
              std::size_t max_keys);
  ~GlobalLimit();
  GlobalLimit(const GlobalLimit&) = delete;
  GlobalLimit& operator=(const GlobalLimit&) = delete;

  enum class Kind : std::uint8_t {
    Allow,
    Reject,  // `decision` has the fleet's numbers for the headers
    Fetch,   // no permit at hand: wait for the fetch (take())
    Failed,  // the store cannot answer: apply on_failure
  };
  struct Answer {
    Kind kind = Kind::Failed;
    RateDecision decision;
  };

  // The answer for `key` at `now` without waiting (starts a fetch when one is due).
  [[nodiscard]] Answer tryTake(std::string_view key, TimePoint now);
  // The answer, waiting up to `timeout` for a fetch when no permit is at hand (never Fetch).
  // `ex`: the caller's loop (where the wait's timer runs and the grant wakes it).
  [[nodiscard]] boost::asio::awaitable<Answer> take(std::string key,
                                                    std::chrono::nanoseconds timeout,
                                                    boost::asio::any_io_executor ex);

  // A reload that changed the rate or burst: keys keep their leases, the next fetches use the
  // new numbers (the store rescales nothing: its state is a time, valid under any rate).
  void reconfigure(const config::RateLimit& settings);

  // How long a request may wait for a fetch: the store's timeout.
  [[nodiscard]] Duration timeout() const { return store_->timeout(); }

  struct Counts {
    std::uint64_t keys = 0;
    std::uint64_t fetches = 0;   // calls to the store
    std::uint64_t failures = 0;  // of which without an answer
  };
  [[nodiscard]] Counts counts() const;

  // The store's key of `key` (tests; docs/distributed.md's layout).
  [[nodiscard]] std::string storeKey(std::string_view key) const;

 private:
  struct Lease;
  struct Waiter;
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, std::shared_ptr<Lease>, Hash, std::equal_to<>> keys;
  };
  [[nodiscard]] std::shared_ptr<Lease> lease(std::string_view key, TimePoint now);
  // Under l's lock. `count`: a new request (measured as demand), not a waiting one's new round.
  [[nodiscard]] Answer decide(const std::shared_ptr<Lease>& l, TimePoint now, bool count);
  // Under l's lock: sends a fetch for it (the store answers later, on its own thread).
  void startFetch(const std::shared_ptr<Lease>& l, TimePoint now);
  void onGrant(const std::shared_ptr<Lease>& l, const PermitStore::Grant& g, TimePoint now);
  [[nodiscard]] RateDecision rejection(const Lease& l, TimePoint now) const;

  std::string name_;
  PermitStore* store_;  // outlives every limit (the server keeps it for good)
  GcraParamsCell params_;
  std::size_t max_keys_;
  std::vector<Shard> shards_;
  std::atomic<std::uint64_t> fetches_{0};
  std::atomic<std::uint64_t> failures_{0};
};

}  // namespace sluice::gateway::guards
