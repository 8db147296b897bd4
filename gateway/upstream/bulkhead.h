// Bulkhead: a cluster's hard caps across all workers and hosts (Envoy's cluster circuit-breaker
// thresholds) - so that one slow upstream cannot take every connection, every waiting slot or
// every retry of the gateway with it:
//
//   connections  upstream connections open to the cluster's hosts (in use, idle, connecting)
//   pending      requests waiting for a pooled connection
//   requests     requests being forwarded to the cluster (from the first try to the response)
//   retries      retries in flight
//
// Overflowing connections, pending or requests answers 503 at once (upstream error `overflow`);
// an overflowing retry is simply not made (the client gets the failed try's answer). Every
// overflow is counted by limit. Each cap is one atomic counter: take() is a fetch_add and, over
// the cap, a fetch_sub; only clusters with a `bulkhead` section pay it.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include "gateway/config/config.h"

namespace sluice::gateway::upstream {

class Bulkhead {
 public:
  enum class Limit : std::uint8_t { Connections, Pending, Requests, Retries, Count };
  static constexpr std::size_t kLimits = static_cast<std::size_t>(Limit::Count);
  static constexpr std::array<std::string_view, kLimits> kNames = {"connections", "pending",
                                                                   "requests", "retries"};

  explicit Bulkhead(const config::Bulkhead& config) { setCaps(config); }

  // New caps (a reload), any thread. Units in use are kept: a lowered cap refuses new units
  // until enough are given back; nothing held is revoked.
  void setCaps(const config::Bulkhead& config) noexcept {
    const std::array<std::uint64_t, kLimits> caps{config.max_connections, config.max_pending,
                                                  config.max_requests, config.max_retries};
    for (std::size_t i = 0; i < kLimits; ++i) max_[i].store(caps[i], std::memory_order_relaxed);
  }

  // Takes one unit of `limit` if it is under its cap; otherwise counts an overflow.
  [[nodiscard]] bool take(Limit limit) noexcept {
    const auto i = static_cast<std::size_t>(limit);
    if (in_use_[i].fetch_add(1, std::memory_order_relaxed) <
        max_[i].load(std::memory_order_relaxed)) {
      return true;
    }
    in_use_[i].fetch_sub(1, std::memory_order_relaxed);
    overflows_[i].fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  void give(Limit limit) noexcept {
    in_use_[static_cast<std::size_t>(limit)].fetch_sub(1, std::memory_order_relaxed);
  }

  [[nodiscard]] std::uint64_t inUse(std::size_t i) const noexcept {
    return in_use_[i].load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t overflows(std::size_t i) const noexcept {
    return overflows_[i].load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t max(std::size_t i) const noexcept {
    return max_[i].load(std::memory_order_relaxed);
  }

  // One unit held until destruction (or release()).
  class Slot {
   public:
    Slot() = default;
    Slot(Bulkhead* b, Limit l) noexcept : bulkhead_(b), limit_(l) {}
    Slot(Slot&& o) noexcept : bulkhead_(std::exchange(o.bulkhead_, nullptr)), limit_(o.limit_) {}
    Slot& operator=(Slot&& o) noexcept {
      if (this != &o) {
        release();
        bulkhead_ = std::exchange(o.bulkhead_, nullptr);
        limit_ = o.limit_;
      }
      return *this;
    }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { release(); }
    void release() noexcept {
      if (bulkhead_ != nullptr) std::exchange(bulkhead_, nullptr)->give(limit_);
    }

   private:
    Bulkhead* bulkhead_ = nullptr;
    Limit limit_ = Limit::Requests;
  };

  // A held unit, or nullopt (and a counted overflow) when `limit` is at its cap. With no
  // bulkhead (`b` null) every acquire succeeds with an empty Slot.
  [[nodiscard]] static std::optional<Slot> acquire(Bulkhead* b, Limit limit) noexcept {
    if (b == nullptr) return Slot();
    if (!b->take(limit)) return std::nullopt;
    return Slot(b, limit);
  }

 private:
  std::array<std::atomic<std::uint64_t>, kLimits> max_{};
  std::array<std::atomic<std::uint64_t>, kLimits> in_use_{};
  std::array<std::atomic<std::uint64_t>, kLimits> overflows_{};
};

}  // namespace sluice::gateway::upstream
