// ReloadHistory: the last config reloads - applied or refused - for the admin API (/stats) and
// the dashboard. The start counts as the first entry, so the history always says where the
// generation being served came from.
//
//   history.record({now, "SIGHUP", false, 3, {"my.yaml:12:7: ..."}, 4.2});
//   for (const auto& e : history.entries()) ...  // oldest first, at most kCapacity
//
// Main thread only (reloads and the admin listener both run there): no lock.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

namespace sluice::gateway::server {

class ReloadHistory {
 public:
  static constexpr std::size_t kCapacity = 20;
  // A refused reload can list every problem of a large file: the first few say enough.
  static constexpr std::size_t kMaxProblems = 5;

  struct Entry {
    std::chrono::system_clock::time_point at;
    std::string trigger;  // "start", "SIGHUP", "admin API", "file change"
    bool applied = false;
    std::uint64_t generation = 0;       // served after it
    std::vector<std::string> problems;  // why refused (at most kMaxProblems)
    std::size_t problem_count = 0;      // all of them
    double took_ms = 0;                 // from the trigger to every worker serving it (or refusal)
  };

  void record(Entry e) {
    e.problem_count = std::max(e.problem_count, e.problems.size());
    if (e.problems.size() > kMaxProblems) e.problems.resize(kMaxProblems);
    if (entries_.size() == kCapacity) entries_.pop_front();
    entries_.push_back(std::move(e));
  }

  [[nodiscard]] const std::deque<Entry>& entries() const noexcept { return entries_; }

 private:
  std::deque<Entry> entries_;
};

}  // namespace sluice::gateway::server
