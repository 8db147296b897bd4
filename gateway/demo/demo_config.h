// The YAML config `sluice demo` runs (examples/demo.yaml, compiled in). It contains placeholders
// {{name}} for the ports of the demo upstreams, which are chosen when the demo starts.
#pragma once

#include <string_view>

namespace sluice::gateway::demo {

[[nodiscard]] std::string_view bundledConfig();

}  // namespace sluice::gateway::demo
