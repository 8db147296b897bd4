// Text with variables, for the header values a route adds or sets (request_headers,
// response_headers) and its direct responses: "${client_ip}", "${request_id}", "${route}",
// "${cluster}", "${subset}" are replaced per request; "$$" is a "$". Anything else after a "$"
// is refused when the config loads, so a typo never reaches a request.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::gateway::config {

enum class Variable : std::uint8_t { ClientIp, RequestId, Route, Cluster, Subset };
inline constexpr std::array<std::string_view, 5> kVariableNames = {"client_ip", "request_id",
                                                                   "route", "cluster", "subset"};

// Why `text` is not a valid template (an unknown variable, a lone "$", an unclosed "${"), or
// nullopt when it is.
[[nodiscard]] std::optional<std::string> templateError(std::string_view text);

// Calls literal(std::string_view) and variable(Variable) for the parts of `text` in order.
// `text` must be valid (templateError() says nullopt).
template <typename Literal, typename Var>
void walkTemplate(std::string_view text, Literal&& literal, Var&& variable) {
  while (!text.empty()) {
    const auto dollar = text.find('$');
    if (dollar == std::string_view::npos) {
      literal(text);
      return;
    }
    if (dollar > 0) literal(text.substr(0, dollar));
    text.remove_prefix(dollar + 1);
    if (!text.empty() && text.front() == '$') {
      literal(std::string_view("$"));
      text.remove_prefix(1);
      continue;
    }
    const auto close = text.find('}');
    const std::string_view name = text.substr(1, close - 1);
    for (std::size_t v = 0; v < kVariableNames.size(); ++v) {
      if (kVariableNames[v] == name) variable(static_cast<Variable>(v));
    }
    text.remove_prefix(close + 1);
  }
}

}  // namespace sluice::gateway::config
