#include "gateway/config/yaml_reader.h"

#include <utility>

namespace sluice::gateway::config {

void Reader::error(const yaml::Node& at, std::string message) {
  const yaml::Mark m = at.Mark();
  diagnostics_.push_back({file_, m.line + 1, m.column + 1, std::move(message)});
}

bool Reader::require(const yaml::Node& map, std::string_view key, std::string_view what) {
  if (map[key]) return true;
  error(map, std::string(what) + " is missing required key '" + std::string(key) + "'");
  return false;
}

}  // namespace sluice::gateway::config
