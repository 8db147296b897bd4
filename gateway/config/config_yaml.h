// A Config as YAML in the input schema: what load() reads back to an equal Config.
//
//   const std::string text = config::toYaml(cfg);
//   assert(*config::load(text, "x.yaml").config == cfg);
//
// Every field is written out, defaults included, in the keys and units the loader accepts:
// durations in the largest unit that is exact ("250ms", "1500ms", "2s", "5m", "1h"), sizes in
// the unit that gives the smallest exact number ("32KiB", "100MiB", "1MB", "1536B"), rates as
// "100/s", "6000/m" or "5/10s", percentages and other decimals in their shortest exact form
// ("12.5", "0.1"), `workers: auto` for 0. Optional sections appear only when set, and so do
// the values whose default cannot be written (a match on any host, access_log.fields' default
// set, a health check's jitter of interval/10, ...). Strings go through yaml-cpp's emitter,
// which quotes and escapes them where YAML needs it; strings the author chose are also quoted
// where a reader would take them for a boolean, a number or null ("yes", "0123").
//
// The round trip holds for every config load() returns (gateway/config/config_yaml_test.cc
// checks it for configs that set every field). A hand-built Config that load() could not have
// returned (an empty retry.on, a static max beside adaptive concurrency, ...) may render as YAML
// that load() refuses or reads back differently.
#pragma once

#include <cstdint>
#include <string>

#include "gateway/config/config.h"

namespace sluice::gateway::config {

[[nodiscard]] std::string toYaml(const Config& config);

// The unit formatters, exposed for tests: the inverses of parseDuration, parseSize (loader.h)
// and parseRate (guard_config.h).
[[nodiscard]] std::string durationText(Millis d);                           // "1500ms", "2s"
[[nodiscard]] std::string sizeText(std::uint64_t bytes);                    // "32KiB", "1MB"
[[nodiscard]] std::string rateText(std::uint64_t requests, Millis period);  // "100/s", "5/10s"
[[nodiscard]] std::string decimalText(double v);                            // "12.5", "1000000"

}  // namespace sluice::gateway::config
