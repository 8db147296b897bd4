// The process's own figures under the names every Prometheus client library exports
// (process_cpu_seconds_total, process_resident_memory_bytes, ...), so that dashboards and alerts
// written for any service work on sluice too. Read from /proc at each scrape: a few small files,
// nothing kept between scrapes.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice::gateway::stats {

struct ProcessMetrics {
  double cpu_seconds = 0;  // user + system
  std::uint64_t resident_bytes = 0;
  std::uint64_t virtual_bytes = 0;
  std::uint64_t open_fds = 0;
  std::uint64_t max_fds = 0;      // the soft RLIMIT_NOFILE
  double start_time_seconds = 0;  // since the Unix epoch
};

// The fields of /proc/self/stat that matter here, from its text; nullopt if it is not that.
struct ProcStat {
  std::uint64_t utime_ticks = 0;
  std::uint64_t stime_ticks = 0;
  std::uint64_t start_ticks = 0;  // since boot
  std::uint64_t vsize_bytes = 0;
  std::uint64_t rss_pages = 0;
};
[[nodiscard]] std::optional<ProcStat> parseProcStat(std::string_view text);

// "btime" of /proc/stat: the boot time, in seconds since the epoch.
[[nodiscard]] std::optional<std::uint64_t> parseBootTime(std::string_view proc_stat);

// This process, now; nullopt where /proc is not readable (the families are then left out).
[[nodiscard]] std::optional<ProcessMetrics> readProcessMetrics();

}  // namespace sluice::gateway::stats
