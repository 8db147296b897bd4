#include "gateway/guards/rate_limit_guard.h"

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

RateLimitGuard::RateLimitGuard(std::string name, std::string policy, config::RateLimit settings,
                               bool many_routes, const RateLimitGuard* previous, TimePoint now)
    : name_(std::move(name)),
      policy_(std::move(policy)),
      settings_(std::move(settings)),
      many_routes_(many_routes) {
  if (previous != nullptr && canTakeOver(*previous)) {
    state_ = previous->state_;
    if (state_->table) {
      state_->table->reconfigure(state_->factory, settings_, settings_.max_keys, now);
    } else {
      state_->factory.setSettings(settings_);
      state_->single->reconfigure(state_->factory, now);
    }
    return;
  }
  state_ = std::make_shared<State>(settings_);
  const bool per_request =
      many_routes || std::any_of(settings_.key.begin(), settings_.key.end(),
                                 [](const auto& p) { return p.kind != Kind::Route; });
  if (per_request) {
    state_->table.emplace(settings_.max_keys, state_->factory);
  } else {
    state_->single = state_->factory.make(now);
  }
}

bool RateLimitGuard::canTakeOver(const RateLimitGuard& previous) const {
  const auto& before = previous.settings_;
  return previous.many_routes_ == many_routes_ && before.key == settings_.key &&
         KeyLimiterFactory::canReconfigure(before, settings_) &&
         (!previous.state_->table || previous.state_->table->canHold(settings_.max_keys));
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

std::optional<Admission> RateLimitGuard::check(proxy::RequestContext& ctx) {
  const RateDecision d = decide(ctx, resilience::Clock::now());
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

asio::awaitable<Admission> RateLimitGuard::admit(proxy::RequestContext& ctx) {
  co_return *check(ctx);
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
  g.push_back({"sluice_rate_limit_keys", "Keys (clients) a rate limit tracks.",
               static_cast<double>(state_->table ? state_->table->size() : 1)});
  g.push_back({"sluice_rate_limit_keys_evicted_total",
               "Keys a full rate-limit table forgot while still active.",
               static_cast<double>(state_->table ? state_->table->evicted() : 0), "counter"});
  return g;
}

}  // namespace sluice::gateway::guards
