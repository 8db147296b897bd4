#include "gateway/http/request_id.h"

#include <random>

namespace sluice::gateway::http {
namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31U);
}

}  // namespace

RequestIdGenerator::RequestIdGenerator() {
  std::random_device rd;
  state_ = (static_cast<std::uint64_t>(rd()) << 32U) ^ rd();
}

void RequestIdGenerator::next(std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.resize(32);
  for (int half = 0; half < 2; ++half) {
    std::uint64_t v = splitmix64(state_);
    for (int i = 0; i < 16; ++i) {
      out[static_cast<std::size_t>(half * 16 + i)] = kHex[v & 15U];
      v >>= 4U;
    }
  }
}

}  // namespace sluice::gateway::http
