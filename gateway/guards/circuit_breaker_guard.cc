#include "gateway/guards/circuit_breaker_guard.h"

#include <algorithm>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "gateway/config/breaker_config.h"

namespace sluice::gateway::guards {

namespace {

using State = resilience::CircuitBreaker::State;
using Clock = std::chrono::steady_clock;

constexpr std::array<std::string_view, 5> kStateNames = {"closed", "open", "half_open",
                                                         "forced_open", "disabled"};
// By CircuitBreakerGuard::SharedEvent.
constexpr std::array<std::string_view, 4> kSharedEventNames = {"remote_open", "remote_close",
                                                               "probe_won", "probe_lost"};

// "route api" -> "route:api": the shared record's key, without the prefix.
std::string recordKey(std::string owner) {
  if (const auto space = owner.find(' '); space != std::string::npos) owner[space] = ':';
  return owner;
}

}  // namespace

std::string_view stateName(State s) { return kStateNames[static_cast<std::size_t>(s)]; }

CircuitBreakerGuard::Shared::Shared(const config::CircuitBreaker& config, std::string owner)
    : name(std::move(owner)),
      key(recordKey(name)),
      cache(config.fallback.cache_entries, config.fallback.cache_max_bytes),
      breaker(
          config::breakerSettings(config), Clock::now(),
          [this](State from, State to, resilience::TimePoint /*at*/) {
            transitions[static_cast<std::size_t>(to)].fetch_add(1, std::memory_order_relaxed);
            // Wall-clock, not `at`: an operator reads the timeline against other clocks.
            recent.record(from, to, std::chrono::system_clock::now());
            // A decision an operator must see. The breaker itself bounds how often: one
            // open per open_duration at most.
            if (to == State::Open || to == State::ForcedOpen) {
              spdlog::warn("circuit breaker {}: {} -> {}", name, stateName(from), stateName(to));
            } else {
              spdlog::info("circuit breaker {}: {} -> {}", name, stateName(from), stateName(to));
            }
            publish(from, to);
          }) {}

CircuitBreakerGuard::Sharing CircuitBreakerGuard::Shared::sharing() const {
  const std::lock_guard lock(sharing_mu);
  return sharing_;
}

void CircuitBreakerGuard::Shared::setSharing(const Sharing& s) {
  const std::lock_guard lock(sharing_mu);
  sharing_ = s;
}

void CircuitBreakerGuard::Shared::publish(State from, State to) {
  const Sharing s = sharing();
  if (s.store == nullptr) return;
  const auto now = Clock::now();
  if (to == State::Open) {
    // A new period starts a new race for the token, also for this instance.
    token_until_ns.store(0, std::memory_order_relaxed);
    const auto snap = breaker.snapshot(now);
    // An open that came from the store is not news to it; a later transition has its own call.
    if (snap.state != State::Open || snap.remote_open || !snap.open_until) return;
    s.store->publishOpen(key, *snap.open_until - now, s.linger);
  } else if (to == State::Closed && s.authoritative) {
    // A close the store itself asked for (applyShared) must not delete an open that another
    // instance published since.
    std::uint32_t pending = remote_closes_pending.load(std::memory_order_relaxed);
    while (pending > 0) {
      if (remote_closes_pending.compare_exchange_weak(pending, pending - 1)) return;
    }
    // Only a verdict of probes speaks for the fleet; an operator's reset stays local.
    if (from == State::HalfOpen) s.store->publishClosed(key);
  }
}

CircuitBreakerGuard::CircuitBreakerGuard(std::string_view name, config::CircuitBreaker config,
                                         const CircuitBreakerGuard* previous, std::string owner,
                                         BreakerStore* store)
    : name_(name), config_(std::move(config)) {
  const bool shared = store != nullptr && config_.share == config::CircuitBreaker::Share::Redis;
  const bool authoritative = config_.share_mode == config::CircuitBreaker::ShareMode::Authoritative;
  // Authoritative: the record outlives its period until a probe closes it (or for as long as
  // the longest period, if no instance ever probes); hint: it says no more than the period.
  const Sharing sharing{
      shared ? store : nullptr, authoritative,
      authoritative ? resilience::Duration(config_.max_open_duration) : resilience::Duration{}};
  if (previous == nullptr) {
    state_ =
        std::make_shared<Shared>(config_, owner.empty() ? std::string(name_) : std::move(owner));
    state_->setSharing(sharing);
    if (shared) shared_key_ = state_->key;
    return;
  }
  state_ = previous->state_;
  state_->setSharing(sharing);
  if (shared) shared_key_ = state_->key;
  const auto without_fallback = [](config::CircuitBreaker c) {
    c.fallback = {};
    return c;
  };
  if (without_fallback(config_) != without_fallback(previous->config_)) {
    state_->breaker.reconfigure(config::breakerSettings(config_), Clock::now());
  }
  state_->cache.setLimits(config_.fallback.cache_entries, config_.fallback.cache_max_bytes);
}

std::optional<Admission> CircuitBreakerGuard::check(proxy::RequestContext& ctx) {
  auto permit = state_->breaker.tryAcquire(Clock::now());
  const bool get = ctx.head != nullptr && ctx.head->method == http::Verb::get;
  if (permit) {
    ctx.breaker_permit = std::move(permit);
    // A request with credentials may get a response meant for that user alone: never keep it
    // for others.
    const bool personal = get && (ctx.head->find(http::Field::authorization) != nullptr ||
                                  ctx.head->find(http::Field::cookie) != nullptr);
    if (config_.fallback.cache && get && !personal) {
      auto& cap = ctx.wantCapture();
      cap.wanted = true;
      cap.max_body = config_.fallback.cache_max_body;
      cap.key.assign(ctx.host).append(ctx.head->target);
    }
    return Admission::allowed();
  }
  Admission a;
  a.verdict = Verdict::Open;
  if (config_.fallback.cluster) {
    a.cluster = &*config_.fallback.cluster;
  } else {
    a.reply = fallbackReply(ctx);
  }
  return a;
}

boost::asio::awaitable<Admission> CircuitBreakerGuard::admit(proxy::RequestContext& ctx) {
  co_return *check(ctx);  // never reached: check() always decides
}

http::LocalReply CircuitBreakerGuard::fallbackReply(const proxy::RequestContext& ctx) {
  const auto& fb = config_.fallback;
  if (fb.cache && ctx.head != nullptr && ctx.head->method == http::Verb::get) {
    std::string key(ctx.host);
    key.append(ctx.head->target);
    if (auto hit = state_->cache.find(key)) {
      http::LocalReply r;
      r.status = hit->status;
      r.body = hit->body;
      r.content_type = hit->content_type;
      r.fields = hit->fields;
      const auto age = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - hit->stored);
      r.fields.emplace_back("Age", std::to_string(age.count()));
      r.fields.emplace_back("X-Sluice-Fallback", "cache");
      return r;
    }
  }
  http::LocalReply r;
  r.status = fb.status;
  r.body = fb.body;
  r.content_type = fb.content_type;
  r.fields = fb.headers;
  r.fields.emplace_back("X-Sluice-Fallback", "static");
  return r;
}

bool CircuitBreakerGuard::isFailure(const Completion& c) const {
  return c.upstream_failed || std::binary_search(config_.failure_statuses.begin(),
                                                 config_.failure_statuses.end(), c.status);
}

void CircuitBreakerGuard::complete(proxy::RequestContext& ctx, const Completion& c) {
  auto& permit = ctx.breaker_permit;
  if (!permit) return;  // sent to the fallback cluster: says nothing about this upstream
  if ((c.status == 0 && !c.upstream_failed) || c.no_verdict) {
    // The client left before any answer, its deadline ran out, or a bulkhead refused the
    // request: no verdict on the upstream.
    permit.release();
    return;
  }
  const bool failed = isFailure(c);
  if (failed) {
    permit.failure(c.latency);
  } else {
    permit.success(c.latency);
  }
  proxy::ResponseCapture* cap = ctx.capture.get();
  if (config_.fallback.cache && !failed && cap != nullptr && cap->active && cap->complete &&
      c.status == 200) {
    auto entry = std::make_shared<ResponseCache::Entry>();
    entry->status = 200;
    entry->content_type = std::move(cap->content_type);
    entry->fields = std::move(cap->fields);
    entry->body = std::move(cap->body);
    entry->stored = Clock::now();
    state_->cache.put(std::move(cap->key), std::move(entry));
    // The body's capacity went with it; the connection's capture starts empty next time.
  }
}

std::vector<GuardGauge> CircuitBreakerGuard::gauges() const {
  std::vector<GuardGauge> out;
  const State now = state_->breaker.state();
  for (std::size_t s = 0; s < kStates; ++s) {
    out.push_back(
        {"sluice_circuit_breaker_state", "1 for the breaker's current state, 0 for the others.",
         static_cast<std::size_t>(now) == s ? 1.0 : 0.0, "gauge", "state", kStateNames[s]});
  }
  for (std::size_t s = 0; s < kStates; ++s) {
    out.push_back({"sluice_circuit_breaker_transitions_total",
                   "Circuit breaker state changes, by the state entered.",
                   static_cast<double>(state_->transitions[s].load(std::memory_order_relaxed)),
                   "counter", "to", kStateNames[s]});
  }
  if (!shared_key_.empty()) {
    for (std::size_t e = 0; e < kSharedEventNames.size(); ++e) {
      out.push_back({"sluice_circuit_breaker_shared_total",
                     "What a shared circuit breaker learned from, or won in, the shared store.",
                     static_cast<double>(state_->events[e].load(std::memory_order_relaxed)),
                     "counter", "event", kSharedEventNames[e]});
    }
  }
  if (config_.fallback.cache) {
    out.push_back({"sluice_fallback_cache_entries",
                   "Responses kept for a circuit breaker's cached fallback.",
                   static_cast<double>(state_->cache.size())});
    out.push_back({"sluice_fallback_cache_bytes",
                   "Body bytes kept for a circuit breaker's cached fallback.",
                   static_cast<double>(state_->cache.bytes())});
  }
  return out;
}

void CircuitBreakerGuard::applyShared(const BreakerStore::Record& record,
                                      resilience::TimePoint now) {
  Shared& st = *state_;
  const Sharing sharing = st.sharing();
  if (sharing.store == nullptr) return;
  auto& breaker = st.breaker;
  const bool first = !st.synced.exchange(true);
  if (!record.open) {
    // The record is gone: a probe closed the breaker fleet-wide (or the record expired with
    // nobody probing). Only a record this instance has seen says so: a breaker that opened while
    // the store was away never had one.
    if (st.seen_record.exchange(false) && sharing.authoritative) {
      st.remote_closes_pending.fetch_add(1);
      if (breaker.observeRemoteClose(now)) {
        st.count(SharedEvent::RemoteClose);
      } else {
        st.remote_closes_pending.fetch_sub(1);
      }
    }
    return;
  }
  st.seen_record.store(true);
  const State before = breaker.state();
  resilience::Duration left = record.remaining;
  if (first && left <= resilience::Duration{} && sharing.authoritative) {
    // Started while the fleet waits for a probe: open, and join the race for the token.
    left = kProbeLead;
  }
  if (left > resilience::Duration{} && breaker.observeRemoteOpen(now + left, now) &&
      (before == State::Closed || before == State::HalfOpen)) {
    st.count(SharedEvent::RemoteOpen);
  }
  if (!sharing.authoritative) return;
  // Near the end of the period only the token's holder may go half-open; the others stay open
  // until it has probed. Asked ahead (kProbeLead), so that the answer comes before the end.
  const auto snap = breaker.snapshot(now);
  if (snap.state != State::Open || !snap.open_until || *snap.open_until - now > kProbeLead) return;
  if (now.time_since_epoch().count() < st.token_until_ns.load(std::memory_order_relaxed)) return;
  if (!sharing.store->available() || st.probe_asked.exchange(true)) return;
  sharing.store->tryProbe(st.key, kProbeWindow, [self = state_](const BreakerStore::Probe& p) {
    self->probe_asked.store(false);
    const auto at = Clock::now();
    switch (p.result) {
      case BreakerStore::Probe::Result::Won:
        self->count(SharedEvent::ProbeWon);
        self->token_until_ns.store((at + p.left).time_since_epoch().count(),
                                   std::memory_order_relaxed);
        break;  // the breaker goes half-open at its deadline
      case BreakerStore::Probe::Result::Lost:
        self->count(SharedEvent::ProbeLost);
        (void)self->breaker.observeRemoteOpen(at + p.left, at);
        break;
      case BreakerStore::Probe::Result::Closed:  // the next read closes
      case BreakerStore::Probe::Result::Failed:  // a local breaker
        break;
    }
  });
}

std::optional<CircuitBreakerGuard::Force> CircuitBreakerGuard::parseForce(std::string_view action) {
  if (action == "force-open") return Force::Open;
  if (action == "force-closed") return Force::Closed;
  if (action == "normal") return Force::Normal;
  return std::nullopt;
}

void CircuitBreakerGuard::force(Force f) {
  auto& b = state_->breaker;
  const auto now = Clock::now();
  switch (f) {
    case Force::Open:
      b.forceOpen(now);
      break;
    case Force::Closed:
      b.disable(now);
      break;
    case Force::Normal:
      b.reset(now);
      break;
  }
}

nlohmann::json CircuitBreakerGuard::status() const {
  const auto now = Clock::now();
  const auto s = state_->breaker.snapshot(now);
  nlohmann::json j = {
      {"state", stateName(s.state)},    {"calls", s.calls},
      {"failures", s.failures},         {"slow_calls", s.slow_calls},
      {"failure_rate", s.failure_rate}, {"slow_call_rate", s.slow_call_rate},
      {"rejected", s.rejected},         {"consecutive_reopens", s.consecutive_reopens}};
  j["open_for_ms"] =
      s.open_until ? nlohmann::json(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::max(*s.open_until - now, Clock::duration::zero()))
                                        .count())
                   : nlohmann::json(nullptr);
  nlohmann::json transitions = nlohmann::json::object();
  for (std::size_t i = 0; i < kStates; ++i) {
    transitions[std::string(kStateNames[i])] =
        state_->transitions[i].load(std::memory_order_relaxed);
  }
  j["transitions"] = transitions;
  if (!shared_key_.empty()) {
    j["shared"] = {{"mode", state_->sharing().authoritative ? "authoritative" : "hint"},
                   {"key", shared_key_},
                   {"remote_open", s.remote_open}};
  }
  nlohmann::json history = nlohmann::json::array();
  for (const auto& t : state_->recent.recent()) {
    history.push_back(
        {{"at_ms",
          std::chrono::duration_cast<std::chrono::milliseconds>(t.at.time_since_epoch()).count()},
         {"from", stateName(t.from)},
         {"to", stateName(t.to)}});
  }
  j["history"] = std::move(history);
  return j;
}

}  // namespace sluice::gateway::guards
