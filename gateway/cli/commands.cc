#include "gateway/cli/commands.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "gateway/admin/admin_token.h"
#include "gateway/common/heap.h"
#include "gateway/config/loader.h"
#include "gateway/demo/demo_config.h"
#include "gateway/demo/demo_upstreams.h"
#include "gateway/etcd/etcd_client.h"
#include "gateway/etcd/etcd_url.h"
#include "gateway/log/diagnostic_log.h"
#include "gateway/redis/redis_client.h"
#include "gateway/server/server.h"

namespace sluice::gateway::cli {
namespace {

void printWarnings(const config::LoadResult& r) {
  for (const auto& w : r.warnings) std::cerr << w.format() << '\n';
}

int printDiagnostics(const config::LoadResult& r) {
  for (const auto& d : r.diagnostics) std::cerr << d.format() << '\n';
  std::cerr << r.diagnostics.size() << (r.diagnostics.size() == 1 ? " problem" : " problems")
            << " found\n";
  return 1;
}

int serve(config::Config cfg, server::Server::Options options, const std::string& banner_extra) {
  std::string listeners;
  for (const auto& l : cfg.listeners) {
    listeners += (listeners.empty() ? "" : ", ") + l.address.text();
  }
  const std::string admin = cfg.admin ? cfg.admin->address.text() : "";
  std::string error;
  auto server = server::Server::create(std::move(cfg), std::move(options), &error);
  if (!server) {
    std::cerr << "sluice: " << error << '\n';
    return 1;
  }
  return server->run([&] {
    spdlog::info("sluice {} serving on {} with {} worker(s){}", SLUICE_VERSION, listeners,
                 server->workerCount(), admin.empty() ? "" : ", admin on " + admin);
    if (!banner_extra.empty()) std::cout << banner_extra << std::flush;
  });
}

// The built-in upstreams of `sluice demo` and the endpoint each takes the place of in
// examples/demo.yaml.
struct DemoHost {
  const char* name;
  std::chrono::milliseconds latency;
  std::string_view endpoint;
};
constexpr DemoHost kDemoHosts[] = {
    {"fast-a", std::chrono::milliseconds(0), "127.0.0.1:9001"},
    {"fast-b", std::chrono::milliseconds(5), "127.0.0.1:9002"},
    {"slow", std::chrono::milliseconds(300), "127.0.0.1:9003"},
};

// A config's bytes: a file's, or an etcd key's (with where it came from, to watch it).
struct ConfigSource {
  std::string text;
  std::optional<server::Server::Options::Etcd> etcd;
};

// How long `run` and `validate` keep trying an etcd that does not answer: long enough for a
// fleet started with its etcd (a member elected within a few seconds), short enough that a
// wrong address is reported before an operator gives up on the command.
constexpr auto kEtcdStartWait = std::chrono::seconds(10);

// The key's value, or nullopt after printing why there is none.
std::optional<ConfigSource> readEtcdKey(const std::string& source) {
  std::string error;
  auto url = etcd::parseEtcdUrl(source, &error);
  if (!url) {
    std::cerr << source << ": " << error << '\n';
    return std::nullopt;
  }
  etcd::EtcdClient client({.endpoints = url->endpoints});
  const auto give_up = std::chrono::steady_clock::now() + kEtcdStartWait;
  while (true) {
    auto read = client.rangeAndWait(etcd::KeyRange::single(url->key));
    if (read.ok() && read.value.kvs.empty()) {
      std::cerr << source << ": the key does not exist\n";
      return std::nullopt;
    }
    if (read.ok()) {
      auto& kv = read.value.kvs.front();
      return ConfigSource{
          std::move(kv.value),
          server::Server::Options::Etcd{std::move(*url), kv.mod_revision, read.value.revision + 1}};
    }
    // An error etcd answered (a bad key, no permission) will not change by waiting.
    if (read.status.code == etcd::ErrorCode::Server ||
        std::chrono::steady_clock::now() >= give_up) {
      std::cerr << source << ": " << read.status.message << '\n';
      return std::nullopt;
    }
    spdlog::warn("{}: {}; trying again", source, read.status.message);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

std::optional<ConfigSource> readConfigSource(const std::string& source) {
  if (etcd::isEtcdUrl(source)) return readEtcdKey(source);
  std::ifstream in(source, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  if (!in) {
    std::cerr << source << ": cannot read the file\n";
    return std::nullopt;
  }
  return ConfigSource{bytes.str(), std::nullopt};
}

}  // namespace

int run(const RunOptions& options) {
  auto source = readConfigSource(options.config_path);
  if (!source) return 1;
  auto r = config::load(source->text, options.config_path);
  if (!r.ok()) return printDiagnostics(r);
  printWarnings(r);
  server::Server::Options o;
  if (source->etcd) {
    o.etcd = std::move(source->etcd);
  } else {
    o.config_path = options.config_path;
  }
  o.source = options.config_path;
  o.hash = server::contentHash(source->text);
  o.watch = options.watch;
  o.workers = options.workers;
  o.log_level = log::parseLogLevel(options.log_level);
  return serve(std::move(*r.config), std::move(o), "");
}

int validate(const std::string& config_path) {
  auto source = readConfigSource(config_path);
  if (!source) return 1;
  const auto r = config::load(source->text, config_path);
  if (!r.ok()) return printDiagnostics(r);
  printWarnings(r);
  // `run` reads the token file at start; a file it could not read would stop it there.
  if (const auto& a = r.config->admin; a && !a->token_file.empty()) {
    const auto token = admin::readTokenFile(a->token_file);
    if (!token.warning.empty()) std::cerr << "warning: " << token.warning << '\n';
    if (!token.error.empty()) {
      std::cerr << config_path << ": admin.token_file: " << token.error << '\n';
      return 1;
    }
  }
  // Likewise the Redis password file.
  if (const auto& rd = r.config->redis) {
    std::string error;
    if (!redis::clientSettings(*rd, &error)) {
      std::cerr << config_path << ": redis.password_file: " << error << '\n';
      return 1;
    }
  }
  std::cout << config_path << ": ok"
            << (source->etcd ? " (revision " + std::to_string(source->etcd->revision) + ")" : "")
            << (r.warnings.empty() ? "" : " (" + std::to_string(r.warnings.size()) + " warning(s))")
            << '\n';
  return 0;
}

int demo(const DemoOptions& options) {
  // examples/demo.yaml is a complete config; the demo moves its listeners to --listen and
  // --admin and its endpoints (kDemoHosts) to the demo upstreams, which take free ports.
  auto r = config::load(demo::bundledConfig(), "<demo config>");
  if (!r.ok()) return printDiagnostics(r);
  config::Config cfg = std::move(*r.config);
  std::string why;
  const auto listen_at = config::parseAddress(options.listen, &why);
  if (!listen_at) {
    std::cerr << "sluice demo: --listen: " << why << '\n';
    return 1;
  }
  const auto admin_at = config::parseAddress(options.admin, &why);
  if (!admin_at) {
    std::cerr << "sluice demo: --admin: " << why << '\n';
    return 1;
  }
  if (cfg.admin && *admin_at == *listen_at) {
    std::cerr << "sluice demo: --listen and --admin are both " << listen_at->text() << '\n';
    return 1;
  }
  cfg.listeners.front().address = *listen_at;
  if (cfg.admin) cfg.admin->address = *admin_at;
  demo::DemoUpstreams upstreams;
  std::vector<demo::DemoUpstreamSpec> specs;
  for (const auto& host : kDemoHosts) specs.push_back({host.name, host.latency});
  const auto addresses = upstreams.start(specs);  // "127.0.0.1:<port>", in the order of specs
  std::vector<bool> found(std::size(kDemoHosts), false);
  for (auto& cluster : cfg.clusters) {
    for (auto& e : cluster.endpoints) {
      const std::string was = e.address.text();
      for (std::size_t i = 0; i < std::size(kDemoHosts); ++i) {
        if (was != kDemoHosts[i].endpoint) continue;
        const auto upstream = config::parseAddress(addresses[i], &why);
        if (!upstream) {
          std::cerr << "sluice demo: demo upstream " << kDemoHosts[i].name << ": " << why << '\n';
          return 1;
        }
        e.address = *upstream;
        found[i] = true;
      }
    }
  }
  for (std::size_t i = 0; i < std::size(kDemoHosts); ++i) {
    if (!found[i]) {
      std::cerr << "sluice demo: the demo config has no endpoint " << kDemoHosts[i].endpoint
                << " for the demo upstream " << kDemoHosts[i].name << '\n';
      return 1;
    }
  }
  const std::string proxy = "http://" + cfg.listeners.front().address.text();
  const std::string admin = "http://" + cfg.admin->address.text();
  const std::string banner =
      "\nsluice demo is running. Try:\n"
      "  proxy    " +
      proxy +
      "/          (two upstreams, weighted 3:1)\n"
      "           " +
      proxy +
      "/slow      (an upstream that takes 300 ms; 4 at once, 8 queued)\n"
      "           " +
      proxy +
      "/limited   (5 requests/s per client, burst 10, then 429)\n"
      "           " +
      proxy +
      "/flaky     (half the requests fail on purpose; a circuit breaker opens)\n"
      "           " +
      proxy +
      "/canary    (a grey release: X-Env: gray, or 10 % sticky per X-User, go to fast-b)\n"
      "           " +
      proxy +
      "/rollout   (a progressive canary: fast-b's share steps 10 -> 50 -> 100 % while healthy)\n"
      "           " +
      proxy +
      "/mirrored  (half the requests also copied to the slow upstream; nobody waits for it)\n"
      "  admin    " +
      admin +
      "/          (the live dashboard: traffic, breakers, hosts, reloads)\n"
      "  metrics  " +
      admin +
      "/metrics\n"
      "  breakers " +
      admin +
      "/breakers\n"
      "  canaries " +
      admin +
      "/canaries (the rollout's state and decisions; POST .../rollout/pause, promote, abort)\n"
      "  upstreams " +
      admin +
      "/upstreams (health checks; hosts join with PUT /registry/fast/<ip:port>)\n"
      "  config   " +
      admin +
      "/config\n"
      "Press Ctrl-C to stop.\n\n";
  server::Server::Options o;
  o.source = "<demo config>";
  o.hash = server::contentHash(demo::bundledConfig());
  o.workers = options.workers;
  o.log_level = log::parseLogLevel(options.log_level);
  const int rc = serve(std::move(cfg), std::move(o), banner);
  upstreams.stop();
  return rc;
}

int version() {
  // One line, version second: scripts take it with `awk '{print $2}'`.
  std::cout << "sluice " << SLUICE_VERSION << " (malloc: " << heap::allocatorName() << ")\n";
  return 0;
}

}  // namespace sluice::gateway::cli
