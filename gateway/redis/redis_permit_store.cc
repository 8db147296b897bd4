#include "gateway/redis/redis_permit_store.h"

#include <algorithm>
#include <utility>

namespace sluice::gateway::redis {

// ARGV: T (us), burst, want, refund. Returns {granted, retry_after_us, remaining, reset_us}.
// Numbers are Lua doubles: microseconds since the epoch are exact (below 2^53); a TAT is written
// with %.0f, never in exponent form.
const char* const RedisPermitStore::kScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local T = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local refund = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
if refund > 0 then tat = math.max(now, tat - refund * T) end
local room = math.floor((now + burst * T - tat) / T)
if room < 0 then room = 0 end
local granted = math.min(want, room)
tat = tat + granted * T
local retry = 0
if granted < want then retry = math.max(0, tat + T - burst * T - now) end
if tat > now then
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
else
  redis.call('DEL', KEYS[1])
end
return {granted, retry, room - granted, tat - now}
)lua";

RedisPermitStore::RedisPermitStore(RedisClient& client, std::string key_prefix)
    : client_(client), script_(client_.registerScript(kScript)), prefix_(std::move(key_prefix)) {}

void RedisPermitStore::setKeyPrefix(std::string prefix) {
  std::lock_guard lock(mu_);
  prefix_ = std::move(prefix);
}

void RedisPermitStore::take(const std::string& key, std::uint64_t want, std::uint64_t refund,
                            const resilience::Gcra::Params& params, Done done) {
  std::string full;
  {
    std::lock_guard lock(mu_);
    full.reserve(prefix_.size() + 3 + key.size());
    full.append(prefix_).append("rl:").append(key);
  }
  const std::int64_t t_us = std::max<std::int64_t>(1, (params.emission_interval_ns + 999) / 1000);
  client_.callScript(
      Op::Lease, script_, {std::move(full)},
      {std::to_string(t_us), std::to_string(params.burst), std::to_string(want),
       std::to_string(refund)},
      [done = std::move(done)](Result r) {
        PermitStore::Grant g;
        g.at = resilience::Clock::now();
        if (r.ok() && r.reply.size() == 4) {
          const auto granted = Reply::integerOf(r.reply.element(0));
          const auto retry = Reply::integerOf(r.reply.element(1));
          const auto remaining = Reply::integerOf(r.reply.element(2));
          const auto reset = Reply::integerOf(r.reply.element(3));
          if (granted && retry && remaining && reset && *granted >= 0) {
            g.ok = true;
            g.granted = static_cast<std::uint64_t>(*granted);
            g.retry_after = std::chrono::microseconds(std::max<std::int64_t>(0, *retry));
            g.remaining = static_cast<std::uint64_t>(std::max<std::int64_t>(0, *remaining));
            g.reset = std::chrono::microseconds(std::max<std::int64_t>(0, *reset));
          }
        }
        done(g);
      });
}

}  // namespace sluice::gateway::redis
