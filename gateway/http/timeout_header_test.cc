#include "gateway/http/timeout_header.h"

#include <gtest/gtest.h>

namespace sluice::gateway::http {
namespace {

using namespace std::chrono_literals;

TEST(TimeoutHeader, ParsesSluiceMilliseconds) {
  EXPECT_EQ(parseSluiceTimeout("1500"), std::chrono::nanoseconds(1500ms));
  EXPECT_EQ(parseSluiceTimeout("0"), std::chrono::nanoseconds(0));
  for (const char* bad : {"", "-1", "+5", "1.5", " 5", "5 ", "5ms", "0x10", "99999999999999"}) {
    EXPECT_FALSE(parseSluiceTimeout(bad)) << bad;
  }
}

TEST(TimeoutHeader, ParsesGrpcUnits) {
  EXPECT_EQ(parseGrpcTimeout("2H"), std::chrono::nanoseconds(2h));
  EXPECT_EQ(parseGrpcTimeout("3M"), std::chrono::nanoseconds(3min));
  EXPECT_EQ(parseGrpcTimeout("4S"), std::chrono::nanoseconds(4s));
  EXPECT_EQ(parseGrpcTimeout("250m"), std::chrono::nanoseconds(250ms));
  EXPECT_EQ(parseGrpcTimeout("7u"), std::chrono::nanoseconds(7us));
  EXPECT_EQ(parseGrpcTimeout("99999999n"), std::chrono::nanoseconds(99999999));
  // Eight digits at most; beyond a year clamps to a year.
  EXPECT_EQ(parseGrpcTimeout("99999999H"), std::chrono::nanoseconds(365 * 24h));
  for (const char* bad : {"", "m", "5", "5x", "123456789m", "-5m", "5 m", "5.0S"}) {
    EXPECT_FALSE(parseGrpcTimeout(bad)) << bad;
  }
}

TEST(TimeoutHeader, WritesRemainderInBothHeaders) {
  std::string out;
  appendTimeoutFields(out, 1234567us, false);
  EXPECT_EQ(out, "X-Sluice-Timeout-Ms: 1234\r\n");
  out.clear();
  appendTimeoutFields(out, 1234567us, true);
  EXPECT_EQ(out, "X-Sluice-Timeout-Ms: 1234\r\ngrpc-timeout: 1234567u\r\n");
  out.clear();
  appendTimeoutFields(out, 200000s, true);  // too many microseconds for 8 digits
  EXPECT_EQ(out, "X-Sluice-Timeout-Ms: 200000000\r\ngrpc-timeout: 200000S\r\n");
  out.clear();
  appendTimeoutFields(out, -5ms, false);  // never negative
  EXPECT_EQ(out, "X-Sluice-Timeout-Ms: 0\r\n");
}

TEST(TimeoutHeader, WrittenValueParsesBack) {
  std::string out;
  appendTimeoutFields(out, 42ms, true);
  const auto grpc = out.substr(out.find("grpc-timeout: ") + 14);
  EXPECT_EQ(parseGrpcTimeout(grpc.substr(0, grpc.size() - 2)), std::chrono::nanoseconds(42ms));
}

}  // namespace
}  // namespace sluice::gateway::http
