// Request mirroring's judgements: which requests are copied, what a sent copy counts as, and
// whether its end says anything about the mirror's host.
#include "gateway/proxy/mirror_result.h"

#include <array>
#include <ostream>
#include <string_view>

#include <gtest/gtest.h>

namespace sluice::gateway::stats {

// Results by name in failure messages (found by argument-dependent lookup).
// NOLINTNEXTLINE(readability-identifier-naming): the name GoogleTest looks up
static void PrintTo(MirrorResult r, std::ostream* os) {
  *os << (r == MirrorResult::Count ? std::string_view("Count")
                                   : kMirrorResults.at(static_cast<std::size_t>(r)));
}

}  // namespace sluice::gateway::stats

namespace sluice::gateway::proxy {
namespace {

using MR = stats::MirrorResult;
using UE = stats::UpstreamError;

http::RequestHead bodyOf(http::Framing framing, std::uint64_t length) {
  http::RequestHead h;
  h.method = http::Verb::post;
  h.framing = framing;
  h.content_length = length;
  return h;
}

TEST(MirrorResult, BodiesKnownToBeTooLargeAreNotCopied) {
  config::Mirror m;
  m.max_body = 100;
  EXPECT_EQ(mirrorRefusal(bodyOf(http::Framing::Length, 100), m, 0), std::nullopt);
  EXPECT_EQ(mirrorRefusal(bodyOf(http::Framing::Length, 101), m, 0), MR::BodyTooLarge);
  EXPECT_EQ(mirrorRefusal(bodyOf(http::Framing::None, 0), m, 0), std::nullopt);
  // A chunked body's size is unknown up front: judged as it arrives, not here.
  EXPECT_EQ(mirrorRefusal(bodyOf(http::Framing::Chunked, 0), m, 0), std::nullopt);
}

TEST(MirrorResult, CopiesBeyondMaxInFlightAreDropped) {
  config::Mirror m;
  m.max_in_flight = 2;
  const auto get = bodyOf(http::Framing::None, 0);
  EXPECT_EQ(mirrorRefusal(get, m, 1), std::nullopt);
  EXPECT_EQ(mirrorRefusal(get, m, 2), MR::Overflow);
  // A body too large is what is counted when both hold.
  m.max_body = 10;
  EXPECT_EQ(mirrorRefusal(bodyOf(http::Framing::Length, 11), m, 2), MR::BodyTooLarge);
}

TEST(MirrorResult, AnsweredCopiesCountByStatusClass) {
  EXPECT_EQ(mirrorResultOf(std::nullopt, 200, false), MR::Status2xx);
  EXPECT_EQ(mirrorResultOf(std::nullopt, 299, true), MR::Status2xx);
  EXPECT_EQ(mirrorResultOf(std::nullopt, 304, false), MR::Status3xx);
  EXPECT_EQ(mirrorResultOf(std::nullopt, 404, false), MR::Status4xx);
  EXPECT_EQ(mirrorResultOf(std::nullopt, 500, false), MR::Status5xx);
  EXPECT_EQ(mirrorResultOf(std::nullopt, 599, false), MR::Status5xx);
}

TEST(MirrorResult, FailedCopiesCountByWhatEndedThem) {
  EXPECT_EQ(mirrorResultOf(UE::Timeout, 0, true), MR::Timeout);
  EXPECT_EQ(mirrorResultOf(UE::ConnectTimeout, 0, false), MR::Timeout);
  EXPECT_EQ(mirrorResultOf(UE::Overflow, 0, false), MR::Overflow);
  // A pool wait: the mirror's own timeout if it had passed, the pool's max_wait otherwise.
  EXPECT_EQ(mirrorResultOf(UE::PoolTimeout, 0, true), MR::Timeout);
  EXPECT_EQ(mirrorResultOf(UE::PoolTimeout, 0, false), MR::Overflow);
  for (const UE e : {UE::ConnectFailure, UE::Reset, UE::BadResponse, UE::Truncated}) {
    EXPECT_EQ(mirrorResultOf(e, 0, false), MR::Failed) << static_cast<int>(e);
  }
}

TEST(MirrorResult, TheHostIsJudgedOnlyOnWhatItDid) {
  EXPECT_TRUE(mirrorJudgesHost(std::nullopt, false, MR::Status5xx));
  EXPECT_TRUE(mirrorJudgesHost(UE::Reset, false, MR::Failed));
  EXPECT_TRUE(mirrorJudgesHost(UE::ConnectFailure, false, MR::Failed));
  // Local reasons.
  EXPECT_FALSE(mirrorJudgesHost(UE::PoolTimeout, false, MR::Overflow));
  EXPECT_FALSE(mirrorJudgesHost(UE::Overflow, false, MR::Overflow));
  EXPECT_FALSE(mirrorJudgesHost(UE::Reset, true, MR::Failed));  // a stale pooled connection
  // The mirror's own timeout is not held against hosts that other routes use with longer ones.
  EXPECT_FALSE(mirrorJudgesHost(UE::Timeout, false, MR::Timeout));
  EXPECT_FALSE(mirrorJudgesHost(UE::ConnectTimeout, false, MR::Timeout));
}

}  // namespace
}  // namespace sluice::gateway::proxy
