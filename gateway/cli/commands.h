// The `sluice` subcommands. Each returns the process exit code.
#pragma once

#include <string>

namespace sluice::gateway::cli {

struct RunOptions {
  std::string config_path;
  int workers = 0;        // 0: as configured
  bool watch = false;     // reload when the file changes
  std::string log_level;  // "": as configured
};
int run(const RunOptions& options);

// Prints every problem as file:line:column: message (stderr) and returns 1, or prints
// "<file>: ok" and returns 0.
int validate(const std::string& config_path);

struct DemoOptions {
  std::string listen = "127.0.0.1:8080";
  std::string admin = "127.0.0.1:9901";
  int workers = 0;
  std::string log_level;  // "": as configured
};
int demo(const DemoOptions& options);

int version();

}  // namespace sluice::gateway::cli
