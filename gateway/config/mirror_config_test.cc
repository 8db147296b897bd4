// A route's `mirror`: what loads, the defaults, and what is refused and where.
#include "gateway/config/mirror_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/config/config_test_support.h"

namespace sluice::gateway::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(MirrorConfig, ReadsEveryFieldAndDefaults) {
  const Config c = loaded(
      withRoute("    mirror: { cluster: spare, percent: 2.5, max_body: 1MiB, timeout: 300ms, "
                "max_in_flight: 40 }\n"));
  ASSERT_TRUE(c.routes[0].mirror);
  const Mirror& m = *c.routes[0].mirror;
  EXPECT_EQ(m.cluster, "spare");
  EXPECT_EQ(m.percent, 2.5);
  EXPECT_EQ(m.max_body, 1024U * 1024U);
  EXPECT_EQ(m.timeout, Millis(300));
  EXPECT_EQ(m.max_in_flight, 40U);

  const Mirror d = *loaded(withRoute("    mirror: { cluster: spare }\n")).routes[0].mirror;
  EXPECT_EQ(d.percent, 100);
  EXPECT_EQ(d.max_body, 64U * 1024U);
  EXPECT_EQ(d.timeout, Millis(1000));
  EXPECT_EQ(d.max_in_flight, 256U);
  // Mirroring to the route's own cluster is allowed (load testing it with copies).
  EXPECT_EQ(loaded(withRoute("    mirror: { cluster: api }\n")).routes[0].mirror->cluster, "api");
}

TEST(MirrorConfig, RefusesWhatCannotBeMirrored) {
  const auto bad = [](const std::string& mirror) {
    return problems(withRoute("    mirror: " + mirror + "\n"));
  };
  EXPECT_THAT(bad("{ cluster: shadow }"),
              ElementsAre("t.yaml:10:24: route 'all' mirrors to unknown cluster 'shadow'"));
  EXPECT_THAT(bad("{ percent: 5 }"),
              ElementsAre("t.yaml:10:13: mirror is missing required key 'cluster'"));
  EXPECT_THAT(bad("{ cluster: spare, percent: 101 }"),
              ElementsAre("t.yaml:10:40: mirror.percent must be a number from 0 to 100, got "
                          "'101'"));
  EXPECT_THAT(bad("{ cluster: spare, percent: 5% }"),
              ElementsAre(HasSubstr("mirror.percent must be a number from 0 to 100")));
  EXPECT_THAT(bad("{ cluster: spare, max_body: 17MiB }"),
              ElementsAre("t.yaml:10:41: mirror.max_body must be at most 16MiB (a copy is held "
                          "in memory until sent)"));
  EXPECT_THAT(bad("{ cluster: spare, timeout: 0ms }"),
              ElementsAre("t.yaml:10:40: mirror.timeout must be at least 1ms"));
  EXPECT_THAT(bad("{ cluster: spare, timeout: 61s }"),
              ElementsAre("t.yaml:10:40: mirror.timeout must be at most 60s (a copy holds its "
                          "memory and its config generation until it ends)"));
  EXPECT_THAT(bad("{ cluster: spare, max_in_flight: 0 }"),
              ElementsAre("t.yaml:10:46: mirror.max_in_flight must be an integer from 1 to "
                          "65536, got '0'"));
  EXPECT_THAT(bad("{ cluster: spare, shadow: true }"),
              ElementsAre(HasSubstr("unknown key 'shadow' in mirror")));
  EXPECT_THAT(bad("[spare]"), ElementsAre("t.yaml:10:13: mirror must be a mapping"));
}

TEST(MirrorConfig, ARouteThatAnswersItselfHasNothingToMirror) {
  const std::string yaml =
      "listeners: [{ name: p, address: 127.0.0.1:8080 }]\n"
      "clusters: [{ name: api, endpoints: [127.0.0.1:9000] }]\n"
      "routes:\n"
      "  - name: ping\n"
      "    direct_response: { status: 200 }\n"
      "    mirror: { cluster: api }\n";
  EXPECT_THAT(problems(yaml),
              ElementsAre("t.yaml:6:13: mirror has no effect on a route with direct_response (it "
                          "answers itself, with no upstream)"));
}

}  // namespace
}  // namespace sluice::gateway::config
