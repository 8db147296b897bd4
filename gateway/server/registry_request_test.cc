#include "gateway/server/registry_request.h"

#include <gtest/gtest.h>

namespace sluice::gateway::server {
namespace {

TEST(EtcdEndpoint, ReadsAddressWeightAndMetadata) {
  EtcdEndpoint e;
  ASSERT_EQ(parseEtcdEndpoint(
                R"({"address": "10.0.0.7:8080", "weight": 3, "metadata": {"zone": "b"}})", e),
            std::nullopt);
  EXPECT_EQ(e.address.text(), "10.0.0.7:8080");
  EXPECT_EQ(e.registration.weight, 3U);
  EXPECT_EQ(e.registration.metadata, (std::map<std::string, std::string>{{"zone", "b"}}));
  EtcdEndpoint plain;
  ASSERT_EQ(parseEtcdEndpoint(R"({"address": "[::1]:80"})", plain), std::nullopt);
  EXPECT_EQ(plain.address.text(), "[::1]:80");
  EXPECT_EQ(plain.registration.weight, 1U);
}

TEST(EtcdEndpoint, SaysWhatIsWrong) {
  const auto why = [](std::string_view value) {
    EtcdEndpoint e;
    return parseEtcdEndpoint(value, e).value_or("accepted");
  };
  EXPECT_EQ(why("10.0.0.1:80"), "the value must be a JSON object");
  EXPECT_EQ(why(R"({"weight": 2})"), "address must be a string, ip:port");
  EXPECT_NE(why(R"({"address": "db.internal:80"})").find("not an IP address"), std::string::npos);
  EXPECT_NE(why(R"({"address": "10.0.0.1:0"})").find("port must be"), std::string::npos);
  EXPECT_EQ(why(R"({"address": "10.0.0.1:80", "ttl_ms": 5000})"),
            "unknown field 'ttl_ms' (known: address, weight, metadata)");
  EXPECT_NE(why(R"({"address": "10.0.0.1:80", "weight": 0})").find("weight must be"),
            std::string::npos);
  EXPECT_NE(why(R"({"address": "10.0.0.1:80", "metadata": {"a": 1}})").find("metadata"),
            std::string::npos);
}

}  // namespace
}  // namespace sluice::gateway::server
