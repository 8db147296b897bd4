#include "gateway/guards/response_cache.h"

namespace sluice::gateway::guards {

void ResponseCache::put(std::string key, std::shared_ptr<const Entry> entry) {
  std::lock_guard lock(mu_);
  if (entry->body.size() > max_bytes_) return;  // could never fit
  if (auto it = index_.find(key); it != index_.end()) {
    bytes_ -= it->second->second->body.size();
    bytes_ += entry->body.size();
    it->second->second = std::move(entry);
    lru_.splice(lru_.begin(), lru_, it->second);
  } else {
    bytes_ += entry->body.size();
    lru_.emplace_front(key, std::move(entry));
    index_.emplace(std::move(key), lru_.begin());
  }
  // The entry just stored is at the front and fits on its own.
  evictLocked();
}

void ResponseCache::setLimits(std::size_t max_entries, std::uint64_t max_bytes) {
  std::lock_guard lock(mu_);
  max_entries_ = max_entries;
  max_bytes_ = max_bytes;
  evictLocked();
}

void ResponseCache::evictLocked() {
  while (!lru_.empty() && (index_.size() > max_entries_ || bytes_ > max_bytes_)) {
    bytes_ -= lru_.back().second->body.size();
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
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

std::uint64_t ResponseCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace sluice::gateway::guards
