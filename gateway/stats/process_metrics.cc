#include "gateway/stats/process_metrics.h"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <sys/resource.h>
#include <unistd.h>

namespace sluice::gateway::stats {
namespace {

std::optional<std::string> readProcFile(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool number(std::string_view text, std::uint64_t& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::optional<ProcStat> parseProcStat(std::string_view text) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so fields are counted
  // from the last ')'. Field n of proc(5) is token n - 3 after it.
  const auto close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  text.remove_prefix(close + 1);
  constexpr std::size_t kUtime = 11;
  constexpr std::size_t kStime = 12;
  constexpr std::size_t kStart = 19;
  constexpr std::size_t kVsize = 20;
  constexpr std::size_t kRss = 21;
  ProcStat s;
  std::size_t token = 0;
  std::size_t found = 0;
  while (!text.empty() && token <= kRss) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\n')) text.remove_prefix(1);
    const auto end = text.find_first_of(" \n");
    const std::string_view field = text.substr(0, end);
    std::uint64_t* into = nullptr;
    switch (token) {
      case kUtime:
        into = &s.utime_ticks;
        break;
      case kStime:
        into = &s.stime_ticks;
        break;
      case kStart:
        into = &s.start_ticks;
        break;
      case kVsize:
        into = &s.vsize_bytes;
        break;
      case kRss:
        into = &s.rss_pages;
        break;
      default:
        break;
    }
    if (into != nullptr) {
      if (!number(field, *into)) return std::nullopt;
      ++found;
    }
    ++token;
    text.remove_prefix(end == std::string_view::npos ? text.size() : end);
  }
  if (found != 5) return std::nullopt;
  return s;
}

std::optional<std::uint64_t> parseBootTime(std::string_view proc_stat) {
  const auto at = proc_stat.find("\nbtime ");
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = proc_stat.substr(at + 7);
  rest = rest.substr(0, rest.find('\n'));
  std::uint64_t v = 0;
  if (!number(rest, v)) return std::nullopt;
  return v;
}

std::optional<ProcessMetrics> readProcessMetrics() {
  const auto stat_text = readProcFile("/proc/self/stat");
  const auto boot_text = readProcFile("/proc/stat");
  if (!stat_text || !boot_text) return std::nullopt;
  const auto stat = parseProcStat(*stat_text);
  const auto boot = parseBootTime(*boot_text);
  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);
  if (!stat || !boot || ticks <= 0 || page <= 0) return std::nullopt;
  ProcessMetrics m;
  const auto per_second = static_cast<double>(ticks);
  m.cpu_seconds = static_cast<double>(stat->utime_ticks + stat->stime_ticks) / per_second;
  m.resident_bytes = stat->rss_pages * static_cast<std::uint64_t>(page);
  m.virtual_bytes = stat->vsize_bytes;
  m.start_time_seconds =
      static_cast<double>(*boot) + static_cast<double>(stat->start_ticks) / per_second;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++m.open_fds;
  }
  if (m.open_fds > 0) --m.open_fds;  // the descriptor the listing itself held open
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) m.max_fds = nofile.rlim_cur;
  return m;
}

}  // namespace sluice::gateway::stats
