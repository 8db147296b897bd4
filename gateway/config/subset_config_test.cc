// A route's `subset` and an endpoint's `metadata`: what loads, what is refused and where, and
// the warning about a subset no endpoint can ever carry.
#include "gateway/config/subset_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/config/config_test_support.h"

namespace sluice::gateway::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(SubsetConfig, ReadsFixedAndHeaderLabels) {
  const Config c =
      loaded(withRoute("    subset:\n"
                       "      labels: { app: pay, zone: eu-1 }\n"
                       "      from_header: { name: X-Env, label: env }\n"
                       "      fallback: none\n",
                       "    discovery: { registry: true }\n"));
  ASSERT_EQ(c.routes.size(), 1U);
  ASSERT_TRUE(c.routes[0].subset);
  const Subset& s = *c.routes[0].subset;
  EXPECT_EQ(s.labels, (std::map<std::string, std::string>{{"app", "pay"}, {"zone", "eu-1"}}));
  EXPECT_EQ(s.header, "x-env");  // header names compare case-insensitively
  EXPECT_EQ(s.label, "env");
  EXPECT_EQ(s.fallback, Subset::Fallback::None);

  const Config d = loaded(withRoute("    subset: { from_header: { name: x-env, label: env } }\n"));
  EXPECT_EQ(d.routes[0].subset->fallback, Subset::Fallback::Cluster);  // the default
  EXPECT_TRUE(d.routes[0].subset->labels.empty());
}

TEST(SubsetConfig, RefusesWhatCannotSelectHosts) {
  const auto bad = [](const std::string& subset) {
    return problems(withRoute("    subset: " + subset + "\n"));
  };
  EXPECT_THAT(bad("{ fallback: cluster }"),
              ElementsAre("t.yaml:10:13: subset needs labels, from_header or both"));
  EXPECT_THAT(bad("{ labels: [gray] }"),
              ElementsAre("t.yaml:10:23: subset.labels must be a mapping of names to text, e.g. "
                          "{ env: gray }"));
  EXPECT_THAT(bad("{ labels: { env: gray }, fallback: stable }"),
              ElementsAre("t.yaml:10:48: subset.fallback must be cluster (the whole cluster) or "
                          "none (answer 503), not 'stable'"));
  EXPECT_THAT(bad("{ from_header: { name: \"x env\", label: env } }"),
              ElementsAre("t.yaml:10:36: subset.from_header.name 'x env' is not a header name"));
  EXPECT_THAT(bad("{ from_header: { name: x-env } }"),
              ElementsAre("t.yaml:10:28: subset.from_header is missing required key 'label'"));
  EXPECT_THAT(bad("{ labels: { env: gray }, from_header: { name: x-env, label: env } }"),
              ElementsAre("t.yaml:10:73: subset label 'env' is both fixed in subset.labels and "
                          "taken from a header"));
  EXPECT_THAT(bad("{ labels: { env: gray }, weight: 3 }"),
              ElementsAre(::testing::HasSubstr("unknown key 'weight' in subset")));
}

TEST(SubsetConfig, WarnsAboutAFixedSubsetNoEndpointCarries) {
  const std::string gray_endpoint =
      "    endpoints: [{ address: 127.0.0.1:9000, metadata: { env: gray } }]\n";
  // The cluster of withRoute() has one endpoint without metadata: env: gray never matches.
  const auto r = load(withRoute("    subset: { labels: { env: grey } }\n"), "t.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r.warnings, ::testing::SizeIs(1));
  EXPECT_EQ(r.warnings.at(0).format(),
            "t.yaml:10:13: warning: route 'all': no endpoint of cluster 'api' carries the "
            "subset's labels { env: grey } and it has no discovery, so its requests go to the "
            "whole cluster");
  // Not when an endpoint carries it, when hosts may still register, or when a header decides.
  const std::string carried =
      "listeners: [{ name: p, address: 127.0.0.1:8080 }]\n"
      "clusters:\n  - name: api\n" +
      gray_endpoint + "routes: [{ name: all, cluster: api, subset: { labels: { env: gray } } }]\n";
  EXPECT_THAT(load(carried, "t.yaml").warnings, IsEmpty());
  EXPECT_THAT(load(withRoute("    subset: { labels: { env: gray } }\n",
                             "    discovery: { registry: true }\n"),
                   "t.yaml")
                  .warnings,
              IsEmpty());
  EXPECT_THAT(
      load(withRoute("    subset: { from_header: { name: x-env, label: env } }\n"), "t.yaml")
          .warnings,
      IsEmpty());
}

}  // namespace
}  // namespace sluice::gateway::config
