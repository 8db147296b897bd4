// ResponseCache: the last good response to each GET, kept for a circuit breaker's fallback.
//
// Bounded by entry count and by the bytes of the bodies it keeps (least recently used evicted
// first, until both hold); the caller also refuses bodies over fallback.cache.max_body. Entries are
// immutable and shared: a hit is a shared_ptr copy under the lock, and the reply is built outside
// it. Only the breaker's fallback reads it, so it costs nothing while the breaker is closed beyond
// one insert per good response.
//
// Thread-safety: all members are thread-safe (one mutex).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sluice::gateway::guards {

class ResponseCache {
 public:
  struct Entry {
    int status = 200;
    std::string content_type;
    std::vector<std::pair<std::string, std::string>> fields;  // end-to-end fields, as received
    std::string body;
    std::chrono::steady_clock::time_point stored;
  };

  ResponseCache(std::size_t max_entries, std::uint64_t max_bytes)
      : max_entries_(max_entries), max_bytes_(max_bytes) {}

  void put(std::string key, std::shared_ptr<const Entry> entry);
  [[nodiscard]] std::shared_ptr<const Entry> find(std::string_view key);
  // New bounds (a reload): entries beyond them are evicted now, least recently used first.
  void setLimits(std::size_t max_entries, std::uint64_t max_bytes);
  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] std::uint64_t bytes() const;

 private:
  using Lru = std::list<std::pair<std::string, std::shared_ptr<const Entry>>>;
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  void evictLocked();

  std::size_t max_entries_;
  std::uint64_t max_bytes_;
  mutable std::mutex mu_;
  std::uint64_t bytes_ = 0;  // body bytes held
  Lru lru_;                  // most recent first
  std::unordered_map<std::string, Lru::iterator, Hash, std::equal_to<>> index_;
};

}  // namespace sluice::gateway::guards
