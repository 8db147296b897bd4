// RedisPermitStore: the PermitStore of global rate limits (guards/global_limit.h) in Redis -
// one key per limit and client holding a GCRA theoretical arrival time in microseconds of the
// server's clock, updated by one Lua script per call (EVALSHA), so every grant is atomic and
// instances' clocks do not matter.
//
// Keys: <redis.key_prefix>rl:<route or cluster>:<guard>:<key>, each expiring (PX) when its
// limit would be whole again, so idle keys cost Redis nothing. The script mirrors
// resilience::Gcra::decide() for a batch (docs/distributed.md shows it); T is rounded up to whole
// microseconds (slightly conservative for rates that do not divide a second evenly).
#pragma once

#include <mutex>
#include <string>

#include "gateway/guards/permit_store.h"
#include "gateway/redis/redis_client.h"

namespace sluice::gateway::redis {

class RedisPermitStore final : public guards::PermitStore {
 public:
  // The Lua script (registered with `client` by the constructor).
  static const char* const kScript;

  // `client` outlives the store.
  RedisPermitStore(RedisClient& client, std::string key_prefix);

  [[nodiscard]] bool available() const override { return client_.up(); }
  [[nodiscard]] resilience::Duration timeout() const override { return client_.timeout(); }
  void take(const std::string& key, std::uint64_t want, std::uint64_t refund,
            const resilience::Gcra::Params& params, Done done) override;

  // A reload with a new redis.key_prefix.
  void setKeyPrefix(std::string prefix);

 private:
  RedisClient& client_;
  std::size_t script_;
  mutable std::mutex mu_;
  std::string prefix_;
};

}  // namespace sluice::gateway::redis
