// BreakerSync: keeps this instance's shared circuit breakers in step with the store - one read of
// every shared breaker's record per tick (the server ticks every kInterval), each applied by its
// guard (CircuitBreakerGuard::applyShared).
//
//   BreakerSync sync(store);
//   sync.setBreakers(registry.sharedBreakers());  // after each config build
//   sync.tick();                                   // every kInterval
//
// Why a periodic read and not a subscription (ARCHITECTURE.md, "Sharing state across
// instances"): one round trip per tick whatever the number of breakers, nothing to miss while a
// connection is down, and no second connection; 200 ms keeps "the others open within 1 s" with
// room for a slow reply.
//
// Thread-safety: setBreakers() and tick() on one thread (the server's main thread); replies are
// applied on the store's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "gateway/guards/breaker_store.h"
#include "gateway/guards/circuit_breaker_guard.h"

namespace sluice::gateway::guards {

class BreakerSync {
 public:
  static constexpr std::chrono::milliseconds kInterval{200};

  // `store` outlives the sync.
  explicit BreakerSync(BreakerStore& store) : store_(store) {}

  void setBreakers(std::vector<std::shared_ptr<CircuitBreakerGuard>> breakers) {
    breakers_ = std::move(breakers);
  }
  [[nodiscard]] bool empty() const noexcept { return breakers_.empty(); }

  // Reads every breaker's record and applies it. `done` (optional) runs once after that, with
  // whether the read was answered, on the store's thread - or at once, with false, when there is
  // nothing to read or the previous read is still out (a slow store is asked once at a time).
  void tick(std::function<void(bool)> done = {});

 private:
  BreakerStore& store_;
  std::vector<std::shared_ptr<CircuitBreakerGuard>> breakers_;
  std::shared_ptr<std::atomic<bool>> reading_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace sluice::gateway::guards
