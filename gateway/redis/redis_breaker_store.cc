#include "gateway/redis/redis_breaker_store.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace sluice::gateway::redis {

namespace {

using std::chrono::milliseconds;

// Redis' clock in ms since the epoch; Lua numbers hold such values exactly (below 2^53), and a
// time written with %.0f is never in exponent form.
constexpr const char* kNow = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
)lua";

// KEYS: record, token. ARGV: remaining ms, linger ms, channel. Never shortens a record: another
// instance may have opened for longer (its own backoff).
constexpr const char* kOpen = R"lua(
local untl = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]))
if cur and cur >= untl then return 0 end
local text = string.format('%.0f', untl)
redis.call('SET', KEYS[1], text, 'PX', tonumber(ARGV[1]) + tonumber(ARGV[2]))
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[3], KEYS[1] .. ' ' .. text)
return 1
)lua";

// KEYS: record, token. ARGV: channel.
constexpr const char* kClose = R"lua(
local n = redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[1], KEYS[1] .. ' closed')
return n
)lua";

// KEYS: records. Returns each one's remaining ms, or nil for no record.
constexpr const char* kRead = R"lua(
local out = {}
for i, k in ipairs(KEYS) do
  local v = tonumber(redis.call('GET', k))
  if v then out[i] = v - now else out[i] = false end
end
return out
)lua";

// KEYS: record, token. ARGV: window ms. Returns {0 won | 1 lost | 2 no record, token ms left}.
constexpr const char* kProbe = R"lua(
local v = tonumber(redis.call('GET', KEYS[1]))
if not v then return {2, 0} end
local ttl = math.max(v - now, 0) + tonumber(ARGV[1])
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ttl) then return {0, ttl} end
return {1, math.max(redis.call('PTTL', KEYS[2]), 0)}
)lua";

std::string script(const char* body) { return std::string(kNow) + body; }

std::string ms(resilience::Duration d) {
  return std::to_string(std::max<std::int64_t>(1, std::chrono::ceil<milliseconds>(d).count()));
}

}  // namespace

RedisBreakerStore::RedisBreakerStore(RedisClient& client, std::string key_prefix)
    : client_(client),
      open_script_(client_.registerScript(script(kOpen))),
      close_script_(client_.registerScript(kClose)),
      read_script_(client_.registerScript(script(kRead))),
      probe_script_(client_.registerScript(script(kProbe))),
      prefix_(std::move(key_prefix)) {}

void RedisBreakerStore::setKeyPrefix(std::string prefix) {
  const std::lock_guard lock(mu_);
  prefix_ = std::move(prefix);
}

std::string RedisBreakerStore::fullKey(const std::string& key) const {
  const std::lock_guard lock(mu_);
  return prefix_ + "cb:" + key;
}

std::string RedisBreakerStore::channel() const {
  const std::lock_guard lock(mu_);
  return prefix_ + "cb";
}

void RedisBreakerStore::publishOpen(const std::string& key, resilience::Duration remaining,
                                    resilience::Duration linger) {
  std::string k = fullKey(key);
  std::string token = k + ":probe";
  client_.callScript(
      Op::Breaker, open_script_, {std::move(k), std::move(token)},
      {ms(remaining),
       std::to_string(
           std::chrono::ceil<milliseconds>(std::max(linger, resilience::Duration{})).count()),
       channel()},
      [](const Result&) {});  // counted by the client; the poll is what others read
}

void RedisBreakerStore::publishClosed(const std::string& key) {
  std::string k = fullKey(key);
  std::string token = k + ":probe";
  client_.callScript(Op::Breaker, close_script_, {std::move(k), std::move(token)}, {channel()},
                     [](const Result&) {});
}

void RedisBreakerStore::read(std::vector<std::string> keys, std::function<void(const Read&)> done) {
  const std::size_t n = keys.size();
  for (auto& k : keys) k = fullKey(k);
  client_.callScript(Op::Breaker, read_script_, std::move(keys), {},
                     [n, done = std::move(done)](const Result& r) {
                       Read out;
                       if (r.ok() && r.reply.type() == Reply::Type::Array && r.reply.size() == n) {
                         out.ok = true;
                         out.records.resize(n);
                         for (std::size_t i = 0; i < n; ++i) {
                           if (const auto v = Reply::integerOf(r.reply.element(i))) {
                             out.records[i].open = true;
                             out.records[i].remaining = milliseconds(*v);
                           }
                         }
                       }
                       done(out);
                     });
}

void RedisBreakerStore::tryProbe(const std::string& key, resilience::Duration window,
                                 std::function<void(const Probe&)> done) {
  std::string k = fullKey(key);
  std::string token = k + ":probe";
  client_.callScript(Op::Breaker, probe_script_, {std::move(k), std::move(token)}, {ms(window)},
                     [done = std::move(done)](const Result& r) {
                       Probe p;
                       if (r.ok() && r.reply.size() == 2) {
                         const auto what = Reply::integerOf(r.reply.element(0));
                         const auto left = Reply::integerOf(r.reply.element(1));
                         if (what && left && *what >= 0 && *what <= 2) {
                           static constexpr Probe::Result kResults[] = {
                               Probe::Result::Won, Probe::Result::Lost, Probe::Result::Closed};
                           p.result = kResults[*what];
                           p.left = milliseconds(*left);
                         }
                       }
                       done(p);
                     });
}

}  // namespace sluice::gateway::redis
