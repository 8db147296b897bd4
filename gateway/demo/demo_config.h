// The YAML config `sluice demo` runs (examples/demo.yaml, compiled in): a complete config that
// `sluice validate` takes as it is; the demo moves its listeners to --listen and --admin and its
// three endpoints to the demo upstreams, which take free ports when it starts.
#pragma once

#include <string_view>

namespace sluice::gateway::demo {

[[nodiscard]] std::string_view bundledConfig();

}  // namespace sluice::gateway::demo
