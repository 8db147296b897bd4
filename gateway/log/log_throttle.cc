#include "gateway/log/log_throttle.h"

#include <algorithm>

namespace sluice::gateway::log {

LogThrottle::LogThrottle(std::uint32_t burst, Clock::duration every)
    : burst_(std::max<double>(1, burst)), every_(std::max(every, Clock::duration(1))) {}

bool LogThrottle::allow(std::string_view key, Clock::time_point now, std::uint64_t& held_back) {
  auto it = keys_.find(std::string(key));
  if (it == keys_.end()) {
    if (keys_.size() >= kMaxKeys) keys_.clear();
    it = keys_.emplace(std::string(key), State{burst_, now, 0}).first;
  }
  State& s = it->second;
  if (now > s.refilled) {
    const double earned = std::chrono::duration<double>(now - s.refilled).count() /
                          std::chrono::duration<double>(every_).count();
    s.tokens = std::min(burst_, s.tokens + earned);
    s.refilled = now;
  }
  if (s.tokens < 1) {
    ++s.held_back;
    return false;
  }
  s.tokens -= 1;
  held_back = s.held_back;
  s.held_back = 0;
  return true;
}

}  // namespace sluice::gateway::log
