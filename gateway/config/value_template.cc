#include "gateway/config/value_template.h"

#include <algorithm>

namespace sluice::gateway::config {

std::optional<std::string> templateError(std::string_view text) {
  std::string known;
  for (const auto name : kVariableNames) {
    known += known.empty() ? "${" : ", ${";
    known += name;
    known += "}";
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$') continue;
    if (i + 1 < text.size() && text[i + 1] == '$') {
      ++i;
      continue;
    }
    if (i + 1 >= text.size() || text[i + 1] != '{') {
      return "a '$' starts a variable (" + known + ") or is written $$";
    }
    const auto close = text.find('}', i + 2);
    if (close == std::string_view::npos) return "'${' is not closed by '}'";
    const std::string_view name = text.substr(i + 2, close - i - 2);
    if (std::find(kVariableNames.begin(), kVariableNames.end(), name) == kVariableNames.end()) {
      return "unknown variable '${" + std::string(name) + "}' (known: " + known + ")";
    }
    i = close;
  }
  return std::nullopt;
}

}  // namespace sluice::gateway::config
