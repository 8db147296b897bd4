#include "gateway/server/cpu_limit.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>
#include <sched.h>
#include <string>
#include <thread>

namespace sluice::gateway::server {
namespace {

std::optional<std::string> readText(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::optional<unsigned long long> readNumber(std::string_view text) {
  unsigned long long v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<double> parseCpuMax(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  const auto space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const auto quota = readNumber(text.substr(0, space));  // "max": no number, no limit
  const auto period = readNumber(text.substr(space + 1));
  if (!quota || !period || *quota == 0 || *period == 0) return std::nullopt;
  return static_cast<double>(*quota) / static_cast<double>(*period);
}

std::optional<double> cgroupCpuQuota(std::string_view proc_self_cgroup,
                                     const std::filesystem::path& root) {
  // cgroup v2 has one line, "0::/path"; v1 controllers have lines of their own ("4:cpu:/x").
  std::optional<std::string_view> path;
  while (!proc_self_cgroup.empty()) {
    const auto eol = proc_self_cgroup.find('\n');
    const std::string_view line = proc_self_cgroup.substr(0, eol);
    if (line.starts_with("0::/")) path = line.substr(3);
    if (eol == std::string_view::npos) break;
    proc_self_cgroup.remove_prefix(eol + 1);
  }
  if (!path) return std::nullopt;
  // The root cgroup (which has no cpu.max), then each descendant down to the process's own.
  std::optional<double> tightest;
  std::filesystem::path dir = root;
  const std::filesystem::path relative = std::filesystem::path(*path).relative_path();
  auto step = relative.begin();
  for (;;) {
    if (const auto text = readText(dir / "cpu.max")) {
      if (const auto q = parseCpuMax(*text); q && (!tightest || *q < *tightest)) tightest = q;
    }
    if (step == relative.end()) break;
    if (step->empty() || *step == "..") break;  // a trailing slash; never above the root
    dir /= *step++;
  }
  return tightest;
}

unsigned workersFor(unsigned affinity, std::optional<double> quota) {
  unsigned n = std::max(1U, affinity);
  if (quota) {
    const double ceiling = std::ceil(*quota);
    if (ceiling < static_cast<double>(n)) n = std::max(1U, static_cast<unsigned>(ceiling));
  }
  return n;
}

CpuLimit detectCpuLimit() {
  CpuLimit limit;
  cpu_set_t set;
  CPU_ZERO(&set);
  limit.affinity = sched_getaffinity(0, sizeof(set), &set) == 0
                       ? static_cast<unsigned>(CPU_COUNT(&set))
                       : std::max(1U, std::thread::hardware_concurrency());
  if (const auto cgroup = readText("/proc/self/cgroup")) {
    limit.quota = cgroupCpuQuota(*cgroup, "/sys/fs/cgroup");
  }
  limit.workers = workersFor(limit.affinity, limit.quota);
  return limit;
}

}  // namespace sluice::gateway::server
