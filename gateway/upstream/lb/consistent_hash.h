// Consistent hashing: a request's hash (its route's hash_key: client IP by default, or a
// header, a cookie, the path, a query parameter) decides its host, so the same key keeps going
// to the same host and adding or removing a host moves few keys.
//
//   ring_hash  resilience::RingHash: vnodes points per unit of weight on a 64-bit ring; a key
//              goes to the next point clockwise. Adding one host to n moves ~1/(n+1) of keys,
//              all of them to the new host.
//   maglev     resilience::Maglev: a lookup table of a prime size (65537 by default) filled by
//              each host's permutation; per-host entries differ by at most one, lookups are
//              O(1), and removals disturb few keys.
//
//   balance_factor (ring_hash only) resilience::BoundedLoad: a key keeps its host while that host
//              carries less than balance_factor x its weighted share of the requests this
//              worker has in flight; beyond that the key walks clockwise to the next host with
//              room, so a hot key cannot pile onto one host (Mirrokni et al., SODA 2018).
//
// Hosts are identified by their address (not their position), hashed with XXH3, so every worker
// and every sluice instance with the same endpoints builds the same table. An ineligible host
// (tried, ejected) is walked past to the next one on the ring, or re-hashed in the table, so
// the fallback is consistent too. A request without any of its key's parts gets a random hash.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/upstream/load_balancer.h"
#include "resilience/lb/bounded_load.h"
#include "resilience/lb/maglev.h"
#include "resilience/lb/ring_hash.h"

namespace sluice::gateway::upstream {

class ConsistentHash final : public LoadBalancer {
 public:
  ConsistentHash(const config::LoadBalancing& lb, const std::vector<std::string>& identities,
                 const std::vector<std::uint32_t>& weights);

  [[nodiscard]] std::optional<std::size_t> pick(const PickContext& ctx) override;
  void onStart(std::size_t host) override {
    if (bounded_) ++in_flight_[host];
  }
  void onResult(std::size_t host, const AttemptResult& /*result*/) override {
    if (bounded_ && in_flight_[host] > 0) --in_flight_[host];
  }
  // A rebuilt table (hosts came or went) keeps counting the requests already in flight.
  void carryInFlight(const ConsistentHash& before) {
    if (bounded_ && before.in_flight_.size() == in_flight_.size()) in_flight_ = before.in_flight_;
  }

 private:
  std::shared_ptr<const resilience::RingHash> ring_;  // ring_hash
  std::shared_ptr<const resilience::Maglev> maglev_;  // maglev
  std::optional<resilience::BoundedLoad> bounded_;    // ring_hash with balance_factor
  std::vector<std::uint32_t> in_flight_;              // bounded_ only
};

// XXH3 (64-bit, seeded): the hash of hosts in the tables and of request keys.
[[nodiscard]] std::uint64_t hash64(std::string_view data, std::uint64_t seed = 0);

}  // namespace sluice::gateway::upstream
