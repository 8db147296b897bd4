// Smooth weighted round robin: nginx's deterministic weighted rotation.
//
// Each pick, every participating host's credit grows by its weight; the host with the most credit
// is picked and pays back the total weight of the participants. Over any run of picks a host of
// weight w among participants of total weight W is picked w/W of the time, and the picks are
// spread out instead of bunched: weights {5, 1, 1} yield a a b a c a a, then repeat.
// Algorithm: nginx, src/http/ngx_http_upstream_round_robin.c, ngx_http_upstream_get_peer()
// (commit 52327e0627f4, "Upstream: smooth weighted round-robin balancing", 2012).
//
//   SmoothWeightedRoundRobin rr({5, 1, 1});
//   std::optional<std::size_t> host = rr.pick([&](std::size_t i) { return healthy[i]; });
//   if (host) forward(*host);
//
// Thread-safety: none. Use one instance per event loop (worker); picks mutate the rotation state.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace sluice::resilience {

class SmoothWeightedRoundRobin {
 public:
  // One host per element; host i has weight weights[i]. Weight 0: the host is never picked (it
  // still occupies its index). Every host starts with zero credit. Any size, including empty.
  // NOLINTNEXTLINE(performance-unnecessary-value-param): by value is the gateway's fixed API
  explicit SmoothWeightedRoundRobin(std::vector<std::uint32_t> weights) {
    hosts_.reserve(weights.size());
    for (const std::uint32_t weight : weights) {
      hosts_.push_back(Host{weight, false, 0});
    }
  }

  // The next host among those with nonzero weight for which eligible(i) is true, or nullopt if
  // there is none (empty set, all weights zero, or nothing eligible); a nullopt pick changes no
  // state. `eligible` is called exactly once per nonzero-weight host, in index order, and must
  // not call back into this object. Cost: two passes over the hosts, O(size()).
  //
  // Participants are the eligible nonzero-weight hosts; W is their total weight. Each
  // participant's credit grows by its weight, the participant with the greatest credit is picked
  // (ties: the lowest index, i.e. strict `>` while scanning upwards, as nginx) and its credit
  // drops by W. That is nginx's algorithm exactly, with one addition below.
  //
  // Skipping a host (ineligible, or weight 0): it sits the round out with its credit frozen, not
  // reset, so a host skipped for one pick (e.g. excluded from a retry) gets its turn right after
  // it returns and the others continue their own sequence; the others simply share the skipped
  // host's turns in proportion to their weights. Over any k consecutive picks with a fixed set of
  // participants, each participant i is picked k * w_i / W times give or take at most 5 picks,
  // however long the run and whatever happened before (a returning host catches up at most ~4
  // turns it was owed, then follows its share).
  // The addition that makes that bound hold: before adding its weight, a participant's credit is
  // clamped into [-W, 4W]. An undisturbed rotation never reaches either end (credits stay above
  // -W by construction and, in seeded runs of up to 1000 hosts, below 2W), so the clamp only
  // acts after exclusions or weight changes; without it, credit imbalances from many exclusions
  // would accumulate (a slow random walk) and a returning host could take a long burst of picks.
  template <typename Eligible>
  [[nodiscard]] std::optional<std::size_t> pick(Eligible&& eligible) {
    static_assert(std::is_invocable_r_v<bool, Eligible&, std::size_t>,
                  "eligible must be callable as bool(std::size_t host)");
    std::int64_t total = 0;
    for (std::size_t i = 0; i < hosts_.size(); ++i) {
      Host& host = hosts_[i];
      host.participates = host.weight != 0 && eligible(i);
      total += host.participates ? host.weight : 0;
    }
    if (total == 0) {
      return std::nullopt;
    }
    std::size_t best = kNone;
    for (std::size_t i = 0; i < hosts_.size(); ++i) {
      Host& host = hosts_[i];
      if (!host.participates) {
        continue;
      }
      host.credit = std::clamp(host.credit, -total, kCreditCeiling * total) + host.weight;
      if (best == kNone || host.credit > hosts_[best].credit) {
        best = i;
      }
    }
    hosts_[best].credit -= total;
    return best;
  }

  // The next host with every nonzero-weight host eligible; nullopt only if all weights are zero
  // (or there are no hosts).
  [[nodiscard]] std::optional<std::size_t> pick() {
    return pick([](std::size_t) { return true; });
  }

  // Changes host's weight from the next pick on, keeping its accumulated credit (and everyone
  // else's) so the rotation continues rather than restarting. Weight 0 takes the host out of the
  // rotation with its credit frozen. Precondition: host < size() (out of range: no effect).
  void setWeight(std::size_t host, std::uint32_t weight) {
    if (host < hosts_.size()) {
      hosts_[host].weight = weight;
    }
  }

  // Appends a host (index size() before the call) with zero credit: it joins the rotation at the
  // next pick without disturbing the others' credits.
  void addHost(std::uint32_t weight) { hosts_.push_back(Host{weight, false, 0}); }

  // Erases host, shifting the hosts after it down by one index (as std::vector::erase does to the
  // caller's host list). The other hosts keep their credits. Out of range: no effect.
  void removeHost(std::size_t host) {
    if (host < hosts_.size()) {
      hosts_.erase(hosts_.begin() + static_cast<std::ptrdiff_t>(host));
    }
  }

  // Forgets the rotation: every credit back to zero, as if freshly constructed with the current
  // weights.
  void reset() {
    for (Host& host : hosts_) {
      host.credit = 0;
    }
  }

  // The configured weight of host (0 if out of range).
  [[nodiscard]] std::uint32_t weight(std::size_t host) const {
    return host < hosts_.size() ? hosts_[host].weight : 0;
  }

  // Number of hosts (including weight-0 ones).
  [[nodiscard]] std::size_t size() const { return hosts_.size(); }

 private:
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  static constexpr std::int64_t kCreditCeiling = 4;  // in multiples of W; see pick()

  struct Host {
    std::uint32_t weight = 0;
    // Set by pick()'s first pass: weight != 0 and eligible this pick.
    bool participates = false;
    // nginx's current_weight. 64-bit: it stays within [-W, 5W] and W < 2^64 / 8 holds for up to
    // 2^28 hosts of weight 2^32 - 1.
    std::int64_t credit = 0;
  };

  std::vector<Host> hosts_;
};

}  // namespace sluice::resilience
