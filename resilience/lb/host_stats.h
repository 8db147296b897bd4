// HostStats: what load-aware balancers read about one upstream host - requests in flight and a
// peak-EWMA latency estimate - updated through an RAII handle per request.
//
//   std::deque<HostStats> stats;                         // one per host, per worker; never moved
//   stats.emplace_back(PeakEwma::Settings{}, now);
//   HostStats::Request request = stats[host].start(now); // in_flight + 1
//   ...
//   request.complete(now);                               // RTT sample, in_flight - 1
//   // or let it go out of scope: in_flight - 1 without a sample (cancelled, failed fast)
//
//   p2c.pick(rng(), [&](std::size_t i) { return stats[i].inFlight(); });   // least request
//   p2c.pick(rng(), [&](std::size_t i) { return stats[i].cost(now); });    // peak EWMA
//
// cost(now) = rtt_estimate(now) in ns * (in_flight + 1): the expected time to serve one more
// request if the host's queue drains at its recent latency (Finagle's and linkerd's formula).
// The +1 prices the request being placed, so an idle host still costs its latency.
// Failures: a fast failure must not make a host look fast; let the handle go (no sample) or feed
// a penalty with observeRtt().
//
// A Request points at its HostStats, so HostStats can be neither copied nor moved: keep them in
// a container that does not relocate elements (std::deque, std::list, unique_ptr) and outliving
// their requests. Thread-safety: none; one HostStats per host per worker (event loop), with its
// Requests completed on that worker.
#pragma once

#include <cstdint>
#include <type_traits>

#include "resilience/clock.h"
#include "resilience/lb/peak_ewma.h"

namespace sluice::resilience {

class HostStats {
 public:
  // One request in flight on the host. Move-only; ends (in_flight - 1) exactly once: at
  // complete(), cancel(), or destruction, whichever comes first.
  class Request {
   public:
    Request() = default;  // an empty handle that ends nothing
    Request(Request&& other) noexcept : host_(other.host_), start_(other.start_) {
      other.host_ = nullptr;
    }
    Request& operator=(Request&& other) noexcept {
      if (this != &other) {
        cancel();
        host_ = other.host_;
        start_ = other.start_;
        other.host_ = nullptr;
      }
      return *this;
    }
    Request(const Request&) = delete;
    Request& operator=(const Request&) = delete;
    ~Request() { cancel(); }

    // Ends the request and records now - start as a latency sample (0 if now is earlier than
    // the start). No effect on an ended or empty handle.
    void complete(TimePoint now) {
      if (host_ != nullptr) {
        host_->rtt_.observe(now > start_ ? now - start_ : Duration::zero(), now);
        release();
      }
    }

    // Ends the request without a latency sample. No effect on an ended or empty handle.
    void cancel() noexcept {
      if (host_ != nullptr) {
        release();
      }
    }

    // True until complete(), cancel() or a move out of it.
    [[nodiscard]] bool active() const noexcept { return host_ != nullptr; }
    [[nodiscard]] TimePoint startTime() const noexcept { return start_; }

   private:
    friend class HostStats;
    Request(HostStats* host, TimePoint start) noexcept : host_(host), start_(start) {}
    void release() noexcept {
      --host_->in_flight_;
      host_ = nullptr;
    }

    HostStats* host_ = nullptr;
    TimePoint start_{};
  };

  // Precondition: PeakEwma::validate(settings) is nullopt. The latency estimate starts at
  // settings.initial_rtt as of `now`.
  HostStats(const PeakEwma::Settings& settings, TimePoint now) : rtt_(settings, now) {}
  HostStats(const HostStats&) = delete;
  HostStats& operator=(const HostStats&) = delete;
  HostStats(HostStats&&) = delete;
  HostStats& operator=(HostStats&&) = delete;
  ~HostStats() = default;

  // Counts a request as in flight from `now` until the returned handle ends.
  [[nodiscard]] Request start(TimePoint now) noexcept {
    ++in_flight_;
    return {this, now};
  }

  // Requests started and not yet ended.
  [[nodiscard]] std::uint32_t inFlight() const noexcept { return in_flight_; }

  // Peak-EWMA cost at `now`: rttEstimateNanos(now) * (inFlight() + 1), in nanoseconds.
  [[nodiscard]] double cost(TimePoint now) const {
    return rtt_.estimateNanos(now) * (static_cast<double>(in_flight_) + 1.0);
  }

  // The latency estimate at `now` (see PeakEwma).
  [[nodiscard]] double rttEstimateNanos(TimePoint now) const { return rtt_.estimateNanos(now); }
  [[nodiscard]] Duration rttEstimate(TimePoint now) const { return rtt_.estimate(now); }

  // Feeds a latency sample directly, e.g. a penalty for a failure or a health-check RTT.
  void observeRtt(Duration rtt, TimePoint now) { rtt_.observe(rtt, now); }

 private:
  PeakEwma rtt_;
  std::uint32_t in_flight_ = 0;
};

static_assert(std::is_nothrow_move_constructible_v<HostStats::Request>);
static_assert(std::is_nothrow_move_assignable_v<HostStats::Request>);

}  // namespace sluice::resilience
