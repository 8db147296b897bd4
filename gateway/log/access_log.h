// The access log: one JSON object per line, written asynchronously.
//
// Workers format a line (only the configured fields, in the configured order) and hand it to a
// bounded queue drained by one writer thread (spdlog's async logger). A worker never waits for
// the disk: when the queue is full the oldest pending line is dropped and counted
// (sluice_access_log_dropped_total). Off by default.
//
//   {"time":"2026-11-22T10:00:00.123Z","request_id":"9f..","client":"10.0.0.7","method":"GET",
//    "host":"api.example.com","path":"/v1/items","status":200,"duration_ms":1.84,...}
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/proxy/request_context.h"

namespace spdlog {
class logger;
}

namespace sluice::gateway::log {

class AccessLog {
 public:
  // nullptr with *error set when the destination cannot be opened.
  [[nodiscard]] static std::unique_ptr<AccessLog> open(const config::AccessLog& config,
                                                       std::string* error);
  ~AccessLog();

  // Formats and enqueues one line. Thread-safe; never blocks on the writer.
  void write(const proxy::RequestContext& ctx, std::chrono::nanoseconds latency);
  void flush();
  // Opens the file again under its name (logrotate moved it away, then sent SIGUSR1); lines
  // still queued at that moment may land in either file, none is lost. A log on stdout or stderr
  // has nothing to reopen. Returns the reason if it fails (the old file stays in use).
  [[nodiscard]] std::optional<std::string> reopen();
  // Lines dropped so far because the writer fell behind (all access logs of the process).
  [[nodiscard]] static std::uint64_t dropped();

  // Appends `s` to `out` as JSON string contents (without quotes).
  static void escape(std::string& out, std::string_view s);

 private:
  enum class FieldId : std::uint8_t;
  class FileSink;
  AccessLog(std::shared_ptr<spdlog::logger> logger, std::shared_ptr<FileSink> file,
            std::vector<FieldId> fields);

  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<FileSink> file_;  // null on stdout or stderr
  std::vector<FieldId> fields_;
};

}  // namespace sluice::gateway::log
