// X-Request-Id values for requests that arrive without one.
//
// 128 random bits as 32 lowercase hex digits. One generator per worker (not thread-safe);
// seeded from std::random_device once, then a splitmix64 stream: ids are unique in practice and
// cost a few nanoseconds, with no lock or syscall per request.
#pragma once

#include <cstdint>
#include <string>

namespace sluice::gateway::http {

class RequestIdGenerator {
 public:
  RequestIdGenerator();
  explicit RequestIdGenerator(std::uint64_t seed) : state_(seed) {}

  // Replaces the contents of `out` with a new id.
  void next(std::string& out);

 private:
  std::uint64_t state_;
};

}  // namespace sluice::gateway::http
