#include "gateway/log/diagnostic_log.h"

#include <algorithm>
#include <memory>
#include <string>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "gateway/log/access_log.h"

namespace sluice::gateway::log {
namespace {

using Level = config::Log::Level;

// UTC, to the millisecond, whatever the machine's time zone.
constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v";
constexpr const char* kJsonPattern = R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":"%*"})";

// %* in a pattern: the message as JSON string contents (quotes, backslashes and control
// characters escaped), so that a path or a host in a message cannot break the line.
class JsonMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm& /*time*/,
              spdlog::memory_buf_t& dest) override {
    thread_local std::string escaped;
    escaped.clear();
    AccessLog::escape(escaped, std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  [[nodiscard]] std::unique_ptr<spdlog::custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessage>();
  }
};

spdlog::level::level_enum toSpdlog(Level level) {
  switch (level) {
    case Level::Trace:
      return spdlog::level::trace;
    case Level::Debug:
      return spdlog::level::debug;
    case Level::Info:
      return spdlog::level::info;
    case Level::Warn:
      return spdlog::level::warn;
    case Level::Error:
      return spdlog::level::err;
    case Level::Off:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

void setFormat(config::Log::Format format) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  if (format == config::Log::Format::Json) {
    formatter->add_flag<JsonMessage>('*').set_pattern(kJsonPattern);
  } else {
    formatter->set_pattern(kTextPattern);
  }
  spdlog::set_formatter(std::move(formatter));
}

}  // namespace

void setUpDiagnosticLog() {
  spdlog::set_default_logger(spdlog::stderr_color_mt("sluice"));
  setFormat(config::Log::Format::Text);
  spdlog::set_level(spdlog::level::info);
}

void applyLogConfig(const config::Log& config, std::optional<Level> level_override) {
  setFormat(config.format);
  setLogLevel(level_override.value_or(config.level));
}

void setLogLevel(Level level) { spdlog::set_level(toSpdlog(level)); }

Level currentLogLevel() {
  switch (spdlog::get_level()) {
    case spdlog::level::trace:
      return Level::Trace;
    case spdlog::level::debug:
      return Level::Debug;
    case spdlog::level::info:
      return Level::Info;
    case spdlog::level::warn:
      return Level::Warn;
    case spdlog::level::err:
    case spdlog::level::critical:
      return Level::Error;
    default:
      return Level::Off;
  }
}

std::optional<Level> parseLogLevel(std::string_view name) {
  const auto* const it = std::find(config::kLogLevels.begin(), config::kLogLevels.end(), name);
  if (it == config::kLogLevels.end()) return std::nullopt;
  return static_cast<Level>(it - config::kLogLevels.begin());
}

std::string_view toString(Level level) {
  return config::kLogLevels[static_cast<std::size_t>(level)];
}

}  // namespace sluice::gateway::log
