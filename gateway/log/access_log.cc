#include "gateway/log/access_log.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

#include <spdlog/async.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace sluice::gateway::log {

enum class AccessLog::FieldId : std::uint8_t {
  Time,
  RequestId,
  TraceId,
  Client,
  Method,
  Host,
  Path,
  Status,
  DurationMs,
  Route,
  Cluster,
  Upstream,
  BytesIn,
  BytesOut,
  UserAgent,
  Error,
  Query
};

namespace {

constexpr std::size_t kQueueLines = std::size_t{16} * 1024;

std::shared_ptr<spdlog::details::thread_pool> sharedPool() {
  static auto pool = std::make_shared<spdlog::details::thread_pool>(kQueueLines, 1);
  return pool;
}

void appendIso8601(std::string& out, std::chrono::system_clock::time_point t) {
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - secs).count();
  const std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::array<char, 32> buf{};
  const int n = std::snprintf(buf.data(), buf.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<int>(ms));
  out.append(buf.data(), static_cast<std::size_t>(n));
}

}  // namespace

// A file that can be opened again under the same name (logrotate renames it, then sends
// SIGUSR1), written in whole lines only. Lines collect in a buffer that goes to the file in one
// write(2) once it holds 64 KiB and at every flush (each second: server.cc), so a reader (tail -f,
// a log shipper) never sees half a line, and the lines of a quiet gateway arrive within a second.
// spdlog's own file sink writes through stdio, whose 4 KiB buffer went out whenever it filled,
// cutting lines, and cannot reopen. Written by the async logger's thread, reopened by the main
// thread, both under the sink's mutex.
class AccessLog::FileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit FileSink(std::string path) : path_(std::move(path)), fd_(openFile(path_)) {}
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;
  FileSink(FileSink&&) = delete;
  FileSink& operator=(FileSink&&) = delete;
  ~FileSink() override {
    writeOut();
    ::close(fd_);
  }

  void reopen() {
    const std::lock_guard lock(mutex_);
    writeOut();
    const int fd = openFile(path_);  // throws, leaving the old file in use
    ::close(fd_);
    fd_ = fd;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    formatter_->format(msg, buffer_);  // appends the line and its newline
    if (buffer_.size() >= kWriteAt) writeOut();
  }
  void flush_() override { writeOut(); }

 private:
  static constexpr std::size_t kWriteAt = std::size_t{64} * 1024;

  static int openFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw spdlog::spdlog_ex("open failed", errno);
    return fd;
  }

  // Whole lines only ever reach the file; a failed write (a full disk) drops what was buffered
  // rather than hold lines the disk cannot take, and says so once until writes work again.
  void writeOut() {
    std::size_t done = 0;
    while (done < buffer_.size()) {
      const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (!failing_) {
          spdlog::warn("access log {}: write failed ({}): lines dropped", path_,
                       std::error_code(errno, std::generic_category()).message());
        }
        failing_ = true;
        break;
      }
      failing_ = false;
      done += static_cast<std::size_t>(n);
    }
    buffer_.clear();
  }

  std::string path_;
  int fd_;
  spdlog::memory_buf_t buffer_;
  bool failing_ = false;
};

void AccessLog::escape(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7f) {
      out.append("\\u00");
      out.push_back(kHex[u >> 4U]);
      out.push_back(kHex[u & 15U]);
    } else {
      out.push_back(c);  // bytes >= 0x80 pass as they are (paths may carry UTF-8)
    }
  }
}

std::unique_ptr<AccessLog> AccessLog::open(const config::AccessLog& config, std::string* error) {
  std::vector<FieldId> fields;
  const auto index = [](std::string_view name) {
    return static_cast<FieldId>(
        std::find(config::kAccessLogFields.begin(), config::kAccessLogFields.end(), name) -
        config::kAccessLogFields.begin());
  };
  if (config.fields.empty()) {
    for (auto name : config::kAccessLogFields) {
      if (name != config::kAccessLogOptInField) fields.push_back(index(name));
    }
  } else {
    for (const auto& name : config.fields) fields.push_back(index(name));
  }
  spdlog::sink_ptr sink;
  std::shared_ptr<FileSink> file;
  try {
    if (config.path == "stdout") {
      sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    } else if (config.path == "stderr") {
      sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    } else {
      file = std::make_shared<FileSink>(config.path);
      sink = file;
    }
  } catch (const spdlog::spdlog_ex& e) {
    *error = "cannot open access log '" + config.path + "': " + e.what();
    return nullptr;
  }
  auto logger = std::make_shared<spdlog::async_logger>(
      "access", std::move(sink), sharedPool(), spdlog::async_overflow_policy::overrun_oldest);
  logger->set_pattern("%v");
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::err);
  return std::unique_ptr<AccessLog>(
      new AccessLog(std::move(logger), std::move(file), std::move(fields)));
}

AccessLog::AccessLog(std::shared_ptr<spdlog::logger> logger, std::shared_ptr<FileSink> file,
                     std::vector<FieldId> fields)
    : logger_(std::move(logger)), file_(std::move(file)), fields_(std::move(fields)) {}

std::optional<std::string> AccessLog::reopen() {
  if (!file_) return std::nullopt;
  try {
    file_->reopen();
  } catch (const spdlog::spdlog_ex& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

AccessLog::~AccessLog() { flush(); }

void AccessLog::flush() { logger_->flush(); }

std::uint64_t AccessLog::dropped() { return sharedPool()->overrun_counter(); }

void AccessLog::write(const proxy::RequestContext& ctx, std::chrono::nanoseconds latency) {
  thread_local std::string line;
  line.clear();
  line.push_back('{');
  bool first = true;
  const auto key = [&](std::string_view k) {
    if (!first) line.push_back(',');
    first = false;
    line.push_back('"');
    line.append(k);
    line.append("\":");
  };
  const auto str = [&](std::string_view k, std::string_view v) {
    key(k);
    line.push_back('"');
    escape(line, v);
    line.push_back('"');
  };
  const auto num = [&](std::string_view k, std::uint64_t v) {
    key(k);
    line.append(std::to_string(v));
  };
  for (const FieldId f : fields_) {
    switch (f) {
      case FieldId::Time:
        key("time");
        line.push_back('"');
        appendIso8601(line, ctx.wall_start);
        line.push_back('"');
        break;
      case FieldId::RequestId:
        str("request_id", ctx.request_id);
        break;
      case FieldId::TraceId:
        // Only with tracing on: then every request has one, sampled or not, and it is the id
        // a trace backend finds the request's spans under.
        if (ctx.trace.on) {
          key("trace_id");
          line.push_back('"');
          trace::appendHex(line, ctx.trace.trace_id.data(), ctx.trace.trace_id.size());
          line.push_back('"');
        }
        break;
      case FieldId::Client:
        str("client", ctx.client_ip);
        break;
      case FieldId::Method:
        str("method", ctx.method);
        break;
      case FieldId::Host:
        str("host", ctx.host);
        break;
      case FieldId::Path:
        str("path", ctx.path);
        break;
      case FieldId::Status:
        num("status", static_cast<std::uint64_t>(ctx.status));
        break;
      case FieldId::DurationMs: {
        key("duration_ms");
        std::array<char, 32> buf{};
        const int n = std::snprintf(buf.data(), buf.size(), "%.3f",
                                    std::chrono::duration<double, std::milli>(latency).count());
        line.append(buf.data(), static_cast<std::size_t>(n));
        break;
      }
      case FieldId::Route:
        str("route", ctx.route != nullptr ? ctx.route->name : "");
        break;
      case FieldId::Cluster:
        str("cluster", ctx.cluster != nullptr ? ctx.cluster->name : "");
        break;
      case FieldId::Upstream:
        str("upstream", ctx.upstream);
        break;
      case FieldId::BytesIn:
        num("bytes_in", ctx.bytes_in);
        break;
      case FieldId::BytesOut:
        num("bytes_out", ctx.bytes_out);
        break;
      case FieldId::UserAgent:
        str("user_agent", ctx.user_agent);
        break;
      case FieldId::Error:
        str("error", ctx.error);
        break;
      case FieldId::Query:
        str("query", ctx.query);
        break;
    }
  }
  line.push_back('}');
  logger_->info(std::string_view(line));
}

}  // namespace sluice::gateway::log
