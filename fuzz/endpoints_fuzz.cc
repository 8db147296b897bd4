// An endpoints file (discovery.file, config::loadEndpoints): the file another program writes
// while sluice runs. Every problem is a positioned diagnostic; every endpoint accepted has an
// address that reads back to itself and a weight of at least 1.
#include <string>

#include "fuzz/fuzz_target.h"
#include "fuzz/input.h"
#include "gateway/config/loader.h"

SLUICE_FUZZ_TARGET(endpoints) {
  namespace config = sluice::gateway::config;
  const int lines = sluice::fuzz::yamlLines(input);
  const auto loaded = config::loadEndpoints(input, "endpoints.yaml");
  SLUICE_FUZZ_CHECK(loaded.endpoints.has_value() == loaded.diagnostics.empty());
  for (const auto& d : loaded.diagnostics) {
    SLUICE_FUZZ_CHECK(d.line >= 1 && d.line <= lines + 1 && d.column >= 1);
  }
  if (!loaded.endpoints) return;
  for (const auto& e : *loaded.endpoints) {
    SLUICE_FUZZ_CHECK(e.weight >= 1);
    std::string why;
    const auto again = config::parseAddress(e.address.text(), &why);
    SLUICE_FUZZ_CHECK(again && again->text() == e.address.text());
  }
}
