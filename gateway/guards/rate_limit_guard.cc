#include "gateway/guards/rate_limit_guard.h"

#include <boost/asio/this_coro.hpp>

#include "gateway/http/head.h"
#include "gateway/http/strict_parser.h"
#include "gateway/proxy/request_context.h"

namespace sluice::gateway::guards {
namespace {

namespace asio = boost::asio;
using Kind = config::RateKeyPart::Kind;

// Whole seconds, rounded up (the headers' unit), saturated to fit an int64 rendering.
std::int64_t ceilSeconds(Duration d) {
  if (d <= Duration::zero()) return 0;
  if (d >= std::chrono::hours(24 * 365 * 100)) return 100LL * 365 * 24 * 3600;
  return std::chrono::ceil<std::chrono::seconds>(d).count();
}

}  // namespace

namespace {

// A global limit's share on one instance of `instances` (on_failure local): the rate spread
// over `instances` periods, so it stays exact (100/s on 3 instances: 100 per 3 s each).
config::RateLimit localShare(const config::RateLimit& s, std::uint32_t instances) {
  if (s.scope != config::RateLimit::Scope::Global || instances <= 1) return s;
  config::RateLimit share = s;
  share.period = s.period * instances;
  share.burst = std::max<std::uint64_t>(1, s.burst / instances);
  return share;
}

}  // namespace

RateLimitGuard::RateLimitGuard(std::string name, std::string policy, config::RateLimit settings,
                               bool many_routes, const RateLimitGuard* previous, TimePoint now,
                               const GlobalScope& global)
    : name_(std::move(name)),
      policy_(std::move(policy)),
      settings_(std::move(settings)),
      local_(localShare(settings_, global.instances)),
      many_routes_(many_routes) {
  const bool is_global =
      settings_.scope == config::RateLimit::Scope::Global && global.store != nullptr;
  if (previous != nullptr && canTakeOver(*previous) &&
      (previous->state_->global != nullptr) == is_global) {
    state_ = previous->state_;
    if (state_->table) {
      state_->table->reconfigure(state_->factory, local_, local_.max_keys, now);
    } else {
      state_->factory.setSettings(local_);
      state_->single->reconfigure(state_->factory, now);
    }
    if (state_->global) state_->global->reconfigure(settings_);
    return;
  }
  state_ = std::make_shared<State>(local_);
  const bool per_request =
      many_routes || std::any_of(settings_.key.begin(), settings_.key.end(),
                                 [](const auto& p) { return p.kind != Kind::Route; });
  if (per_request) {
    state_->table.emplace(local_.max_keys, state_->factory);
  } else {
    state_->single = state_->factory.make(now);
  }
  if (is_global) {
    state_->global = std::make_shared<GlobalLimit>(policy_ + ":" + name_, settings_, global.store,
                                                   settings_.max_keys);
  }
}

bool RateLimitGuard::canTakeOver(const RateLimitGuard& previous) const {
  const auto& before = previous.local_;
  return previous.many_routes_ == many_routes_ && before.key == local_.key &&
         KeyLimiterFactory::canReconfigure(before, local_) &&
         (!previous.state_->table || previous.state_->table->canHold(local_.max_keys));
}

void RateLimitGuard::buildKey(const proxy::RequestContext& ctx, std::string& out) const {
  out.clear();
  for (const auto& part : settings_.key) {
    if (!out.empty()) out.push_back('\n');  // cannot occur inside any part
    switch (part.kind) {
      case Kind::ClientIp:
        out.append(ctx.client_ip);
        break;
      case Kind::Route:
        if (ctx.route != nullptr) out.append(ctx.route->name);
        break;
      case Kind::Header:
        if (ctx.head != nullptr) {
          for (const auto& f : ctx.head->fields) {
            if (http::iequals(f.name, part.header)) {
              out.append(f.value);
              break;
            }
          }
        }
        break;
    }
  }
}

RateDecision RateLimitGuard::decide(const proxy::RequestContext& ctx, TimePoint now) {
  if (state_->single) return state_->single->acquire(now);
  thread_local std::string key;
  buildKey(ctx, key);
  return state_->table->acquire(key, now);
}

Admission RateLimitGuard::verdictOf(const RateDecision& d) const {
  switch (d.kind) {
    case RateDecision::Kind::Allow:
      return Admission::allowed();
    case RateDecision::Kind::Delay:
      return Admission::delayed(d.wait);
    case RateDecision::Kind::Reject:
      break;
  }
  return Admission{Verdict::Limited, rejection(d)};
}

Admission RateLimitGuard::globalVerdict(const GlobalLimit::Answer& a,
                                        const proxy::RequestContext& ctx) {
  switch (a.kind) {
    case GlobalLimit::Kind::Allow:
      return Admission::allowed();
    case GlobalLimit::Kind::Reject:
      return Admission{Verdict::Limited, rejection(a.decision)};
    case GlobalLimit::Kind::Fetch:
    case GlobalLimit::Kind::Failed:
      break;
  }
  switch (settings_.on_failure) {
    case config::RateLimit::OnFailure::Allow:
      return Admission::allowed();
    case config::RateLimit::OnFailure::Deny: {
      RateDecision d;
      d.wait = std::chrono::seconds(1);
      d.quota = settings_.burst;
      d.window = settings_.period;
      return Admission{Verdict::Limited, rejection(d)};
    }
    case config::RateLimit::OnFailure::Local:
      break;
  }
  return verdictOf(decide(ctx, resilience::Clock::now()));
}

std::optional<Admission> RateLimitGuard::check(proxy::RequestContext& ctx) {
  if (state_->global) {
    thread_local std::string key;
    buildKey(ctx, key);
    const auto a = state_->global->tryTake(key, resilience::Clock::now());
    if (a.kind == GlobalLimit::Kind::Fetch) return std::nullopt;  // wait for it: admit()
    return globalVerdict(a, ctx);
  }
  return verdictOf(decide(ctx, resilience::Clock::now()));
}

asio::awaitable<Admission> RateLimitGuard::admit(proxy::RequestContext& ctx) {
  if (!state_->global) co_return *check(ctx);
  const auto ex = co_await asio::this_coro::executor;
  std::string key;
  buildKey(ctx, key);
  const auto a = co_await state_->global->take(std::move(key), state_->global->timeout(), ex);
  co_return globalVerdict(a, ctx);
}

http::LocalReply RateLimitGuard::rejection(const RateDecision& d) const {
  http::LocalReply r = http::LocalReply::text(settings_.status, "rate limit exceeded");
  const std::string item = "\"" + policy_ + "\"";
  r.fields.emplace_back("Retry-After",
                        std::to_string(std::max<std::int64_t>(1, ceilSeconds(d.wait))));
  r.fields.emplace_back("RateLimit-Policy",
                        item + ";q=" + std::to_string(d.quota) + ";w=" +
                            std::to_string(std::max<std::int64_t>(1, ceilSeconds(d.window))));
  r.fields.emplace_back("RateLimit", item + ";r=" + std::to_string(d.remaining) +
                                         ";t=" + std::to_string(ceilSeconds(d.reset)));
  return r;
}

std::vector<GuardGauge> RateLimitGuard::gauges() const {
  std::vector<GuardGauge> g;
  if (state_->global) {
    const auto c = state_->global->counts();
    g.push_back({"sluice_rate_limit_global_keys",
                 "Keys of a global rate limit this instance holds a lease for.",
                 static_cast<double>(c.keys)});
    g.push_back({"sluice_rate_limit_global_fetches_total",
                 "Leases of permits a global rate limit asked Redis for.",
                 static_cast<double>(c.fetches), "counter"});
    g.push_back({"sluice_rate_limit_global_failures_total",
                 "Lease requests of a global rate limit that Redis did not answer (on_failure "
                 "applied).",
                 static_cast<double>(c.failures), "counter"});
  }
  g.push_back({"sluice_rate_limit_keys", "Keys (clients) a rate limit tracks.",
               static_cast<double>(state_->table ? state_->table->size() : 1)});
  g.push_back({"sluice_rate_limit_keys_evicted_total",
               "Keys a full rate-limit table forgot while still active.",
               static_cast<double>(state_->table ? state_->table->evicted() : 0), "counter"});
  return g;
}

}  // namespace sluice::gateway::guards
