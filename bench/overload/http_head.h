// The little HTTP/1.1 the overload tools need: the start line of a message head and the three
// fields that decide how its body ends and whether the connection may be reused. Both tools
// talk to peers we control (the backend, nginx, HAProxy, sluice), so this is deliberately not a
// validating parser: the gateway's strict one lives in gateway/http/ and is not what is measured
// here.
#pragma once

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstddef>
#include <optional>
#include <string_view>

namespace overload {

struct Head {
  std::string_view start_line;  // "GET /x HTTP/1.1" or "HTTP/1.1 200 OK"
  std::optional<std::size_t> content_length;
  bool chunked = false;
  bool close = false;  // "Connection: close", or an HTTP/1.0 message
};

inline bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

inline bool containsIgnoreCase(std::string_view haystack, std::string_view needle) {
  if (needle.size() > haystack.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (equalsIgnoreCase(haystack.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// `head` is everything before the blank line that ends it (CRLFs inside). Returns nothing if the
// start line is missing or a Content-Length is not a number.
inline std::optional<Head> parseHead(std::string_view head) {
  Head h;
  std::size_t eol = head.find("\r\n");
  h.start_line = head.substr(0, eol);
  if (h.start_line.empty()) return std::nullopt;
  h.close = h.start_line.find("HTTP/1.0") != std::string_view::npos;
  while (eol != std::string_view::npos) {
    std::size_t begin = eol + 2;
    eol = head.find("\r\n", begin);
    std::string_view line = head.substr(begin, eol == std::string_view::npos ? eol : eol - begin);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (equalsIgnoreCase(name, "content-length")) {
      std::size_t n = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc{} || ptr != value.data() + value.size()) return std::nullopt;
      h.content_length = n;
    } else if (equalsIgnoreCase(name, "transfer-encoding")) {
      h.chunked = containsIgnoreCase(value, "chunked");
    } else if (equalsIgnoreCase(name, "connection")) {
      if (containsIgnoreCase(value, "close")) h.close = true;
      if (containsIgnoreCase(value, "keep-alive")) h.close = false;
    }
  }
  return h;
}

}  // namespace overload
