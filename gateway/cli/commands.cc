#include "gateway/cli/commands.h"

#include <cstdio>
#include <iostream>

#include <spdlog/spdlog.h>

#include "gateway/common/heap.h"
#include "gateway/config/loader.h"
#include "gateway/demo/demo_config.h"
#include "gateway/demo/demo_upstreams.h"
#include "gateway/server/server.h"

namespace sluice::gateway::cli {
namespace {

int printDiagnostics(const config::LoadResult& r) {
  for (const auto& d : r.diagnostics) std::cerr << d.format() << '\n';
  std::cerr << r.diagnostics.size() << (r.diagnostics.size() == 1 ? " problem" : " problems")
            << " found\n";
  return 1;
}

int serve(config::Config cfg, int workers_override, const std::string& banner_extra) {
  if (workers_override > 0) cfg.workers = static_cast<std::uint32_t>(workers_override);
  std::string listeners;
  for (const auto& l : cfg.listeners) {
    listeners += (listeners.empty() ? "" : ", ") + l.address.text();
  }
  const std::string admin = cfg.admin ? cfg.admin->address.text() : "";
  std::string error;
  auto server = server::Server::create(std::move(cfg), &error);
  if (!server) {
    std::cerr << "sluice: " << error << '\n';
    return 1;
  }
  spdlog::info("sluice {} serving on {} with {} worker(s){}", SLUICE_VERSION, listeners,
               server->workerCount(), admin.empty() ? "" : ", admin on " + admin);
  if (!banner_extra.empty()) std::cout << banner_extra << std::flush;
  return server->run();
}

void replaceAll(std::string& s, const std::string& from, const std::string& to) {
  for (std::size_t pos = s.find(from); pos != std::string::npos;
       pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

}  // namespace

int run(const RunOptions& options) {
  auto r = config::loadFile(options.config_path);
  if (!r.ok()) return printDiagnostics(r);
  return serve(std::move(*r.config), options.workers, "");
}

int validate(const std::string& config_path) {
  const auto r = config::loadFile(config_path);
  if (!r.ok()) return printDiagnostics(r);
  std::cout << config_path << ": ok\n";
  return 0;
}

int demo(const DemoOptions& options) {
  demo::DemoUpstreams upstreams;
  const auto addresses = upstreams.start({{"fast-a", std::chrono::milliseconds(0)},
                                          {"fast-b", std::chrono::milliseconds(5)},
                                          {"slow", std::chrono::milliseconds(300)}});
  std::string yaml(demo::bundledConfig());
  replaceAll(yaml, "{{listen}}", options.listen);
  replaceAll(yaml, "{{admin}}", options.admin);
  replaceAll(yaml, "{{fast_a}}", addresses[0]);
  replaceAll(yaml, "{{fast_b}}", addresses[1]);
  replaceAll(yaml, "{{slow}}", addresses[2]);
  auto r = config::load(yaml, "<demo config>");
  if (!r.ok()) return printDiagnostics(r);
  const std::string proxy = "http://" + r.config->listeners.front().address.text();
  const std::string admin = "http://" + r.config->admin->address.text();
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
      "  admin    " +
      admin +
      "/\n"
      "  metrics  " +
      admin +
      "/metrics\n"
      "  breakers " +
      admin +
      "/breakers\n"
      "  upstreams " +
      admin +
      "/upstreams (health checks; hosts join with PUT /registry/fast/<ip:port>)\n"
      "  config   " +
      admin +
      "/config\n"
      "Press Ctrl-C to stop.\n\n";
  const int rc = serve(std::move(*r.config), options.workers, banner);
  upstreams.stop();
  return rc;
}

int version() {
  // One line, version second: scripts take it with `awk '{print $2}'`.
  std::cout << "sluice " << SLUICE_VERSION << " (malloc: " << heap::allocatorName() << ")\n";
  return 0;
}

}  // namespace sluice::gateway::cli
