#include "gateway/log/log_throttle.h"

#include <algorithm>

namespace sluice::gateway::log {

LogThrottle::LogThrottle(std::uint32_t burst, Clock::duration every)
    : burst_(std::max<std::uint32_t>(1, burst)),
      rate_(1.0 / std::chrono::duration<double>(std::max(every, Clock::duration(1))).count()) {}

bool LogThrottle::allow(std::string_view key, Clock::time_point now, std::uint64_t& held_back) {
  auto it = keys_.find(std::string(key));
  if (it == keys_.end()) {
    if (keys_.size() >= kMaxKeys) keys_.clear();
    it = keys_.try_emplace(std::string(key), rate_, burst_, now).first;
  }
  State& s = it->second;
  if (!s.bucket.tryAcquire(now)) {
    ++s.held_back;
    return false;
  }
  held_back = s.held_back;
  s.held_back = 0;
  return true;
}

}  // namespace sluice::gateway::log
