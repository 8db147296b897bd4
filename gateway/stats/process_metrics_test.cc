#include "gateway/stats/process_metrics.h"

#include <ctime>

#include <gtest/gtest.h>

namespace sluice::gateway::stats {
namespace {

// proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
// utime stime cutime cstime priority nice num_threads itrealvalue starttime vsize rss ...
constexpr std::string_view kStat =
    "4242 (sluice (w) 1) S 1 4242 4242 0 -1 4194560 1500 0 3 0 250 75 0 0 20 0 3 0 "
    "987654 123456789 3000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

TEST(ProcessMetrics, ReadsProcSelfStatPastACommandNameWithParentheses) {
  const auto s = parseProcStat(kStat);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->utime_ticks, 250U);
  EXPECT_EQ(s->stime_ticks, 75U);
  EXPECT_EQ(s->start_ticks, 987654U);
  EXPECT_EQ(s->vsize_bytes, 123456789U);
  EXPECT_EQ(s->rss_pages, 3000U);
}

TEST(ProcessMetrics, RefusesWhatIsNotProcSelfStat) {
  EXPECT_FALSE(parseProcStat("").has_value());
  EXPECT_FALSE(parseProcStat("4242 (sluice) S 1 2 3").has_value());  // cut short
  EXPECT_FALSE(
      parseProcStat("4242 sluice S 1 4242 4242 0 -1 4194560 1500 0 3 0 250 75").has_value());
  std::string bad(kStat);
  bad.replace(bad.find(" 250 "), 5, " 2x0 ");
  EXPECT_FALSE(parseProcStat(bad).has_value());
}

TEST(ProcessMetrics, ReadsTheBootTime) {
  EXPECT_EQ(parseBootTime("cpu  1 2 3\nintr 5\nbtime 1764892800\nprocesses 9\n"), 1764892800U);
  EXPECT_EQ(parseBootTime("cpu  1 2 3\n"), std::nullopt);
  EXPECT_EQ(parseBootTime("cpu 1\nbtime x\n"), std::nullopt);
}

TEST(ProcessMetrics, DescribesThisProcess) {
  const auto m = readProcessMetrics();
  ASSERT_TRUE(m.has_value());
  EXPECT_GT(m->resident_bytes, 0U);
  EXPECT_GE(m->virtual_bytes, m->resident_bytes);
  EXPECT_GE(m->open_fds, 3U);  // stdin, stdout, stderr
  EXPECT_GE(m->max_fds, m->open_fds);
  const auto now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(m->start_time_seconds, now + 1);
  EXPECT_GT(m->start_time_seconds, now - 24 * 3600);  // this test process started recently
  EXPECT_GE(m->cpu_seconds, 0);
}

}  // namespace
}  // namespace sluice::gateway::stats
