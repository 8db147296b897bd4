#include "gateway/admin/admin_token.h"

#include <cstdio>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::gateway::admin {
namespace {

using ::testing::HasSubstr;

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/admin_token.XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/token";
  }
  void TearDown() override {
    std::remove(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  void write(const std::string& bytes, mode_t mode = 0600) {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;
    ::chmod(path_.c_str(), mode);
  }
  std::string dir_;
  std::string path_;
};

TEST_F(TokenFileTest, ReadsTheTokenWithoutSurroundingWhitespace) {
  write("  0123456789abcdef0123/+_-.~xyz==\n");
  const auto t = readTokenFile(path_);
  EXPECT_EQ(t.error, "");
  EXPECT_EQ(t.warning, "");
  EXPECT_EQ(t.token, "0123456789abcdef0123/+_-.~xyz==");
}

TEST_F(TokenFileTest, RefusesWhatCannotBeAToken) {
  const auto missing = readTokenFile(dir_ + "/none");
  EXPECT_THAT(missing.error, HasSubstr("cannot read the admin token file"));
  EXPECT_EQ(missing.token, "");

  write("\n\n");
  EXPECT_THAT(readTokenFile(path_).error, HasSubstr("is empty"));
  write("0123456789abcdef 0123456789abcdef\n");  // two words
  EXPECT_THAT(readTokenFile(path_).error, HasSubstr("one word"));
  write("0123456789abcdef0123=xy");  // '=' only as padding at the end
  EXPECT_THAT(readTokenFile(path_).error, HasSubstr("one word"));
  write("====");
  EXPECT_THAT(readTokenFile(path_).error, HasSubstr("one word"));
  write("changeme\n");
  const auto short_token = readTokenFile(path_);
  EXPECT_THAT(short_token.error, HasSubstr("has 8 characters; use at least 16"));
  EXPECT_EQ(short_token.token, "");
}

TEST_F(TokenFileTest, WarnsWhenEveryUserCanReadTheFile) {
  write("0123456789abcdef0123456789abcdef", 0644);
  const auto t = readTokenFile(path_);
  EXPECT_EQ(t.token, "0123456789abcdef0123456789abcdef");
  EXPECT_THAT(t.warning, HasSubstr("readable by every user"));
}

TEST(BearerMatches, TakesOnlyTheExactTokenUnderTheBearerScheme) {
  const std::string token = "0123456789abcdef";
  EXPECT_TRUE(bearerMatches("Bearer 0123456789abcdef", token));
  EXPECT_TRUE(bearerMatches("bearer 0123456789abcdef", token));
  EXPECT_TRUE(bearerMatches("BEARER   0123456789abcdef ", token));
  EXPECT_FALSE(bearerMatches("", token));
  EXPECT_FALSE(bearerMatches("Bearer", token));
  EXPECT_FALSE(bearerMatches("Bearer ", token));
  EXPECT_FALSE(bearerMatches("Basic 0123456789abcdef", token));
  EXPECT_FALSE(bearerMatches("0123456789abcdef", token));
  EXPECT_FALSE(bearerMatches("Bearer 0123456789abcde", token));    // a prefix
  EXPECT_FALSE(bearerMatches("Bearer 0123456789abcdef0", token));  // longer
  EXPECT_FALSE(bearerMatches("Bearer 0123456789abcdeF", token));   // case matters
  EXPECT_FALSE(bearerMatches("Bearer x", ""));                     // no token: nothing matches
}

}  // namespace
}  // namespace sluice::gateway::admin
