// The diagnostic log: what sluice says about itself (start, reloads, breaker transitions, upstream
// failures), on stderr, one line per event with a UTC timestamp:
//
//   text  2026-12-05T10:00:00.123Z info reload (SIGHUP): every worker serves generation 2 ...
//   json  {"time":"2026-12-05T10:00:00.123Z","level":"info","msg":"reload (SIGHUP): ..."}
//
// The level and the format come from the config's `log` section, `--log-level` overrides the
// level (for that process's life, reloads included), and `PUT /log?level=` on the admin
// listener changes it while sluice runs (until the next reload that changes `log`).
#pragma once

#include <optional>
#include <string_view>

#include "gateway/config/config.h"

namespace sluice::gateway::log {

// Installs the stderr logger in the default format (text, info). Call once, first thing.
void setUpDiagnosticLog();

// Applies a level and format; `level_override` (from --log-level) wins over config.level.
void applyLogConfig(const config::Log& config, std::optional<config::Log::Level> level_override);

// Sets only the level (the admin endpoint).
void setLogLevel(config::Log::Level level);
[[nodiscard]] config::Log::Level currentLogLevel();

[[nodiscard]] std::optional<config::Log::Level> parseLogLevel(std::string_view name);
[[nodiscard]] std::string_view toString(config::Log::Level level);

}  // namespace sluice::gateway::log
