#include "gateway/guards/breaker_sync.h"

#include <string>
#include <utility>

namespace sluice::gateway::guards {

void BreakerSync::tick(std::function<void(bool)> done) {
  if (breakers_.empty() || reading_->exchange(true)) {
    if (done) done(false);
    return;
  }
  std::vector<std::string> keys;
  keys.reserve(breakers_.size());
  for (const auto& b : breakers_) keys.push_back(b->sharedKey());
  // The breakers travel with the read: a reload may replace the list before the answer comes.
  store_.read(std::move(keys), [breakers = breakers_, reading = reading_,
                                done = std::move(done)](const BreakerStore::Read& r) {
    if (r.ok) {
      const auto now = resilience::Clock::now();
      for (std::size_t i = 0; i < breakers.size() && i < r.records.size(); ++i) {
        breakers[i]->applyShared(r.records[i], now);
      }
    }
    reading->store(false);
    if (done) done(r.ok);
  });
}

}  // namespace sluice::gateway::guards
