#include "gateway/upstream/subset.h"

#include <algorithm>
#include <cstdint>

namespace sluice::gateway::upstream {

namespace {

// Names and values are at most 256 bytes in the config; a header value may be longer (up to the
// listener's header limit), so lengths take two bytes.
void appendText(std::string& key, std::string_view s) {
  const auto n = static_cast<std::uint16_t>(std::min<std::size_t>(s.size(), 0xffff));
  key.push_back(static_cast<char>(n >> 8));
  key.push_back(static_cast<char>(n & 0xff));
  key.append(s.substr(0, n));
}

std::string_view takeText(std::string_view& key) {
  if (key.size() < 2) return {};
  const std::size_t n = (static_cast<std::size_t>(static_cast<unsigned char>(key[0])) << 8) |
                        static_cast<unsigned char>(key[1]);
  const std::string_view s = key.substr(2, n);
  key.remove_prefix(std::min(key.size(), 2 + n));
  return s;
}

}  // namespace

bool subsetKey(const config::Subset& subset, std::optional<std::string_view> header_value,
               std::string& key) {
  key.clear();
  const bool from_header = header_value && !subset.header.empty();
  bool placed = !from_header;
  for (const auto& [name, value] : subset.labels) {
    if (!placed && subset.label < name) {
      appendText(key, subset.label);
      appendText(key, *header_value);
      placed = true;
    }
    appendText(key, name);
    appendText(key, value);
  }
  if (!placed) {
    appendText(key, subset.label);
    appendText(key, *header_value);
  }
  return !key.empty();
}

Labels labelsOf(std::string_view key) {
  Labels out;
  while (!key.empty()) {
    const std::string_view name = takeText(key);
    const std::string_view value = takeText(key);
    out.emplace(name, value);
  }
  return out;
}

}  // namespace sluice::gateway::upstream
