#include "gateway/log/diagnostic_log.h"

#include <memory>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

namespace sluice::gateway::log {
namespace {

using config::Log;

// Points the default logger at a string for one test, and puts the previous one back.
class DiagnosticLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_ = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)));
  }
  void TearDown() override {
    spdlog::set_default_logger(previous_);
    applyLogConfig(Log{}, std::nullopt);
  }
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(DiagnosticLogTest, TextLinesHaveAUtcTimestamp) {
  applyLogConfig(Log{}, std::nullopt);
  spdlog::info("hello");
  const std::string line = out_.str();
  // 2026-12-05T10:00:00.123Z info hello
  ASSERT_GE(line.size(), 24U);
  EXPECT_EQ(line[10], 'T');
  EXPECT_EQ(line[23], 'Z');
  EXPECT_NE(line.find(" info hello\n"), std::string::npos) << line;
}

TEST_F(DiagnosticLogTest, JsonLinesEscapeTheMessage) {
  applyLogConfig(Log{Log::Level::Info, Log::Format::Json}, std::nullopt);
  spdlog::warn("bad \"path\"\nand \\ more");
  const std::string line = out_.str();
  EXPECT_EQ(line.rfind(R"({"time":")", 0), 0U) << line;
  EXPECT_NE(line.find(R"(Z","level":"warning","msg":"bad \"path\"\u000aand \\ more"})"),
            std::string::npos)
      << line;
}

TEST_F(DiagnosticLogTest, TheOverrideWinsOverTheConfigLevel) {
  applyLogConfig(Log{Log::Level::Info, Log::Format::Text}, Log::Level::Error);
  spdlog::warn("hidden");
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(currentLogLevel(), Log::Level::Error);
  setLogLevel(Log::Level::Debug);
  spdlog::debug("shown");
  EXPECT_NE(out_.str().find("shown"), std::string::npos);
}

TEST(DiagnosticLog, LevelNames) {
  EXPECT_EQ(parseLogLevel("warn"), Log::Level::Warn);
  EXPECT_EQ(parseLogLevel("off"), Log::Level::Off);
  EXPECT_EQ(parseLogLevel("WARN"), std::nullopt);
  EXPECT_EQ(parseLogLevel(""), std::nullopt);
  EXPECT_EQ(toString(Log::Level::Trace), "trace");
}

}  // namespace
}  // namespace sluice::gateway::log
