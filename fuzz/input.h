// Reads a fuzz input as a few parameter bytes followed by the data they apply to, so that one
// input chooses both (the fuzzer mutates the choices along with the bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace sluice::fuzz {

class Input {
 public:
  explicit Input(std::string_view bytes) : rest_(bytes) {}

  // The next byte (0 once the input is used up).
  std::uint8_t byte() {
    if (rest_.empty()) return 0;
    const auto b = static_cast<std::uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  // Up to the next `sep` (consumed), or everything left.
  std::string_view until(char sep) {
    const auto at = rest_.find(sep);
    const auto part = rest_.substr(0, at);
    rest_.remove_prefix(at == std::string_view::npos ? rest_.size() : at + 1);
    return part;
  }
  [[nodiscard]] std::string_view rest() const { return rest_; }

 private:
  std::string_view rest_;
};

// Where to cut `size` bytes into reads: every `step` bytes (step 0: one read of everything),
// ending with `size` itself. Feeding these prefixes one by one is how a socket trickles a message.
inline std::vector<std::size_t> readEnds(std::size_t size, std::size_t step) {
  std::vector<std::size_t> ends;
  if (step > 0) {
    for (std::size_t e = step; e < size; e += step) ends.push_back(e);
  }
  ends.push_back(size);
  return ends;
}

// Lines of a YAML text as libyaml counts them (its line breaks: LF, CR, CRLF, and in UTF-8 NEL,
// LS and PS): the range a diagnostic's line must fall in.
inline int yamlLines(std::string_view text) {
  int lines = 1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::string_view at = text.substr(i);
    if (at.starts_with("\r\n")) {
      ++i;
    } else if (!at.starts_with('\n') && !at.starts_with('\r') && !at.starts_with("\xC2\x85") &&
               !at.starts_with("\xE2\x80\xA8") && !at.starts_with("\xE2\x80\xA9")) {
      continue;
    }
    ++lines;
  }
  return lines;
}

}  // namespace sluice::fuzz
