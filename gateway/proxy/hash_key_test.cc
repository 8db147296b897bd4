#include "gateway/proxy/hash_key.h"

#include <gtest/gtest.h>

namespace sluice::gateway::proxy {
namespace {

using Kind = config::HashKeyPart::Kind;

struct Head {
  http::RequestHead head;
  Head(std::string_view target, std::vector<http::HeaderField> fields = {}) {
    head.target = target;
    head.fields = std::move(fields);
  }
};

TEST(HashKey, FindsCookiesAndQueryParameters) {
  EXPECT_EQ(cookieValue("a=1; sid=xyz; b=2", "sid"), "xyz");
  EXPECT_EQ(cookieValue("sid=", "sid"), "");
  EXPECT_FALSE(cookieValue("xsid=1; sidx=2", "sid"));
  EXPECT_EQ(queryValue("/p?user=7&x=1", "user"), "7");
  EXPECT_EQ(queryValue("/p?x=1&user=7#frag", "user"), "7");
  EXPECT_FALSE(queryValue("/p?username=7", "user"));
  EXPECT_FALSE(queryValue("/p", "user"));
}

TEST(HashKey, SameKeySameHashDifferentKeyDifferentHash) {
  const std::vector<config::HashKeyPart> by_user = {{Kind::Header, "x-user"}};
  Head a("/a", {{http::Field::unknown, "X-User", "alice"}});
  Head a2("/elsewhere", {{http::Field::unknown, "x-user", "alice"}});
  Head b("/a", {{http::Field::unknown, "X-User", "bob"}});
  const auto ha = requestHash(by_user, a.head, "10.0.0.1");
  ASSERT_TRUE(ha);
  EXPECT_EQ(ha, requestHash(by_user, a2.head, "10.0.0.2"));  // the header is the key, not the IP
  EXPECT_NE(ha, requestHash(by_user, b.head, "10.0.0.1"));
  // None of the parts present: no hash (the caller spreads such requests at random).
  Head none("/a");
  EXPECT_FALSE(requestHash(by_user, none.head, "10.0.0.1"));
  // Default: the client IP.
  EXPECT_EQ(requestHash({}, none.head, "10.0.0.1"), requestHash({}, b.head, "10.0.0.1"));
  EXPECT_NE(requestHash({}, none.head, "10.0.0.1"), requestHash({}, none.head, "10.0.0.2"));
}

TEST(HashKey, PartsAreSeparated) {
  const std::vector<config::HashKeyPart> two = {{Kind::Query, "a"}, {Kind::Query, "b"}};
  Head x("/?a=ab&b=c");
  Head y("/?a=a&b=bc");
  EXPECT_NE(requestHash(two, x.head, ""), requestHash(two, y.head, ""));
  const std::vector<config::HashKeyPart> cookie_path = {{Kind::Cookie, "sid"}, {Kind::Path, ""}};
  Head c("/cart?x=1", {{http::Field::cookie, "Cookie", "sid=42"}});
  Head d("/cart?x=2", {{http::Field::cookie, "Cookie", "other=1; sid=42"}});
  EXPECT_EQ(requestHash(cookie_path, c.head, ""), requestHash(cookie_path, d.head, ""));
}

}  // namespace
}  // namespace sluice::gateway::proxy
