#include "gateway/trace/trace_context.h"

#include <algorithm>

#include "gateway/common/random.h"

namespace sluice::gateway::trace {

namespace {

int hexDigit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is invalid in traceparent
}

// Reads 2 * out.size() hex digits from `text` at `at`.
template <std::size_t N>
bool readHex(std::string_view text, std::size_t at, std::array<std::uint8_t, N>& out) noexcept {
  for (std::size_t i = 0; i < N; ++i) {
    const int hi = hexDigit(text[at + 2 * i]);
    const int lo = hexDigit(text[at + 2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return true;
}

template <std::size_t N>
bool allZero(const std::array<std::uint8_t, N>& id) noexcept {
  return std::all_of(id.begin(), id.end(), [](std::uint8_t b) { return b == 0; });
}

template <std::size_t N>
void fillRandom(std::array<std::uint8_t, N>& id) noexcept {
  do {
    for (std::size_t i = 0; i < N; i += 8) {
      std::uint64_t r = randomU64();
      for (std::size_t j = i; j < N && j < i + 8; ++j, r >>= 8) {
        id[j] = static_cast<std::uint8_t>(r);
      }
    }
  } while (allZero(id));
}

}  // namespace

std::optional<TraceParent> parseTraceParent(std::string_view v) noexcept {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55
  constexpr std::size_t kLength = 55;
  if (v.size() < kLength) return std::nullopt;
  std::array<std::uint8_t, 1> version{};
  std::array<std::uint8_t, 1> flags{};
  TraceParent p;
  if (!readHex(v, 0, version) || version[0] == 0xff || v[2] != '-' || !readHex(v, 3, p.trace_id) ||
      v[35] != '-' || !readHex(v, 36, p.parent_id) || v[52] != '-' || !readHex(v, 53, flags)) {
    return std::nullopt;
  }
  // Version 00 is exactly 55 characters; a later version may go on, after a '-'.
  if (v.size() > kLength && (version[0] == 0 || v[kLength] != '-')) return std::nullopt;
  if (allZero(p.trace_id) || allZero(p.parent_id)) return std::nullopt;
  p.sampled = (flags[0] & 1U) != 0;
  return p;
}

void appendHex(std::string& out, const std::uint8_t* bytes, std::size_t n) {
  constexpr std::string_view kDigits = "0123456789abcdef";
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xf]);
  }
}

void appendTraceParent(std::string& out, const TraceId& trace, const SpanId& span, bool sampled) {
  out.append("00-");
  appendHex(out, trace.data(), trace.size());
  out.push_back('-');
  appendHex(out, span.data(), span.size());
  out.append(sampled ? "-01" : "-00");
}

TraceId newTraceId() noexcept {
  TraceId id;
  fillRandom(id);
  return id;
}

SpanId newSpanId() noexcept {
  SpanId id;
  fillRandom(id);
  return id;
}

bool sampledByRatio(const TraceId& id, double ratio) noexcept {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  std::uint64_t low = 0;
  for (std::size_t i = 8; i < 16; ++i) low = low << 8 | id[i];
  // ratio * 2^64 without overflow: compare in the top 53 bits a double holds exactly.
  return static_cast<double>(low >> 11) < ratio * static_cast<double>(std::uint64_t{1} << 53);
}

}  // namespace sluice::gateway::trace
