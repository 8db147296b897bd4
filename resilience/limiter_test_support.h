// Test support for the limiters' unit tests (standard library only, so it can live in the
// leaf): a checker for the token-bucket bound "over any interval [a, b], at most
// rate * (b - a) + burst tokens are admitted", a start line for stress tests, and an unlimited
// rate.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "resilience/clock.h"

namespace sluice::resilience {

inline constexpr double kInf = std::numeric_limits<double>::infinity();  // an unlimited rate

struct Admission {
  std::int64_t t_ns = 0;  // time of the admission, relative to any fixed origin
  std::uint64_t n = 0;    // tokens admitted
  // A reservation's tokens are consumed at its exact booking time, which timeToAct() rounds up
  // to whole nanoseconds: the true time lies in (t_ns - 1, t_ns].
  bool rounded_up = false;
};

// Checks every window between two admissions of `log` (sorted by t_ns). Returns nullopt if the
// bound holds, else a description of the first window that breaks it. O(log.size()^2).
inline std::optional<std::string> findOverAdmission(const std::vector<Admission>& log, double rate,
                                                    std::uint64_t burst) {
  std::vector<long double> prefix(log.size() + 1, 0);
  for (std::size_t i = 0; i < log.size(); ++i) {
    prefix[i + 1] = prefix[i] + static_cast<long double>(log[i].n);
  }
  for (std::size_t i = 0; i < log.size(); ++i) {
    const std::int64_t start = log[i].t_ns - (log[i].rounded_up ? 1 : 0);
    for (std::size_t j = i; j < log.size(); ++j) {
      const long double admitted = prefix[j + 1] - prefix[i];
      const long double bound =
          static_cast<long double>(rate) * static_cast<long double>(log[j].t_ns - start) / 1e9L +
          static_cast<long double>(burst);
      if (admitted > bound + 1e-9L) {
        return "window [" + std::to_string(start) + ", " + std::to_string(log[j].t_ns) +
               "] ns admitted " + std::to_string(static_cast<double>(admitted)) + " > bound " +
               std::to_string(static_cast<double>(bound));
      }
    }
  }
  return std::nullopt;
}

// Runs body(i) on `threads` new threads, released together so that they really overlap, while
// the calling thread runs `meanwhile()` (by default nothing); returns when all have finished.
template <typename Body, typename Meanwhile = void (*)()>
void runTogether(
    int threads, Body body, Meanwhile meanwhile = [] {}) {
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&go, &body, i] {
      while (!go.load(std::memory_order_acquire)) {
      }
      body(i);
    });
  }
  go.store(true, std::memory_order_release);
  meanwhile();
  for (std::thread& t : pool) {
    t.join();
  }
}

// A contended run: `threads` threads each call tryAcquire(n, clock.now()) `ops` times with n
// random in 1..3, and advance the shared clock by 500 ns every 4 calls (the workers drive time,
// so no clock thread can starve). Returns the tokens admitted; the clock ends at
// start + 500 ns * threads * ops / 4.
template <typename Bucket>
std::uint64_t acquireConcurrently(Bucket& bucket, ManualClock& clock, int threads, int ops) {
  std::atomic<std::uint64_t> admitted{0};
  runTogether(threads, [&](int i) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(i) + 1);
    std::uint64_t mine = 0;
    for (int op = 0; op < ops; ++op) {
      if (op % 4 == 0) {
        clock.advance(std::chrono::nanoseconds(500));
      }
      const std::uint64_t n = 1 + rng() % 3;
      if (bucket.tryAcquire(n, clock.now())) {
        mine += n;
      }
    }
    admitted.fetch_add(mine, std::memory_order_relaxed);
  });
  return admitted.load();
}

// `threads` threads take single tokens at `now` until refused, while the calling thread calls
// reconfigure() over and over. Returns the tokens admitted and how many reconfigurations ran.
template <typename Bucket, typename Reconfigure>
std::pair<std::uint64_t, int> drainWhileReconfiguring(Bucket& bucket, TimePoint now, int threads,
                                                      Reconfigure reconfigure) {
  std::atomic<int> done{0};
  std::atomic<std::uint64_t> admitted{0};
  int reconfigs = 0;
  runTogether(
      threads,
      [&](int /*i*/) {
        std::uint64_t mine = 0;
        while (bucket.tryAcquire(1, now)) {
          ++mine;
        }
        admitted.fetch_add(mine, std::memory_order_relaxed);
        done.fetch_add(1, std::memory_order_release);
      },
      [&] {
        while (done.load(std::memory_order_acquire) < threads) {
          reconfigure();
          ++reconfigs;
        }
      });
  return {admitted.load(), reconfigs};
}

}  // namespace sluice::resilience
