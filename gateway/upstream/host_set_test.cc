#include "gateway/upstream/host_set.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/common/testing_time.h"

namespace sluice::gateway::upstream {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using S = HostSet::Source;

HostSet::Host host(const std::string& address, S source, std::uint32_t weight = 1,
                   std::chrono::milliseconds ttl = 0ms) {
  HostSet::Host h;
  h.address = address;
  h.source = source;
  h.weight = weight;
  h.ttl = ttl;
  return h;
}

TEST(HostSet, RegistersRenewsAndRefuses) {
  HostSet set({host("10.0.0.1:80", S::Static)}, 2);
  EXPECT_EQ(set.capacity(), 3U);
  EXPECT_EQ(set.occupied(), 1U);
  const auto v0 = set.version();
  EXPECT_EQ(set.upsert(host("10.0.0.2:80", S::Registry, 1, 10s), kT0), HostSet::Upsert::Added);
  EXPECT_EQ(set.find("10.0.0.2:80"), 1U);
  EXPECT_EQ(set.slots()[1].added, kT0);
  EXPECT_EQ(set.slots()[1].expires, kT0 + 10s);
  EXPECT_GT(set.version(), v0);
  // A renewal with the same weight moves the expiry only: nothing for the workers.
  const auto v1 = set.version();
  EXPECT_EQ(set.upsert(host("10.0.0.2:80", S::Registry, 1, 10s), kT0 + 5s),
            HostSet::Upsert::Updated);
  EXPECT_EQ(set.slots()[1].expires, kT0 + 15s);
  EXPECT_EQ(set.version(), v1);
  EXPECT_EQ(set.upsert(host("10.0.0.2:80", S::Registry, 3, 10s), kT0 + 5s),
            HostSet::Upsert::Updated);
  EXPECT_GT(set.version(), v1);
  EXPECT_EQ(set.slots()[1].added, kT0);  // the same occupant
  // The static host's address cannot be registered; a full set refuses.
  EXPECT_EQ(set.upsert(host("10.0.0.1:80", S::Registry), kT0), HostSet::Upsert::Conflict);
  EXPECT_EQ(set.upsert(host("10.0.0.3:80", S::Registry), kT0), HostSet::Upsert::Added);
  EXPECT_EQ(set.upsert(host("10.0.0.4:80", S::Registry), kT0), HostSet::Upsert::Full);
  // Only the owning source removes; static hosts never leave.
  EXPECT_FALSE(set.remove("10.0.0.1:80", S::Static, kT0));
  EXPECT_FALSE(set.remove("10.0.0.3:80", S::File, kT0));
  EXPECT_EQ(set.remove("10.0.0.3:80", S::Registry, kT0), 2U);
  EXPECT_TRUE(set.slots()[2].empty());
}

TEST(HostSet, ExpiresMissedHeartbeatsAndReusesTheLongestEmptySlot) {
  HostSet set({}, 3);
  set.upsert(host("10.0.0.1:80", S::Registry, 1, 2s), kT0);
  set.upsert(host("10.0.0.2:80", S::Registry, 1, 5s), kT0);
  set.upsert(host("10.0.0.3:80", S::Registry, 1, 0ms), kT0);  // no TTL: stays
  EXPECT_TRUE(set.expire(kT0 + 2s - 1ns).empty());
  EXPECT_THAT(set.expire(kT0 + 2s), ElementsAre("10.0.0.1:80"));
  EXPECT_THAT(set.expire(kT0 + 1h), ElementsAre("10.0.0.2:80"));
  EXPECT_EQ(set.occupied(), 1U);
  // Slot 0 went empty first: the next host takes it, not slot 1 (drained just now).
  const auto old = set.slots()[0].occupant;
  set.upsert(host("10.0.0.4:80", S::Registry), kT0 + 2h);
  EXPECT_EQ(set.find("10.0.0.4:80"), 0U);
  EXPECT_NE(set.slots()[0].occupant, old);
}

TEST(HostSet, ReplaceMakesAFileSourceExact) {
  HostSet set({host("10.0.0.1:80", S::Static)}, 3);
  set.upsert(host("10.0.0.9:80", S::Registry), kT0);
  auto refused = set.replace(
      S::File,
      {host("10.0.0.2:80", S::File), host("10.0.0.3:80", S::File, 4), host("10.0.0.1:80", S::File)},
      kT0);
  EXPECT_THAT(refused, ElementsAre("10.0.0.1:80"));  // the static one stays static
  EXPECT_EQ(set.occupied(), 4U);
  const auto kept = set.slots()[*set.find("10.0.0.3:80")].occupant;
  refused = set.replace(S::File, {host("10.0.0.3:80", S::File, 4)}, kT0 + 1s);
  EXPECT_TRUE(refused.empty());
  EXPECT_FALSE(set.find("10.0.0.2:80"));
  EXPECT_EQ(set.slots()[*set.find("10.0.0.3:80")].occupant, kept);  // unchanged host, same id
  EXPECT_TRUE(set.find("10.0.0.9:80"));  // the registry's host is not the file's to remove
}

}  // namespace
}  // namespace sluice::gateway::upstream
