#include "gateway/config/redis_config.h"

#include <algorithm>
#include <string>

namespace sluice::gateway::config {

void readRedis(Reader& r, const yaml::Node& n, Redis& out) {
  if (!r.map(
          n, "redis",
          {"address", "timeout", "username", "password_file", "db", "key_prefix", "instances"})) {
    return;
  }
  if (r.require(n, "address", "redis")) {
    if (auto v = r.address(n["address"], "redis.address")) {
      if (v->port == 0) {
        r.error(n["address"], "redis.address needs a port (Redis listens on 6379)");
      } else {
        out.address = *v;
      }
    }
  }
  r.optional(n, "timeout", out.timeout,
             [&](const yaml::Node& v) { return r.duration(v, "redis.timeout", Millis{1}); });
  if (out.timeout > Millis{10'000}) {
    r.error(n["timeout"], "redis.timeout must be at most 10s (it is how long a request may wait)");
  }
  const auto text = [&](const char* key, std::string& into, std::size_t max) {
    const yaml::Node v = n[key];
    if (!v) return;
    auto s = r.scalar(v, std::string("redis.") + key);
    if (!s) return;
    if (s->empty() || s->size() > max ||
        std::any_of(s->begin(), s->end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
      r.error(v, std::string("redis.") + key + " must be 1 to " + std::to_string(max) +
                     " printable characters");
      return;
    }
    into = *s;
  };
  text("username", out.username, 256);
  text("password_file", out.password_file, 4096);
  text("key_prefix", out.key_prefix, 256);
  r.optional(n, "db", out.db,
             [&](const yaml::Node& v) { return r.integer(v, "redis.db", 0, 65'535); });
  r.optional(n, "instances", out.instances,
             [&](const yaml::Node& v) { return r.integer(v, "redis.instances", 1, 100'000); });
}

}  // namespace sluice::gateway::config
