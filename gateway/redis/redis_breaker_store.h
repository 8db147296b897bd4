// RedisBreakerStore: the BreakerStore of shared circuit breakers (guards/breaker_store.h) in
// Redis. Each call is one Lua script (EVALSHA) that reads Redis' TIME, so every instant it stores
// or compares is on the server's clock and instances' clocks do not matter.
//
// Keys (docs/distributed.md):
//   <redis.key_prefix>cb:<route|cluster>:<name>        the end of the open period, in ms since
//                                                      the epoch of Redis' clock; expires (PX)
//                                                      `linger` after it
//   <redis.key_prefix>cb:<route|cluster>:<name>:probe  the probe token (SET NX PX)
// and every open is announced on the channel <redis.key_prefix>cb ("<key> <open until ms>"),
// for operators and tools; the instances themselves read the keys (BreakerSync), which also
// covers whatever a subscriber would miss while reconnecting.
#pragma once

#include <mutex>
#include <string>

#include "gateway/guards/breaker_store.h"
#include "gateway/redis/redis_client.h"

namespace sluice::gateway::redis {

class RedisBreakerStore final : public guards::BreakerStore {
 public:
  // `client` outlives the store; the constructor registers the scripts with it.
  RedisBreakerStore(RedisClient& client, std::string key_prefix);

  [[nodiscard]] bool available() const override { return client_.up(); }
  void publishOpen(const std::string& key, resilience::Duration remaining,
                   resilience::Duration linger) override;
  void publishClosed(const std::string& key) override;
  void read(std::vector<std::string> keys, std::function<void(const Read&)> done) override;
  void tryProbe(const std::string& key, resilience::Duration window,
                std::function<void(const Probe&)> done) override;

  // A reload with a new redis.key_prefix.
  void setKeyPrefix(std::string prefix);

 private:
  [[nodiscard]] std::string fullKey(const std::string& key) const;
  [[nodiscard]] std::string channel() const;

  RedisClient& client_;
  std::size_t open_script_;
  std::size_t close_script_;
  std::size_t read_script_;
  std::size_t probe_script_;
  mutable std::mutex mu_;
  std::string prefix_;
};

}  // namespace sluice::gateway::redis
