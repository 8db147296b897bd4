#include "gateway/trace/trace_context.h"

#include <gtest/gtest.h>

namespace sluice::gateway::trace {
namespace {

constexpr std::string_view kExample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceParent, ReadsTheSpecExampleAndWritesItBack) {
  const auto p = parseTraceParent(kExample);
  ASSERT_TRUE(p);
  EXPECT_EQ(hex(p->trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(hex(p->parent_id), "00f067aa0ba902b7");
  EXPECT_TRUE(p->sampled);
  std::string out;
  appendTraceParent(out, p->trace_id, p->parent_id, p->sampled);
  EXPECT_EQ(out, kExample);
  EXPECT_FALSE(
      parseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")->sampled);
  // Only bit 0 of the flags is sampling.
  EXPECT_FALSE(
      parseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02")->sampled);
}

TEST(TraceParent, IgnoresWhatTheSpecSaysAReceiverMustNotTrust) {
  for (const std::string_view bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",    // short
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // 00 has no more fields
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-010",  // nor more characters
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // uppercase
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero parent id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // separator
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",   // not hex
           "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  // later version, no '-'
       }) {
    EXPECT_FALSE(parseTraceParent(bad)) << bad;
  }
  // A later version is read as 00 as far as its known fields go.
  const auto later =
      parseTraceParent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what");
  ASSERT_TRUE(later);
  EXPECT_TRUE(later->sampled);
}

TEST(TraceIds, AreRandomAndNeverZero) {
  const TraceId a = newTraceId();
  const TraceId b = newTraceId();
  EXPECT_NE(a, b);
  EXPECT_NE(a, TraceId{});
  EXPECT_NE(newSpanId(), SpanId{});
  EXPECT_EQ(hex(newSpanId()).size(), 16U);
}

TEST(RatioSampler, KeepsTheShareItIsAskedForByTheIdAlone) {
  TraceId id{};
  id[15] = 1;
  EXPECT_TRUE(sampledByRatio(id, 1.0));
  EXPECT_FALSE(sampledByRatio(id, 0.0));
  EXPECT_TRUE(sampledByRatio(id, 0.001));  // a tiny id is below any ratio above 0
  TraceId high{};
  high.fill(0xff);
  EXPECT_FALSE(sampledByRatio(high, 0.999));
  int kept = 0;
  constexpr int kDraws = 100'000;
  for (int i = 0; i < kDraws; ++i) kept += sampledByRatio(newTraceId(), 0.01) ? 1 : 0;
  EXPECT_NEAR(kept, kDraws / 100, 150);  // 1 % +- 5 sigma
  const TraceId same = newTraceId();
  EXPECT_EQ(sampledByRatio(same, 0.3), sampledByRatio(same, 0.3));
}

}  // namespace
}  // namespace sluice::gateway::trace
