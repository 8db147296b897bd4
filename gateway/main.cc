// sluice: a traffic-governance gateway. See README.md for the tour, docs/ for the reference.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "gateway/cli/commands.h"
#include "gateway/config/config.h"
#include "gateway/etcd/etcd_url.h"
#include "gateway/log/diagnostic_log.h"

namespace {

// -c etcd://HOST:PORT[,HOST:PORT...]/KEY (or, combined with ExistingFile, a file).
struct ConfigUrl : CLI::Validator {
  ConfigUrl() {
    name_ = "ETCD_URL";
    func_ = [](const std::string& text) {
      std::string error;
      if (!sluice::gateway::etcd::isEtcdUrl(text)) return "not a file nor an etcd:// URL: " + text;
      if (!sluice::gateway::etcd::parseEtcdUrl(text, &error)) return text + ": " + error;
      return std::string();
    };
  }
};

int runCli(int argc, char** argv) {
  namespace cli = sluice::gateway::cli;
  // Diagnostics go to stderr; stdout is for what a command produces (and the access log, when
  // configured to stdout).
  sluice::gateway::log::setUpDiagnosticLog();
  const std::vector<std::string> levels(sluice::gateway::config::kLogLevels.begin(),
                                        sluice::gateway::config::kLogLevels.end());

  CLI::App app{"sluice: an HTTP gateway that keeps services standing"};
  app.require_subcommand(1);
  app.set_version_flag("--version", SLUICE_VERSION);
  app.footer("`sluice run --help` lists the signals (reload, log reopen, drain).");

  cli::RunOptions run_opts;
  auto* run = app.add_subcommand("run", "Serve traffic with a config file");
  run->add_option("-c,--config", run_opts.config_path,
                  "YAML config file, or etcd://HOST:PORT[,HOST:PORT...]/KEY: the config is that "
                  "key's value, watched (every change is reloaded)")
      ->required()
      ->check(CLI::ExistingFile | ConfigUrl{});
  run->add_option("-w,--workers", run_opts.workers, "Worker threads (overrides the config)")
      ->check(CLI::Range(1, 256));
  run->footer(
      "Signals:\n"
      "  SIGHUP           reload the config file or etcd key (also: POST /config/reload on\n"
      "                   the admin listener, --watch, or a write to the etcd key)\n"
      "                   A config with problems changes nothing.\n"
      "  SIGUSR1          reopen the access log file (logrotate)\n"
      "  SIGTERM, SIGINT  drain: /ready turns 503, drain_accept_grace, then in-flight requests\n"
      "                   finish (up to drain_timeout); a second one stops at once. Exit code\n"
      "                   1 if requests were cut.");
  run->add_option("--log-level", run_opts.log_level,
                  "Diagnostic log level (overrides the config's log.level, reloads included)")
      ->check(CLI::IsMember(levels));
  run->add_flag("--watch", run_opts.watch,
                "Reload the config when the file changes (in-place writes, renames and symlink "
                "swaps, as Kubernetes ConfigMaps do)");

  std::string validate_path;
  auto* validate = app.add_subcommand("validate", "Check a config file and print every problem");
  validate
      ->add_option("-c,--config", validate_path,
                   "YAML config file, or etcd://HOST:PORT[,HOST:PORT...]/KEY")
      ->required();

  cli::DemoOptions demo_opts;
  auto* demo = app.add_subcommand(
      "demo", "Run the gateway on its bundled config with built-in demo upstreams");
  demo->add_option("--listen", demo_opts.listen, "Proxy address")->capture_default_str();
  demo->add_option("--admin", demo_opts.admin, "Admin address")->capture_default_str();
  demo->add_option("-w,--workers", demo_opts.workers, "Worker threads (default: one per CPU)")
      ->check(CLI::Range(1, 256));
  demo->add_option("--log-level", demo_opts.log_level, "Diagnostic log level")
      ->check(CLI::IsMember(levels));

  auto* version = app.add_subcommand("version", "Print the version");

  CLI11_PARSE(app, argc, argv);
  if (run->parsed()) return cli::run(run_opts);
  if (validate->parsed()) return cli::validate(validate_path);
  if (demo->parsed()) return cli::demo(demo_opts);
  if (version->parsed()) return cli::version();
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return runCli(argc, argv);
  } catch (const std::exception& e) {
    // Nothing on the data plane throws this far; a failure at start-up (the logger, a bad
    // argument CLI11 did not catch) is reported rather than aborting.
    std::fprintf(stderr, "sluice: %s\n", e.what());
    return 1;
  }
}
