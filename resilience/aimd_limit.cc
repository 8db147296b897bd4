#include "resilience/aimd_limit.h"

#include <algorithm>
#include <cmath>

namespace sluice::resilience {

std::optional<std::string> AimdLimit::validate(const Settings& settings) {
  if (settings.min_limit < 1) {
    return "min_limit must be at least 1";
  }
  if (settings.max_limit < settings.min_limit) {
    return "max_limit must be >= min_limit";
  }
  if (settings.max_limit > kMaxLimit) {
    return "max_limit must be at most 2^40";
  }
  if (settings.initial_limit < settings.min_limit || settings.initial_limit > settings.max_limit) {
    return "initial_limit must be within [min_limit, max_limit]";
  }
  // The negated form also rejects NaN.
  if (!(settings.backoff_ratio >= 0.5 && settings.backoff_ratio < 1.0)) {
    return "backoff_ratio must be in [0.5, 1)";
  }
  if (settings.increase < 1) {
    return "increase must be at least 1";
  }
  if (settings.timeout <= Duration::zero()) {
    return "timeout must be positive";
  }
  if (settings.backoff_cooldown < Duration::zero()) {
    return "backoff_cooldown must not be negative";
  }
  return std::nullopt;
}

namespace {

AimdLimit::Settings clamped(AimdLimit::Settings s) {
  s.min_limit = std::max<std::size_t>(s.min_limit, 1);
  s.min_limit = std::min(s.min_limit, AdaptiveLimit::kMaxLimit);
  s.max_limit = std::clamp(s.max_limit, s.min_limit, AdaptiveLimit::kMaxLimit);
  s.initial_limit = std::clamp(s.initial_limit, s.min_limit, s.max_limit);
  if (!(s.backoff_ratio >= 0.5 && s.backoff_ratio < 1.0)) {
    s.backoff_ratio = 0.9;
  }
  s.increase = std::max<std::size_t>(s.increase, 1);
  s.backoff_cooldown = std::max(s.backoff_cooldown, Duration::zero());
  return s;
}

}  // namespace

AimdLimit::AimdLimit(const Settings& settings) noexcept
    : settings_(clamped(settings)),
      limit_(settings_.initial_limit),
      current_(settings_.initial_limit) {}

void AimdLimit::onSample(TimePoint now, Duration rtt, std::size_t inflight, bool dropped) noexcept {
  latest_ = std::max(latest_, now);
  if (dropped || rtt > settings_.timeout) {
    if (last_decrease_ && latest_ - *last_decrease_ < settings_.backoff_cooldown) {
      return;
    }
    const auto scaled = static_cast<std::size_t>(
        std::floor(static_cast<double>(current_) * settings_.backoff_ratio));
    // current_ >= min_limit >= 1, so current_ - 1 cannot wrap.
    current_ = std::max(settings_.min_limit, std::min(current_ - 1, scaled));
    last_decrease_ = latest_;
  } else if (inflight >= (current_ + 1) / 2) {
    // inflight * 2 >= L, written without the multiplication so that huge inflight cannot wrap.
    // current_ <= max_limit; comparing the headroom first keeps the sum from wrapping.
    current_ = settings_.max_limit - current_ <= settings_.increase ? settings_.max_limit
                                                                    : current_ + settings_.increase;
  } else {
    return;
  }
  limit_.store(current_, std::memory_order_relaxed);
}

}  // namespace sluice::resilience
