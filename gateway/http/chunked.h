// Chunked transfer coding, as sluice writes it.
#pragma once

#include <array>
#include <cstddef>
#include <string>

namespace sluice::gateway::http {

// Appends "<hex size>\r\n".
inline void appendChunkHeader(std::string& out, std::size_t size) {
  std::array<char, 16> hex{};
  std::size_t len = 0;
  do {
    hex[len++] = "0123456789abcdef"[size & 15U];
    size >>= 4U;
  } while (size != 0);
  while (len > 0) out.push_back(hex[--len]);
  out.append("\r\n");
}

inline constexpr std::string_view kLastChunk = "0\r\n\r\n";
inline constexpr std::string_view kCrLf = "\r\n";

}  // namespace sluice::gateway::http
