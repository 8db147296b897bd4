#include "gateway/guards/response_cache.h"

#include <gtest/gtest.h>

namespace sluice::gateway::guards {
namespace {

std::shared_ptr<const ResponseCache::Entry> entry(std::string body) {
  auto e = std::make_shared<ResponseCache::Entry>();
  e->body = std::move(body);
  return e;
}

TEST(ResponseCache, KeepsTheLatestPerKeyAndEvictsTheLeastRecentlyUsed) {
  ResponseCache cache(2, 1 << 20);
  cache.put("a", entry("a1"));
  cache.put("a", entry("a2"));  // replaces
  EXPECT_EQ(cache.size(), 1U);
  EXPECT_EQ(cache.find("a")->body, "a2");
  cache.put("b", entry("b"));
  ASSERT_TRUE(cache.find("a"));  // a is now the most recent
  cache.put("c", entry("c"));    // evicts b
  EXPECT_EQ(cache.size(), 2U);
  EXPECT_FALSE(cache.find("b"));
  EXPECT_TRUE(cache.find("a"));
  EXPECT_TRUE(cache.find("c"));
  EXPECT_FALSE(cache.find("missing"));
}

TEST(ResponseCache, AHitOutlivesItsEviction) {
  ResponseCache cache(1, 1 << 20);
  cache.put("a", entry("kept"));
  auto hit = cache.find("a");
  cache.put("b", entry("b"));
  EXPECT_FALSE(cache.find("a"));
  EXPECT_EQ(hit->body, "kept");
}

TEST(ResponseCache, KeepsItsBodiesWithinTheByteBudget) {
  ResponseCache cache(100, 10);
  cache.put("a", entry("aaaa"));
  cache.put("b", entry("bbbb"));
  EXPECT_EQ(cache.bytes(), 8U);
  cache.put("c", entry("cccc"));  // 12 > 10: the least recently used goes
  EXPECT_EQ(cache.bytes(), 8U);
  EXPECT_FALSE(cache.find("a"));
  cache.put("b", entry("b"));  // replacing adjusts the count
  EXPECT_EQ(cache.bytes(), 5U);
  cache.put("huge", entry(std::string(11, 'x')));  // larger than the whole budget: not kept
  EXPECT_FALSE(cache.find("huge"));
  EXPECT_EQ(cache.size(), 2U);
}

}  // namespace
}  // namespace sluice::gateway::guards
