// CircuitBreakerGuard: the `circuit_breaker` of a route or cluster (docs/configuration.md) -
// stop sending requests to an upstream that is failing, answer from a fallback meanwhile, and
// probe it before trusting it again.
//
// The breaker is resilience::CircuitBreaker (closed -> open -> half-open -> closed; its header
// has the exact thresholds). A request it admits carries the permit in its context; complete()
// records the outcome: a failure when sluice could not get a usable upstream response (502, 503,
// 504 of its own, resets, timeouts) or the status is in failure_statuses (default 5xx), a slow
// call when the service time (from admission, queueing excluded) exceeds slow_call_duration. A
// request the client abandoned before any response records nothing.
//
// While the breaker refuses, the request gets its fallback (verdict `open`):
//   - cache:   the last good 200 response to the same GET (host and target), with
//              X-Sluice-Fallback: cache and Age; the static answer when there is none;
//   - static:  the configured status, headers and body, with X-Sluice-Fallback: static;
//   - cluster: the request is forwarded to the fallback cluster instead.
// A cluster's breaker is one guard shared by all of its routes; a route with its own breaker
// uses that one instead. State and transitions are exported as gauges and on the admin API
// (/breakers, with the last few transitions timed: transition_log.h).
//
// Reloads: the guard that replaces a route's or cluster's breaker takes over the breaker itself
// (resilience::CircuitBreaker::reconfigure: its state, its open period and, unless the window's
// kind or size changed, its window), its transition counts and its cache of good responses.
//
// Shared breakers (share: redis; docs/distributed.md): the guard publishes each open of its own
// to a BreakerStore (publishOpen: the open period's end, on the store's clock), and
// applyShared() applies what the store holds, read every ~200 ms by BreakerSync
// (breaker_sync.h) for all shared breakers at once:
//   - a record whose period is running opens this breaker until its end (both modes;
//     CircuitBreaker::observeRemoteOpen: forced states are left alone);
//   - authoritative only: when this breaker's open period is about to end (kProbeLead), it may
//     go half-open only if it wins the record's probe token; otherwise it stays open while the
//     winner probes (for as long as the token lasts). The winner's probes decide for the fleet:
//     a close deletes the record and the other instances close on their next read; a reopen
//     publishes the next, longer period. A record that vanishes closes this breaker;
//   - hint: after the shared period the breaker follows its own counts and probes by itself;
//   - the first read after start opens a breaker whose record exists (a restarted instance
//     does not start closed).
// A store that does not answer changes nothing: the breaker is then a local one (it goes
// half-open and probes on its own), and it follows the store again once the store answers.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "gateway/config/config.h"
#include "gateway/guards/breaker_store.h"
#include "gateway/guards/guard.h"
#include "gateway/guards/response_cache.h"
#include "gateway/guards/transition_log.h"
#include "resilience/circuit_breaker.h"

namespace sluice::gateway::guards {

class CircuitBreakerGuard final : public Guard {
 public:
  // `previous`: the breaker guard of the same route or cluster that this one replaces on a
  // reload (see above).
  // `owner` names the breaker in its log lines ("route api", "cluster api") and its shared
  // record ("route:api").
  // `store`: where a breaker with share: redis keeps its shared state (outlives the guard); null
  // without a redis section, or for tests of a local breaker.
  CircuitBreakerGuard(std::string_view name, config::CircuitBreaker config,
                      const CircuitBreakerGuard* previous = nullptr, std::string owner = {},
                      BreakerStore* store = nullptr);

  // How long before its open period ends an authoritative shared breaker asks for the probe
  // token: more than two reads apart, so that it knows before the period ends.
  static constexpr resilience::Duration kProbeLead = std::chrono::milliseconds(500);
  // How long the probe token's winner has, after the period, to finish its probes before another
  // instance may win the token: the fleet sends at most half_open_probes per window.
  static constexpr resilience::Duration kProbeWindow = std::chrono::seconds(5);

  // Shared: this guard's record key in the store ("route:api"); empty when not shared.
  [[nodiscard]] const std::string& sharedKey() const noexcept { return shared_key_; }
  // Applies the shared record of this breaker (see above), read at `now` (the steady clock the
  // breaker runs on); a token request it makes answers later, on the store's thread.
  // Thread-safe; called on the store's thread.
  void applyShared(const BreakerStore::Record& record, resilience::TimePoint now);

  [[nodiscard]] std::string_view name() const override { return name_; }
  std::optional<Admission> check(proxy::RequestContext& ctx) override;
  boost::asio::awaitable<Admission> admit(proxy::RequestContext& ctx) override;
  void complete(proxy::RequestContext& ctx, const Completion& c) override;
  [[nodiscard]] std::vector<GuardGauge> gauges() const override;

  [[nodiscard]] resilience::CircuitBreaker& breaker() noexcept { return state_->breaker; }
  [[nodiscard]] const config::CircuitBreaker& settings() const noexcept { return config_; }
  // State, rates and counts, and the recent transitions (`history`, oldest first, each with its
  // wall-clock time in ms since the epoch), for the admin API.
  [[nodiscard]] nlohmann::json status() const;

  // An operator's override through the admin API: force-open rejects every request (the
  // fallback answers, if any), force-closed admits every one and counts nothing, normal closes
  // the breaker with an empty window. A forced state holds across reloads, like any breaker
  // state, until `normal`.
  enum class Force : std::uint8_t { Open, Closed, Normal };
  [[nodiscard]] static std::optional<Force> parseForce(std::string_view action);
  void force(Force f);

 private:
  static constexpr std::size_t kStates = 5;  // resilience::CircuitBreaker::State values

  [[nodiscard]] http::LocalReply fallbackReply(const proxy::RequestContext& ctx);
  [[nodiscard]] bool isFailure(const Completion& c) const;

  // Events of a shared breaker, the `event` label of sluice_circuit_breaker_shared_total.
  enum class SharedEvent : std::uint8_t { RemoteOpen, RemoteClose, ProbeWon, ProbeLost, Count };

  // How a shared breaker talks to its store; replaced by each guard that takes over the Shared
  // (a reload may change the mode or add the store).
  struct Sharing {
    BreakerStore* store = nullptr;  // null: not shared
    bool authoritative = true;
    resilience::Duration linger{};  // how long a record outlives its period (authoritative)
  };

  // What outlives the guard while a newer one shares it.
  struct Shared {
    // `owner`: who the breaker is for, in the log line of each transition.
    Shared(const config::CircuitBreaker& config, std::string owner);
    [[nodiscard]] Sharing sharing() const;
    void setSharing(const Sharing& s);
    // The listener's share: tells the store of this breaker's own opens and closes.
    void publish(resilience::CircuitBreaker::State from, resilience::CircuitBreaker::State to);
    void count(SharedEvent e) {
      events[static_cast<std::size_t>(e)].fetch_add(1, std::memory_order_relaxed);
    }

    std::string name;
    std::string key;  // the shared record's key: owner with ':' ("route:api")
    std::array<std::atomic<std::uint64_t>, kStates> transitions{};  // by target state
    TransitionLog recent;                                           // the last few, timed
    ResponseCache cache;                                            // used only with fallback.cache
    std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(SharedEvent::Count)> events{};
    mutable std::mutex sharing_mu;
    Sharing sharing_;  // guarded by sharing_mu
    // Applying the store's state (applyShared): what the listener must not echo back.
    std::atomic<std::uint32_t> remote_closes_pending{0};
    std::atomic<bool> seen_record{false};         // the last read found a record
    std::atomic<bool> synced{false};              // a read has been applied since start
    std::atomic<bool> probe_asked{false};         // a token request is in flight
    std::atomic<std::int64_t> token_until_ns{0};  // this instance holds the token until then
    resilience::CircuitBreaker breaker;           // last: its listener writes transitions
  };

  std::string name_;
  config::CircuitBreaker config_;
  std::string shared_key_;
  std::shared_ptr<Shared> state_;
};

[[nodiscard]] std::string_view stateName(resilience::CircuitBreaker::State s);

}  // namespace sluice::gateway::guards
