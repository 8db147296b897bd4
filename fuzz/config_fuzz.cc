// The config loader (gateway/config/loader.h) on arbitrary YAML: every problem is a diagnostic
// with a position inside the file, never an exception or a crash, and a config it accepts
// survives the round trip through toYaml (config_yaml.h): what `sluice config dump` prints
// loads back to the same config.
#include <string>

#include "fuzz/fuzz_target.h"
#include "fuzz/input.h"
#include "gateway/config/config_yaml.h"
#include "gateway/config/loader.h"

SLUICE_FUZZ_TARGET(config) {
  namespace config = sluice::gateway::config;
  const int lines = sluice::fuzz::yamlLines(input);
  const auto loaded = config::load(input, "fuzz.yaml");
  SLUICE_FUZZ_CHECK(loaded.ok() == loaded.diagnostics.empty());
  for (const auto& d : loaded.diagnostics) {
    SLUICE_FUZZ_CHECK(d.line >= 1 && d.line <= lines + 1 && d.column >= 1);
    SLUICE_FUZZ_CHECK(!d.message.empty());
  }
  if (!loaded.ok()) return;
  const std::string text = config::toYaml(*loaded.config);
  const auto again = config::load(text, "dump.yaml");
  SLUICE_FUZZ_CHECK(again.ok());
  SLUICE_FUZZ_CHECK(*again.config == *loaded.config);
}
