// Reads YAML nodes into config values, reporting every problem with its file, line and column
// instead of stopping at the first (see loader.h). Shared by the loader and the readers of each
// config section (guard_config.h, ...). Internal to gateway/config.
#pragma once

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/config/loader.h"
#include "gateway/config/yaml_tree.h"

namespace sluice::gateway::config {

inline constexpr Millis kMinTimeout{1};

// Digits only (no sign, no spaces), in range for T.
template <typename T>
std::optional<T> parseUnsigned(std::string_view digits) {
  if (digits.empty() ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  T v{};
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  return v;
}

// An RFC 9110 tchar: what header names and methods are made of.
inline bool isTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Walks YAML nodes, reporting every problem with its position instead of stopping at the first.
class Reader {
 public:
  Reader(const std::string& file, std::vector<Diagnostic>& diagnostics)
      : file_(file), diagnostics_(diagnostics) {}

  // Out of line (yaml_reader.cc), with require(): inlined into the section readers, GCC 12 at
  // -O1 (the TSan build) reports a false -Warray-bounds on moving the message string.
  void error(const yaml::Node& at, std::string message);

  // Checks that `node` is a map whose keys are all in `allowed`, each once.
  bool map(const yaml::Node& node, std::string_view what,
           std::initializer_list<std::string_view> allowed) {
    if (!node.IsMap()) {
      error(node, std::string(what) + " must be a mapping");
      return false;
    }
    std::set<std::string, std::less<>> seen;
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      if (!seen.insert(key).second) {
        error(kv.first, "duplicate key '" + key + "' in " + std::string(what));
        continue;
      }
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string known;
        for (auto k : allowed) known += (known.empty() ? "" : ", ") + std::string(k);
        error(kv.first,
              "unknown key '" + key + "' in " + std::string(what) + " (known: " + known + ")");
      }
    }
    return true;
  }

  bool require(const yaml::Node& map, std::string_view key, std::string_view what);

  std::optional<std::string> scalar(const yaml::Node& n, std::string_view what) {
    if (!n.IsScalar()) {
      error(n, std::string(what) + " must be a scalar value");
      return std::nullopt;
    }
    return n.Scalar();
  }

  std::optional<std::string> name(const yaml::Node& n, std::string_view what) {
    auto s = scalar(n, what);
    if (!s) return std::nullopt;
    const bool ok = !s->empty() && std::all_of(s->begin(), s->end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '_' || c == '.';
    });
    if (!ok) {
      error(n, std::string(what) + " '" + *s +
                   "' must be non-empty and use only letters, digits, '-', '_' and '.'");
      return std::nullopt;
    }
    return s;
  }

  std::optional<std::uint64_t> integer(const yaml::Node& n, std::string_view what,
                                       std::uint64_t min, std::uint64_t max) {
    auto s = scalar(n, what);
    if (!s) return std::nullopt;
    const auto v = parseUnsigned<std::uint64_t>(*s);
    if (!v || *v < min || *v > max) {
      error(n, std::string(what) + " must be an integer from " + std::to_string(min) + " to " +
                   std::to_string(max) + ", got '" + *s + "'");
      return std::nullopt;
    }
    return v;
  }

  // A plain decimal number ("20", "12.5"; no exponent, sign or unit) within [min, max].
  std::optional<double> decimal(const yaml::Node& n, std::string_view what, double min,
                                double max) {
    const auto s = scalar(n, what);
    if (!s) return std::nullopt;
    const std::string_view text = *s;
    double v = 0;
    const bool plain = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
      return (c >= '0' && c <= '9') || c == '.';
    });
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (!plain || ec != std::errc() || ptr != end || v < min || v > max) {
      error(n, std::string(what) + " must be a number from " + trimmed(min) + " to " +
                   trimmed(max) + ", got '" + std::string(text) + "'");
      return std::nullopt;
    }
    return v;
  }

  std::optional<bool> boolean(const yaml::Node& n, std::string_view what) {
    auto s = scalar(n, what);
    if (!s) return std::nullopt;
    if (*s == "true") return true;
    if (*s == "false") return false;
    error(n, std::string(what) + " must be true or false, got '" + *s + "'");
    return std::nullopt;
  }

  std::optional<Millis> duration(const yaml::Node& n, std::string_view what, Millis min) {
    auto s = scalar(n, what);
    if (!s) return std::nullopt;
    std::string why;
    auto d = parseDuration(*s, &why);
    if (!d) {
      error(n, std::string(what) + ": " + why);
      return std::nullopt;
    }
    if (*d < min) {
      error(n, std::string(what) + " must be at least " + std::to_string(min.count()) + "ms");
      return std::nullopt;
    }
    return d;
  }

  std::optional<std::uint64_t> size(const yaml::Node& n, std::string_view what, std::uint64_t min) {
    auto s = scalar(n, what);
    if (!s) return std::nullopt;
    std::string why;
    auto v = parseSize(*s, &why);
    if (!v) {
      error(n, std::string(what) + ": " + why);
      return std::nullopt;
    }
    if (*v < min) {
      error(n, std::string(what) + " must be at least " + std::to_string(min) + " bytes");
      return std::nullopt;
    }
    return v;
  }

  std::optional<Address> address(const yaml::Node& n, std::string_view what) {
    auto s = scalar(n, what);
    if (!s) return std::nullopt;
    std::string why;
    auto a = parseAddress(*s, &why);
    if (!a) error(n, std::string(what) + ": " + why);
    return a;
  }

  // map[key] if present and `applies`; a key that is present where it does not apply is a
  // mistake worth reporting: "<prefix><key> <why>" at its value, and nullopt.
  std::optional<yaml::Node> keyWhere(const yaml::Node& map, const char* key, bool applies,
                                     std::string_view prefix, std::string_view why) {
    const yaml::Node v = map[key];
    if (!v) return std::nullopt;
    if (!applies) {
      error(v, std::string(prefix) + key + " " + std::string(why));
      return std::nullopt;
    }
    return v;
  }

  // Sets `out` from map[key] with `parse` when the key is present.
  template <typename T, typename Parse>
  void optional(const yaml::Node& map, const char* key, T& out, Parse&& parse) {
    if (const yaml::Node n = map[key]) {
      if (auto v = parse(n)) out = static_cast<T>(*v);
    }
  }

 private:
  static std::string trimmed(double v) {
    std::string t = std::to_string(v);
    t.erase(t.find_last_not_of('0') + 1);
    if (!t.empty() && t.back() == '.') t.pop_back();
    return t;
  }

  const std::string& file_;
  std::vector<Diagnostic>& diagnostics_;
};

}  // namespace sluice::gateway::config
