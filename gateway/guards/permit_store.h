// PermitStore: where the permits of a global rate limit come from - one GCRA state per key,
// shared by every instance (RedisPermitStore in the gateway; a fake in tests).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "resilience/clock.h"
#include "resilience/gcra.h"

namespace sluice::gateway::guards {

class PermitStore {
 public:
  struct Grant {
    bool ok = false;            // false: no answer (down, slow, its breaker open, an error)
    std::uint64_t granted = 0;  // permits taken, at most the `want` asked
    resilience::Duration retry_after{};  // granted < want: until the next permit frees up
    std::uint64_t remaining = 0;         // fleet-wide, after this grant
    resilience::Duration reset{};        // until the fleet-wide quota is whole again
    resilience::TimePoint at{};          // when the answer (or the failure) came
  };
  using Done = std::function<void(const Grant&)>;

  virtual ~PermitStore() = default;

  // Worth asking now (connected, not failing): a false answer lets the caller apply its failure
  // mode without a call. Cheap; any thread.
  [[nodiscard]] virtual bool available() const = 0;
  // How long a call may take at most: how long a request may wait for one.
  [[nodiscard]] virtual resilience::Duration timeout() const = 0;

  // Gives back `refund` permits of `key` that this instance took and did not use, then takes up
  // to `want` (>= 1) of them, as one atomic step: GCRA with `params`, Gcra::decide()'s arithmetic
  // for `want` requests at once but granting as many as fit. `done` runs exactly once, on any
  // thread but never inside take() (callers may hold a lock), within the store's timeout.
  virtual void take(const std::string& key, std::uint64_t want, std::uint64_t refund,
                    const resilience::Gcra::Params& params, Done done) = 0;
};

}  // namespace sluice::gateway::guards
