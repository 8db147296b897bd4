// WeightedHost and HostHasher: how the hash-based balancers (RingHash, Maglev) are told about
// hosts. The library includes no hash function; the caller passes one.
//
//   std::vector<WeightedHost> hosts = {{"10.0.0.1:80", 1}, {"10.0.0.2:80", 2}};
//   HostHasher hasher = [](std::string_view data, std::uint64_t seed) {
//     return XXH3_64bits_withSeed(data.data(), data.size(), seed);
//   };
//   auto ring = RingHash::build(hosts, RingHash::Settings{}, hasher);
//
// Every gateway instance (and every worker) that must agree on where a key goes has to build from
// the same identities, weights, settings and hasher: the tables are a pure function of them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace sluice::resilience {

// One host of a hash-based table: a stable identity (e.g. "ip:port" or a name; it, not the
// position in the list, decides where the host's points or slots fall, so a host keeps its keys
// when others come and go) and a weight (0: the host gets no share of the keys).
// Identities must be unique within a table; a duplicate lands on exactly the same points as its
// twin and so receives none of their keys.
struct WeightedHost {
  std::string identity;
  std::uint32_t weight = 1;

  friend bool operator==(const WeightedHost&, const WeightedHost&) = default;
};

// A 64-bit hash of `data` under `seed`, well mixed in all 64 bits (the tables use the top bits as
// well as the remainders). Must be deterministic and identical wherever tables must agree, e.g.
// XXH3_64bits_withSeed. Called only while building a table, never per pick.
using HostHasher = std::function<std::uint64_t(std::string_view data, std::uint64_t seed)>;

}  // namespace sluice::resilience
