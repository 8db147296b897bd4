#include "gateway/server/discovery.h"

#include <fstream>
#include <sstream>
#include <system_error>

#include <boost/asio/ip/address.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "gateway/config/loader.h"
#include "gateway/server/registry_request.h"

namespace sluice::gateway::server {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
using upstream::HostSet;

namespace {

constexpr auto kRegistrySweepEvery = std::chrono::milliseconds(100);

HostSet::Host hostAt(const config::Address& a, std::uint32_t weight) {
  HostSet::Host h;
  h.address = a.text();
  h.endpoint = {asio::ip::make_address(a.ip), a.port};
  h.weight = weight;
  return h;
}

bool sameFile(const struct stat& a, const struct stat& b) {
  return a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

}  // namespace

DiscoveryService::DiscoveryService(asio::io_context& io, std::vector<Target> clusters,
                                   Publish publish, etcd::EtcdClient* etcd)
    : io_(io),
      clusters_(std::move(clusters)),
      publish_(std::move(publish)),
      sweep_timer_(io),
      etcd_(etcd) {
  for (std::size_t c = 0; c < clusters_.size(); ++c) {
    const auto& d = clusters_[c].config->discovery;
    if (d && !d->etcd.empty() && etcd_ != nullptr) {
      prefixes_.push_back({c, d->etcd, nullptr});
    } else {
      // discovery.etcd was removed (or the etcd section): those hosts leave.
      auto& set = *clusters_[c].hosts;
      const auto before = set.version();
      (void)set.replace(HostSet::Source::Etcd, {}, Clock::now());
      if (set.version() != before) {
        spdlog::info("discovery: {}: no etcd prefix any more; its hosts leave",
                     clusters_[c].config->name);
        publish_(c);
      }
    }
    if (!d) continue;
    registry_ = registry_ || d->registry;
    if (!d->file.empty()) {
      files_.push_back(
          {c, d->file, d->file_interval, {}, false, std::make_unique<asio::steady_timer>(io)});
    }
  }
}

DiscoveryService::~DiscoveryService() { stop(); }

void DiscoveryService::start() {
  for (auto& f : files_) {
    poll(f);
    schedulePoll(f);
  }
  for (auto& p : prefixes_) {
    p.watch = std::make_unique<etcd::RangeWatch>(
        io_, *etcd_, etcd::KeyRange::prefix(p.prefix),
        [this, &p](const etcd::RangeWatch::State& state) { applyEtcd(p, state); });
    p.watch->start();
  }
  if (registry_) sweep();
}

void DiscoveryService::stop() {
  stopped_ = true;
  sweep_timer_.cancel();
  for (auto& f : files_) f.timer->cancel();
  for (auto& p : prefixes_) {
    if (p.watch) p.watch->stop();
  }
}

void DiscoveryService::sweep() {
  const auto now = Clock::now();
  for (std::size_t c = 0; c < clusters_.size(); ++c) {
    const auto gone = clusters_[c].hosts->expire(now);
    for (const auto& address : gone) {
      spdlog::warn("registry: {} {} missed its heartbeat (TTL): removed", clusters_[c].config->name,
                   address);
    }
    if (!gone.empty()) publish_(c);
  }
  sweep_timer_.expires_after(kRegistrySweepEvery);
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !stopped_) sweep();
  });
}

void DiscoveryService::schedulePoll(WatchedFile& f) {
  f.timer->expires_after(f.interval);
  f.timer->async_wait([this, &f](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    poll(f);
    schedulePoll(f);
  });
}

void DiscoveryService::poll(WatchedFile& f) {
  const std::string& cluster = clusters_[f.cluster].config->name;
  struct stat now_stat {};
  if (::stat(f.path.c_str(), &now_stat) != 0) {
    if (!f.read_once || f.seen.st_ino != 0) {
      spdlog::error("discovery: {}: cannot read {} ({}); keeping its hosts as they are", cluster,
                    f.path, std::error_code(errno, std::generic_category()).message());
    }
    f.seen = {};
    f.read_once = true;
    return;
  }
  if (f.read_once && sameFile(now_stat, f.seen)) return;
  f.seen = now_stat;
  f.read_once = true;
  std::ifstream in(f.path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  const auto loaded = config::loadEndpoints(text.str(), f.path);
  if (!loaded.endpoints) {
    for (const auto& d : loaded.diagnostics) {
      spdlog::error("discovery: {}: {} (keeping the previous hosts)", cluster, d.format());
    }
    return;
  }
  std::vector<HostSet::Host> hosts;
  for (const auto& e : *loaded.endpoints) {
    hosts.push_back(hostAt(e.address, e.weight));
    hosts.back().metadata = e.metadata;
  }
  auto& set = *clusters_[f.cluster].hosts;
  const auto before = set.version();
  for (const auto& refused : set.replace(HostSet::Source::File, std::move(hosts), Clock::now())) {
    spdlog::error("discovery: {}: {} from {} not added (no free slot, or another source has it)",
                  cluster, refused, f.path);
  }
  if (set.version() != before) {
    spdlog::info("discovery: {}: applied {} ({} hosts)", cluster, f.path, loaded.endpoints->size());
    publish_(f.cluster);
  }
}

void DiscoveryService::applyEtcd(WatchedPrefix& p, const etcd::RangeWatch::State& state) {
  const std::string& cluster = clusters_[p.cluster].config->name;
  std::map<std::string, HostSet::Host> valid;
  std::vector<HostSet::Host> hosts;
  for (const auto& [key, kv] : state.kvs) {
    EtcdEndpoint e;
    if (auto why = parseEtcdEndpoint(kv.value, e)) {
      const auto kept = p.valid.find(key);
      spdlog::error("discovery: {}: etcd key {} (revision {}): {}; {}", cluster, key,
                    kv.mod_revision, *why,
                    kept != p.valid.end() ? "keeping its previous value" : "skipped");
      if (kept == p.valid.end()) continue;
      valid.insert(*kept);
    } else {
      HostSet::Host h = hostAt(e.address, e.registration.weight);
      h.metadata = std::move(e.registration.metadata);
      valid.emplace(key, std::move(h));
    }
    hosts.push_back(valid.at(key));
  }
  p.valid = std::move(valid);
  auto& set = *clusters_[p.cluster].hosts;
  const auto before = set.version();
  const std::size_t count = hosts.size();
  for (const auto& refused : set.replace(HostSet::Source::Etcd, std::move(hosts), Clock::now())) {
    spdlog::error("discovery: {}: {} from etcd not added (no free slot, or another source has it)",
                  cluster, refused);
  }
  if (set.version() != before) {
    spdlog::info("discovery: {}: etcd {} at revision {}: {} host(s)", cluster, p.prefix,
                 state.revision, count);
    publish_(p.cluster);
  }
}

std::optional<std::size_t> DiscoveryService::clusterNamed(std::string_view name) const {
  for (std::size_t c = 0; c < clusters_.size(); ++c) {
    if (clusters_[c].config->name == name) return c;
  }
  return std::nullopt;
}

json DiscoveryService::listJson() const {
  const auto now = Clock::now();
  json out = json::array();
  for (const auto& cluster : clusters_) {
    for (const auto& h : cluster.hosts->slots()) {
      if (h.empty() || h.source != HostSet::Source::Registry) continue;
      out.push_back(
          {{"cluster", cluster.config->name},
           {"address", h.address},
           {"weight", h.weight},
           {"ttl_ms", h.ttl.count()},
           {"expires_in_ms",
            std::chrono::duration_cast<std::chrono::milliseconds>(h.expires - now).count()},
           {"metadata", h.metadata}});
    }
  }
  return out;
}

admin::Response DiscoveryService::handle(const admin::ApiRequest& req) {
  const auto path = parseRegistryPath(req.path);
  if (!path) return admin::jsonError(404, "expected /registry/<cluster>/<ip:port>[/heartbeat]");
  if (path->kind == RegistryPath::Kind::List) {
    if (req.method != "GET" && req.method != "HEAD") {
      return admin::jsonError(405, "use GET on /registry");
    }
    return admin::jsonResponse(200, listJson());
  }
  const std::string cluster(path->cluster);
  const auto c = clusterNamed(cluster);
  if (!c) return admin::jsonError(404, "no cluster named '" + cluster + "'");
  const auto& d = clusters_[*c].config->discovery;
  if (!d || !d->registry) {
    return admin::jsonError(
        404, "cluster '" + cluster + "' takes no registrations (discovery.registry is off)");
  }
  std::string why;
  const auto address = config::parseAddress(path->address, &why);
  if (!address) {
    return admin::jsonError(400, "bad address '" + std::string(path->address) + "': " + why);
  }
  auto& set = *clusters_[*c].hosts;
  const auto now = Clock::now();
  const std::string text = address->text();

  if (path->kind == RegistryPath::Kind::Heartbeat) {
    if (req.method != "POST") return admin::jsonError(405, "use POST for a heartbeat");
    const auto slot = set.find(text);
    if (!slot || set.slots()[*slot].source != HostSet::Source::Registry) {
      return admin::jsonError(404, text + " is not registered in '" + cluster +
                                       "' (expired or never registered): register it again");
    }
    HostSet::Host renewed = set.slots()[*slot];
    set.upsert(std::move(renewed), now);
    return admin::jsonResponse(200,
                               json{{"address", text}, {"ttl_ms", set.slots()[*slot].ttl.count()}});
  }
  if (req.method == "DELETE") {
    if (!set.remove(text, HostSet::Source::Registry, now)) {
      return admin::jsonError(404, text + " is not registered in '" + cluster + "'");
    }
    spdlog::info("registry: {} {} deregistered: draining", cluster, text);
    publish_(*c);
    return admin::jsonResponse(200, json{{"address", text}, {"status", "removed"}});
  }
  if (req.method != "PUT") return admin::jsonError(405, "use PUT to register, DELETE to leave");

  Registration asked{.weight = 1, .ttl = d->default_ttl, .metadata = {}};
  if (auto bad = parseRegistration(req.body, d->max_ttl, asked)) {
    return admin::jsonError(400, std::move(*bad));
  }
  HostSet::Host host = hostAt(*address, asked.weight);
  host.source = HostSet::Source::Registry;
  host.ttl = asked.ttl;
  host.metadata = std::move(asked.metadata);
  const auto ttl = host.ttl;
  const auto weight = host.weight;
  const auto before = set.version();
  switch (set.upsert(std::move(host), now)) {
    case HostSet::Upsert::Conflict:
      return admin::jsonError(
          409, text + " is in '" + cluster + "' already, from its config or its endpoints file");
    case HostSet::Upsert::Full:
      return admin::jsonError(503, "cluster '" + cluster + "' is full (discovery.max_hosts " +
                                       std::to_string(d->max_hosts) + ")");
    case HostSet::Upsert::Added:
      spdlog::info("registry: {} {} registered (weight {}, TTL {} ms)", cluster, text, weight,
                   ttl.count());
      publish_(*c);
      return admin::jsonResponse(
          201,
          json{
              {"address", text}, {"weight", weight}, {"ttl_ms", ttl.count()}, {"status", "added"}});
    case HostSet::Upsert::Updated:
      if (set.version() != before) publish_(*c);
      break;
  }
  return admin::jsonResponse(
      200,
      json{{"address", text}, {"weight", weight}, {"ttl_ms", ttl.count()}, {"status", "renewed"}});
}

}  // namespace sluice::gateway::server
