// How many workers `workers: auto` starts: the CPUs this process may actually use, not every CPU
// of the host. A sidecar given one CPU on a 64-core node must not start 64 event loops that
// fight over it, and `taskset -c 1` must mean one worker. As Go 1.25 sizes GOMAXPROCS:
//
//   affinity  the CPUs in the process's affinity mask (taskset, cpusets, Kubernetes' static
//             CPU manager), sched_getaffinity(2);
//   quota     the cgroup v2 CPU bandwidth limit, cpu.max ("<quota> <period>" in microseconds,
//             or "max"), of the process's cgroup and each of its ancestors: the tightest wins;
//   workers   min(affinity, ceil(quota)), at least 1.
//
// Unlike Go, a quota of 1.5 CPUs gives 2 workers and a quota of 0.5 gives 1 (Go keeps at least
// 2 for its garbage collector; a sluice worker is one event loop and nothing runs beside it).
// The limits are read once, when the workers are started (at start and at each reload).
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

namespace sluice::gateway::server {

struct CpuLimit {
  unsigned affinity = 1;        // CPUs the process may run on
  std::optional<double> quota;  // CPUs' worth of time per period; nullopt: no quota
  unsigned workers = 1;         // what `workers: auto` starts
};

// The quota in one cpu.max file; nullopt for "max" (no limit) or text that is not cpu.max.
[[nodiscard]] std::optional<double> parseCpuMax(std::string_view text);

// The tightest cpu.max quota of the cgroup v2 named in `proc_self_cgroup` (the text of
// /proc/self/cgroup; its "0::<path>" line) and its ancestors, read under `root`
// (/sys/fs/cgroup). nullopt without cgroup v2 or without a quota.
[[nodiscard]] std::optional<double> cgroupCpuQuota(std::string_view proc_self_cgroup,
                                                   const std::filesystem::path& root);

// min(affinity, ceil(quota)), at least 1.
[[nodiscard]] unsigned workersFor(unsigned affinity, std::optional<double> quota);

// The limits of this process, now.
[[nodiscard]] CpuLimit detectCpuLimit();

}  // namespace sluice::gateway::server
