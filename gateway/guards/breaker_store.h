// BreakerStore: where shared circuit breakers (`circuit_breaker: {share: redis}`) keep the
// state every instance follows - RedisBreakerStore in the gateway; a fake in tests.
//
// One record per breaker key: the instant its open period ends, on the store's own clock (for
// Redis, its TIME), or no record while the breaker is closed fleet-wide. Times cross this
// interface only as durations from the store's "now", so instances whose clocks disagree still
// agree on how long an open period has left. Beside each record, a probe token decides which
// one instance may probe when the period ends (authoritative mode).
//
//   store.publishOpen("route:api", 30s, 5min);       // a local open: tell the others
//   store.read({"route:api"}, [](const BreakerStore::Read& r) { ... });  // every ~200 ms
//
// Every call returns at once and never throws; `done` runs exactly once, on any thread but never
// inside the call, within the store's timeout (an unreachable store answers a failure at once).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "resilience/clock.h"

namespace sluice::gateway::guards {

class BreakerStore {
 public:
  // A breaker's shared record.
  struct Record {
    bool open = false;                 // a record exists: some instance opened and none closed yet
    resilience::Duration remaining{};  // until the open period ends; <= 0: over, awaiting a probe
  };
  struct Read {
    bool ok = false;              // false: no answer (down, slow, an error); records empty
    std::vector<Record> records;  // one per key asked, in order
  };
  struct Probe {
    enum class Result : std::uint8_t {
      Won,     // this instance holds the token: its breaker may go half-open
      Lost,    // another instance holds it, for `left` more
      Closed,  // no record: nothing to probe (the breaker closed fleet-wide)
      Failed,  // no answer: the caller behaves as a local breaker
    };
    Result result = Result::Failed;
    resilience::Duration left{};  // Won, Lost: until the token expires
  };

  virtual ~BreakerStore() = default;

  // Worth asking now (connected, not failing). Cheap; any thread.
  [[nodiscard]] virtual bool available() const = 0;

  // This instance's breaker opened for `remaining` more: records the end of the period unless the
  // record already ends later, frees the probe token (a new period starts a new race for it) and
  // announces it. The record lives `linger` past its end, for a probe to close it; then it
  // expires by itself. Fire and forget: a failure leaves the breaker a local one.
  virtual void publishOpen(const std::string& key, resilience::Duration remaining,
                           resilience::Duration linger) = 0;
  // This instance's probes closed its breaker: deletes the record and the probe token.
  virtual void publishClosed(const std::string& key) = 0;

  // The records of `keys`, in one round trip.
  virtual void read(std::vector<std::string> keys, std::function<void(const Read&)> done) = 0;

  // Takes the probe token of `key` unless another instance holds it. The token lasts until the
  // open period ends plus `window` (the time the winner has to finish its probes); after that
  // another instance may win it.
  virtual void tryProbe(const std::string& key, resilience::Duration window,
                        std::function<void(const Probe&)> done) = 0;
};

}  // namespace sluice::gateway::guards
