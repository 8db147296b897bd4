// Maglev: consistent hashing through a lookup table (Eisenbud et al., "Maglev: A Fast and
// Reliable Software Network Load Balancer", NSDI 2016, section 3.4), weighted as in Envoy's
// MAGLEV balancer. A pick is one table read; hosts' shares are near-perfectly even; a host
// set change moves few keys beyond the ones that must move.
//
//   std::shared_ptr<const Maglev> table = Maglev::build(hosts, Maglev::Settings{}, hasher);
//   std::optional<std::size_t> host = table->pick(key_hash, [&](std::size_t i) { return up[i]; });
//   table = Maglev::rebuild(table, new_hosts, settings, hasher);  // same object if unchanged
//
// Build (M = table_size, prime): each host gets a permutation of the slots,
//   offset = hasher(identity, kOffsetSeed) mod M,  skip = hasher(identity, kSkipSeed) mod (M-1) +
//   1, permutation[j] = (offset + j * skip) mod M,
// and hosts take turns claiming their next still-empty slot until the table is full. Weights
// (Envoy's scheme): in iteration t = 1, 2, ... host i takes a turn if t * w_i >= its claims so
// far * w_max (hosts in index order within an iteration), so claims are proportional to weight.
// Equal weights: every host holds floor(M/n) or ceil(M/n) slots. The table is a pure function of
// (identities, weights and their order, M, hasher): every instance given the same host list in
// the same order builds the same table (the order decides who claims first within an iteration).
// Lookup: slot = the high 64 bits of key_hash * M (a multiply instead of a division; uniform for
// a uniform hash). Unhealthy hosts: if the slot's host is ineligible, the key is re-hashed
// (SplitMix64 steps seeded by key_hash) to another slot, up to kAttempts times, so an ineligible
// host's keys spread over the others in proportion to their slots while everyone else's keys stay
// put; then it falls back to the first eligible host by index after the slot's host.
// Size: M must be prime and should be well above the number of hosts (the paper uses M > 100 n;
// shares then differ by under 1 %); the default 65537 suits up to ~650 hosts. Hosts beyond M
// cannot all get a slot.
//
// Immutable once built: share across threads via shared_ptr<const Maglev>; all methods are const
// and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "resilience/lb/split_mix64.h"
#include "resilience/lb/weighted_host.h"

namespace sluice::resilience {

class Maglev {
 public:
  struct Settings {
    // M: a prime in [3, 2^31). 65537 by default (Envoy's default too).
    std::uint64_t table_size = 65537;

    friend bool operator==(const Settings&, const Settings&) = default;
  };

  static constexpr std::uint64_t kOffsetSeed = 0x6d61676c65766f66ULL;  // "maglevof"
  static constexpr std::uint64_t kSkipSeed = 0x6d61676c65767370ULL;    // "maglevsp"
  // Re-hashed slots tried when a slot's host is ineligible.
  static constexpr int kAttempts = 8;

  // nullopt if usable, else what is wrong (not prime, or out of range).
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // Builds the table for `hosts` (index i in the result = hosts[i]). O(M log n) plus the probing
  // (about M ln M slot checks in total in the worst case), 2 hasher calls per host.
  // Precondition: validate(settings) is nullopt (otherwise the next prime >= the value, clamped
  // into range, is used). No hosts, or all weight 0: an empty table whose picks return nullopt.
  [[nodiscard]] static std::shared_ptr<const Maglev> build(std::vector<WeightedHost> hosts,
                                                           const Settings& settings,
                                                           const HostHasher& hasher);

  // `previous` itself if hosts and settings are unchanged, else build(). The table depends on
  // every host jointly, so a change means a full rebuild (but only then).
  [[nodiscard]] static std::shared_ptr<const Maglev> rebuild(
      const std::shared_ptr<const Maglev>& previous, std::vector<WeightedHost> hosts,
      const Settings& settings, const HostHasher& hasher);

  // The host for key_hash, re-hashing past ineligible hosts (see the file comment); nullopt if
  // the table is empty or no host with slots is eligible. eligible may be called more than once
  // per host and must answer consistently within a pick. O(1) when the first host is eligible.
  template <typename Eligible>
  [[nodiscard]] std::optional<std::size_t> pick(std::uint64_t key_hash, Eligible&& eligible) const {
    static_assert(std::is_invocable_r_v<bool, Eligible&, std::size_t>,
                  "eligible must be callable as bool(std::size_t host)");
    if (table_.empty()) {
      return std::nullopt;
    }
    const std::size_t home = table_[SplitMix64::scale(key_hash, table_.size())];
    if (eligible(home)) {
      return home;
    }
    SplitMix64 rehash(key_hash);
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
      const std::size_t host = table_[SplitMix64::scale(rehash.next(), table_.size())];
      if (host != home && eligible(host)) {
        return host;
      }
    }
    for (std::size_t step = 1; step <= hosts_.size(); ++step) {
      const std::size_t host = (home + step) % hosts_.size();
      if (slots_per_host_[host] != 0 && eligible(host)) {
        return host;
      }
    }
    return std::nullopt;
  }

  // The host in key_hash's slot; nullopt only for an empty table.
  [[nodiscard]] std::optional<std::size_t> pick(std::uint64_t key_hash) const {
    if (table_.empty()) {
      return std::nullopt;
    }
    return table_[SplitMix64::scale(key_hash, table_.size())];
  }

  // Slots in the table (M, or 0 when empty), the host in a slot, and slots held by a host.
  [[nodiscard]] std::size_t tableSize() const { return table_.size(); }
  [[nodiscard]] std::size_t slotHost(std::size_t slot) const { return table_[slot]; }
  [[nodiscard]] std::size_t slotsOf(std::size_t host) const { return slots_per_host_[host]; }
  // Hosts as given to build(), including weight-0 ones.
  [[nodiscard]] std::size_t hostCount() const { return hosts_.size(); }
  [[nodiscard]] const WeightedHost& host(std::size_t i) const { return hosts_[i]; }
  [[nodiscard]] const Settings& settings() const { return settings_; }

  // True if n is prime (deterministic trial division; n < 2^32 is fast enough for validation).
  [[nodiscard]] static bool isPrime(std::uint64_t n);

 private:
  Maglev(std::vector<WeightedHost> hosts, const Settings& settings)
      : hosts_(std::move(hosts)), settings_(settings) {}
  void fill(const HostHasher& hasher);

  std::vector<WeightedHost> hosts_;
  Settings settings_;
  std::vector<std::uint32_t> table_;
  std::vector<std::uint32_t> slots_per_host_;
};

}  // namespace sluice::resilience
