#include "gateway/config/etcd_config.h"

#include <algorithm>
#include <string>

namespace sluice::gateway::config {

bool readEtcdKey(Reader& r, const yaml::Node& n, std::string_view what, std::string& out) {
  auto s = r.scalar(n, what);
  if (!s) return false;
  if (s->empty() || s->size() > 1024 ||
      std::any_of(s->begin(), s->end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
    r.error(n, std::string(what) + " must be 1 to 1024 printable characters");
    return false;
  }
  out = *s;
  return true;
}

void readEtcd(Reader& r, const yaml::Node& n, Etcd& out) {
  if (!r.map(n, "etcd", {"endpoints", "timeout", "register"})) return;
  if (r.require(n, "endpoints", "etcd")) {
    const yaml::Node list = n["endpoints"];
    if (!list.IsSequence() || list.size() == 0) {
      r.error(list, "etcd.endpoints must be a list of ip:port (at least one)");
    } else {
      for (const auto& e : list) {
        if (auto a = r.address(e, "etcd endpoint")) {
          if (a->port == 0) {
            r.error(e, "an etcd endpoint needs a port (etcd listens on 2379)");
          } else {
            out.endpoints.push_back(*a);
          }
        }
      }
    }
  }
  r.optional(n, "timeout", out.timeout,
             [&](const yaml::Node& v) { return r.duration(v, "etcd.timeout", Millis{10}); });
  if (out.timeout > Millis{60'000}) r.error(n["timeout"], "etcd.timeout must be at most 60s");
  const yaml::Node reg = n["register"];
  if (!reg || !r.map(reg, "etcd.register", {"prefix", "name", "address", "ttl"})) return;
  auto& self = out.self.emplace();
  if (r.require(reg, "prefix", "etcd.register")) {
    readEtcdKey(r, reg["prefix"], "etcd.register.prefix", self.prefix);
  }
  if (const yaml::Node name = reg["name"]) {
    if (auto s = r.scalar(name, "etcd.register.name")) {
      if (s->empty() || s->size() > 253 || s->find('/') != std::string::npos ||
          std::any_of(s->begin(), s->end(),
                      [](unsigned char c) { return c <= 0x20 || c == 0x7f; })) {
        r.error(name, "etcd.register.name must be 1 to 253 printable characters, no '/' or space");
      } else {
        self.name = *s;
      }
    }
  }
  if (const yaml::Node a = reg["address"]) {
    if (auto v = r.address(a, "etcd.register.address")) self.address = *v;
  }
  r.optional(reg, "ttl", self.ttl, [&](const yaml::Node& v) {
    return r.duration(v, "etcd.register.ttl", Millis{2'000});
  });
  if (self.ttl > Millis{3'600'000}) r.error(reg["ttl"], "etcd.register.ttl must be at most 1h");
  // Renewals go every ttl/3: each must be able to time out and be retried before the lease ends.
  if (self.ttl < 3 * out.timeout) {
    r.error(reg["ttl"] ? reg["ttl"] : reg,
            "etcd.register.ttl must be at least 3 x etcd.timeout (a renewal that times out is "
            "retried before the lease ends)");
  }
}

}  // namespace sluice::gateway::config
