#include "gateway/guards/response_cache.h"

namespace sluice::gateway::guards {

void ResponseCache::put(std::string key, std::shared_ptr<const Entry> entry) {
  std::lock_guard lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    it->second->second = std::move(entry);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  if (index_.size() >= max_entries_ && !lru_.empty()) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  lru_.emplace_front(key, std::move(entry));
  index_.emplace(std::move(key), lru_.begin());
}

std::shared_ptr<const ResponseCache::Entry> ResponseCache::find(std::string_view key) {
  std::lock_guard lock(mu_);
  const auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

std::size_t ResponseCache::size() const {
  std::lock_guard lock(mu_);
  return index_.size();
}

}  // namespace sluice::gateway::guards
