#include "gateway/etcd/etcd_url.h"

#include <gtest/gtest.h>

namespace sluice::gateway::etcd {
namespace {

TEST(EtcdUrl, ParsesEndpointsAndTheKey) {
  std::string error;
  const auto one = parseEtcdUrl("etcd://127.0.0.1:2379/sluice/config", &error);
  ASSERT_TRUE(one) << error;
  ASSERT_EQ(one->endpoints.size(), 1U);
  EXPECT_EQ(one->endpoints[0].text(), "127.0.0.1:2379");
  EXPECT_EQ(one->key, "/sluice/config");
  const auto three = parseEtcdUrl("etcd://10.0.0.1:2379,[::1]:2380,10.0.0.3:2379/k", &error);
  ASSERT_TRUE(three) << error;
  ASSERT_EQ(three->endpoints.size(), 3U);
  EXPECT_EQ(three->endpoints[1].text(), "[::1]:2380");
  EXPECT_EQ(three->key, "/k");
}

TEST(EtcdUrl, RefusesWhatIsNotOne) {
  const auto refused = [](std::string_view text) {
    std::string error;
    const bool bad = !parseEtcdUrl(text, &error);
    return bad ? error : std::string("accepted");
  };
  EXPECT_FALSE(isEtcdUrl("/etc/sluice.yaml"));
  EXPECT_EQ(refused("http://127.0.0.1:2379/k"), "not an etcd:// URL");
  EXPECT_NE(refused("etcd://127.0.0.1:2379").find("no key"), std::string::npos);
  EXPECT_NE(refused("etcd://127.0.0.1:2379/").find("no key"), std::string::npos);
  EXPECT_NE(refused("etcd:///k").find("no endpoint"), std::string::npos);
  EXPECT_NE(refused("etcd://example.com:2379/k").find("not an IP address"), std::string::npos);
  EXPECT_NE(refused("etcd://127.0.0.1:2379,/k").find("invalid address"), std::string::npos);
  EXPECT_NE(refused("etcd://127.0.0.1/k").find("invalid address"), std::string::npos);
}

}  // namespace
}  // namespace sluice::gateway::etcd
