// The admin registry's inputs (gateway/server/registry_request.h): a path and a JSON body from
// whoever can reach the admin port, and the same body read as a value under a discovery.etcd
// prefix (whoever can write to etcd). Input: "<path>\n<body>". What is accepted stays within the
// documented bounds; what is refused says why.
#include <string>

#include "fuzz/fuzz_target.h"
#include "fuzz/input.h"
#include "gateway/config/config.h"
#include "gateway/server/registry_request.h"

SLUICE_FUZZ_TARGET(registry) {
  namespace server = sluice::gateway::server;
  sluice::fuzz::Input in(input);
  const std::string_view path = in.until('\n');
  const std::string_view body = in.rest();

  if (const auto p = server::parseRegistryPath(path)) {
    const bool list = p->kind == server::RegistryPath::Kind::List;
    SLUICE_FUZZ_CHECK(list == p->cluster.empty() && list == p->address.empty());
    SLUICE_FUZZ_CHECK(p->cluster.find('/') == std::string_view::npos);
    SLUICE_FUZZ_CHECK(p->address.find('/') == std::string_view::npos);
  }
  server::EtcdEndpoint e;
  if (!server::parseEtcdEndpoint(body, e)) {
    SLUICE_FUZZ_CHECK(e.address.port != 0 && !e.address.ip.empty());
    SLUICE_FUZZ_CHECK(e.registration.weight >= 1 &&
                      e.registration.weight <= server::kMaxRegistryWeight);
  }
  constexpr std::chrono::milliseconds kMaxTtl{300'000};
  server::Registration r{.weight = 1, .ttl = std::chrono::milliseconds(30'000), .metadata = {}};
  if (const auto bad = server::parseRegistration(body, kMaxTtl, r)) {
    SLUICE_FUZZ_CHECK(!bad->empty());
    return;
  }
  SLUICE_FUZZ_CHECK(r.weight >= 1 && r.weight <= server::kMaxRegistryWeight);
  SLUICE_FUZZ_CHECK(r.ttl >= server::kMinRegistryTtl && r.ttl <= kMaxTtl);
  SLUICE_FUZZ_CHECK(r.metadata.size() <= sluice::gateway::config::Endpoint::kMaxMetadata);
  for (const auto& [k, v] : r.metadata) {
    SLUICE_FUZZ_CHECK(k.size() <= sluice::gateway::config::Endpoint::kMaxMetadataText);
    SLUICE_FUZZ_CHECK(v.size() <= sluice::gateway::config::Endpoint::kMaxMetadataText);
  }
}
